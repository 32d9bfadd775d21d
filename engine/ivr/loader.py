"""Load and check YAML IVR flows: every problem of every file in one run, as 'file:line:column: message'.

A flow file: name (default: file stem), entry (DID -> node), fallback (node for callers whose
path breaks: errors, loops, exhausted retries with no branch), max_depth (menu levels), variables,
schedule, prompts (id -> text, or {text, voice} / {file}), nodes (id -> {type, params, children}).

One problem is reported once, where it is written: a section or node that is wrong is reported
and then left out of the checks that would only repeat it (a missing node is not also "a loop with
no way out", a node of an unknown type is not also "missing" from the entry that names it, a
misspelt `prompt:` section does not make every prompt reference "unknown"). The warnings of
`hotline ivr lint` are in engine/ivr/lint.py.
"""
import copy
import pathlib
from dataclasses import dataclass, field

import jsonschema
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from engine.infra import yamlpos
from engine.infra.schematext import closest, describe, did_you_mean, kind
from engine.infra.yamlpos import item_pos, plain as _plain, pos as _pos, pos_at as _pos_at, value_pos

from . import schedule as schedule_mod
from .nodes import NODE_TYPES

TERMINAL = {"hangup", "voicemail", "transfer", "queue", "bot"}   # bot: a hand-off reaches an agent
DEFAULT_MAX_DEPTH = 10
SECTIONS = ("name", "entry", "fallback", "max_depth", "variables", "schedule", "prompts", "nodes")


class FlowError(Exception):
    def __init__(self, problems):
        self.problems = [str(p) for p in problems]
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    col: int
    message: str
    severity: str = "error"          # or "warning" (engine/ivr/lint.py): never refuses a load

    def __str__(self):
        return f"{self.file}:{self.line}:{self.col}: {self.message}"

    def lint_text(self):
        return f"{self.file}:{self.line}:{self.col}: {self.severity}: {self.message}"


class Problems(list):
    def add(self, path, at, message, severity="error"):
        self.append(Problem(str(path), at[0], at[1], message, severity))


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
    raw: dict = field(default=None, repr=False)       # the positioned YAML tree
    raw_nodes: dict = field(default_factory=dict, repr=False)   # node id (text) -> its positioned node
    declared: set = field(default_factory=set)        # every node id in the file, broken ones too
    loose: dict = field(default_factory=dict)         # broken node id -> its string child targets
    broken: set = field(default_factory=set)          # sections reported wrong: not checked again
    faulty: set = field(default_factory=set)          # node ids whose shape or branches are wrong


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


@dataclass
class Checked:
    """What a check of a set of files found, for the lint warnings to build on."""
    flowset: FlowSet
    problems: Problems
    files: list
    reached: set                 # (flow, node) reachable from an entry or a fallback
    whole: bool                  # every file read, every entry and link known: `reached` is the truth


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
    """(positioned tree, sections reported broken) or (None, None) when nothing can be checked."""
    text = None
    try:
        text = path.read_text(encoding="utf-8")
        data = yamlpos.load(text)
    except MarkedYAMLError as exc:
        problems.add(path, yamlpos.error_pos(exc, text), f"YAML: {exc.problem or exc}")
        return None, None
    except YAMLError as exc:        # ReaderError: a control character where text should be
        problems.add(path, yamlpos.error_pos(exc, text), f"YAML: {str(exc).splitlines()[0]}")
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        problems.add(path, (1, 1), f"cannot read: {exc}")
        return None, None
    if not isinstance(data, dict):
        problems.add(path, (1, 1), f"a flow file is a mapping with {', '.join(SECTIONS)}; this one is {kind(_plain(data))}")
        return None, None
    from .schema import flow_schema
    schema = flow_schema()
    schema["properties"]["nodes"] = {"type": "object"}     # each node is checked against its type's schema
    broken = set()
    for error in jsonschema.Draft7Validator(schema).iter_errors(_plain(data)):
        for where, sentence in describe(error):
            problems.add(path, _pos_at(data, where), sentence)
            if where:
                broken.add(str(where[0]))
                near = closest(where[0], SECTIONS) if where[0] not in SECTIONS else None
                if near:            # `prompt:` for `prompts:`: the real section counts as broken too
                    broken.add(near)
    if not isinstance(data.get("nodes"), dict):
        return None, None          # reported above (missing, or not a mapping)
    return data, broken


