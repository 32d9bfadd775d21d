"""menu: play a prompt, read one key, follow the child for that key; retries for no/invalid input."""
SCHEMA = {
    "properties": {
        "prompt": {"type": "string"},
        "timeout": {"type": "number", "minimum": 0.1},
        "inter_digit_timeout": {"type": "number", "minimum": 0.1},
        "max_retries": {"type": "integer", "minimum": 0, "maximum": 10},
        "invalid_prompt": {"type": "string"},
        "timeout_prompt": {"type": "string"},
        "keys": {"type": "object", "additionalProperties": False, "properties": {
            k: {"type": "string", "pattern": "^[0-9*#]$", "description": "one key: 0-9, * or #"} for k in ("back", "top", "repeat", "agent")}},
    },
    "required": ["prompt"],
}
DEFAULTS = {"timeout": 5.0, "inter_digit_timeout": 3.0, "max_retries": 2,
            "invalid_prompt": None, "timeout_prompt": None, "keys": {}}
BRANCHES = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "#", "timeout", "invalid", "agent")
PROMPT_FIELDS = ("prompt", "invalid_prompt", "timeout_prompt")


def check(node, flow):
    problems = []
    children = node.get("children") or {}
    keys = node.get("keys") or {}
    for role, key in keys.items():
        if key in children:
            problems.append(("keys", f"key {key!r} is both the {role} key and a child"))
    if "timeout" not in children and "invalid" not in children:
        problems.append(("children", "menu has no timeout path (add a 'timeout' or 'invalid' child)"))
    return problems


def handle(call, node, ctx):
    p = ctx.params(node)
    children = node.get("children") or {}
    keys = {v: k for k, v in (p["keys"] or {}).items()}
    attempts, last = 0, "timeout"
    while attempts <= p["max_retries"]:
        ctx.play(call, p["prompt"])
        digit = call.get_digits(1, p["timeout"], p["inter_digit_timeout"], "")
        ctx.note(digits=digit)
        if digit in children:
            return digit
        if digit and keys.get(digit) == "repeat":
            continue
        if digit and keys.get(digit) in ("back", "top", "agent"):
            return keys[digit]
        last = "invalid" if digit else "timeout"
        attempts += 1
        extra = p["invalid_prompt"] if digit else p["timeout_prompt"]
        if extra and attempts <= p["max_retries"]:
            ctx.play(call, extra)
    return last if last in children else ("invalid" if "invalid" in children else "timeout")
