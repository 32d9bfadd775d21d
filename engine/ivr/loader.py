"""Load and lint YAML IVR flows: every problem as 'file:line:column: message'.

A flow file: name (default: file stem), entry (DID -> node), fallback (node for callers whose
path breaks: errors, loops, exhausted retries with no branch), max_depth (menu levels), variables,
schedule, prompts (id -> text, or {text, voice} / {file}), nodes (id -> {type, params, children}).
"""
import copy
import pathlib
from dataclasses import dataclass, field

import jsonschema
from ruamel.yaml.error import MarkedYAMLError

from engine.infra import yamlpos
from engine.infra.yamlpos import plain as _plain, pos as _pos, pos_at as _pos_at

from . import schedule as schedule_mod
from .nodes import NODE_TYPES

TERMINAL = {"hangup", "voicemail", "transfer", "queue", "bot"}   # bot: a hand-off reaches an agent
DEFAULT_MAX_DEPTH = 10


class FlowError(Exception):
    def __init__(self, problems):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class Flow:
    name: str
    path: pathlib.Path
    nodes: dict
    prompts: dict
    schedule: dict
    variables: dict
    fallback: str = None
    entry: dict = field(default_factory=dict)
    positions: dict = field(default_factory=dict)     # node id -> (line, column)


@dataclass
class FlowSet:
    flows: dict                  # name -> Flow
    entries: dict                # DID -> (flow name, node id)

    def resolve(self, flow_name, target):
        """'node' in flow_name, or 'flow:node' -> (flow name, node id)."""
        if ":" in target:
            other, _, node = target.partition(":")
            return other, node
        return flow_name, target


def node_schema(module):
    schema = copy.deepcopy(module.SCHEMA)
    props = schema.setdefault("properties", {})
    props["type"] = {"const": module.__name__.rsplit(".", 1)[-1]}
    props["children"] = {"type": "object", "additionalProperties": {"type": "string"}}
    props["comment"] = {"type": "string"}
    schema["additionalProperties"] = False
    schema["required"] = ["type"] + list(schema.get("required", []))
    return schema


_VALIDATORS = {}


def _validator(node_type):
    """Built once per type: building a validator costs more than validating a node."""
    if node_type not in _VALIDATORS:
        _VALIDATORS[node_type] = jsonschema.Draft7Validator(node_schema(NODE_TYPES[node_type]))
    return _VALIDATORS[node_type]


def _files(paths):
    out = []
    for path in paths:
        path = pathlib.Path(path)
        # bots/ holds bot definitions (engine.bot), which the `bot` node names; they are not flows
        out.extend(sorted(p for p in path.rglob("*.yaml") if "bots" not in p.relative_to(path).parts[:-1])
                   if path.is_dir() else [path])
    return out


def _read(path, problems):
    try:
        data = yamlpos.load(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(f"{path}:{line}:{col}: YAML: {exc.problem or exc}")
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}:1:1: cannot read: {exc}")
        return None
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict):
        problems.append(f"{path}:1:1: a flow file needs a 'nodes' mapping")
        return None
    from .schema import flow_schema
    schema = flow_schema()
    schema["properties"]["nodes"] = {"type": "object", "additionalProperties": {"type": "object"}}
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(_plain(data)))
    for error in errors:     # the file's shape is wrong: report where, and check nothing deeper
        line, col = _pos_at(data, list(error.path))
        where = ".".join(map(str, error.path)) or "file"
        problems.append(f"{path}:{line}:{col}: {where}: {error.message}")
    return None if errors else data