def _report_schema_errors(problems, path, node, node_id, errors):
    for error in errors:
        for where, sentence in describe(error, root=""):
            problems.add(path, _pos_at(node, where), f"node {node_id!r}: {sentence}")


def _check_node(path, raw, node_id, node, broken, problems, faulty):
    """Checks of one node. Returns its plain form, or None when it is too broken to run or link
    (then, or when its schema or branches are wrong, its id goes into `faulty`)."""
    nodes, before = raw["nodes"], len(problems)
    if not isinstance(node, dict) or "type" not in node:
        what = "a mapping with a 'type'" if not isinstance(node, dict) else "a 'type'"
        problems.add(path, _pos(nodes, _raw_key(nodes, node_id)), f"node {node_id!r} needs {what} (one of {', '.join(sorted(NODE_TYPES))})")
        return None
    node_type = node["type"]
    module = NODE_TYPES.get(node_type) if isinstance(node_type, str) else None
    if module is None:
        said = (f"unknown node type {node_type!r}{did_you_mean(node_type, NODE_TYPES)}" if isinstance(node_type, str)
                else f"type must be the name of a node type, not {kind(_plain(node_type))}")
        problems.add(path, value_pos(node, "type"), f"node {node_id!r}: {said}; types: {', '.join(sorted(NODE_TYPES))}")
        return None
    children = node.get("children") or {}
    if not isinstance(children, dict):
        problems.add(path, value_pos(node, "children"), f"node {node_id!r}: children must be a mapping branch -> node, "
                     f"not {kind(_plain(children))}")
        return None
    seen = set()
    for key in children:
        if str(key) in seen:
            problems.add(path, _pos(children, key), f"node {node_id!r}: duplicate branch {key!r}")
        seen.add(str(key))
    plain = _plain(node)
    node_errors = list(_validator(node_type).iter_errors(plain))
    _report_schema_errors(problems, path, node, node_id, node_errors)
    branches = getattr(module, "BRANCHES", ())
    if node_type not in ("menu", "schedule"):
        for key in children:
            if str(key) not in branches:
                problems.add(path, _pos(children, key), f"node {node_id!r}: {node_type} has no branch {str(key)!r}"
                             f"{did_you_mean(key, branches)} (it has {', '.join(branches) or 'none'})")
    elif node_type == "menu":
        for key in children:
            if str(key) not in menu_branches():
                problems.add(path, _pos(children, key), f"node {node_id!r}: menu branch {str(key)!r} is not a key "
                             f"(0-9, *, #, timeout, invalid, agent){did_you_mean(key, menu_branches())}")
    if len(problems) > before:      # its shape or branches are wrong: where it leads is unknown
        faulty.add(node_id)
    if node_errors:      # cross-checks assume a well-formed node; keep only its string links
        plain["children"] = {k: v for k, v in plain.get("children", {}).items() if isinstance(v, str)}
        plain.pop("target", None) if not isinstance(plain.get("target"), str) else None
        return plain
    at = lambda key: _pos(node, key) if key in node else _pos(nodes, _raw_key(nodes, node_id))     # noqa: E731
    if hasattr(module, "check") and not (node_type == "schedule" and "schedule" in broken):
        for key, message in module.check(plain, raw):
            problems.add(path, at(key), f"node {node_id!r}: {message}")
    if hasattr(module, "check_files"):      # files the node names, relative to this flow file
        for key, message in module.check_files(plain, path.parent):
            problems.add(path, at(key), f"node {node_id!r}: {message}")
    return plain


