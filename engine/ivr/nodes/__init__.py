"""Registry of IVR node types: one module per type (SCHEMA, DEFAULTS, BRANCHES, handle, optional check).

A flow using a type missing here is refused at load.
"""
from . import menu, play, say, collect, lookup, schedule, voicemail, transfer, goto, set, hangup, queue, bot

NODE_TYPES = {
    "menu": menu, "play": play, "say": say, "collect": collect, "lookup": lookup,
    "schedule": schedule, "voicemail": voicemail, "transfer": transfer, "goto": goto,
    "set": set, "hangup": hangup, "queue": queue, "bot": bot,
}


def params(node):
    """The node's parameters with its type's DEFAULTS filled in (declared once, in the module)."""
    merged = dict(NODE_TYPES[node["type"]].DEFAULTS)
    merged.update({k: v for k, v in node.items() if k not in ("type", "children")})
    return merged
