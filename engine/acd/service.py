"""The ACD of one engine: queues, agents, routing, conversations and what supervisors may do.

Pieces: `store` (Redis, shared by every engine), `board` (agent state machines and their timers),
`router` (free agents -> this engine's waiting callers), `waiting.serve` (the caller's side, in the
caller's greenlet), `Conversation` (one caller with their agent, third parties and any pending
in-call action), the watchdog (with `recovery`: after a crash, a Redis outage or a Redis that lost
its data), and the control operations the API and the CLI call.

Commands to the switch go through the engine's inbound ESL connection (`api`), built only by
engine.esl.commands.
"""
import dataclasses
import logging
import statistics
import time
import uuid as uuidlib

import gevent

from engine.infra import netutil
from engine.acd import waiting
from engine.acd.agents import AgentBoard
from engine.acd.config import load_acd
from engine.acd.features import FeatureCodes
from engine.acd.incall import InCall
from engine.acd.outage import ERRORS as REDIS_ERRORS
from engine.acd.outage import Outage
from engine.acd.recovery import Recovery
from engine.acd.relay import Relay
from engine.acd.router import Router
from engine.acd.store import AcdStore
from engine.call.port import CallGone
from engine.call.live import MUSIC_FALLBACK, checkpoint
from engine.esl import commands
from engine.outbound.dialer import trunk_endpoint

log = logging.getLogger("hotline.acd")

WATCHDOG_EVERY = 5.0
ENGINE_TTL = 15.0               # seconds an engine's heartbeat lives; a dead engine's leftovers are repaired
DEFAULT_AHT = 180.0             # seconds assumed per call before any call was handled
CONF_PROFILE = "default"
CONF_CONTEXT = "hotline_conference"


@dataclasses.dataclass
class Conversation:
    call: object
    queue: object
    legs: dict                          # leg uuid -> agent id still ringing/answered
    agent: str = None
    leg: str = None
    answered_at: float = None
    pending: tuple = None               # ('hold',) ('conference',) ('queue', q) ('agent', id) ('external', n)
                                        # ('survey',) ('ended',): the agent left while the caller held
    conference: str = None
    parties: dict = dataclasses.field(default_factory=dict)   # third-party leg -> description
    transfers: list = dataclasses.field(default_factory=list)
    agent_finished: bool = False
    agent_left_first: bool = False
    held: bool = False
    held_since: float = None
    consult: str = None                 # leg of the party being consulted
    caller_in_conference: bool = False
    caller_on_music: bool = False       # the caller's greenlet plays the hold music (hold, consult)

    @property
    def conference_name(self):
        return f"hl-{self.call.uuid}"