def _loose_targets(node):
    """The string child targets of a node too broken to check: followed for reachability only."""
    if not isinstance(node, dict):
        return []
    children = node.get("children")
    out = [str(v) for v in children.values() if isinstance(v, str)] if isinstance(children, dict) else []
    return out + ([node["target"]] if isinstance(node.get("target"), str) else [])


def _check_file(path, raw, broken, problems):
    """Per-file checks that need the raw (positioned) YAML. Returns a Flow."""
    nodes, positions, loose, faulty, raw_nodes = {}, {}, {}, set(), {}
    for key, node in raw["nodes"].items():
        node_id = str(key)
        raw_nodes[node_id] = node
        positions[node_id] = _pos(raw["nodes"], key)
        plain = _check_node(path, raw, node_id, node, broken, problems, faulty)
        if plain is None:
            faulty.add(node_id)
            loose[node_id] = _loose_targets(node)
        else:
            nodes[node_id] = plain
    sched = raw.get("schedule") if "schedule" not in broken else None
    sched = sched if isinstance(sched, dict) else {}
    for keys, message in schedule_mod.problems(_plain(sched)):
        target = sched
        for k in keys[:-1]:
            target = target[k]
        at = _pos(target, keys[-1]) if isinstance(target, dict) else item_pos(target, keys[-1])
        problems.add(path, at, f"schedule: {message}")
    prompts = _plain(raw.get("prompts") or {}) if "prompts" not in broken else {}
    for prompt_id, prompt in prompts.items():
        audio = prompt.get("file") if isinstance(prompt, dict) else None
        if audio and not (path.parent / audio).exists():
            problems.add(path, value_pos(raw["prompts"][_raw_key(raw["prompts"], prompt_id)], "file"),
                         f"prompt {prompt_id!r}: audio file {audio} not found (relative to {path.parent})")
    entry = raw.get("entry") if "entry" not in broken else None
    return Flow(name=str(raw.get("name") or path.stem), path=path, nodes=nodes, prompts=prompts,
                schedule=_plain(sched), variables=_plain(raw.get("variables") or {}) if "variables" not in broken else {},
                fallback=raw.get("fallback") if "fallback" not in broken else None,
                entry=_plain(entry or {}), positions=positions, raw=raw,
                declared=set(positions), loose=loose, broken=broken, faulty=faulty, raw_nodes=raw_nodes)


def _raw_key(mapping, key):
    """The key as the YAML has it (an unquoted DID is a number there), for its position."""
    return next((k for k in mapping if str(k) == key), key)


def menu_branches():
    return set(NODE_TYPES["menu"].BRANCHES) | {"back", "top"}


def _edges(flowset, flow, node_id):
    if node_id in flow.loose:
        return [flowset.resolve(flow.name, t) for t in flow.loose[node_id]]
    node = flow.nodes.get(node_id) or {}
    out = [flowset.resolve(flow.name, str(t)) for t in (node.get("children") or {}).values()]
    if node.get("type") == "goto" and isinstance(node.get("target"), str):
        out.append(flowset.resolve(flow.name, node["target"]))
    return out


def _links(flow, node_id):
    """(where the reference is written: (line, col), target) for each child and goto target."""
    node = flow.raw_nodes[node_id]
    out = []
    children = node.get("children") if isinstance(node, dict) else None
    if isinstance(children, dict):
        out += [(value_pos(children, k), str(v)) for k, v in children.items() if isinstance(v, str)]
    if isinstance(node, dict) and isinstance(node.get("target"), str) and (node.get("type") == "goto" or node_id in flow.loose):
        out.append((value_pos(node, "target"), node["target"]))
    return out


