"""play: play one or more prompts, then go on to child 'next'."""
SCHEMA = {"properties": {"prompt": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                         "interruptible": {"type": "boolean"}}, "required": ["prompt"]}
DEFAULTS = {"interruptible": False}
BRANCHES = ("next",)
PROMPT_FIELDS = ("prompt",)


def handle(call, node, ctx):
    p = ctx.params(node)
    prompts = p["prompt"] if isinstance(p["prompt"], list) else [p["prompt"]]
    for prompt in prompts:
        ctx.play(call, prompt, interruptible=p["interruptible"])
    return "next"
