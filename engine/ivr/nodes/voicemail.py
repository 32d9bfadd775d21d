"""voicemail: record a message up to max_seconds; tagged on the CDR for tickets. Ends the call's IVR."""
SCHEMA = {"properties": {"prompt": {"type": "string"}, "max_seconds": {"type": "number", "minimum": 1, "maximum": 600},
                         "silence_seconds": {"type": "number", "minimum": 0.5}, "box": {"type": "string"},
                         "goodbye": {"type": "string"}}}
DEFAULTS = {"prompt": None, "max_seconds": 120, "silence_seconds": 5, "box": "general", "goodbye": None}
BRANCHES = ("next",)
PROMPT_FIELDS = ("prompt", "goodbye")


def handle(call, node, ctx):
    p = ctx.params(node)
    if p["prompt"]:
        ctx.play(call, p["prompt"], interruptible=False)
    path = ctx.voicemail_path(call, p["box"])
    result = call.record(str(path), p["max_seconds"], p["silence_seconds"], "#")
    call.tags.append("voicemail:" + p["box"])
    # no path when no file was written: the ticket rules then ask for a callback instead
    call.variables["voicemail_path"] = result.get("path") or ""
    call.variables["voicemail_seconds"] = result.get("seconds", 0)
    info = getattr(call, "info", None)      # the CDR's fields: the ticket module finds the message there
    if isinstance(info, dict):
        info.setdefault("extra", {}).update(voicemail_path=call.variables["voicemail_path"] or None,
                                            voicemail_seconds=call.variables["voicemail_seconds"])
    if p["goodbye"]:
        ctx.play(call, p["goodbye"], interruptible=False)
    if "next" in (node.get("children") or {}):
        return "next"
    ctx.finish("voicemail", box=p["box"], path=call.variables["voicemail_path"])
    call.hangup("NORMAL_CLEARING")
    return None
