"""Scenario files for the simulator: who calls, what they press and say, how the agents' phones behave.

```yaml
duration: 60                  # seconds the scenario runs at most
callers:
  - did: "12345"
    number: "13800138000"
    name: 张伟
    at: 0                     # seconds after the start
    count: 10                 # this caller ten times ...
    every: 2                  # ... two seconds apart (numbers get a running suffix)
    presses: [{after: 2, digits: "1"}, {after: 4.5, digits: "2#"}]   # seconds after answer
    speech: sounds/question.wav          # what the caller says from the answer on
    hangup_after: 30          # caller hangs up 30 s after answer (null: waits for the engine)
    abandon_after: 20         # caller gives up if not answered in 20 s
    codecs: [PCMA]            # what the caller's SDP offers (default OPUS, G722, PCMU, PCMA)
agents:
  - extension: "1001"
    behaviour: answer         # answer | no_answer | reject | busy
    answer_after: 2
    hangup_after: 40          # agent hangs up 40 s after answering (null: the caller or engine ends it)
    codecs: [PCMA, PCMU]      # codecs the phone supports (default OPUS, PCMU, PCMA: a softphone)
pstn:                         # who answers outbound calls (sofia/gateway/<gw>/<number>)
  - number: "139*"            # a prefix; "13800138000" an exact number (longest match wins)
    behaviour: person         # busy | busy_ringing | no_answer | rejected | unallocated | switched_off
                              # | temp_failure | gateway_down | person | machine
    ring: 2                   # seconds ringing (or the carrier's announcement) before the outcome
    presses: [{after: 1, digits: "1"}]   # a person's keys after the answer; a machine never presses
    hangup_after: 20
```
The schema is the dataclasses below, checked by the same builder as the settings file, so every
mistake is reported as `file:line:column: path: problem`.
"""
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from engine.settings import SchemaBuilder, load_yaml, setting
from engine.sim.codecs import CALLER, CODECS, SOFTPHONE


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class Press:
    after: float = setting(min=0, max=86400, doc="seconds after answer")
    digits: str = setting(doc="DTMF digits 0-9 * # A-D")


@dataclass(frozen=True)
class CallerSpec:
    did: str = setting(doc="number dialled")
    number: str = setting(doc="caller ID number, as the trunk sends it (any text)")
    name: str = setting("")
    at: float = setting(0.0, min=0, max=86400)
    count: int = setting(1, min=1, max=100000)
    every: float = setting(1.0, min=0, max=86400)
    presses: Tuple[Press, ...] = setting(())
    speech: Optional[Path] = setting(None, doc="WAV file the caller speaks from the answer on")
    hangup_after: Optional[float] = setting(None, min=0, max=86400)
    abandon_after: Optional[float] = setting(None, min=0, max=86400)
    codecs: Tuple[str, ...] = setting(CALLER, doc="codecs the caller's SDP offers, in its order "
                                                  "(PCMA PCMU G722 OPUS)")


@dataclass(frozen=True)
class AgentSpec:
    extension: str = setting()
    behaviour: str = setting("answer", choices=("answer", "no_answer", "reject", "busy"))
    answer_after: float = setting(1.0, min=0, max=600)
    hangup_after: Optional[float] = setting(None, min=0, max=86400)
    codecs: Tuple[str, ...] = setting(SOFTPHONE, doc="codecs the phone supports; a G.711 desk phone: "
                                                     "[PCMA, PCMU]")


@dataclass(frozen=True)
class PstnSpec:
    """Numbers behind the trunk gateway, for outbound calls (engine.sim.pstn)."""
    number: str = setting(doc="a number, or digits then * for a prefix (139*)")
    behaviour: str = setting("person", choices=("busy", "busy_ringing", "no_answer", "rejected", "unallocated",
                                                "switched_off", "temp_failure", "gateway_down", "person",
                                                "machine"))
    ring: float = setting(2.0, min=0, max=600, doc="seconds of ringing (or announcement) before the outcome")
    presses: Tuple[Press, ...] = setting((), doc="a person's keys, seconds after the answer")
    hangup_after: Optional[float] = setting(None, min=0, max=86400)
    early_media: bool = setting(False, doc="183 with ringback before the answer")
    speech: Optional[Path] = setting(None, doc="WAV the far end plays (a machine's greeting)")


@dataclass(frozen=True)
class Scenario:
    duration: float = setting(60.0, min=0.1, max=86400)
    callers: Tuple[CallerSpec, ...] = setting(())
    agents: Tuple[AgentSpec, ...] = setting(())
    pstn: Tuple[PstnSpec, ...] = setting((), doc="who answers outbound calls through the trunk gateway")


def population(scenario):
    """The scenario's `pstn` entries as an engine.sim.pstn.Population (None when it has none)."""
    from engine.sim.pstn import Behaviour, Population
    if not scenario.pstn:
        return None
    pop = Population()
    for spec in scenario.pstn:
        pop.add(spec.number, Behaviour(spec.behaviour, ring=spec.ring,
                                       dtmf=tuple((p.after, p.digits) for p in spec.presses),
                                       hangup_after=spec.hangup_after, early_media=spec.early_media,
                                       speech=str(spec.speech) if spec.speech else None))
    return pop


_DTMF = set("0123456789*#ABCD")


def load_scenario(path) -> Scenario:
    path = Path(path)
    data, marks = load_yaml(path, ScenarioError)
    builder = SchemaBuilder(marks, path, path.resolve().parent, error=ScenarioError)
    scenario = builder.build(Scenario, data, "")
    for i, caller in enumerate(scenario.callers):
        for j, press in enumerate(caller.presses):
            if not press.digits or set(press.digits) - _DTMF:
                builder.fail(f"callers[{i}].presses[{j}].digits", f"not DTMF digits: {press.digits!r}")
        if caller.speech is not None and not caller.speech.is_file():
            builder.fail(f"callers[{i}].speech", f"no such file: {caller.speech}")
    for label, specs in (("callers", scenario.callers), ("agents", scenario.agents)):
        for i, spec in enumerate(specs):
            unknown = [c for c in spec.codecs if c not in CODECS]
            if unknown or not spec.codecs:
                builder.fail(f"{label}[{i}].codecs", f"expected some of {', '.join(CODECS)}, got {unknown or '[]'}")
    for i, spec in enumerate(scenario.pstn):
        if not re.fullmatch(r"\d{1,20}\*?", spec.number):
            builder.fail(f"pstn[{i}].number", f"digits, or digits then * for a prefix: {spec.number!r}")
        for j, press in enumerate(spec.presses):
            if not press.digits or set(press.digits) - _DTMF:
                builder.fail(f"pstn[{i}].presses[{j}].digits", f"not DTMF digits: {press.digits!r}")
    seen = set()
    for i, agent in enumerate(scenario.agents):
        if agent.extension in seen:
            builder.fail(f"agents[{i}].extension", f"extension {agent.extension} listed twice")
        seen.add(agent.extension)
    return scenario
