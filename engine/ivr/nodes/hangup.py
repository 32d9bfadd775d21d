"""hangup: optional goodbye prompt, then hang up with a cause."""
SCHEMA = {"properties": {"prompt": {"type": "string"},
                         "cause": {"type": "string", "pattern": "^[A-Z][A-Z_]+$",
                                   "description": "a hangup cause in capitals, e.g. NORMAL_CLEARING"}}}
DEFAULTS = {"prompt": None, "cause": "NORMAL_CLEARING"}
BRANCHES = ()
PROMPT_FIELDS = ("prompt",)


def handle(call, node, ctx):
    p = ctx.params(node)
    if p["prompt"]:
        ctx.play(call, p["prompt"], interruptible=False)
    ctx.finish("hangup", cause=p["cause"])
    call.hangup(p["cause"])
    return None
