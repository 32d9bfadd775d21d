"""set: call variables (values are jinja2 templates) and CDR tags; then 'next'."""
SCHEMA = {"properties": {"variables": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
                         "tags": {"type": "array", "items": {"type": "string"}}}}
DEFAULTS = {"variables": {}, "tags": []}
BRANCHES = ("next",)


def handle(call, node, ctx):
    p = ctx.params(node)
    for name, value in p["variables"].items():
        call.variables[name] = ctx.template(value, call) if isinstance(value, str) else value
    call.tags.extend(t for t in p["tags"] if t not in call.tags)
    return "next"
