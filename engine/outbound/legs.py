"""Outbound legs handed to the engine: which handler serves an answered leg.

A leg the dialer placed with target "engine" reaches the engine's outbound-socket server like a
trunk call, carrying `hotline_purpose` (and `hotline_job`, `hotline_campaign`). The daemon asks
`handler_for(call)`: None for a trunk call (the IVR serves it), else the handler registered for
the purpose (`register("callback", fn)`; fn(call, info) with info the leg's hotline_* values).
A leg whose purpose nobody registered is hung up with a log line, never sent into the IVR.
"""
import logging

log = logging.getLogger("hotline.outbound.legs")

VARIABLES = ("hotline_purpose", "hotline_job", "hotline_campaign", "hotline_ticket", "hotline_original_call")
_handlers = {}


def register(purpose, handler):
    _handlers[purpose] = handler


def unregister(purpose):
    _handlers.pop(purpose, None)


def leg_info(call):
    """{'purpose': ..., 'job': ..., ...} from the leg's channel variables; {} for a trunk call."""
    channel = call.session.channel
    if channel.get("Call-Direction") != "outbound":
        # a trunk call is an inbound leg whatever variables it carries: nothing from the caller's
        # side can make it pass for one of our dials
        return {}
    info = {}
    for name in VARIABLES:
        value = channel.get(f"variable_{name}")
        if value:
            info[name[len("hotline_"):]] = value
    return info if info.get("purpose") else {}


def handler_for(call):
    """A one-argument handler for this leg, or None when it is an inbound trunk call."""
    info = leg_info(call)
    if not info:
        return None
    call.tags.append("outbound")
    call.info.setdefault("extra", {})["outbound"] = info
    fn = _handlers.get(info["purpose"])
    if fn is None:
        def unhandled(call):
            call.log.error("outbound leg for %s (job %s): no handler registered; hanging up",
                           info["purpose"], info.get("job", "-"))
            call.hangup()
        return unhandled
    return lambda call: fn(call, info)
