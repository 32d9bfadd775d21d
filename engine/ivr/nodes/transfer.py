"""transfer: bridge to an external number unless the dial-block list refuses it (branch 'blocked')."""
import re

SCHEMA = {"properties": {"number": {"type": "string", "pattern": r"^\+?[0-9]{3,20}$"}, "prompt": {"type": "string"},
                         "block": {"type": "array", "items": {"type": "string"},
                                   "description": "extra blocked prefixes or /regex/"}},
          "required": ["number"]}
DEFAULTS = {"prompt": None, "block": []}
BRANCHES = ("blocked", "error")
PROMPT_FIELDS = ("prompt",)


def blocked(number, extra=()):
    """The dial-block list (settings outbound_calls.dial_block and the `block` list, through
    engine.outbound.dialblock.DialBlock) plus the node's own `block` rules (prefixes or /regex/)."""
    from engine.outbound.dialblock import DialBlock
    if DialBlock.for_settings().refuses(number, "transfer"):
        return True
    for rule in extra:
        if rule.startswith("/") and rule.endswith("/") and re.fullmatch(rule[1:-1], number):
            return True
        if not rule.startswith("/") and number.startswith(rule):
            return True
    return False


def check(node, flow):
    number = str(node.get("number", ""))
    return [("number", f"number {number} is on the dial-block list")] if blocked(number, node.get("block") or []) else []


def handle(call, node, ctx):
    p = ctx.params(node)
    number = str(p["number"])
    if blocked(number, p["block"]):
        call.log.warning("transfer to %s refused by the dial-block list", number)
        return "blocked"
    if p["prompt"]:
        ctx.play(call, p["prompt"], interruptible=False)
    call.transfer_external(number)
    ctx.finish("transferred", number=number)
    return None
