"""What an agent (or a supervisor for them) can do during a conversation: hold, blind transfer,
consult then complete or cancel, three-way calls; and supervisors' monitor / whisper / barge.

How each works on the switch:
- hold: the agent's leg leaves the bridge for the call's conference (as for a consult) and the
  caller's own greenlet plays the queue's music; unhold puts the caller into that conference with
  the agent. Not `uuid_hold`: that broadcasts the agent leg's `hold_music` to the caller as a queued
  event, which waits behind the caller's event-locked `bridge` (no music during the hold), survives
  `uuid_hold off` and then runs, looping, in front of the next step (a transfer never rings:
  fixture 08 A); and the held desk phone goes recvonly and sends no DTMF, so `*1` could not unhold
  (fixture 10). In the conference the agent's phone keeps two-way media and its keys.
- blind transfer: the target is checked (agent free and reserved, queue known, number not on the
  dial-block list) before anything moves; then the agent's leg is hung up and the caller's greenlet,
  back from its bridge, rings the agent / joins the queue / is transferred out.
- consult / three-way: the conversation moves into a conference named after the call. The agent's
  leg is sent there with `uuid_transfer ... XML hotline_conference` (dialplans/conference.xml), the
  third party is originated into it, and the caller's greenlet either holds with music (consult)
  or joins (three-way). Completing a consult puts the caller in and takes the first agent out;
  cancelling hangs up the third party and puts the caller back with the agent. When the agent
  leaves a three-way call the caller and the third party stay together; a caller left alone in the
  conference is taken out of it.
- monitor / whisper / barge: the supervisor's phone is called with `&eavesdrop(<agent leg>)`,
  in the agent leg's codec (`absolute_codec_string`: eavesdrop does not resample, so a supervisor
  at another rate is nearly silent); whisper mixes the supervisor into what the agent's phone
  receives (mux write), barge into both directions. The mode of a running supervision changes by DTMF sent into the supervisor's leg
  (`uuid_recv_dtmf`: 0 listen, 2 whisper, 3 barge), as FreeSWITCH's eavesdrop reads it.
"""
import json
import logging
import re
import time
import uuid as uuidlib

import gevent

from engine.acd import bridged
from engine.call.live import checkpoint
from engine.esl import commands
from engine.outbound.dialblock import DialBlock
from engine.outbound.dialer import trunk_endpoint
from engine.outbound.numbers import InvalidNumber

log = logging.getLogger("hotline.acd.incall")

SUPERVISE_MODES = {"monitor": "0", "whisper": "2", "barge": "3"}
THIRD_PARTY_TIMEOUT = 30


class ControlError(Exception):
    """A control operation that cannot be done; `status` is the HTTP status the API answers."""

    def __init__(self, message, status=409, engine=None):
        super().__init__(message)
        self.status = status
        self.engine = engine            # set when another engine holds the call


