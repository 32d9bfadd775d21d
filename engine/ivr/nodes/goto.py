"""goto: continue at another node of this flow, or at `flow:node` / `flow` (its start) of another flow."""
SCHEMA = {"properties": {"target": {"type": "string"}}, "required": ["target"]}
DEFAULTS = {}
BRANCHES = ()


def check(node, flow):
    return []      # targets are resolved by the loader, which sees every flow


def handle(call, node, ctx):
    ctx.jump(node["target"])
    return None
