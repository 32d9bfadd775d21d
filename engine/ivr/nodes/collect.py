"""collect: read several digits, validate them, store them into a call variable.

Validators: `cn_id` (18-character resident ID with ISO 7064 MOD 11-2 checksum; the final X is keyed
as `*` on a phone keypad), `mobile` (1[3-9] + 9 digits), or a `regex`.
"""
import re

# the one resident-ID check (ISO 7064 MOD 11-2), shared with the masking of personal data
from engine.privacy import id_number_valid as cn_id_valid

SCHEMA = {"properties": {
    "prompt": {"type": "string"}, "invalid_prompt": {"type": "string"},
    "variable": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                 "description": "a variable name (letters, digits and _, not starting with a digit)"},
    "min_digits": {"type": "integer", "minimum": 1}, "max_digits": {"type": "integer", "minimum": 1, "maximum": 64},
    "terminator": {"type": "string", "pattern": "^[#*]?$", "description": "#, * or empty"},
    "timeout": {"type": "number", "minimum": 0.1}, "inter_digit_timeout": {"type": "number", "minimum": 0.1},
    "validator": {"enum": ["cn_id", "mobile"]}, "regex": {"type": "string"},
    "retries": {"type": "integer", "minimum": 0, "maximum": 10}},
    "required": ["prompt", "variable"]}
DEFAULTS = {"invalid_prompt": None, "min_digits": 1, "max_digits": 20, "terminator": "#", "timeout": 8.0,
            "inter_digit_timeout": 4.0, "validator": None, "regex": None, "retries": 2}
BRANCHES = ("ok", "invalid")
PROMPT_FIELDS = ("prompt", "invalid_prompt")


def mobile_valid(value):
    return re.fullmatch(r"1[3-9]\d{8}\d", value) is not None


def check(node, flow):
    if node.get("regex"):
        try:
            re.compile(node["regex"])
        except re.error as exc:
            return [("regex", f"invalid regex: {exc}")]
    return []


def valid(p, value):
    if not p["min_digits"] <= len(value) <= p["max_digits"]:
        return False
    if p["validator"] == "cn_id" and not cn_id_valid(value):
        return False
    if p["validator"] == "mobile" and not mobile_valid(value):
        return False
    return not p["regex"] or re.fullmatch(p["regex"], value) is not None


def handle(call, node, ctx):
    p = ctx.params(node)
    for attempt in range(p["retries"] + 1):
        ctx.play(call, p["prompt"])
        value = call.get_digits(p["max_digits"], p["timeout"], p["inter_digit_timeout"], p["terminator"])
        if p["validator"] == "cn_id":
            value = value.replace("*", "X")
        ctx.note(digits=value)
        if value and valid(p, value):
            call.variables[p["variable"]] = value
            return "ok"
        if p["invalid_prompt"] and attempt < p["retries"]:
            ctx.play(call, p["invalid_prompt"])
    return "invalid"