def _check_file(path, raw, problems):
    """Per-file checks that need the raw (positioned) YAML. Returns a Flow."""
    where = lambda m, k=None: "%s:%d:%d" % ((path,) + _pos(m, k))   # noqa: E731
    nodes, positions = {}, {}
    for node_id, node in raw["nodes"].items():
        node_id = str(node_id)
        positions[node_id] = _pos(raw["nodes"], node_id)
        if not isinstance(node, dict) or "type" not in node:
            problems.append(f"{where(raw['nodes'], node_id)}: node {node_id!r} needs a 'type'")
            continue
        module = NODE_TYPES.get(node["type"]) if isinstance(node["type"], str) else None
        if module is None:
            problems.append(f"{where(node, 'type')}: node {node_id!r}: unknown node type {node['type']!r} "
                            f"(this engine has {', '.join(sorted(NODE_TYPES))})")
            continue
        children = node.get("children") or {}
        if not isinstance(children, dict):
            problems.append(f"{where(node, 'children')}: node {node_id!r}: children must be a mapping branch -> node")
            continue
        seen = set()
        for key in children:
            if str(key) in seen:
                problems.append(f"{where(children, key)}: node {node_id!r}: duplicate branch {key!r}")
            seen.add(str(key))
        plain = _plain(node)
        node_errors = list(_validator(node["type"]).iter_errors(plain))
        for error in node_errors:
            key = error.path[0] if error.path else None
            loc = where(node, key) if key in node else where(raw["nodes"], node_id)
            problems.append(f"{loc}: node {node_id!r}: {'.'.join(map(str, error.path)) or 'node'}: {error.message}")
        branches = getattr(module, "BRANCHES", ())
        if node["type"] not in ("menu", "schedule"):
            for key in children:
                if str(key) not in branches:
                    problems.append(f"{where(children, key)}: node {node_id!r}: {node['type']} has no branch {key!r} "
                                    f"(it has {', '.join(branches) or 'none'})")
        elif node["type"] == "menu":
            for key in children:
                if str(key) not in menu_branches():
                    problems.append(f"{where(children, key)}: node {node_id!r}: menu branch {key!r} is not a key")
        if node_errors:      # cross-checks assume a well-formed node; keep only its string links
            plain["children"] = {k: v for k, v in plain.get("children", {}).items() if isinstance(v, str)}
            plain.pop("target", None) if not isinstance(plain.get("target"), str) else None
            nodes[node_id] = plain
            continue
        if hasattr(module, "check"):
            for key, message in module.check(plain, raw):
                loc = where(node, key) if key in node else where(raw["nodes"], node_id)
                problems.append(f"{loc}: node {node_id!r}: {message}")
        if hasattr(module, "check_files"):      # files the node names, relative to this flow file
            for key, message in module.check_files(plain, path.parent):
                loc = where(node, key) if key in node else where(raw["nodes"], node_id)
                problems.append(f"{loc}: node {node_id!r}: {message}")
        nodes[node_id] = plain
    sched = raw.get("schedule") or {}
    for keys, message in schedule_mod.problems(_plain(sched)):
        target = sched
        for k in keys[:-1]:
            target = target[k]
        if isinstance(target, dict):
            loc = where(target, keys[-1])
        else:       # a list item: ruamel keeps its position too
            line, col = target.lc.item(keys[-1])
            loc = f"{path}:{line + 1}:{col + 1}"
        problems.append(f"{loc}: schedule: {message}")
    prompts = _plain(raw.get("prompts") or {})
    for prompt_id, prompt in prompts.items():
        audio = prompt.get("file") if isinstance(prompt, dict) else None
        if audio and not (path.parent / audio).exists():
            problems.append(f"{where(raw['prompts'], prompt_id)}: prompt {prompt_id!r}: audio file {audio} not found")
    return Flow(name=str(raw.get("name") or path.stem), path=path, nodes=nodes, prompts=prompts,
                schedule=_plain(sched), variables=_plain(raw.get("variables") or {}),
                fallback=raw.get("fallback"), entry=_plain(raw.get("entry") or {}), positions=positions)


def menu_branches():
    return set(NODE_TYPES["menu"].BRANCHES) | {"back", "top"}


def _edges(flowset, flow, node_id):
    node = flow.nodes.get(node_id) or {}
    out = [flowset.resolve(flow.name, str(t)) for t in (node.get("children") or {}).values()]
    if node.get("type") == "goto" and isinstance(node.get("target"), str):
        out.append(flowset.resolve(flow.name, node["target"]))
    return out


