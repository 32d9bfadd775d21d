"""Agents as state machines with real timers (after Kazoo's acdc_agent_fsm).

    logged_out -> available | on_break
    available  -> reserved (router) | on_break | logged_out
    on_break   -> available | logged_out
    reserved   -> ringing | available (the offer fell through before the phone rang)
    ringing    -> in_call (answered) | available (no answer, rejected, caller gone)
               -> on_break:missed_calls (N misses in a row: not ready)
    in_call    -> wrap_up (a timer: the queue's time or the agent's own) | available (no wrap-up)
    wrap_up    -> available (timer, or `agents ready`) | on_break | logged_out

Every change is one atomic Redis transition (store.py) plus one audit row. A break or logout asked
for during a call is remembered (`pending`) and taken when the call and its wrap-up are over, so no
supervisor action is lost and no call is cut. The wrap-up timer lives in the engine that handled the
call; its deadline is in Redis too, so the watchdog of any engine ends a wrap-up whose engine died.
"""
import logging
import time

import gevent

from engine.acd.outage import ERRORS as REDIS_ERRORS

log = logging.getLogger("hotline.acd.agents")

STATES = ("logged_out", "available", "on_break", "reserved", "ringing", "in_call", "wrap_up")
BUSY = ("reserved", "ringing", "in_call")
ANSWERED_OR_ANSWERING = ("in_call", "ringing", "reserved")
MISSED_REASON = "missed_calls"


class AgentError(ValueError):
    """A request the agent's state or identity does not allow; the message says why."""


