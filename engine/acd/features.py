"""Feature codes an agent keys on the desk phone during a call.

    *1            hold / take off hold
    *2<number>#   blind transfer: an agent's extension, or an outside number
    *3<number>#   consult (the caller hears music)
    *4            complete the consultation (or just hang up)
    *5            cancel the consultation
    *6<number>#   three-way call
    *7            send the caller to the satisfaction survey and leave

The engine reads the DTMF events of the agent's leg on its inbound connection, so the codes work
on any SIP phone without phone-side programming. FreeSWITCH passes in-call digits on to the other
party as well, so the caller may hear the key tones (a dialplan `bind_meta_app` would hide them,
but it binds per channel at originate time and cannot reach legs already bridged).
"""
import logging
import time

from engine.acd.incall import ControlError

log = logging.getLogger("hotline.acd.features")

DIGIT_TIMEOUT = 4.0
SINGLE = {"1": "hold", "4": "complete", "5": "cancel", "7": "to_survey"}
WITH_NUMBER = {"2": "transfer", "3": "consult", "6": "three_way"}
MAX_NUMBER = 20


class FeatureCodes:
    def __init__(self, acd):
        self.acd = acd
        self.buffers = {}                 # agent leg -> (digits so far, time of the last digit)

    def on_dtmf(self, event):
        leg = event.uuid
        digit = (event.get("DTMF-Digit") or "")[:1]
        if not digit or not self._agent_leg(leg):
            return
        digits, last = self.buffers.get(leg, ("", 0.0))
        now = time.monotonic()
        if now - last > DIGIT_TIMEOUT:
            digits = ""
        if not digits and digit != "*":
            return                        # ordinary digits (an agent keying for the caller)
        digits += digit
        self.buffers[leg] = (digits, now)
        action = self._complete_code(digits)
        if action is None:
            if len(digits) > MAX_NUMBER + 3:
                self.buffers.pop(leg, None)
            return
        self.buffers.pop(leg, None)
        name, number = action
        if name is None:
            log.info("agent leg %s keyed unknown feature code %s", leg, digits)
            return
        self._run(leg, name, number)

    def _agent_leg(self, leg):
        entry = self.acd.legs.get(leg)
        if entry is None:
            return False
        conv = self.acd.conversations.get(entry[1])
        return conv is not None and conv.leg == leg

    @staticmethod
    def _complete_code(digits):
        """(action, number) when `digits` is a whole code, (None, None) for a wrong one, None
        while more digits are expected."""
        if len(digits) < 2:
            return None
        code = digits[1]
        if code in SINGLE:
            return SINGLE[code], None
        if code in WITH_NUMBER:
            if not digits.endswith("#"):
                return None
            number = digits[2:-1]
            return (WITH_NUMBER[code], number) if number.isdigit() else (None, None)
        return None, None

    def _run(self, leg, name, number):
        acd = self.acd
        conv = acd.conversations.get(acd.legs[leg][1]) if leg in acd.legs else None
        if conv is None:
            return
        actor = f"agent:{conv.agent}:phone"
        incall = acd.incall
        try:
            if name == "hold":
                (incall.unhold if conv.held else incall.hold)(conv.call.uuid, actor)
            elif name in ("complete", "cancel", "to_survey"):
                getattr(incall, name)(conv.call.uuid, actor)
            else:
                getattr(incall, name)(conv.call.uuid, self._target(number), actor)
        except ControlError as exc:
            conv.call.log.warning("feature code from agent %s refused: %s", conv.agent, exc)

    def _target(self, number):
        agent = self.acd.config.by_extension(number)
        return f"agent:{agent.id}" if agent is not None else f"external:{number}"