def _cross_checks(flowset, raws, problems):
    def at(flow, node_id):
        line, col = flow.positions.get(node_id, (1, 1))
        return f"{flow.path}:{line}:{col}"

    def exists(ref):
        return ref[0] in flowset.flows and ref[1] in flowset.flows[ref[0]].nodes

    starts = []
    for flow in flowset.flows.values():
        for did, target in flow.entry.items():
            ref = flowset.resolve(flow.name, str(target))
            if not exists(ref):
                problems.append(f"{flow.path}:{_pos(raws[flow.name]['entry'], did)[0]}:1: entry {did}: no node {target!r}")
            else:
                starts.append(ref)
        if flow.fallback:
            ref = flowset.resolve(flow.name, str(flow.fallback))
            if not exists(ref):
                problems.append(f"{flow.path}:{_pos(raws[flow.name], 'fallback')[0]}:1: fallback: no node {flow.fallback!r}")
            else:
                starts.append(ref)
        for node_id, node in flow.nodes.items():
            module = NODE_TYPES[node["type"]]
            for field_name in getattr(module, "PROMPT_FIELDS", ()):
                values = node.get(field_name)
                for prompt in values if isinstance(values, list) else [values]:
                    if prompt and prompt not in flow.prompts:
                        problems.append(f"{at(flow, node_id)}: node {node_id!r}: no prompt {prompt!r} in prompts")
            for target in _edges(flowset, flow, node_id):
                if target[0] not in flowset.flows:
                    problems.append(f"{at(flow, node_id)}: node {node_id!r}: no flow {target[0]!r}")
                elif not exists(target):
                    problems.append(f"{at(flow, node_id)}: node {node_id!r}: no node {target[1]!r} in flow {target[0]!r}")
    # Reachability from entries and fallbacks across flows (goto reaches shared sub-trees).
    reached, todo = set(), list(starts)
    while todo:
        ref = todo.pop()
        if ref in reached or not exists(ref):
            continue
        reached.add(ref)
        todo.extend(_edges(flowset, flowset.flows[ref[0]], ref[1]))
    for flow in flowset.flows.values():
        for node_id in flow.nodes:
            if (flow.name, node_id) not in reached:
                problems.append(f"{at(flow, node_id)}: node {node_id!r} is unreachable")
    # Loops with no way out: reached nodes from which no terminal node can be reached.
    can_exit = {(f.name, n) for f in flowset.flows.values() for n, node in f.nodes.items() if node["type"] in TERMINAL}
    changed = True
    while changed:
        changed = False
        for ref in reached - can_exit:
            if any(t in can_exit for t in _edges(flowset, flowset.flows[ref[0]], ref[1])):
                can_exit.add(ref)
                changed = True
    for flow_name, node_id in sorted(reached - can_exit):
        flow = flowset.flows[flow_name]
        problems.append(f"{at(flow, node_id)}: node {node_id!r} is in a loop with no way out (no path to a hangup, transfer, voicemail, queue or bot)")
    # Menu depth: menu levels on the shortest path from each entry.
    for flow in flowset.flows.values():
        limit = int((raws[flow.name].get("max_depth") or DEFAULT_MAX_DEPTH))
        for did, target in flow.entry.items():
            depth = {flowset.resolve(flow.name, str(target)): 1}
            queue = list(depth)
            while queue:
                ref = queue.pop(0)
                if not exists(ref):
                    continue
                for nxt in _edges(flowset, flowset.flows[ref[0]], ref[1]):
                    if nxt not in depth and exists(nxt):
                        is_menu = flowset.flows[nxt[0]].nodes[nxt[1]]["type"] == "menu"
                        depth[nxt] = depth[ref] + (1 if is_menu else 0)
                        if depth[nxt] > limit and is_menu:
                            problems.append(f"{at(flowset.flows[nxt[0]], nxt[1])}: node {nxt[1]!r}: menu depth {depth[nxt]} "
                                            f"from entry {did} is beyond max_depth {limit}")
                        queue.append(nxt)


def load_flows(paths, strict=True):
    """Load every flow in `paths` (files or directories). Returns (FlowSet, problems).

    With strict=True any problem raises FlowError (a runtime never runs a half-valid set).
    """
    if isinstance(paths, (str, pathlib.Path)):
        paths = [paths]
    problems, flows, raws, entries = [], {}, {}, {}
    for path in _files(paths):
        raw = _read(path, problems)
        if raw is None:
            continue
        flow = _check_file(path, raw, problems)
        if flow.name in flows:
            problems.append(f"{path}:1:1: flow name {flow.name!r} is also used by {flows[flow.name].path}")
            continue
        flows[flow.name], raws[flow.name] = flow, raw
        for did, target in flow.entry.items():
            if did in entries:
                problems.append(f"{path}:{_pos(raw['entry'], did)[0]}:1: DID {did} is also an entry of flow {entries[did][0]!r}")
            entries[did] = (flow.name, str(target))
    flowset = FlowSet(flows=flows, entries={d: flowset_ref for d, flowset_ref in entries.items()})
    entries_resolved = {d: flowset.resolve(f, t) for d, (f, t) in entries.items()}
    flowset.entries = entries_resolved
    _cross_checks(flowset, raws, problems)
    if strict and problems:
        raise FlowError(problems)
    return flowset, problems
