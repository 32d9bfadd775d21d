"""Bridges (uuid_bridge, the bridge app) and eavesdrop."""


def unbridge(switch, ch):
    other = switch.channels.get(ch.bridged_to) if ch.bridged_to else None
    ch.bridged_to = None
    if other is not None and other.bridged_to == ch.uuid:
        other.bridged_to = None


def uuid_bridge(switch, a, b):
    raise NotImplementedError("uuid_bridge")


def bridge_app(switch, ch, arg):
    raise NotImplementedError("bridge")


def eavesdrop(switch, ch, target):
    raise NotImplementedError("eavesdrop")
