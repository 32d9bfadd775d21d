"""schedule: branch by the named time window open now (see engine/ivr/schedule.py).

Branch names: a window name, 'holiday', 'closed' (no window open, or manual override closed),
'emergency' (manual emergency override); the manual 'open' override picks the first window.
"""
SCHEMA = {"properties": {"windows": {"type": "array", "items": {"type": "string"},
                                     "description": "window names to test, in order (default: all)"}}}
DEFAULTS = {"windows": None}
BRANCHES = ("holiday", "closed", "emergency")


def check(node, flow):
    from engine.infra.schematext import did_you_mean
    windows = ((flow.get("schedule") or {}).get("windows") or {})
    problems = [("windows", f"unknown time window {w!r}{did_you_mean(w, windows)}")
                for w in (node.get("windows") or []) if w not in windows]
    for branch in (node.get("children") or {}):
        if branch not in windows and branch not in BRANCHES:
            problems.append(("children", f"branch {branch!r} is not a time window of this flow"
                                         f"{did_you_mean(branch, list(windows) + list(BRANCHES))}"))
    if "closed" not in (node.get("children") or {}):
        problems.append(("children", "schedule node needs a 'closed' child"))
    return problems


def handle(call, node, ctx):
    p = ctx.params(node)
    branch = ctx.schedule.branch(call.now(), p["windows"])
    if branch == "emergency":
        message = ctx.schedule.override_message()
        if message:
            ctx.speak(call, message)
        if "emergency" not in (node.get("children") or {}):
            return "closed"
    if branch == "holiday" and "holiday" not in (node.get("children") or {}):
        return "closed"
    return branch
