"""Walk a call through the IVR flows.

IvrRuntime.reload() validates every file and swaps the whole set at once; a broken set leaves the
running one in place. A call keeps the set it started with. Errors inside a node follow its 'error'
child or the flow's fallback; a transition cap stops loops. run() never drops a caller silently: it
returns an outcome the daemon acts on ('fallback' and 'agent' mean: hand the caller to an agent queue).
"""
import functools
import logging
import pathlib
import time

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from engine.call.port import CallGone
from .loader import FlowError, load_flows
from .nodes import NODE_TYPES, params
from .schedule import Overrides, Schedule

log = logging.getLogger(__name__)
_JINJA = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)


class NodeError(Exception):
    pass


@functools.lru_cache(maxsize=4096)
def _compiled(text):
    """A template's compiled form, once per text: compiling is ~30 times the cost of rendering
    (0.34 ms against 0.01), and a robot call renders about six templates (issue 15 §7's bench:
    ~2 ms of 11 ms of the engine's CPU a call). The texts come from the flow files, not from
    callers, so they are few; a template that fails to compile raises and is not kept."""
    return _JINJA.from_string(text)


def render_template(text, variables):
    try:
        return _compiled(str(text)).render(**variables)
    except jinja2.TemplateError as exc:
        raise NodeError(f"template {text!r}: {exc}") from exc


class _State:
    """One loaded version: the flows, their schedules and the rendered static prompts."""

    def __init__(self, flowset, prompt_paths, schedules):
        self.flowset, self.prompt_paths, self.schedules = flowset, prompt_paths, schedules


class _Walk:
    """What node handlers see as `ctx` for one call."""

    def __init__(self, runtime, state, call):
        self.runtime, self.state, self.call = runtime, state, call
        self.flow = None
        self.outcome = None
        self.jump_to = None
        self.digits = ""
        self.heard = []       # prompt texts/files in order, for `walk` and the CDR

    params = staticmethod(params)

    @property
    def schedule(self):
        return self.state.schedules[self.flow.name]

    def variables(self, call):
        return {**self.flow.variables, **call.variables, "caller": call.caller_id_number,
                "did": call.destination_number}

    def template(self, text, call):
        return render_template(text, self.variables(call))

    def sources(self, call, prompt_id):
        prompt = self.flow.prompts.get(prompt_id)
        if prompt is None:
            raise NodeError(f"no prompt {prompt_id!r}")
        cached = self.state.prompt_paths.get((self.flow.name, prompt_id))
        text = prompt.get("text") if isinstance(prompt, dict) else prompt
        if cached:
            self.heard.append(text or cached)
            return [str(cached)]
        spoken = self.template(text, call)        # a templated prompt: rendered per call
        self.heard.append(spoken)
        return [str(self.runtime.renderer.render(spoken))]

    def play(self, call, prompt_id, interruptible=True):
        return call.play(self.sources(call, prompt_id), interruptible)

    def survey_prompts(self, call):
        """The flow's own survey prompts, if it has them, keyed as engine.call.survey takes them (the
        survey's default texts fill the rest)."""
        from engine.call.survey import FLOW_PROMPTS
        return {key: self.sources(call, prompt_id)[0] for prompt_id, key in FLOW_PROMPTS.items()
                if prompt_id in self.flow.prompts}

    def speak(self, call, text):
        self.heard.append(text)
        return call.play([str(self.runtime.renderer.render(text))], False)

    def note(self, digits=""):
        self.digits += digits or ""

    def finish(self, outcome, **details):
        self.outcome = {"outcome": outcome, **details}

    def jump(self, target):
        self.jump_to = target

    def voicemail_path(self, call, box):
        return pathlib.Path(self.runtime.voicemail_dir) / box / f"{call.uuid}.wav"