class InCall:
    def __init__(self, acd):
        self.acd = acd

    # --- finding things -----------------------------------------------------------------------
    def conversation(self, ref):
        """A conversation by the caller's uuid, the agent's id or the agent's leg uuid."""
        acd = self.acd
        conv = acd.conversations.get(ref)
        if conv is None:
            for c in list(acd.conversations.values()):
                if ref in (c.agent, c.leg) and not c.agent_finished:
                    conv = c
                    break
        if conv is None:
            conv = self._bridged(ref)
        if conv is None:
            owner = acd.relay.owner(ref)
            if owner:
                raise ControlError(f"{ref} is a call on engine {owner}", 409, engine=owner)
            raise ControlError(f"no conversation for {ref!r}", 404)
        if conv.answered_at is None:
            raise ControlError(f"call {conv.call.uuid} is not answered yet")
        return conv

    def _bridged(self, ref):
        """A preview call placed agent first (engine/acd/bridged.py), by the customer's leg, the
        agent's id or the agent's leg (the call on the agent's desk)."""
        for leg, entry in list(getattr(self.acd, "agent_first", {}).items()):
            conv = entry.get("conversation")
            if conv is not None and not conv.agent_finished and not conv.handed_over \
                    and ref in (conv.call.uuid, conv.agent, leg):
                return conv
        return None

    def _inbound_only(self, conv, what):
        if bridged.is_bridged(conv):
            raise ControlError(f"{what} is not available on a preview call placed agent first "
                               "(hold, transfer and hang-up are)")

    def target(self, text):
        """'agent:1002' | 'queue:pension' | 'external:13800138000', or a bare agent id / queue name /
        number -> (kind, value)."""
        config = self.acd.config
        kind, sep, value = str(text or "").partition(":")
        if not sep:
            value = kind
            kind = "agent" if value in config.agents else "queue" if value in config.queues else "external"
        if kind == "agent":
            if value not in config.agents:
                raise ControlError(f"unknown agent {value!r}", 404)
        elif kind == "queue":
            if value not in config.queues:
                raise ControlError(f"unknown queue {value!r}", 404)
        elif kind == "external":
            number = commands.safe_number(value)
            if not number or number != value:
                raise ControlError(f"not a phone number: {value!r}", 400)
            try:
                trunk_endpoint(self.acd.settings, number)
            except InvalidNumber as exc:
                raise ControlError(f"not a number the trunk can dial: {exc}", 400) from None
            why = DialBlock.for_settings(self.acd.settings).refuses(number, "transfer")
            if why:
                raise ControlError(f"{number} is on the dial-block list: {why}", 403)
        else:
            raise ControlError(f"unknown target kind {kind!r} (agent, queue or external)", 400)
        return kind, value

    # --- hold -----------------------------------------------------------------------------------
    def hold(self, ref, actor="system"):
        conv = self._two_party(ref, "hold")
        if conv.held:
            return {"call": conv.call.uuid, "held": True}
        if bridged.is_bridged(conv):
            self._switch(bridged.hold, conv, True)
        else:
            self._require_conference()
            self._into_conference(conv, caller=("hold",))
        conv.held = True
        conv.held_since = time.time()
        conv.call.info["holds"] = conv.call.info.get("holds", 0) + 1
        self._audit("hold", actor, conv)
        conv.call.log.info("on hold (by %s)", actor)
        return {"call": conv.call.uuid, "held": True}

    def unhold(self, ref, actor="system"):
        conv = self.conversation(ref)
        if not conv.held:
            return {"call": conv.call.uuid, "held": False}
        if bridged.is_bridged(conv):
            self._switch(bridged.hold, conv, False)     # the switch stops the music, bridged again
            self.end_hold(conv, actor)
            return {"call": conv.call.uuid, "held": False}
        self.end_hold(conv, actor)
        self._back_to_agent(conv)
        return {"call": conv.call.uuid, "held": False}

    def end_hold(self, conv, actor):
        """The hold is over (unhold, a transfer, the agent gone): its figures and audit."""
        if not conv.held:
            return
        conv.held = False
        held = time.time() - (conv.held_since or time.time())
        conv.call.info["hold_seconds"] = round(conv.call.info.get("hold_seconds", 0) + held, 3)
        self._audit("unhold", actor, conv)
        conv.call.log.info("off hold after %.1f s (by %s)", held, actor)

    def _two_party(self, ref, what):
        conv = self.conversation(ref)
        if conv.parties or conv.consult:
            raise ControlError(f"{what} is for a two-party call; call {conv.call.uuid} has a third party")
        if conv.agent_finished:
            raise ControlError(f"the agent has left call {conv.call.uuid}")
        return conv

    def _release_caller(self, conv):
        """Send the caller's greenlet to its pending step, from wherever it is: the bridge ends
        with the agent's leg, the conference by a kick, the hold music by an interruption."""
        if conv.conference and conv.caller_in_conference:
            # the conference ends with its last member: kicking an agent's empty one fails, harmlessly
            self.acd.api_quiet(commands.conference(conv.conference, "kick", "all"))
        if conv.caller_on_music:
            conv.call.interrupt()             # only then: a stale interruption would cut the next prompt

    # --- blind transfer -------------------------------------------------------------------------
    def transfer(self, ref, target, actor="system"):
        conv = self.conversation(ref)
        if conv.agent_finished:
            raise ControlError(f"the agent has left call {conv.call.uuid}")
        if conv.parties:
            raise ControlError("end the three-way call or the consultation first")
        kind, value = self.target(target)
        if kind == "agent":
            self._reserve(value, conv)
        if bridged.is_bridged(conv):
            return self._hand_over(conv, kind, value, actor)
        self.end_hold(conv, actor)
        conv.pending = (kind, value)
        self._audit("transfer", actor, conv, to=f"{kind}:{value}")
        conv.call.log.info("blind transfer to %s %s (by %s)", kind, value, actor)
        # The agent's leg goes; the caller's greenlet, back from the bridge (or out of the
        # conference, or off the hold music), carries out the pending transfer.
        self._api(commands.uuid_kill(conv.leg, "NORMAL_CLEARING"))
        self._release_caller(conv)
        return {"call": conv.call.uuid, "transfer": f"{kind}:{value}"}

    def _hand_over(self, conv, kind, value, actor):
        """Blind transfer of a preview call's customer: off hold first (the switch stops the music
        it plays on the customer's leg), then the leg goes to this engine's socket."""
        try:
            self._require_switch("handover")        # before anything moves (no context: 503)
            if conv.held:
                self._switch(bridged.hold, conv, False)
                self.end_hold(conv, actor)          # its figures go with the customer's call
            bridged.hand_over(self.acd, conv, kind, value, conv.handover_info, conv.handover_tags)
        except Exception as exc:
            self._release_target(kind, value, conv)
            if isinstance(exc, ControlError):
                raise
            if isinstance(exc, bridged.Busy):
                raise ControlError(str(exc)) from None
            raise ControlError(f"the switch did not take the transfer: {exc}", 502) from None
        conv.agent_finished = True              # the agent's leg is going: nothing more to act on
        self._audit("transfer", actor, conv, to=f"{kind}:{value}")
        conv.call.log.info("blind transfer to %s %s (by %s): customer handed to the engine", kind, value, actor)
        return {"call": conv.call.uuid, "transfer": f"{kind}:{value}"}

    def _switch(self, fn, conv, *args):
        """A switch operation of engine/acd/bridged.py: a refusal is the caller's error (502)."""
        try:
            reply = fn(self.acd, conv, *args) or ""
        except Exception as exc:
            raise ControlError(f"the switch did not take it: {exc}", 502) from None
        if reply.startswith("-ERR"):
            raise ControlError(reply.strip(), 502)
        return reply

    # --- hang up --------------------------------------------------------------------------------
    def hangup(self, ref, actor="system"):
        """The agent hangs up from the desk, as on the phone: their leg ends. An inbound caller
        then goes where the queue says (survey or hang-up); a preview call's customer is hung up
        by the switch with it (the legs of a uuid_bridge end together, fixture 10)."""
        conv = self.conversation(ref)
        if conv.agent_finished or not conv.leg:
            raise ControlError(f"the agent has left call {conv.call.uuid}")
        if conv.consult:
            raise ControlError("complete or cancel the consultation first")
        self._audit("hangup", actor, conv)
        conv.call.log.info("agent %s hangs up (by %s)", conv.agent, actor)
        self._api(commands.uuid_kill(conv.leg, "NORMAL_CLEARING"))
        return {"call": conv.call.uuid, "hangup": True}

    def _reserve(self, agent_id, conv):
        t = self.acd.board.reserve(agent_id, conv.call.uuid, conv.queue.name)
        if not t:
            raise ControlError(f"agent {agent_id} is {t.previous}, not available")

    def to_survey(self, ref, actor="system"):
        """The agent hands the caller to the satisfaction survey and leaves (the survey key)."""
        conv = self._two_party(ref, "the survey transfer")
        self._inbound_only(conv, "the survey transfer")
        if not conv.queue.survey:
            raise ControlError(f"queue {conv.queue.name} has no survey")
        self.end_hold(conv, actor)
        conv.pending = ("survey",)
        self._audit("survey", actor, conv)
        conv.call.log.info("agent %s sends the caller to the survey (by %s)", conv.agent, actor)
        self._api(commands.uuid_kill(conv.leg, "NORMAL_CLEARING"))
        self._release_caller(conv)
        return {"call": conv.call.uuid, "survey": True}

    # --- recording ------------------------------------------------------------------------------
    def record(self, ref, action, actor="system"):
        """start / stop (on-demand policy, or to stop early), pause / resume (a caller reading a
        card number: FreeSWITCH writes silence while the recording is masked)."""
        conv = self.conversation(ref)
        self._inbound_only(conv, "recording control")
        call = conv.call
        path = call.info.get("recording")
        if action == "start":
            if path and not call.info.get("recording_stopped"):
                raise ControlError(f"call {call.uuid} is already being recorded")
            if conv.queue.record == "none" and getattr(call, "record_policy", None) in (None, "none"):
                raise ControlError(f"recording is off for queue {conv.queue.name}", 403)
            self.acd.start_recording(call)
            if not call.info.get("recording"):
                raise ControlError("the switch did not start the recording", 502)
        elif not path:
            raise ControlError(f"call {call.uuid} is not being recorded")
        elif action == "stop":
            self._api(commands.uuid_record(call.uuid, "stop", path))
            call.info["recording_stopped"] = True
        elif action in ("pause", "resume"):
            paused = call.info.get("recording_paused_at")
            if (action == "pause") == bool(paused):
                return {"call": call.uuid, "recording": path, "paused": bool(paused)}
            self._api(commands.uuid_record(call.uuid, "mask" if action == "pause" else "unmask", path))
            if action == "pause":
                call.info["recording_paused_at"] = time.time()
            else:
                call.info.pop("recording_paused_at", None)
                call.info["recording_paused_seconds"] = round(
                    call.info.get("recording_paused_seconds", 0) + time.time() - paused, 3)
        else:
            raise ControlError(f"unknown recording action {action!r}: start, stop, pause or resume", 400)
        self._audit(f"record_{action}", actor, conv)
        call.log.info("recording %s (by %s)", action, actor)
        return {"call": call.uuid, "recording": call.info.get("recording"),
                "paused": bool(call.info.get("recording_paused_at"))}

    # --- consult / three-way --------------------------------------------------------------------
    def consult(self, ref, target, actor="system"):
        conv, kind, value = self._third_party(ref, target, actor, busy="a consultation is already in progress")
        if conv.parties:
            self._release_target(kind, value, conv)
            raise ControlError("end the three-way call first")
        leg = str(uuidlib.uuid4())
        conv.consult = leg
        self._into_conference(conv, caller=("hold",))
        self._call_party(conv, leg, kind, value, role="consult")
        self._audit("consult", actor, conv, to=f"{kind}:{value}")
        conv.call.log.info("consulting %s %s (by %s); caller on hold", kind, value, actor)
        return {"call": conv.call.uuid, "consult": f"{kind}:{value}", "leg": leg}

    def _require_conference(self):
        """Hold, consult and three-way move the agent's leg into the call's conference: without
        the context and module (engine.fsconf.check) the switch would hang the agent's leg up."""
        self._require_switch("conference")

    def _require_switch(self, feature):
        """503 with what to merge when the switch lacks a context or module `feature` needs."""
        check = getattr(self.acd, "switch_check", None)
        problems = check.problems(feature) if check is not None else []
        if problems:
            raise ControlError("; ".join(problems), 503)

    def _third_party(self, ref, target, actor, busy):
        """Checks shared by consult and three-way; the target agent, if any, is reserved."""
        conv = self.conversation(ref)
        self._inbound_only(conv, "a consultation or three-way call")
        self._require_conference()
        if conv.agent_finished:
            raise ControlError(f"the agent has left call {conv.call.uuid}")
        if conv.consult:
            raise ControlError(busy)
        kind, value = self.target(target)
        if kind == "queue":
            raise ControlError("add an agent, a supervisor or a number, not a queue; "
                               "to send the caller to a queue use transfer")
        if kind == "agent":
            self._reserve(value, conv)
        if conv.held:
            # consult keeps the caller on the music; three-way brings them in: the hold ends
            self.end_hold(conv, actor)
        return conv, kind, value

    def _release_target(self, kind, value, conv):
        if kind == "agent":
            self.acd.board.release(value, conv.call.uuid, missed=False, why="not_called")

    def complete(self, ref, actor="system"):
        conv = self.conversation(ref)
        leg = conv.consult
        party = conv.parties.get(leg) if leg else None
        if party is None or not party.get("answered"):
            raise ControlError("no answered consultation to complete")
        self._complete(conv, leg, party, actor)
        return {"call": conv.call.uuid, "completed": party["target"]}

    def _complete(self, conv, leg, party, actor):
        call = conv.call
        old_agent, old_leg = conv.agent, conv.leg
        conv.consult = None
        self.acd.agent_done(conv)               # the first agent's part ends: wrap-up
        self._record_transfer(conv, "attended", party, old_agent)
        if party["kind"] == "agent":
            # the consulted agent takes over the conversation (their wrap-up, the CDR's agent)
            conv.parties.pop(leg, None)
            conv.agent, conv.leg, conv.answered_at = party["target"], leg, time.time()
            conv.agent_finished = conv.agent_left_first = False
            call.info.setdefault("agents", []).append(party["target"])
            call.info["agent"] = party["target"]
        else:
            party["role"] = "transferred"
        conv.pending = ("conference",)
        call.interrupt()                        # off the hold music, into the conference
        self._audit("complete", actor, conv, to=party["target"])
        call.log.info("consultation completed: %s takes over from agent %s", party["target"], old_agent)
        if old_leg:
            self.acd.api_quiet(commands.uuid_kill(old_leg, "NORMAL_CLEARING"))

    def cancel(self, ref, actor="system"):
        conv = self.conversation(ref)
        leg = conv.consult
        if not leg:
            raise ControlError("no consultation to cancel")
        conv.consult = None
        self.acd.api_quiet(commands.uuid_kill(leg, "NORMAL_CLEARING"))
        self._back_to_agent(conv)
        self._audit("cancel", actor, conv)
        conv.call.log.info("consultation cancelled (by %s)", actor)
        return {"call": conv.call.uuid, "cancelled": True}

    def _back_to_agent(self, conv):
        if conv.pending == ("hold",) or conv.pending is None:
            conv.pending = ("conference",)
            conv.call.interrupt()

    def three_way(self, ref, target, actor="system"):
        conv, kind, value = self._third_party(ref, target, actor,
                                              busy="complete or cancel the consultation first")
        leg = str(uuidlib.uuid4())
        self._into_conference(conv, caller=("conference",))
        self._call_party(conv, leg, kind, value, role="three_way")
        self._audit("three_way", actor, conv, to=f"{kind}:{value}")
        conv.call.log.info("three-way call with %s %s (by %s)", kind, value, actor)
        return {"call": conv.call.uuid, "three_way": f"{kind}:{value}", "leg": leg}

    def _into_conference(self, conv, caller):
        """Move the agent into the call's conference (once) and tell the caller's greenlet what to
        do: ('hold',) music while the agent consults, ('conference',) join."""
        if conv.conference is None:
            conv.conference = conv.conference_name
            conv.pending = caller
            self._api(commands.uuid_transfer(conv.leg, f"conf_{conv.conference}",
                                             self.acd.CONF_CONTEXT))
        elif caller == ("hold",):
            # Already in the conference: the caller steps out to the music (hold, consult).
            conv.pending = caller
            if conv.caller_in_conference:
                self._kick_caller(conv)
        elif not conv.caller_in_conference:
            conv.pending = caller                 # on the music: into the conference
            conv.call.interrupt()

    def _kick_caller(self, conv):
        # mod_conference keeps the member id in the channel variable conference_member_id
        member = self.acd.api_quiet(commands.uuid_getvar(conv.call.uuid, "conference_member_id")).strip()
        if member.isdigit():
            self.acd.api_quiet(commands.conference(conv.conference, "kick", member))

    def _call_party(self, conv, leg, kind, value, role):
        call = conv.call
        acd = self.acd
        if kind == "agent":
            agent = acd.config.agents[value]
            endpoint = commands.endpoint_user(agent.extension, acd.domain)
            acd.board.ringing(value, call.uuid, leg)
        else:
            endpoint = trunk_endpoint(acd.settings, value)      # checked by target(): normalises
        variables = {"origination_uuid": leg, "hotline_call": call.uuid, "hotline_role": role,
                     "origination_caller_id_number": commands.safe_number(call.caller_id_number) or "anonymous",
                     "origination_caller_id_name": commands.safe_text(f"{role} {conv.agent}", 40),
                     "originate_timeout": THIRD_PARTY_TIMEOUT}
        if kind == "agent":
            variables["hotline_agent"] = value
        conv.parties[leg] = {"kind": kind, "target": value, "role": role, "answered": False,
                             "at": time.time()}
        acd.legs[leg] = (value if kind == "agent" else "", call.uuid)
        call.info.setdefault("parties", []).append({"kind": kind, "target": value, "role": role,
                                                    "by": conv.agent, "at": time.time()})
        command = commands.originate(endpoint, variables, extension=f"conf_{conv.conference}",
                                     context=acd.CONF_CONTEXT)
        gevent.spawn(self._await_party, conv, leg, command)

    def _await_party(self, conv, leg, command):
        party = conv.parties.get(leg)
        try:
            job = self.acd.esl.bgapi(command)
            reply = (job.get(timeout=THIRD_PARTY_TIMEOUT + 10) or "").strip()
        except Exception as exc:
            reply = f"-ERR {exc}"
        if party is None:
            return
        if reply.startswith("+OK"):
            party["answered"] = True
            party["answered_at"] = time.time()
            if party["kind"] == "agent":
                self.acd.board.answered(party["target"], conv.call.uuid)
            conv.call.log.info("%s %s answered (%s)", party["kind"], party["target"], party["role"])
            return
        conv.call.log.info("%s %s did not answer: %s", party["kind"], party["target"], reply[:80])
        self.party_gone(conv, leg)

    # --- legs leaving ---------------------------------------------------------------------------
    def party_gone(self, conv, leg):
        """A third party's leg ended (or never answered)."""
        party = conv.parties.pop(leg, None)
        self.acd.legs.pop(leg, None)
        if party is None:
            return
        party.setdefault("left_at", time.time())
        if party["kind"] == "agent":
            board = self.acd.board
            if party.get("answered"):
                board.call_ended(party["target"], conv.call.uuid, conv.queue.name,
                                 time.time() - party.get("answered_at", time.time()))
            else:
                board.release(party["target"], conv.call.uuid, missed=False, why="third_party")
        if conv.consult == leg:
            conv.consult = None
            if not conv.agent_finished:
                self._back_to_agent(conv)   # the consulted party went: the caller back to the agent

    def agent_leg_gone(self, conv):
        """The agent's leg ended. During an answered consultation that completes the transfer
        (the agent hung up to hand the caller over, as on a PBX)."""
        leg = conv.consult
        party = conv.parties.get(leg) if leg else None
        if party is not None and party.get("answered"):
            conv.leg = None
            self._complete(conv, leg, party, "agent hung up")
            return True
        if leg:
            self.acd.api_quiet(commands.uuid_kill(leg, "NORMAL_CLEARING"))
        return False

    # --- supervisors ----------------------------------------------------------------------------
    def supervise(self, target_ref, supervisor, mode, actor="system"):
        """Call the supervisor's phone and listen to (monitor), coach (whisper) or join (barge) the
        conversation of an agent. A running supervision of the same target changes mode instead."""
        if mode not in SUPERVISE_MODES:
            raise ControlError(f"unknown mode {mode!r}: monitor, whisper or barge", 400)
        acd = self.acd
        conv = self.conversation(target_ref)
        self._inbound_only(conv, "supervision")
        sup = acd.config.agents.get(supervisor) or acd.config.by_extension(supervisor)
        if sup is None:
            raise ControlError(f"unknown supervisor {supervisor!r} (an id or extension in the agents file)", 404)
        if sup.role != "supervisor":
            raise ControlError(f"{sup.id} is not a supervisor (role: {sup.role})", 403)
        busy = self._phone_busy(sup, conv.call.uuid)
        if busy:
            raise ControlError(f"supervisor {sup.id}'s phone ({sup.extension}) is {busy}: "
                               "hang up there first", 409)
        for leg, s in acd.supervisions.items():
            if s["supervisor"] == sup.id and s["call"] == conv.call.uuid:
                self._api(commands.uuid_recv_dtmf(leg, SUPERVISE_MODES[mode]))
                s["mode"] = mode
                self._audit(mode, actor, conv, supervisor=sup.id)
                return {"call": conv.call.uuid, "supervisor": sup.id, "mode": mode, "leg": leg}
        leg = str(uuidlib.uuid4())
        variables = {"origination_uuid": leg, "eavesdrop_enable_dtmf": "true", "hotline_role": "supervisor",
                     "origination_caller_id_number": commands.safe_number(conv.call.caller_id_number) or "anonymous",
                     "origination_caller_id_name": commands.safe_text(f"{mode} {conv.agent}", 40)}
        if mode in ("whisper", "barge"):
            variables["eavesdrop_whisper_bleg"] = "true"
        if mode == "barge":
            variables["eavesdrop_whisper_aleg"] = "true"
        codec = self._leg_codec(conv)
        if codec:
            variables["absolute_codec_string"] = codec
        command = commands.originate(commands.endpoint_user(sup.extension, acd.domain), variables,
                                     app="eavesdrop", app_arg=conv.leg)
        acd.supervisions[leg] = {"supervisor": sup.id, "call": conv.call.uuid, "agent": conv.agent,
                                 "mode": mode, "at": time.time()}
        conv.call.info.setdefault("supervisors", []).append({"supervisor": sup.id, "mode": mode,
                                                             "at": time.time()})
        self._audit(mode, actor, conv, supervisor=sup.id)
        conv.call.log.info("supervisor %s: %s on agent %s", sup.id, mode, conv.agent)
        gevent.spawn(self._await_supervisor, leg, command)
        return {"call": conv.call.uuid, "supervisor": sup.id, "mode": mode, "leg": leg}

    def _phone_busy(self, sup, call_uuid):
        """Why the supervisor's phone cannot take the eavesdrop leg now, or None: it is on a call
        as an agent (Redis, any engine), supervising another call here, or has a channel on the
        switch (`show channels`: a desk phone's legs are named sofia/internal/<ext>@... or
        <ext>-<contact id>@..., fixtures 01 and 10). Changing the mode on the same call is fine."""
        acd = self.acd
        state = acd.best_effort("checking a supervisor's state", acd.store.agent, sup.id, default={}) or {}
        if state.get("state") in ("reserved", "ringing", "in_call"):
            return f"{state['state']} (call {state.get('call') or '?'})"
        for s in acd.supervisions.values():
            if s["supervisor"] == sup.id and s["call"] != call_uuid:
                return f"already on call {s['call']} ({s['mode']})"
            if s["supervisor"] == sup.id:
                return None
        try:
            rows = json.loads(acd.api(commands.show_channels_json()) or "{}").get("rows") or []
        except Exception as exc:          # the switch cannot say: the originate finds out
            log.warning("supervisor %s: cannot list the switch's channels (%s)", sup.id, exc)
            return None
        phone = re.compile(r"^sofia/internal/" + re.escape(sup.extension) + r"[-@]")
        for row in rows:
            if isinstance(row, dict) and phone.match(str(row.get("name") or "")):
                return f"on a call (channel {row.get('uuid')})"
        return None

    def _leg_codec(self, conv):
        """The codec the agent's leg negotiated, asked of the switch, to originate the supervisor's
        leg in it. Eavesdrop mixes the supervisor's frames into the agent's without resampling, so a
        supervisor on OPUS/48000 over an agent on PCMA/8000 is nearly silent in whisper and barge
        (fixture 09b: -55 dBFS instead of -13). Asked as `original_read_codec`: while a media bug
        (conference, another eavesdrop) reads the leg, `read_codec` says L16 (switch_core_codec.c;
        fixtures 03 and 09b). None when the switch cannot say: the switch's preferences then apply."""
        found = {}
        for name in ("original_read_codec", "original_read_rate"):
            try:
                value = (self.acd.api(commands.uuid_getvar(conv.leg, name)) or "").strip()
            except Exception as exc:
                conv.call.log.warning("agent leg %s: %s not known (%s): supervisor in the switch's "
                                      "default codec", conv.leg, name, exc)
                return None
            found[name] = "" if value == "_undef_" else value
        codec = found["original_read_codec"]
        try:
            codec = commands.codec_name(codec)
        except commands.CommandError:
            conv.call.log.warning("agent leg %s: codec %r not usable: supervisor in the switch's default "
                                  "codec", conv.leg, codec[:40])
            return None
        conv.call.log.info("supervisor leg in the agent leg's codec %s/%s", codec,
                           found["original_read_rate"] or "?")
        return codec

    def _await_supervisor(self, leg, command):
        try:
            reply = (self.acd.esl.bgapi(command).get(timeout=THIRD_PARTY_TIMEOUT + 10) or "").strip()
        except Exception as exc:
            reply = f"-ERR {exc}"
        if not reply.startswith("+OK"):
            log.warning("supervisor leg %s: %s", leg, reply[:80])
            self.acd.supervisions.pop(leg, None)

    # --- helpers --------------------------------------------------------------------------------
    def _record_transfer(self, conv, how, party, from_agent):
        entry = {"kind": party["kind"], "to": party["target"], "how": how, "from_agent": from_agent,
                 "at": time.time()}
        conv.transfers.append(entry)
        conv.call.info.setdefault("transfers", []).append(entry)
        checkpoint(conv.call, "transfer")

    def _api(self, command):
        """An api command the operation needs: a refusal is the caller's error (502)."""
        try:
            reply = self.acd.api(command)
        except Exception as exc:
            raise ControlError(f"the switch did not take {command.split()[0]}: {exc}", 502)
        if reply.startswith("-ERR"):
            raise ControlError(f"{command.split()[0]}: {reply.strip()}", 502)
        return reply

    def _audit(self, action, actor, conv, **detail):
        self.acd.store._changed("call", conv.call.uuid)       # live views (web/live.py)
        audit = self.acd.audit
        if audit is not None:
            audit.record(action, actor=actor, agent=conv.agent, call_uuid=conv.call.uuid,
                         detail=detail or None)