class Refs:
    """Resolves references across flows and words what is missing (with 'did you mean')."""

    def __init__(self, flowset, unread, partial=False):
        self.flowset, self.unread, self.partial = flowset, unread, partial
        self.dangling = 0          # references to nothing found: what they meant may look unreachable

    def declared(self, ref):
        flow = self.flowset.flows.get(ref[0])
        return flow is not None and ref[1] in flow.declared

    def exists(self, ref):
        return ref[0] in self.flowset.flows and ref[1] in self.flowset.flows[ref[0]].nodes

    def missing(self, ref):
        """Why `ref` names nothing, or None (it exists, or its file could not be read: said already)."""
        flows = self.flowset.flows
        if ref[0] not in flows:
            if ref[0] in self.unread or self.partial:
                return None
            self.dangling += 1
            return f"no flow {ref[0]!r}{did_you_mean(ref[0], flows)}"
        if ref[1] in flows[ref[0]].declared:
            return None
        self.dangling += 1
        return f"no node {ref[1]!r} in flow {ref[0]!r}{did_you_mean(ref[1], flows[ref[0]].declared)}"


def _check_references(flowset, refs, problems):
    starts = []
    for flow in flowset.flows.values():
        for did, target in flow.entry.items():
            ref = flowset.resolve(flow.name, str(target))
            why = refs.missing(ref)
            if why:
                problems.add(flow.path, value_pos(flow.raw["entry"], _raw_key(flow.raw["entry"], did)),
                             f"entry {did}: {why}")
            starts.append(ref)
        if flow.fallback:
            ref = flowset.resolve(flow.name, str(flow.fallback))
            why = refs.missing(ref)
            if why:
                problems.add(flow.path, value_pos(flow.raw, "fallback"), f"fallback: {why}")
            starts.append(ref)
        for node_id in flow.declared:
            for at, target in _links(flow, node_id):
                why = refs.missing(flowset.resolve(flow.name, target))
                if why:
                    problems.add(flow.path, at, f"node {node_id!r}: {why}")
        if "prompts" not in flow.broken:
            _check_prompt_refs(flow, problems)
    return starts


def _check_prompt_refs(flow, problems):
    for node_id, node in flow.nodes.items():
        raw = flow.raw_nodes[node_id]
        for field_name in getattr(NODE_TYPES[node["type"]], "PROMPT_FIELDS", ()):
            values = node.get(field_name)
            if isinstance(values, list):
                spots = [(item_pos(raw[field_name], i), v) for i, v in enumerate(values)]
            else:
                spots = [(value_pos(raw, field_name), values)]
            for at, prompt in spots:
                if isinstance(prompt, str) and prompt and prompt not in flow.prompts:
                    problems.add(flow.path, at, f"node {node_id!r}: no prompt {prompt!r} in prompts"
                                 f"{did_you_mean(prompt, flow.prompts)}")


def _reach(flowset, refs, starts):
    reached, todo = set(), list(starts)
    while todo:
        ref = todo.pop()
        if ref in reached or not refs.declared(ref):
            continue
        reached.add(ref)
        todo.extend(_edges(flowset, flowset.flows[ref[0]], ref[1]))
    return reached


def _check_loops(flowset, refs, reached, problems):
    """Reached nodes from which no terminal node can be reached. A node whose way on is unknown
    (it has a problem, or links to nothing: reported already) counts as a way out."""
    def unknown(ref):
        flow = flowset.flows[ref[0]]
        return ref[1] in flow.faulty or any(not refs.exists(t) for t in _edges(flowset, flow, ref[1]))
    can_exit = {ref for ref in reached
                if unknown(ref) or flowset.flows[ref[0]].nodes[ref[1]]["type"] in TERMINAL}
    changed = True
    while changed:
        changed = False
        for ref in reached - can_exit:
            if any(t in can_exit for t in _edges(flowset, flowset.flows[ref[0]], ref[1])):
                can_exit.add(ref)
                changed = True
    for flow_name, node_id in sorted(reached - can_exit):
        flow = flowset.flows[flow_name]
        problems.add(flow.path, flow.positions[node_id], f"node {node_id!r} is in a loop with no way out "
                     "(no path to a hangup, transfer, voicemail, queue or bot)")