class AgentBoard:
    def __init__(self, store, config, audit=None, engine_id="engine", wake=None, on_call=None):
        self.store = store
        self.config = config
        self.audit = audit
        self.engine_id = engine_id
        self.wake = wake or (lambda why: store.wake(why))
        self._timers = {}            # agent id -> greenlet ending its wrap-up
        # agent id -> (state, fields) of a call this engine knows the agent is on, or None: after
        # Redis lost its data, a login of such an agent lands in that state, not `available`
        self.on_call = on_call or (lambda agent_id: None)
        self.outage = None           # service.Acd sets its outage.Outage: Redis failures logged once

    # --- helpers ------------------------------------------------------------------------------
    def agent(self, agent_id):
        agent = self.config.agents.get(agent_id)
        if agent is None:
            raise AgentError(f"unknown agent {agent_id!r}")
        return agent

    def _move(self, agent_id, allowed, to, actor="system", reason=None, call_uuid=None, **fields):
        now = time.time()
        if reason is not None:
            fields.setdefault("reason", reason)
        elif to != "on_break":
            fields.setdefault("reason", None)
        t = self.store.transition(agent_id, allowed, to, now=now, **fields)
        if t and self.audit is not None:
            self.audit.record("state", actor=actor, agent=agent_id, from_state=t.previous, to_state=to,
                              seconds_in_previous=round(t.spent, 3), reason=reason, call_uuid=call_uuid)
        if t and to == "available":
            self.wake("agent:" + agent_id)
        return t

    def state(self, agent_id):
        return self.store.agent(agent_id)

    # --- requests from agents and supervisors ---------------------------------------------------
    def login(self, agent_id, actor="system"):
        self.agent(agent_id)
        known = self.on_call(agent_id)
        if known is not None:
            state, fields = known
            t = self._move(agent_id, ("logged_out",), state, actor, reason="login_on_call",
                           call_uuid=fields.get("call"), extension=self.agent(agent_id).extension,
                           misses=0, pending=None, engine=self.engine_id, **fields)
            if t:
                log.warning("agent %s logged in while on call %s: %s", agent_id, fields.get("call"), state)
                return t
        t = self._move(agent_id, ("logged_out",), "available", actor, extension=self.agent(agent_id).extension,
                       misses=0, pending=None)
        if not t:
            raise AgentError(f"agent {agent_id} is already logged in ({t.previous})")
        return t

    def ready(self, agent_id, actor="system"):
        """End a break or a wrap-up early; clears a pending break/logout."""
        self.agent(agent_id)
        before = self.store.agent(agent_id)
        self._cancel_timer(agent_id)
        t = self._move(agent_id, ("on_break", "wrap_up"), "available", actor, misses=0, pending=None,
                       wrap_until=None)
        if t and t.previous == "wrap_up":
            self._wrapup_ended(agent_id, before, actor, "ready")
        if not t:
            if t.previous == "available":
                return t
            if t.previous in BUSY and self.store.mark_if(agent_id, BUSY, pending="available")[0]:
                return t                  # after the call and its wrap-up: `pending` says so
            raise AgentError(f"agent {agent_id} is {t.previous}: log in first" if t.previous == "logged_out"
                             else f"agent {agent_id} is {t.previous}; try again")
        return t

    def take_break(self, agent_id, reason, actor="system"):
        """A break now, or after the call and its wrap-up (falsy Transition, `pending` says so)."""
        self.agent(agent_id)
        if reason not in self.config.break_reasons and reason != MISSED_REASON:
            raise AgentError(f"unknown break reason {reason!r}; known: {', '.join(self.config.break_reasons)}")
        return self._now_or_after_call(agent_id, "on_break", actor, reason=reason)

    def logout(self, agent_id, actor="system"):
        """Log out now, or, during a call, once the call and its wrap-up are over: the returned
        Transition is falsy then and the agent's `pending` says `logged_out`."""
        self.agent(agent_id)
        return self._now_or_after_call(agent_id, "logged_out", actor)

    def _now_or_after_call(self, agent_id, to, actor, reason=None):
        for _ in range(3):          # the call may end between the two steps: then try again
            before = self.store.agent(agent_id)
            self._cancel_timer(agent_id)
            t = self._move(agent_id, ("available", "on_break", "wrap_up") + (("logged_out",) if to == "on_break" else ()),
                           to, actor, reason=reason, wrap_until=None, pending=None)
            if t and t.previous == "wrap_up":
                self._wrapup_ended(agent_id, before, actor, "logout" if to == "logged_out" else "break")
            if t or t.previous == "logged_out":
                return t
            pending = to + (":" + reason if reason else "")
            marked, state = self.store.mark_if(agent_id, BUSY, pending=pending)
            if marked:
                if self.audit is not None:
                    self.audit.record("pending", actor=actor, agent=agent_id, reason=pending,
                                      call_uuid=before.get("call"))
                log.info("agent %s is %s: %s after the call", agent_id, state, pending)
                return t
        raise AgentError(f"agent {agent_id} changes state too fast to act on; try again")

    def extend_wrapup(self, agent_id, seconds, actor="system"):
        data = self.store.agent(agent_id)
        if data["state"] != "wrap_up":
            raise AgentError(f"agent {agent_id} is {data['state']}, not in wrap-up")
        until = max(float(data.get("wrap_until") or time.time()), time.time()) + float(seconds)
        self.store.set_fields(agent_id, wrap_until=repr(until))
        self._start_timer(agent_id, until - time.time())
        if self.audit is not None:
            self.audit.record("wrapup_extend", actor=actor, agent=agent_id, detail={"seconds": seconds})
        return until

    # --- the router's and the call's steps ------------------------------------------------------
    def reserve(self, agent_id, call_uuid, queue):
        return self._move(agent_id, ("available",), "reserved", call_uuid=call_uuid, call=call_uuid,
                          engine=self.engine_id, queue=queue)

    def ringing(self, agent_id, call_uuid, leg_uuid):
        return self._move(agent_id, ("reserved",), "ringing", call_uuid=call_uuid, leg=leg_uuid)

    def answered(self, agent_id, call_uuid):
        t = self._move(agent_id, ("ringing", "reserved"), "in_call", call_uuid=call_uuid, misses=0,
                       answered_at=repr(time.time()))
        if t:
            self.store.incr_fields(agent_id, calls=1)
        return t

    def release(self, agent_id, call_uuid, missed=False, why=""):
        """The offer ended without a conversation: back to available, or not-ready after N misses."""
        data = self.store.agent(agent_id)
        if data.get("call") != call_uuid or data["state"] not in ("reserved", "ringing"):
            return None                       # already moved on (watchdog, another path)
        misses = int(float(data.get("misses") or 0)) + (1 if missed else 0)
        limit = self.agent(agent_id).max_no_answer if agent_id in self.config.agents else 3
        pending = data.get("pending")
        if missed and misses >= limit:
            log.warning("agent %s missed %d offers in a row: not ready", agent_id, misses)
            return self._move(agent_id, ("reserved", "ringing"), "on_break", reason=MISSED_REASON,
                              call_uuid=call_uuid, misses=misses, call=None, leg=None)
        if pending:
            return self._after(agent_id, pending, ("reserved", "ringing"), call_uuid)
        return self._move(agent_id, ("reserved", "ringing"), "available", reason=why or None,
                          call_uuid=call_uuid, misses=misses, call=None, leg=None)

    def wrapup_for(self, agent_id, queue):
        """Wrap-up seconds after a call of `queue`: the agent's own override, else the queue's."""
        agent = self.config.agents.get(agent_id)
        q = self.config.queues.get(queue)
        if agent is not None and agent.wrapup_seconds is not None:
            return agent.wrapup_seconds
        return q.wrapup_seconds if q else 30.0

    def call_ended(self, agent_id, call_uuid, queue, talk_seconds):
        """The conversation is over: wrap-up for the agent's or the queue's time."""
        data = self.store.agent(agent_id)
        # An agent who hangs up at once can end the call while answered()'s transition is still on
        # its way to Redis: the state may still say ringing (reserved) for this very call. Ending
        # from there too keeps the agent from being left in_call when that transition lands.
        if data["state"] not in ANSWERED_OR_ANSWERING or data.get("call") != call_uuid:
            return 0.0
        seconds = self.wrapup_for(agent_id, queue)
        self.store.incr_fields(agent_id, talk=talk_seconds)
        self.store.set_fields(agent_id, last_end=repr(time.time()))
        if seconds <= 0:
            t = self._finish_call_state(agent_id, call_uuid, data.get("pending"), ANSWERED_OR_ANSWERING)
            self._count_answer_overtaken(agent_id, t)
            return 0.0
        until = time.time() + seconds
        t = self._move(agent_id, ANSWERED_OR_ANSWERING, "wrap_up", call_uuid=call_uuid, wrap_until=repr(until),
                       wrap_started=repr(time.time()), leg=None)
        self._count_answer_overtaken(agent_id, t)
        if not t:
            return 0.0                    # moved on meanwhile (another path ended it): no timer
        if self.audit is not None:
            self.audit.record("wrapup_start", agent=agent_id, call_uuid=call_uuid, detail={"seconds": seconds})
        self._start_timer(agent_id, seconds)
        return seconds

    def _count_answer_overtaken(self, agent_id, t):
        """answered() lost the race to call_ended() and counted nothing: count the call here."""
        if t and t.previous in ("ringing", "reserved"):
            self.store.incr_fields(agent_id, calls=1)

    def end_wrapup(self, agent_id, actor="system"):
        data = self.store.agent(agent_id)
        if data["state"] != "wrap_up":
            return None
        self._cancel_timer(agent_id)
        t = self._finish_call_state(agent_id, data.get("call"), data.get("pending"), ("wrap_up",), actor)
        if t:
            self._wrapup_ended(agent_id, data, actor, "timer" if actor == "system" else "ended")
        return t

    def _wrapup_ended(self, agent_id, data, actor, reason):
        if self.audit is not None:
            started = float(data.get("wrap_started") or time.time())
            self.audit.record("wrapup_end", actor=actor, agent=agent_id, call_uuid=data.get("call"),
                              reason=reason, detail={"seconds": round(time.time() - started, 3)})

    def wrapup_seconds_of(self, agent_id):
        data = self.store.agent(agent_id)
        started = data.get("wrap_started")
        return None if not started else time.time() - float(started)

    def _finish_call_state(self, agent_id, call_uuid, pending, allowed, actor="system"):
        if pending:
            return self._after(agent_id, pending, allowed, call_uuid, actor)
        t = self._move(agent_id, allowed, "available", actor, call_uuid=call_uuid, call=None,
                       wrap_until=None, leg=None)
        if t:
            # a logout or break asked for while this ended (after `pending` was read): take it now
            late = self.store.agent(agent_id).get("pending")
            if late:
                return self._after(agent_id, late, ("available",), call_uuid, actor) or t
        return t

    def _after(self, agent_id, pending, allowed, call_uuid, actor="system"):
        state, _, reason = pending.partition(":")
        return self._move(agent_id, allowed, state, actor, reason=reason or None, call_uuid=call_uuid,
                          call=None, leg=None, wrap_until=None, pending=None)

    # --- timers ---------------------------------------------------------------------------------
    def _start_timer(self, agent_id, seconds):
        self._cancel_timer(agent_id)
        self._timers[agent_id] = gevent.spawn_later(max(0.0, seconds), self._timer_fired, agent_id)

    def _cancel_timer(self, agent_id):
        timer = self._timers.pop(agent_id, None)
        if timer is not None and timer is not gevent.getcurrent():
            timer.kill(block=False)

    def timer_pending(self, agent_id):
        """Is this engine's wrap-up timer for the agent scheduled or running? (The watchdog leaves
        such a wrap-up to it: after a stalled hub both are due, and either may run first.)"""
        timer = self._timers.get(agent_id)
        return timer is not None and not timer.dead

    def _timer_fired(self, agent_id):
        # stays in _timers while it runs (end_wrapup's _cancel_timer removes it): timer_pending
        # must not say "no timer" while this one reads Redis
        try:
            data = self.store.agent(agent_id)
            until = float(data.get("wrap_until") or 0)
            if data["state"] == "wrap_up" and until > time.time() + 0.005:
                self._start_timer(agent_id, until - time.time())       # extended meanwhile elsewhere
                return
            self.end_wrapup(agent_id)
        except REDIS_ERRORS as exc:
            # the deadline is in Redis: a watchdog pass ends the wrap-up once Redis answers again
            if self.outage is not None:
                self.outage.failed(exc, "ending a wrap-up")
        except Exception:
            log.exception("ending the wrap-up of agent %s failed; the watchdog will retry", agent_id)

    def stop(self):
        for agent_id in list(self._timers):
            self._cancel_timer(agent_id)
