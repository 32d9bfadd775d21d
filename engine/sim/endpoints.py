"""Simulated SIP phones: callers on the trunk and agents' desk phones, driven by a scenario.

A caller places a trunk call (the switch runs the dialplan, which hands it to the engine), waits
to be answered (or abandons), presses digits at given times after the answer, speaks a WAV file,
and hangs up after a while or waits for the engine to end the call. An agent phone registers its
extension; when the engine rings it, it answers after a delay, lets it ring, rejects, or is busy,
and may hang up after a while. Both can be changed while the scenario runs (`set_agent`,
`add_caller`), e.g. to make an agent unreachable in the middle of a test.
"""
import dataclasses
import logging
import time

import gevent

from engine.sim import codecs
from engine.sim.scenario import AgentSpec, CallerSpec

log = logging.getLogger("hotline.sim.endpoints")


@dataclasses.dataclass
class CallResult:
    number: str
    did: str
    uuid: str = ""
    answered: bool = False
    abandoned: bool = False
    hung_up_by: str = ""          # 'caller' or 'switch' (the engine, an agent, the system)
    cause: str = ""
    pressed: str = ""
    seconds: float = 0.0


class AgentPhone:
    """One registered extension; its behaviour is read at ring time, so it can change live."""

    def __init__(self, runner, spec):
        self.runner = runner
        self.spec = spec
        self.rings = 0
        self.answered = 0

    def on_ring(self, channel):
        spec = self.spec
        self.rings += 1
        channel.far_codecs = tuple(spec.codecs)
        if codecs.first_common(channel.codec_offer or codecs.VANILLA_PREFS, spec.codecs) is None:
            # nothing offered that the phone has: it answers the INVITE 488 Not Acceptable Here
            channel.hangup("INCOMPATIBLE_DESTINATION")
            return
        if spec.behaviour == "busy":
            channel.hangup("USER_BUSY")
            return
        if spec.behaviour == "reject":
            channel.hangup("CALL_REJECTED")
            return
        if spec.behaviour == "no_answer":
            return                                   # rings until the originator gives up
        if channel.wait_hangup(timeout=spec.answer_after):
            return                                   # the caller or engine cancelled first
        channel.answer()
        self.answered += 1
        if spec.hangup_after is not None and not channel.wait_hangup(timeout=spec.hangup_after):
            channel.hangup("NORMAL_CLEARING")


class ScenarioRunner:
    def __init__(self, switch, scenario, on_result=None):
        self.switch = switch
        self.scenario = scenario
        self.on_result = on_result
        self.phones = {}
        self.results = []
        self._callers = []
        self.started = None

    # --- control ----------------------------------------------------------------------------
    def start(self):
        self.started = time.monotonic()
        from engine.sim.scenario import population
        if getattr(self.scenario, "pstn", ()):
            self.switch.population = population(self.scenario)
        for spec in self.scenario.agents:
            self.set_agent(spec.extension, spec=spec)
        for spec in self.scenario.callers:
            self.add_caller(spec)
        return self

    def set_agent(self, extension, spec=None, **changes):
        """Register a phone, or change how it behaves (`registered=False` unregisters it)."""
        registered = changes.pop("registered", True)
        phone = self.phones.get(extension)
        if not registered:
            self.switch.unregister(extension)
            self.phones.pop(extension, None)
            return None
        spec = spec or (phone.spec if phone else AgentSpec(extension=extension))
        spec = dataclasses.replace(spec, **changes)
        if phone is None:
            phone = self.phones[extension] = AgentPhone(self, spec)
            self.switch.register(extension, phone)
        phone.spec = spec
        return phone

    def add_caller(self, spec: CallerSpec):
        for i in range(spec.count):
            number = spec.number if spec.count == 1 else f"{spec.number}{i:0{len(str(spec.count - 1))}d}"
            delay = spec.at + i * spec.every - (time.monotonic() - (self.started or time.monotonic()))
            self._callers.append(gevent.spawn_later(max(0.0, delay), self._call, spec, number))

    def wait(self, timeout=None):
        """Wait for every caller to finish (or the scenario's duration); returns the results."""
        gevent.joinall(self._callers, timeout=timeout if timeout is not None else self.scenario.duration)
        return self.results

    def stop(self):
        gevent.killall(self._callers, block=True, timeout=2)

    # --- one caller ---------------------------------------------------------------------------
    def _call(self, spec, number):
        result = CallResult(number=number, did=spec.did)
        self.results.append(result)
        from engine.sim.switch import SipRefused
        try:
            ch = self.switch.place_call(spec.did, number, spec.name, codecs=spec.codecs)
        except SipRefused as refused:
            # the switch refused the INVITE (over its sessions a second: 503); no channel, no call
            result.hung_up_by, result.cause = "switch", str(refused)
            if self.on_result:
                self.on_result(result)
            return
        result.uuid = ch.uuid
        begun = time.monotonic()
        limit = self.scenario.duration
        try:
            wait_answer = spec.abandon_after if spec.abandon_after is not None else limit
            deadline = begun + wait_answer
            while not ch.answered and not ch.wait_hangup(timeout=0.02):
                if time.monotonic() >= deadline:
                    result.abandoned = True
                    ch.hangup("ORIGINATOR_CANCEL")
                    break
            if ch.answered and ch.alive:
                result.answered = True
                answered_at = time.monotonic()
                if spec.speech is not None:
                    ch.speak(str(spec.speech))
                for press in sorted(spec.presses, key=lambda p: p.after):
                    wait = press.after - (time.monotonic() - answered_at)
                    if ch.wait_hangup(timeout=max(0.0, wait)):
                        break
                    ch.press(press.digits)
                    result.pressed += press.digits
                if spec.hangup_after is not None:
                    wait = spec.hangup_after - (time.monotonic() - answered_at)
                    if not ch.wait_hangup(timeout=max(0.0, wait)):
                        ch.hangup("NORMAL_CLEARING")
                if not ch.wait_hangup(timeout=max(0.0, limit - (time.monotonic() - begun))):
                    ch.hangup("NORMAL_CLEARING")
            ch.wait_hangup(timeout=5)
        finally:
            result.cause = ch.hangup_cause or ""
            result.hung_up_by = "caller" if (ch.hangup_disposition or "").startswith("recv_") else "switch"
            result.seconds = time.monotonic() - begun
            if self.on_result:
                self.on_result(result)