def menu_depths(flowset, refs, flow):
    """{(did, node ref): menu levels on the shortest path from that entry} for the flow's entries."""
    out = {}
    for did, target in flow.entry.items():
        start = flowset.resolve(flow.name, str(target))
        if not refs.exists(start):
            continue
        # the entry's own menu is level 1; an entry through set/schedule/play nodes is level 0
        depth = {start: 1 if flowset.flows[start[0]].nodes[start[1]]["type"] == "menu" else 0}
        queue = list(depth)
        while queue:
            ref = queue.pop(0)
            if not refs.exists(ref):
                continue
            for nxt in _edges(flowset, flowset.flows[ref[0]], ref[1]):
                if nxt not in depth and refs.exists(nxt):
                    is_menu = flowset.flows[nxt[0]].nodes[nxt[1]]["type"] == "menu"
                    depth[nxt] = depth[ref] + (1 if is_menu else 0)
                    if is_menu:
                        out[(did, nxt)] = depth[nxt]
                    queue.append(nxt)
    return out


def _check_depth(flowset, refs, problems):
    for flow in flowset.flows.values():
        limit = flow.raw.get("max_depth") if "max_depth" not in flow.broken else None
        limit = int(limit or DEFAULT_MAX_DEPTH)
        for (did, ref), depth in menu_depths(flowset, refs, flow).items():
            if depth > limit:
                node_flow = flowset.flows[ref[0]]
                problems.add(node_flow.path, node_flow.positions[ref[1]], f"node {ref[1]!r}: menu depth {depth} "
                             f"from entry {did} is beyond max_depth {limit}")


def check_flows(paths, partial=False):
    """Every error in the flow files `paths` (files or directories), and what the warnings need.
    `partial`: these are not all the flows, so a reference to a flow not among them is not checked."""
    if isinstance(paths, (str, pathlib.Path)):
        paths = [paths]
    problems, flows, entries, unread = Problems(), {}, {}, set()
    files = _files(paths)
    for path in files:
        raw, broken = _read(path, problems)
        if raw is None:
            unread.add(path.stem)
            continue
        flow = _check_file(path, raw, broken, problems)
        if flow.name in flows:
            problems.add(path, _pos(raw, "name") if "name" in raw else (1, 1),
                         f"flow name {flow.name!r} is also used by {flows[flow.name].path}")
            continue
        flows[flow.name] = flow
        for did, target in flow.entry.items():
            if did in entries:
                problems.add(path, _pos(raw["entry"], _raw_key(raw["entry"], did)), f"DID {did} is also an entry of flow {entries[did][0]!r}")
            entries[did] = (flow.name, str(target))
    flowset = FlowSet(flows=flows, entries={})
    flowset.entries = {d: flowset.resolve(f, t) for d, (f, t) in entries.items()}
    refs = Refs(flowset, unread, partial)
    starts = _check_references(flowset, refs, problems)
    reached = _reach(flowset, refs, starts)
    _check_loops(flowset, refs, reached, problems)
    _check_depth(flowset, refs, problems)
    whole = not unread and not partial and not refs.dangling and not any({"entry", "fallback"} & f.broken for f in flows.values())
    return Checked(flowset=flowset, problems=problems, files=files, reached=reached, whole=whole)


def sort_key(problem):
    return problem.file, problem.line, problem.col


def load_flows(paths, strict=True):
    """Load every flow in `paths` (files or directories). Returns (FlowSet, problems as text).

    With strict=True any problem raises FlowError (a runtime never runs a half-valid set).
    """
    checked = check_flows(paths)
    problems = [str(p) for p in sorted(checked.problems, key=sort_key)]
    if strict and problems:
        raise FlowError(problems)
    return checked.flowset, problems
