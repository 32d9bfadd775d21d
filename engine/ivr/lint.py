"""`hotline ivr lint`: the loader's errors, plus warnings about what works but serves callers badly.

Warnings never refuse a load (the engine runs the flows); `lint --strict` fails on them too:
- a menu deeper than `menu_levels` (5) levels from an entry: callers lose their way;
- a prompt longer than `prompt_seconds` (20 s): TTS text estimated from its length at a speaking
  rate, audio files by their duration;
- a node no entry or fallback reaches;
- a queue no agent of the agents file can serve (no one has the skills it needs);
- holidays listed by hand without `cn_calendar: true`: next year's are missing until someone adds
  them (engine/ivr/schedule.py).
With the agents and queues files, a queue node naming a queue that does not exist is an error.
"""
import re
from dataclasses import dataclass

from engine.infra.schematext import did_you_mean
from engine.infra.yamlpos import pos as _pos, value_pos

from . import schedule as schedule_mod
from .loader import DEFAULT_MAX_DEPTH, Refs, _raw_key, check_flows, menu_depths, sort_key

# Mandarin TTS (edge-tts Xiaoxiao, espeak-ng) speaks about 4 characters a second once the pauses
# at punctuation are counted; Latin letters and digits go about 14 a second (~150 words a minute).
HAN_PER_SECOND = 4.0
OTHER_PER_SECOND = 14.0
PAUSE_SECONDS = 0.3
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_PAUSE = re.compile(r"[，。、；：！？,.;:!?]")
_OTHER = re.compile(r"[A-Za-z0-9]")


@dataclass
class LintOptions:
    prompt_seconds: float = 20.0      # warn about prompts longer than this
    menu_levels: int = 5              # warn about menus deeper than this
    acd: object = None                # engine.acd.config.AcdConfig: queue checks when given


def spoken_seconds(text):
    """About how long TTS takes to say `text`."""
    text = str(text)
    return (len(_HAN.findall(text)) / HAN_PER_SECOND + len(_OTHER.findall(text)) / OTHER_PER_SECOND
            + len(_PAUSE.findall(text)) * PAUSE_SECONDS)


def _audio_seconds(path):
    from engine.media.archive import RecordingError, probe
    try:
        return probe(path)["seconds"]
    except (RecordingError, OSError, ValueError):
        return None              # unreadable or no ffprobe: the engine reports it when it plays


def lint_flows(paths, options=None):
    """(FlowSet, [Problem] errors and warnings, in file order, files checked)."""
    options = options or LintOptions()
    checked = check_flows(paths)
    problems, flowset = checked.problems, checked.flowset
    refs = Refs(flowset, set())
    if checked.whole:        # with a file unread or an entry unknown, "unreachable" would be a guess
        for flow in flowset.flows.values():
            for node_id in sorted(flow.declared - {n for f, n in checked.reached if f == flow.name}):
                problems.add(flow.path, flow.positions[node_id], f"node {node_id!r} is unreachable "
                             "(no entry, fallback or other node leads to it)", "warning")
    for flow in flowset.flows.values():
        _menu_levels(flowset, refs, flow, options, problems)
        _prompt_lengths(flow, options, problems)
        _holidays(flow, problems)
        if options.acd is not None:
            _queues(flow, options.acd, problems)
    return flowset, sorted(problems, key=sort_key), checked.files


def _menu_levels(flowset, refs, flow, options, problems):
    limit = int(flow.raw.get("max_depth") or DEFAULT_MAX_DEPTH) if "max_depth" not in flow.broken else DEFAULT_MAX_DEPTH
    deepest = {}
    for (did, ref), depth in menu_depths(flowset, refs, flow).items():
        if depth > deepest.get(ref, (0,))[0]:
            deepest[ref] = (depth, did)
    for ref, (depth, did) in sorted(deepest.items()):
        # the first menu beyond the level on each path (the deeper ones follow from it); beyond
        # max_depth it is an error already
        if depth == options.menu_levels + 1 and depth <= limit:
            node_flow = flowset.flows[ref[0]]
            problems.add(node_flow.path, node_flow.positions[ref[1]],
                         f"node {ref[1]!r}: menu level {depth} from entry {did}: callers lose their way beyond "
                         f"{options.menu_levels} levels of menus; move it up, or offer a person", "warning")


def _prompt_lengths(flow, options, problems):
    raw = flow.raw.get("prompts") if "prompts" not in flow.broken else None
    for prompt_id, prompt in flow.prompts.items():
        if isinstance(prompt, dict) and prompt.get("file"):
            seconds, how = _audio_seconds(flow.path.parent / prompt["file"]), "audio file"
        else:
            text = prompt.get("text", "") if isinstance(prompt, dict) else prompt
            seconds, how = spoken_seconds(text), f"{len(str(text))} characters of text"
        if seconds is not None and seconds > options.prompt_seconds:
            problems.add(flow.path, _pos(raw, _raw_key(raw or {}, prompt_id)), f"prompt {prompt_id!r} lasts about {seconds:.1f} s "
                         f"({how}); callers stop listening after {options.prompt_seconds:g} s: shorten or split it",
                         "warning")


def _holidays(flow, problems):
    listed = flow.schedule.get("holidays") or []
    if not listed or flow.schedule.get("cn_calendar"):
        return
    years = set()
    for spec in listed:
        try:
            years.update(day.year for day in schedule_mod.parse_dates(spec))
        except ValueError:
            continue             # an error already
    if years:
        problems.add(flow.path, _pos(flow.raw["schedule"], "holidays"),
                     f"schedule: holidays are listed by hand for {', '.join(map(str, sorted(years)))} without "
                     f"cn_calendar: true; from {max(years) + 1} on no holiday counts until someone adds them "
                     "(cn_calendar takes the statutory holidays and make-up days from chinese-calendar)", "warning")


def _queues(flow, acd, problems):
    for node_id, node in flow.nodes.items():
        if node["type"] != "queue" or node_id in flow.faulty:
            continue
        name, at = node["queue"], value_pos(flow.raw_nodes[node_id], "queue")
        queue = acd.queues.get(name)
        if queue is None:
            problems.add(flow.path, at, f"node {node_id!r}: no queue {name!r} in the queues file"
                         f"{did_you_mean(name, acd.queues)}; queues: {', '.join(sorted(acd.queues)) or 'none'}")
        elif not any(acd.qualified(agent, queue) for agent in acd.agents.values()):
            needs = ", ".join(f"{skill} {level}+" for skill, level in sorted(queue.skills.items()))
            problems.add(flow.path, at, f"node {node_id!r}: no agent can serve queue {name!r}"
                         + (f" (it needs {needs})" if needs else " (the agents file has no agent)")
                         + ": its callers wait until the queue's overflow", "warning")


def summary(problems, files):
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    return (f"{len(files)} file{'s' if len(files) != 1 else ''} checked: {errors} error{'s' if errors != 1 else ''}, "
            f"{warnings} warning{'s' if warnings != 1 else ''}")