class Acd(Recovery):
    CONF_CONTEXT = CONF_CONTEXT

    def __init__(self, settings, esl, renderer=None, engine_id=None, store=None, audit=None):
        self.settings = settings
        self.esl = esl
        self.renderer = renderer
        # Unique to this process (its slot, host and call port, plus a token): a process restarted
        # in the same slot finds the dead one's reservations as a dead owner's, not as its own.
        self.engine_id = engine_id or netutil.instance_id(settings)
        self.config = load_acd(settings.files.agents, settings.files.queues)
        r = settings.redis
        self.store = store or AcdStore(r.url, prefix=r.prefix, sentinels=r.sentinels, master_name=r.master_name,
                                       sentinel_password=r.sentinel_password or None)
        self.audit = audit
        self.board = AgentBoard(self.store, self.config, audit, self.engine_id,
                                wake=lambda why: self.store.wake(why), on_call=self._known_call)
        self.epoch = None               # the Redis epoch this engine's state was written under
        self.waiters = {}               # call uuid -> Waiter (callers of this engine in queues)
        self.conversations = {}         # call uuid -> Conversation
        self.legs = {}                  # agent/third-party leg uuid -> (agent id or '', call uuid)
        # agent leg uuid -> {"agent", "queue", "state", "answered_at"?}: preview calls that ring the
        # agent first (engine/outbound/agentfirst.py); the agent is reserved for that leg's uuid
        self.agent_first = {}
        self.supervisions = {}          # supervisor leg uuid -> {target, mode, supervisor}
        self.adopted = {}               # agent leg -> (agent id, call uuid): talks that outlived an engine
        self.foreign_since = {}         # (agent id, leg) -> when a dead engine's leg on another switch was seen
        self.outage = Outage(reassert=self.after_outage)   # Redis unreachable: logged once, counted, reconciled after
        self.board.outage = self.outage
        self.router = Router(self.store, self.board, lambda: self.config, self.waiters, outage=self.outage)
        self.incall = InCall(self)
        self.features = FeatureCodes(self)
        self.relay = Relay(self)
        self._watchdog = None
        self._prompts = {}
        # `user/<ext>` without a domain uses the switch's default domain; a configured literal
        # domain (not a $${...} preprocessor variable) is named explicitly.
        domain = settings.switch.domain
        self.domain = None if "$" in domain else domain

    # --- life cycle ---------------------------------------------------------------------------
    def start(self):
        try:
            self.store.heartbeat(self.engine_id, ENGINE_TTL)
            self._bury_predecessors()
            self.epoch = self.store.claim_epoch(uuidlib.uuid4().hex)
        except REDIS_ERRORS as exc:
            # calls are still answered (IVR, apologies); the watchdog takes over once Redis answers
            self.outage.failed(exc, "starting the ACD")
        self.router.start()
        self.relay.start()
        self._watchdog = gevent.spawn(self._watchdog_loop)
        log.info("ACD up as %s: %d agents, %d queues", self.engine_id, len(self.config.agents),
                 len(self.config.queues))
        return self

    def stop(self):
        self.router.stop()
        self.relay.stop()
        self.board.stop()
        if self._watchdog is not None:
            self._watchdog.kill(block=False)
        if self.audit is not None:
            self.audit.close()

    def reload(self):
        try:
            config = load_acd(self.settings.files.agents, self.settings.files.queues)
        except Exception as exc:
            return [str(exc)]
        self.config = config
        self.board.config = config
        log.info("ACD configuration reloaded: %d agents, %d queues", len(config.agents), len(config.queues))
        return []

    def default_queue(self):
        """Where the IVR's `agent`/`fallback` callers go: the first queue in queues.yaml."""
        return next(iter(self.config.queues))

    # --- helpers for waiting.py ---------------------------------------------------------------
    def serve(self, call, queue_name):
        return waiting.serve(self, call, queue_name)

    def staffed(self, queue):
        """Is any agent who can serve this queue logged in (available, busy, wrapping up)?"""
        ids = [a.id for a in self.config.agents.values() if self.config.qualified(a, queue)]
        states = self.store.agents(ids)
        return any(d["state"] not in ("logged_out", "on_break") for d in states.values())

    def expected_wait(self, queue, position):
        times = self.store.handle_times(queue.name)
        aht = statistics.mean(times) if times else DEFAULT_AHT
        ids = [a.id for a in self.config.agents.values() if self.config.qualified(a, queue)]
        working = sum(1 for d in self.store.agents(ids).values()
                      if d["state"] not in ("logged_out", "on_break"))
        return aht * position / max(1, working)

    def count(self, queue_name, **amounts):
        try:
            self.store.count(queue_name, time.strftime("%Y%m%d"), **amounts)
        except REDIS_ERRORS as exc:     # statistics must never break a call
            self.outage.failed(exc, "counting queue statistics")
        except Exception as exc:
            log.warning("queue statistics not counted: %s", exc)

    def prompt(self, text):
        if self.renderer is None:
            return "silence_stream://500"
        if text not in self._prompts:
            self._prompts[text] = str(self.renderer.render(text))
        return self._prompts[text]

    def api(self, command):
        return self.esl.api(command)

    def best_effort(self, doing, fn, *args, default=None, **kw):
        """A Redis update on a call's bridge or hang-up path: a Redis outage must not cost a
        connected caller their service. It is counted (outage.py) and reconciled later."""
        try:
            return fn(*args, **kw)
        except REDIS_ERRORS as exc:
            self.outage.failed(exc, doing)
            return default

    # --- ringing ------------------------------------------------------------------------------
    def dial_string(self, call, queue, legs):
        caller = commands.safe_number(call.caller_id_number) or "anonymous"
        choice = commands.safe_text(call.variables.get("ivr_choice") or queue.name, 40)
        show = {"name": f"{choice} {caller}", "header": caller, "both": f"{choice} {caller}"}[queue.caller_id]
        common = {"ringback": commands.media_var(queue.music), "call_timeout": int(queue.ring_timeout),
                  "origination_caller_id_number": caller, "origination_caller_id_name": show,
                  "hotline_call": call.uuid, "hotline_queue": queue.name, "hangup_after_bridge": "false",
                  "ignore_early_media": "true"}
        if queue.caller_id in ("header", "both"):
            common["sip_h_X-Hotline-Queue"] = queue.name
            common["sip_h_X-Hotline-Choice"] = choice
        out = []
        for leg, agent_id in legs.items():
            agent = self.config.agents[agent_id]
            out.append((commands.endpoint_user(agent.extension, self.domain),
                        {"origination_uuid": leg, "leg_timeout": int(queue.ring_timeout),
                         "hotline_agent": agent_id, "hold_music": commands.media_var(queue.music)}))
        return commands.dial_string(out, common)

    def begin(self, call, queue, legs):
        conv = Conversation(call=call, queue=queue, legs=dict(legs))
        self.conversations[call.uuid] = conv

        def on_bridge(event):
            if event.name != "CHANNEL_BRIDGE" or conv.answered_at is not None:
                return
            other = event.get("Other-Leg-Unique-ID") or event.get("Bridge-B-Unique-ID")
            if other in conv.legs:
                self._answered(conv, other)
        call.bridge_hooks.append(on_bridge)
        conv.hook = on_bridge
        return conv

    def _answered(self, conv, leg):
        call, queue = conv.call, conv.queue
        agent_id = conv.legs[leg]
        conv.agent, conv.leg, conv.answered_at = agent_id, leg, time.time()
        # The call knows its agent before anything goes to Redis: the caller is served whatever
        # Redis does now, and the CDR names the agent.
        waited = time.time() - call.info.get("queue_joined", time.time())
        call.info.update(agent=agent_id, wait_seconds=round(waited, 3))
        call.info.setdefault("agents", []).append(agent_id)
        self.best_effort("recording the answer", self.board.answered, agent_id, call.uuid)
        for other_leg, other_agent in list(conv.legs.items()):
            if other_leg != leg:            # ring-all: the others lost the race
                conv.legs.pop(other_leg)
                self.legs.pop(other_leg, None)
                self.best_effort("releasing an agent", self.board.release, other_agent, call.uuid,
                                 missed=False, why="lose_race")
        within = waited <= queue.service_level_seconds
        self.count(queue.name, answered=1, answered_sl=1 if within else 0, wait_total=waited)
        self.best_effort("remembering the agent", self.store.remember_agent,
                         commands.safe_number(call.caller_id_number), agent_id, queue.repeat_caller_hours)
        call.log.info("agent %s answered after %.1f s in queue", agent_id, waited)
        # On the caller's leg, so that the switch's own CDR file names the agent if this engine
        # dies mid-call. Through the api: the caller's leg runs an event-locked `bridge`, which
        # holds back a `sendmsg execute set` until the bridge ends (fixture 08).
        gevent.spawn(self.api_quiet, commands.uuid_setvar(call.uuid, "hotline_agent", agent_id))
        checkpoint(call, "agent_answer")    # a provisional CDR: agent and wait survive a crash
        # the flow's queue node may set the policy for its callers; else the queue's own. The
        # switch started it at the bridge if arm_recording armed it; else (arming failed) now.
        if getattr(call, "recording_armed", None) and not call.info.get("recording"):
            call.info["recording"] = call.recording_armed
        elif (getattr(call, "record_policy", None) or queue.record) == "all" and not call.info.get("recording"):
            gevent.spawn(self.start_recording, call)

    def arm_recording(self, call, queue):
        """Before each `bridge` to agents: if the call is to be recorded and is not yet, the switch
        starts the recording itself when an agent answers (record_session from the bridge), so the
        queue's policy holds even if this engine dies while the agent's phone rings. A call
        recorded already (a transfer's second bridge) gets nothing re-armed."""
        policy = getattr(call, "record_policy", None) or queue.record
        armed = getattr(call, "recording_armed", None)
        try:
            if call.info.get("recording") or policy != "all":
                if armed:                   # the app copied on the first bridge must not run again
                    for name in ("bridge_pre_execute_aleg_app", "bridge_pre_execute_app"):
                        self.api(commands.uuid_unsetvar(call.uuid, name))
                    call.recording_armed = None
                return
            if armed:
                return
            path = f"{self.settings.paths.recordings}/{call.uuid}.wav"
            self.api(commands.uuid_setvar(call.uuid, "RECORD_STEREO", "true"))
            # else the switch records at the caller's codec rate (OPUS: 48 kHz stereo)
            self.api(commands.uuid_setvar(call.uuid, "record_sample_rate",
                                          str(self.settings.recordings.sample_rate)))
            for command in commands.bridge_pre_execute(call.uuid, "record_session", path):
                reply = self.api(command)
                if not reply.startswith("+OK"):
                    raise RuntimeError(reply.strip())
            call.recording_armed = path
        except Exception as exc:
            call.log.error("recording not armed: %s", exc)

    def start_recording(self, call):
        """Stereo (caller left, agent right) from the agent's answer to the end of the call; it
        follows the caller's channel through transfers and conferences."""
        path = f"{self.settings.paths.recordings}/{call.uuid}.wav"
        try:
            self.api(commands.uuid_setvar(call.uuid, "RECORD_STEREO", "true"))
            # else the switch records at the caller's codec rate (OPUS: 48 kHz stereo)
            self.api(commands.uuid_setvar(call.uuid, "record_sample_rate",
                                          str(self.settings.recordings.sample_rate)))
            reply = self.api(commands.uuid_record(call.uuid, "start", path))
            if reply.startswith("+OK"):
                call.info["recording"] = path
            else:
                call.log.error("recording did not start: %s", reply.strip())
        except Exception as exc:
            call.log.error("recording did not start: %s", exc)

    def end(self, call, conv):
        hook = getattr(conv, "hook", None)
        if hook in call.bridge_hooks:
            call.bridge_hooks.remove(hook)
        if self.conversations.get(call.uuid) is conv:
            self.conversations.pop(call.uuid, None)

    def caller_gone(self, call, conv):
        if conv.answered_at is None:
            for leg, agent_id in conv.legs.items():
                self.legs.pop(leg, None)
                self.best_effort("releasing an agent", self.board.release, agent_id, call.uuid,
                                 missed=False, why="caller_gone")
                call.log.info("caller hung up while agent %s was ringing: agent released", agent_id)
        else:
            self.agent_done(conv, caller_left=True)
        self.end(call, conv)

    def agent_done(self, conv, caller_left=False):
        """The agent's part of the conversation is over (idempotent): wrap-up starts."""
        if conv.agent_finished or conv.agent is None:
            return
        conv.agent_finished = True
        conv.agent_left_first = not caller_left
        self.legs.pop(conv.leg, None)
        talk = time.time() - conv.answered_at
        call = conv.call
        # The CDR may be written as soon as this greenlet waits on Redis: its talk time first.
        call.info["talk_seconds"] = round(talk + call.info.get("talk_seconds", 0), 3)
        call.info["wrapup_seconds"] = self.board.wrapup_for(conv.agent, conv.queue.name)
        wrap = self.best_effort("ending the agent's call", self.board.call_ended, conv.agent, call.uuid,
                                conv.queue.name, talk, default=call.info["wrapup_seconds"])
        call.info["wrapup_seconds"] = wrap
        self.best_effort("counting handling time", self.store.add_handle_time, conv.queue.name, talk + wrap)
        self.count(conv.queue.name, talk_total=talk)
        call.log.info("agent %s done after %.1f s; wrap-up %.0f s", conv.agent, talk, wrap)

    # --- after the bridge ---------------------------------------------------------------------
    def converse(self, call, queue, conv):
        try:
            while True:
                action, conv.pending = conv.pending, None
                if action is None:
                    self.agent_done(conv)
                    break
                kind = action[0]
                if kind == "ended":
                    self.agent_done(conv)
                    break
                if kind == "hold":
                    # The agent's leg waits in the conference; the caller hears the queue's music
                    # from this greenlet until unhold, a transfer or the agent leaving says where next.
                    call.log.info("on hold")
                    conv.caller_on_music = True
                    try:
                        while conv.pending is None:
                            call.clear_interrupt()
                            call.play([queue.music], interruptible=True, fallback=MUSIC_FALLBACK)
                            call.flush_digits()
                    finally:
                        conv.caller_on_music = False
                    continue
                if kind == "conference":
                    conv.conference = conv.conference_name
                    call.clear_interrupt()
                    conv.caller_in_conference = True
                    try:
                        call.conference(conv.conference)
                    finally:
                        conv.caller_in_conference = False
                    if call.gone:
                        raise CallGone(call.uuid)
                    if conv.pending is None:
                        self.agent_done(conv)
                        self._end_parties(conv)
                    continue
                if kind == "survey":                # the agent sent the caller to the survey
                    self.agent_done(conv)
                    conv.agent_left_first = True
                    break
                if kind in ("queue", "agent", "external"):
                    self.agent_done(conv)
                    self.end(call, conv)
                    conv.transfers.append({"to": action[1], "kind": kind, "at": time.time()})
                    call.info.setdefault("transfers", []).append({"kind": kind, "to": action[1],
                                                                  "from_agent": conv.agent})
                    checkpoint(call, "transfer")
                    return self.transfer_caller(call, kind, action[1])
        except CallGone:
            self.agent_done(conv, caller_left=True)
            if conv.conference:
                # a conference outlives its members: with the caller gone, everyone else goes too
                for leg in [conv.leg] + list(conv.parties):
                    if leg:
                        gevent.spawn(self.api_quiet, commands.uuid_kill(leg, "NORMAL_CLEARING"))
            raise
        finally:
            self.end(call, conv)
        if not call.gone and queue.survey and conv.agent_left_first:
            self.survey(call, conv)
        return "done"

    def survey(self, call, conv=None):
        from engine.call.survey import SurveySettings, run_survey
        settings = SurveySettings(comment_dir=str(self.settings.paths.recordings))
        try:
            score = run_survey(call, prompts=getattr(call, "survey_prompts", None) or None,
                               settings=settings, render=lambda text: self.prompt(text))
        except CallGone:
            score = None
        if conv is not None and conv.agent:
            # the agent's and the queue's satisfaction figures (rated calls, 1-2 = satisfied)
            satisfied = 1 if score in (1, 2) else 0
            try:
                if score is not None:
                    self.store.incr_fields(conv.agent, rated=1, satisfied=satisfied, score_total=score)
                self.count(conv.queue.name, surveyed=1, rated=1 if score else 0, satisfied=satisfied)
            except REDIS_ERRORS as exc:
                self.outage.failed(exc, "counting survey figures")

    def transfer_caller(self, call, kind, target):
        """Carry out a blind transfer from the caller's greenlet: after converse, or for a preview
        customer handed over to this engine's socket (engine/acd/bridged.py)."""
        if kind == "queue":
            call.log.info("transferred to queue %s", target)
            return waiting.serve(self, call, target, hops=1)
        if kind == "external":
            # the one dial string to an outside number (normalised, the trunk's prefix, the gateway),
            # checked by InCall.target() before anything moved
            call.log.info("transferred to %s", target)
            call.info["transfer"] = target
            call.bridge(trunk_endpoint(self.settings, target))
            return "transferred"
        queue = self.config.queues.get(call.info.get("queue")) or next(iter(self.config.queues.values()))
        waiter = waiting.Waiter(call, queue.name, time.time(), None)
        waiter.offer = [target]             # reserved by transfer_call()
        outcome = waiting.ring(self, call, queue, waiter)
        if outcome is None and not call.gone:
            call.log.info("transfer target %s did not answer: back to queue %s", target, queue.name)
            return waiting.serve(self, call, queue.name, hops=1)
        return outcome

    # --- inbound ESL events -------------------------------------------------------------------
    def on_esl_event(self, event):
        name = event.name
        if name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
            self._leg_gone(event.uuid, event)
            self.supervisions.pop(event.uuid, None)
            self.features.buffers.pop(event.uuid, None)
        elif name == "DTMF":
            self.features.on_dtmf(event)

    def _stale_agent(self, d, now, agent_id=None):
        """What the watchdog should do for an agent's state `d`: 'release', 'end_call',
        'end_wrapup' or None."""
        state, owner, call_uuid = d.get("state"), d.get("engine"), d.get("call")
        mine = owner == self.engine_id
        dead_owner = bool(owner) and not mine and not self.store.engine_alive(owner)
        old = now - float(d.get("since") or now) > 2.0
        if state in ("reserved", "ringing"):
            live = call_uuid in self.waiters or call_uuid in self.conversations or d.get("leg") in self.adopted \
                or call_uuid in self.agent_first
            return "release" if (mine and not live and old) or dead_owner else None
        if state == "in_call":
            live = call_uuid in self.conversations or d.get("leg") in self.adopted or call_uuid in self.agent_first
            return "end_call" if (mine and not live and old) or dead_owner else None
        if state == "wrap_up":
            if mine and self.board.timer_pending(agent_id):
                return None                 # our own timer ends it: late after a stalled hub is no fault
            until = float(d.get("wrap_until") or 0)
            return "end_wrapup" if until and now > until + 2.0 else None
        return None

    def _leg_gone(self, leg, event=None):
        adopted = self.adopted.pop(leg, None)
        if adopted is not None:
            agent_id, call_uuid, queue, answered_at = adopted
            answered = event is None or (event.get("Caller-Channel-Answered-Time") or "0") != "0"
            if self.store.agent(agent_id)["state"] in ("reserved", "ringing") and not answered:
                self.board.release(agent_id, call_uuid, missed=False, why="leg_gone")
            else:
                self.board.call_ended(agent_id, call_uuid, queue, time.time() - answered_at)
            return
        entry = self.legs.pop(leg, None)
        if entry is None:
            return
        agent_id, call_uuid = entry
        conv = self.conversations.get(call_uuid)
        if conv is None:
            return
        if leg in conv.parties:
            self.incall.party_gone(conv, leg)
        elif conv.leg == leg:
            if self.incall.agent_leg_gone(conv):
                return                      # the agent hung up to complete a consultation
            self.agent_done(conv)
            if conv.caller_on_music and conv.pending is None:
                # the agent hung up while the caller held: the caller is not left on the music
                self.incall.end_hold(conv, "agent hung up")
                conv.pending = ("ended",)
                conv.call.interrupt()
        if conv.conference and conv.caller_in_conference and conv.agent_finished \
                and not conv.parties and conv.pending is None:
            # the caller would sit alone in the conference: bring them back to us
            gevent.spawn(self.api_quiet, commands.conference(conv.conference, "kick", "all"))

    def _end_parties(self, conv):
        """The caller left the conference for good: hang up the third parties still in it."""
        for leg in list(conv.parties):
            gevent.spawn(self.api_quiet, commands.uuid_kill(leg, "NORMAL_CLEARING"))

    def api_quiet(self, command):
        """An api command whose failure changes nothing (the leg is gone already): logged only."""
        try:
            return self.api(command)
        except Exception as exc:
            log.warning("%s: %s", command.split()[0], exc)
            return ""

    # --- watchdog -----------------------------------------------------------------------------
    def _watchdog_loop(self):
        while True:
            gevent.sleep(WATCHDOG_EVERY)
            try:
                self.store.heartbeat(self.engine_id, ENGINE_TTL)
                self.outage.recovered()
                self.check_epoch()
                # this engine's callers' entries live on while it does; a dead one's expire
                self.store.refresh_entries(set(self.waiters) | set(self.conversations))
                self._rejoin_lost_waiters()
                self.repair()
            except REDIS_ERRORS as exc:
                self.outage.failed(exc, "checking agents and queues")
            except Exception:
                log.exception("watchdog pass failed")

    def repair(self):
        """Release agents left reserved/ringing/in a call whose call is gone, end overdue wrap-ups,
        drop queue entries nobody serves. Returns what it repaired, for logs and tests.

        The pass works from a snapshot, and calls end normally while it runs: each agent and
        entry is read again just before acting, and left alone if it moved on meanwhile."""
        repaired = []
        pending = set()                 # dead engines' legs on other switches still in their grace
        states = self.store.agents(list(self.config.agents))
        for agent_id, d in states.items():
            if self._stale_agent(d, time.time(), agent_id) is None:
                continue
            d = self.store.agent(agent_id)              # again: the snapshot may be old by now
            what = self._stale_agent(d, time.time(), agent_id)
            if what is None:
                continue
            state, call_uuid = d["state"], d.get("call")
            if what == "release":
                if state == "ringing" and d.get("leg"):
                    adopted = self._adopt(agent_id, d)      # its leg may ring on without us
                    if adopted is None:
                        continue                            # the switch cannot say: next pass
                    if adopted:
                        repaired.append((agent_id, "adopted"))
                        continue
                    if self._foreign_leg_pending(agent_id, d, pending):
                        continue
                t = self.store.transition(agent_id, ("reserved", "ringing"), "available", call=None, leg=None)
                if t:
                    repaired.append((agent_id, state))
            elif what == "end_call":
                adopted = self._adopt(agent_id, d)
                if adopted:
                    repaired.append((agent_id, "adopted"))
                elif adopted is None or self._foreign_leg_pending(agent_id, d, pending):
                    continue                                # the switch cannot say: next pass
                else:
                    self.board.call_ended(agent_id, call_uuid, d.get("queue", ""), 0.0)
                    if self.store.agent(agent_id)["state"] != "in_call":
                        repaired.append((agent_id, state))
            elif what == "end_wrapup" and self.board.end_wrapup(agent_id):
                repaired.append((agent_id, state))
        self.foreign_since = {k: v for k, v in self.foreign_since.items() if k in pending}
        now = time.time()
        for queue_name in self.config.queues:
            waiting_uuids = self.store.waiting(queue_name)
            if not waiting_uuids:
                continue
            for call_uuid, entry in self.store.entries(waiting_uuids).items():
                owner = entry.get("engine")
                # a caller joins Redis a moment before this engine's memory: young entries wait
                orphan = (owner == self.engine_id and call_uuid not in self.waiters
                          and float(entry.get("joined") or 0) < now - 2.0)
                if orphan or (owner and owner != self.engine_id and not self.store.engine_alive(owner)) \
                        or not entry:
                    self.store.leave(queue_name, call_uuid)
                    repaired.append((call_uuid, "queue_entry"))
        repaired += self._collect_entries(now)
        repaired += self._adopted_answers()
        for what in repaired:
            log.warning("watchdog repaired %s (%s)", *what)
        return repaired
