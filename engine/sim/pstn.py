"""The public network behind the simulated trunk gateway: who answers `sofia/gateway/<gw>/<number>`.

A population maps numbers (exact, or a prefix ending in `*`) to behaviours, as a carrier would
answer our INVITE. Each answer ends the way mod_sofia reports it (sofia_glue_sip_cause_to_freeswitch:
486 -> USER_BUSY, 603/403 -> CALL_REJECTED, 404 -> UNALLOCATED_NUMBER, 480 -> NO_USER_RESPONSE,
503 -> NORMAL_TEMPORARY_FAILURE), and the originate returns `-ERR <CAUSE>` (switch_ivr_originate.c
via mod_commands' originate_function: "-ERR %s\n" with switch_channel_cause2str).

    busy            486 at once
    busy_ringing    rings `ring` s, then 486 (the person declined while it rang)
    no_answer       rings until the originate gives up (originate_timeout -> NO_ANSWER)
    rejected        603
    unallocated     early media (the carrier's "空号" announcement) for `ring` s, then 404
    switched_off    early media ("已关机") for `ring` s, then 480
    temp_failure    503 at once (the carrier's trouble: our side for retries)
    gateway_down    the gateway is down: the originate fails GATEWAY_DOWN without a leg
    person          rings `ring` s, answers, presses `dtmf` [(seconds after answer, digits)],
                    hangs up after `hangup_after` s (None: waits for us)
    machine         rings, answers, plays a greeting (`speech` WAV, or silence) and never
                    presses a key; hangs up after `hangup_after` s (its recording time)

Early media before the answer (`early_media: true`) is a 183 with ringback or an announcement: an
originate without ignore_early_media=true takes it as success (switch_ivr_originate.c:
oglobals.early_ok = 1 unless ignore_early_media is true), exactly what the dialer must avoid.
"""
import dataclasses
import os
import xml.etree.ElementTree as ET
from typing import Optional, Tuple

import gevent

BEHAVIOURS = ("busy", "busy_ringing", "no_answer", "rejected", "unallocated", "switched_off",
              "temp_failure", "gateway_down", "person", "machine")


@dataclasses.dataclass
class Behaviour:
    kind: str = "person"
    ring: float = 0.2
    dtmf: Tuple[Tuple[float, str], ...] = ()
    hangup_after: Optional[float] = None
    early_media: bool = False
    speech: Optional[str] = None

    def __post_init__(self):
        if self.kind not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {self.kind!r}; one of {', '.join(BEHAVIOURS)}")


class PstnPhone:
    """The far end of one dialled number; `calls` keeps the legs it was rung on."""

    def __init__(self, number, behaviour):
        self.number = number
        self.behaviour = behaviour
        self.calls = []
        self.pressed = []

    @property
    def sends_ringing(self):
        """Does the carrier send 180 Ringing (CHANNEL_PROGRESS) before the outcome?"""
        b = self.behaviour
        return b.kind in ("busy_ringing", "no_answer", "person", "machine") and not b.early_media

    @property
    def gateway_down(self):
        return self.behaviour.kind == "gateway_down"

    def on_ring(self, channel):
        b = self.behaviour
        self.calls.append(channel)
        if b.kind == "busy":
            channel.hangup("USER_BUSY")
        elif b.kind == "rejected":
            channel.hangup("CALL_REJECTED")
        elif b.kind == "temp_failure":
            channel.hangup("NORMAL_TEMPORARY_FAILURE")
        elif b.kind in ("unallocated", "switched_off"):
            channel.pre_answer()            # 183 with the carrier's announcement
            if not channel.wait_hangup(timeout=b.ring):
                channel.hangup("UNALLOCATED_NUMBER" if b.kind == "unallocated" else "NO_USER_RESPONSE")
        elif b.kind == "busy_ringing":
            if b.early_media:
                channel.pre_answer()
            if not channel.wait_hangup(timeout=b.ring):
                channel.hangup("USER_BUSY")
        elif b.kind == "no_answer":
            if b.early_media:
                channel.pre_answer()        # ringback as early media, until the originate gives up
        else:
            self._answer(channel, b)

    def _answer(self, channel, b):
        if b.early_media:
            channel.pre_answer()
        if channel.wait_hangup(timeout=b.ring):
            return                          # cancelled while ringing
        channel.answer()
        if b.speech:
            channel.speak(b.speech)
        gevent.spawn(self._after_answer, channel, b)

    def _after_answer(self, channel, b):
        start = 0.0
        if b.kind == "person":
            for after, digits in sorted(b.dtmf):
                if channel.wait_hangup(timeout=max(0.0, after - start)):
                    return
                start = after
                channel.press(digits)
                self.pressed.append(digits)
        if b.hangup_after is not None and not channel.wait_hangup(timeout=max(0.0, b.hangup_after - start)):
            channel.hangup("NORMAL_CLEARING")


class Population:
    """Numbers behind the trunk: `add("13800138000", Behaviour(...))`, `add("139*", ...)`
    (longest prefix wins); a number nobody added gets `default` (None: the gateway has no
    route for it and the originate fails GATEWAY_DOWN, as before)."""

    def __init__(self, default=None):
        self.exact, self.prefixes = {}, []
        self.default = default
        self.phones = {}

    def add(self, pattern, behaviour):
        if pattern.endswith("*"):
            self.prefixes.append((pattern[:-1], behaviour))
            self.prefixes.sort(key=lambda p: -len(p[0]))
        else:
            self.exact[pattern] = behaviour
        return self

    def behaviour(self, number):
        if number in self.exact:
            return self.exact[number]
        for prefix, b in self.prefixes:
            if number.startswith(prefix):
                return b
        return self.default

    @classmethod
    def drawn(cls, numbers, shares, rng, ring=(0.2, 1.0), person_gives_up=60.0):
        """A population of `numbers`, each number's behaviour drawn from `shares` ((kind, share),
        ...; e.g. 60% person, 20% no_answer, ...) with `rng`, ringing `ring` seconds (uniform). A
        person stays until we hang up, or gives up after `person_gives_up` s with nobody (a leak
        guard). Returns (population, {number: kind})."""
        pop, kinds = cls(), {}
        for number in numbers:
            r, kind = rng.random(), shares[-1][0]
            for name, share in shares:
                if r < share:
                    kind = name
                    break
                r -= share
            kinds[number] = kind
            pop.add(number, Behaviour(kind, ring=rng.uniform(*ring),
                                      hangup_after=person_gives_up if kind == "person" else None))
        return pop, kinds

    def endpoint(self, number):
        b = self.behaviour(number)
        if b is None:
            return None
        phone = self.phones.get(number)
        if phone is None or phone.behaviour is not b:
            phone = self.phones[number] = PstnPhone(number, b)
        return phone


def read_gateways(conf_dir):
    """Names of the sofia gateways a configuration defines (autoload_configs/sofia.conf.xml), or
    None without that file (a switch whose gateways we do not know: not checked)."""
    path = os.path.join(str(conf_dir), "autoload_configs", "sofia.conf.xml")
    if not os.path.isfile(path):
        return None
    root = ET.parse(path).getroot()
    return frozenset(gw.get("name") for gw in root.iter("gateway") if gw.get("name"))
