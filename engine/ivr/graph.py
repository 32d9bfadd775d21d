"""Draw a flow with graphviz `dot`: prompt text on the nodes, branches on the edges."""
import pathlib
import subprocess

from .loader import load_flows


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def dot_source(path):
    flowset, problems = load_flows([path], strict=False)
    lines = ["digraph ivr {", '  rankdir=LR; node [shape=box, fontname="Noto Sans CJK SC"];']
    for flow in flowset.flows.values():
        for node_id, node in flow.nodes.items():
            prompt = node.get("prompt")
            text = flow.prompts.get(prompt, "") if isinstance(prompt, str) else ""
            text = text.get("text", text.get("file", "")) if isinstance(text, dict) else text
            label = f"{node_id} [{node['type']}]" + (f"\\n{text[:40]}" if text else "")
            lines.append(f"  {_quote(flow.name + ':' + node_id)} [label={_quote(label)}];")
            targets = dict(node.get("children") or {})
            if node["type"] == "goto":
                targets["goto"] = node["target"]
            for branch, target in targets.items():
                ref = flowset.resolve(flow.name, str(target))
                lines.append(f"  {_quote(flow.name + ':' + node_id)} -> {_quote(ref[0] + ':' + ref[1])} [label={_quote(branch)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_graph(path, output):
    source = dot_source(path)
    fmt = pathlib.Path(output).suffix.lstrip(".") or "svg"
    if fmt == "dot":
        pathlib.Path(output).write_text(source, encoding="utf-8")
        return
    subprocess.run(["dot", f"-T{fmt}", "-o", str(output)], input=source.encode(), check=True, timeout=60)