class IvrRuntime:
    def __init__(self, flows_dir, renderer, clock=None, max_transitions=200, overrides_path=None,
                 voicemail_dir="var/voicemail"):
        self.flows_dir = flows_dir
        self.renderer = renderer
        self.clock = clock or time.monotonic
        self.max_transitions = max_transitions
        self.overrides = Overrides(overrides_path) if overrides_path else None
        self.voicemail_dir = voicemail_dir
        self._state = None

    @property
    def flowset(self):
        return self._state.flowset if self._state else None

    def reload(self):
        """Validate and swap atomically. Returns the problems ([] when the new version is live)."""
        flowset, problems = load_flows(self.flows_dir, strict=False)
        if problems:
            log.error("IVR reload refused, keeping the running flows:\n%s", "\n".join(problems))
            return problems
        prompt_paths, schedules = {}, {}
        for flow in flowset.flows.values():
            schedules[flow.name] = Schedule(flow.schedule, flow.name, self.overrides)
            for prompt_id, prompt in flow.prompts.items():
                text = prompt.get("text") if isinstance(prompt, dict) else prompt
                try:
                    if isinstance(prompt, dict) and prompt.get("file"):
                        prompt_paths[(flow.name, prompt_id)] = (flow.path.parent / prompt["file"]).resolve()
                    elif "{" not in str(text):    # static text: render now, so no caller waits for TTS
                        voice = prompt.get("voice") if isinstance(prompt, dict) else None
                        args = {"voice": voice} if voice else {}
                        # a fixed prompt of the flow file: the only text that may go online
                        prompt_paths[(flow.name, prompt_id)] = self.renderer.render(str(text), fixed=True,
                                                                                    **args)
                except Exception as exc:
                    problems.append(f"{flow.path}:1:1: prompt {prompt_id!r}: rendering failed: {exc}")
        if problems:
            log.error("IVR reload refused, keeping the running flows:\n%s", "\n".join(problems))
            return problems
        self._state = _State(flowset, prompt_paths, schedules)
        log.info("IVR flows loaded: %d flows, %d entries", len(flowset.flows), len(flowset.entries))
        return []

    def run(self, call):
        state = self._state            # this call keeps this version whatever reloads happen
        if state is None:
            raise FlowError(["no IVR flows loaded"])
        ref = state.flowset.entries.get(call.destination_number)
        if ref is None:
            call.log.error("IVR: no flow has an entry for DID %s", call.destination_number)
            return {"outcome": "fallback", "reason": f"no entry for {call.destination_number}"}
        walk = _Walk(self, state, call)
        start, menus, transitions, in_fallback = ref, [], 0, False

        def fallback(reason):
            nonlocal in_fallback
            flow = state.flowset.flows[ref[0]]
            if flow.fallback and not in_fallback:
                in_fallback = True
                call.log.warning("IVR %s: %s; going to fallback %s", ref[1], reason, flow.fallback)
                return state.flowset.resolve(flow.name, flow.fallback)
            call.log.error("IVR %s: %s; handing the caller to an agent", ref[1], reason)
            walk.finish("fallback", reason=reason)
            return None

        while ref is not None and walk.outcome is None:
            transitions += 1
            if transitions > self.max_transitions:
                ref = fallback(f"more than {self.max_transitions} transitions")
                transitions = 0      # the fallback path gets its own budget; a second overrun ends the IVR
                continue
            flow = walk.flow = state.flowset.flows[ref[0]]
            node = flow.nodes[ref[1]]
            walk.digits, walk.jump_to = "", None
            call.ivr_node = node["type"]      # where the caller is now (the wallboard's stage)
            started = self.clock()
            try:
                branch = NODE_TYPES[node["type"]].handle(call, node, walk)
            except CallGone:
                call.path.append(self._entry(ref, node, "gone", walk, started))
                return {"outcome": "gone", "node": ref[1]}
            except Exception as exc:     # a broken node must not drop the caller
                call.log.exception("IVR node %s (%s) failed: %s", ref[1], node["type"], exc)
                branch = "error"
            call.path.append(self._entry(ref, node, branch, walk, started))
            if walk.outcome is not None:
                break
            if walk.jump_to:
                ref = state.flowset.resolve(flow.name, walk.jump_to)
                continue
            children = node.get("children") or {}
            if node["type"] == "menu":
                if branch in ("back", "top") and branch not in children:
                    ref = menus.pop() if branch == "back" and menus else start
                    if branch == "top":
                        menus.clear()
                    continue
                menus.append(ref)
            if branch in children:
                ref = state.flowset.resolve(flow.name, str(children[branch]))
            elif branch == "agent":
                walk.finish("agent", node=ref[1])
            else:
                ref = fallback(f"node {ref[1]} ended with {branch!r} and has no such child")
        call.ivr_node = None
        result = dict(walk.outcome or {"outcome": "fallback"})
        result["heard"] = walk.heard
        return result

    def _entry(self, ref, node, branch, walk, started):
        return {"node": f"{ref[0]}:{ref[1]}",
                "type": node["type"], "branch": branch, "digits": walk.digits,
                "ms": round((self.clock() - started) * 1000, 1)}
