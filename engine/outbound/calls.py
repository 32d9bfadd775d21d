"""The calls of callbacks and campaigns, placed through the one dialler (engine/outbound/dialer.py).

    placer = CallPlacer(engine, dialer, db, cfg)
    runner = Runner(db, claims, placer.place_call, ...)      # place_call: one attempt, start to end
    placer.attach()        # legs "campaign" and "callback" come to calls.on_leg

An attempt dials with target "engine": the answered leg comes back to this engine's socket
server tagged with its job id (`ct-<contact>-<attempt>` or `cb-<job>-<attempt>`) and is served
here (on_leg), while place_call waits for it with bounds (the leg's arrival, then the call):
- robot campaign: the campaign's IVR flow (ivr_flows/followup.yaml) with the contact's fields as
  call variables; its variables give the answers (followup_result, resolved, satisfaction, the
  voice comment); 0 for a person puts the caller in the campaign's queue;
- agent campaigns (progressive, predictive) and auto callbacks: into the queue with priority
  (outbound_calls.jobs.callback_priority); a predictive customer no agent takes within
  agent_wait_seconds is told so and hung up: an abandon, called again soon.
A dial that is not answered ends with the dialler's result and retry time.

The runner's pacer learns from every attempt: `ring_seconds` (the dial until the answer, or until
it failed) and
`handle_seconds` (the agent's talk plus wrap-up); and `on_connected(attempt_id)` (the runner's
`connected`) tells it as soon as an answered customer is bridged to an agent, abandoned or gone,
so that only dials still looking for an agent hold back new ones.
"""
import datetime
import logging
import time

import gevent
import gevent.event

from engine.call.port import CallGone
from engine.outbound.agentfirst import AgentFirst
from engine.outbound.dialer import DialRequest
from engine.outbound.gate import note_agent

log = logging.getLogger("hotline.outbound")

LEG_ARRIVAL = 20.0          # seconds from the answer to the leg reaching our socket server
CALL_LIMIT = 3 * 3600.0     # no follow-up call is longer; the wait is bounded all the same
SORRY = "您好，这里是12345热线，坐席暂时繁忙，我们稍后再与您联系，再见。"


_placers = []               # every engine's placer in this process (tests run two engines in one)


def on_leg(call, info):
    """The legs registry's handler for `campaign` and `callback` legs (engine/outbound/legs.py: one
    handler a purpose per process): the placer whose attempt waits for this job id serves it."""
    job = info.get("job", "")
    placer = next((p for p in _placers if job in p.waiting), _placers[0] if _placers else None)
    if placer is None:
        call.log.error("outbound leg for %s: callbacks and campaigns are not running; hanging up", job)
        call.hangup()
        return
    placer.on_leg(call, info)


def _waits_for_agent(campaign):
    """Is this answered call only served once an agent takes it? Agent campaigns and callback jobs
    (`campaign` None: an auto job's customer waits in the queue); robot calls are served by the IVR."""
    return campaign is None or campaign["mode"] in ("progressive", "predictive")


class CallPlacer:
    def __init__(self, engine, dialer, db, cfg, runtime=None):
        self.engine = engine
        self.dialer = dialer
        self.db = db
        self.cfg = cfg                      # outbound_calls.jobs
        self.runtime = runtime              # the IVR runtime (robot flows)
        self.waiting = {}                   # job id -> (kind, row, campaign, result, arrived, connected)
        self.on_connected = None            # runner.connected(attempt_id): the pacer's count of dials
        self.agent_first = AgentFirst(engine, dialer, db, next_due=self._next_due)   # preview calls

    def attach(self):
        from engine.outbound import legs
        if self not in _placers:
            _placers.append(self)
        legs.register("campaign", on_leg)
        legs.register("callback", on_leg)

    def detach(self):
        from engine.outbound import legs
        if self in _placers:
            _placers.remove(self)
        if not _placers:
            legs.unregister("campaign")
            legs.unregister("callback")
        self.agent_first.close()

    # --- one attempt ------------------------------------------------------------------------------
    def place_call(self, kind, row, campaign, attempt_id, reservation=None):
        """One attempt. `reservation` (preview: the agent who took it, reserved by
        agent_first.reserve): the agent's phone rings first (engine/outbound/agentfirst.py)."""
        token = f"{'ct' if kind == 'contact' else 'cb'}-{row['id']}-{attempt_id}"
        if reservation is not None:
            return self.agent_first.run(reservation, kind, row, campaign, token)
        done = gevent.event.AsyncResult()
        arrived = gevent.event.Event()
        self.waiting[token] = (kind, row, campaign, done, arrived, lambda: self._connected(attempt_id))
        try:
            req = DialRequest(row["number"], purpose="campaign" if kind == "contact" else "callback",
                              job_id=token, campaign=campaign["name"] if campaign else "",
                              ticket=str(row["ticket_id"]) if row.get("ticket_id") else None,
                              original_call=row.get("call_uuid"), target="engine",
                              needs_agent=not (campaign and campaign["mode"] == "robot"))
            dialled = time.monotonic()
            outcome = self.dialer.dial(req)
            if not outcome.answered:
                return {"result": outcome.result, "cause": outcome.hangup_cause, "call_uuid": outcome.uuid,
                        "counts": outcome.counts_attempt, "retry_at": self._next_due(outcome, row),
                        "final": not outcome.retry, "ring_seconds": round(time.monotonic() - dialled, 3)}
            answered_at = self.db.clock()
            ring = round(time.monotonic() - dialled, 3)
            if not arrived.wait(LEG_ARRIVAL):
                log.error("[%s] answered leg of %s never reached the engine: hanging it up", outcome.uuid, token)
                self._kill(outcome.uuid)
                return {"result": "failed", "cause": "LEG_LOST", "call_uuid": outcome.uuid,
                        "answered_at": answered_at, "ring_seconds": ring}
            out = done.get(timeout=CALL_LIMIT)
            return {"call_uuid": outcome.uuid, "answered_at": answered_at, "ring_seconds": ring, **out}
        except gevent.Timeout:
            return {"result": "failed", "cause": "TIMEOUT"}
        finally:
            self.waiting.pop(token, None)

    def _connected(self, attempt_id):
        if self.on_connected is not None:
            try:
                self.on_connected(attempt_id)
            except Exception as exc:     # noqa: BLE001 - the count is the pacer's; the call goes on
                log.warning("attempt %s: the pacer was not told it connected: %s", attempt_id, exc)

    def _next_due(self, outcome, row):
        try:
            due = self.dialer.next_due(outcome, (row.get("attempts") or 0) + 1)
        except Exception:          # noqa: BLE001 - our own retry table then
            return None
        return due.astimezone(datetime.timezone.utc).replace(tzinfo=None) if due else None

    def _kill(self, uuid):
        from engine.esl import commands
        try:
            self.engine.esl.api(commands.uuid_kill(uuid, "NORMAL_CLEARING"))
        except Exception as exc:     # noqa: BLE001 - the switch's own timers end it
            log.warning("[%s] not killed: %s", uuid, exc)

    # --- the answered leg ---------------------------------------------------------------------------
    def on_leg(self, call, info):
        entry = self.waiting.get(info.get("job", ""))
        if entry is None:
            call.log.error("outbound leg for %s: no attempt waits for it here (engine restarted?): hanging up",
                           info.get("job"))
            call.hangup()
            return
        kind, row, campaign, done, arrived, connected = entry
        arrived.set()
        out = {"result": "failed", "cause": "ENGINE_ERROR"}
        extra = call.info.setdefault("extra", {})
        extra.update(direction="outbound", original_call=row.get("call_uuid"),
                     **({"campaign": campaign["name"], "contact": row["id"]} if campaign
                        else {"callback_job": row["id"]}))
        try:
            if campaign and campaign["mode"] == "robot":
                out = self._robot(call, row, campaign)
            else:
                out = self._to_agent(call, row, campaign, connected=connected)
        except CallGone:
            if _waits_for_agent(campaign) and not call.info.get("agent"):
                # hung up on (the apology: abandoned) or hung up before any agent took them: no
                # agent ever talked to this customer, so we still owe them the call (not "answered",
                # which would close the contact or the callback job as done)
                out = {"result": "abandoned", "cause": "NO_AGENT" if call.info.get("outbound_abandoned")
                       else "NORMAL_CLEARING"}
            else:
                out = {"result": out.get("result") if out.get("result") != "failed" else "answered",
                       "cause": "NORMAL_CLEARING"}
        finally:
            connected()                     # whatever happened, it looks for no agent any more
            extra["result"] = out.get("result")
            done.set(out)

    def _robot(self, call, row, campaign):
        runtime = self.runtime
        entry = self._entry_of(campaign["flow"])
        if runtime is None or entry is None:
            call.log.error("robot campaign %s: flow %s not loaded in the IVR; hanging up", campaign["name"],
                           campaign["flow"])
            call.hangup()
            return {"result": "failed", "cause": "NO_FLOW"}
        call.destination_number = entry
        call.variables.update(self._ticket_vars(row.get("reference")))     # the list's columns win
        call.variables.update({k: str(v) for k, v in (row.get("fields") or {}).items()})
        call.variables.update(name=row.get("name") or "", reference=row.get("reference") or "")
        result = {}
        try:
            result = runtime.run(call)
        finally:
            v = call.variables
            answers = {k: v[k] for k in ("resolved", "satisfaction") if v.get(k)}
            state = v.get("followup_result") or "not_confirmed"
        out = {"answers": answers or None, "comment": v.get("voicemail_path") or None}
        if state == "opt_out":          # the person asked not to be called: DNC at once, no more tries
            self._opt_out(row["number"], campaign["name"])
            return {"result": "opted_out", "disposition": "opt_out"}
        if state == "not_confirmed":
            out["result"] = "not_confirmed"
        else:
            out["result"] = "completed" if state == "completed" else "answered"
            out["disposition"] = "robot:" + state
        if result.get("outcome") in ("agent", "fallback") and not call.gone:
            out.update(self._to_agent(call, row, campaign, robot=True))
            out["result"] = "completed" if state == "completed" or answers else "answered"
        return out

    def _to_agent(self, call, row, campaign, robot=False, connected=None):
        acd = getattr(self.engine, "acd", None)
        queue = (campaign or {}).get("queue") or row.get("queue")
        if acd is None:
            call.log.error("outbound call for %s: no ACD on this engine; hanging up", queue)
            call.hangup()
            return {"result": "failed", "cause": "NO_ACD"}
        queue = queue if queue in acd.config.queues else acd.default_queue()
        call.info["queue_priority"] = self.cfg.callback_priority
        watcher = None
        if campaign and campaign["mode"] == "predictive" and not robot:
            watcher = gevent.spawn_later(self.cfg.agent_wait_seconds, self._abandon_if_waiting, acd, call,
                                         connected)
        held = []                   # the agent this outbound call holds, for the inbound-first gate

        def on_bridge(event):
            # this hook runs before the ACD's own (added when an agent rings), which is what sets
            # call.info["agent"]: the agent is found from the bridged leg too (without it, no
            # campaign call was ever counted as holding an agent, by the gate or the pacer)
            agent = call.info.get("agent") or self._agent_of_leg(acd, call, event)
            if event.name == "CHANNEL_BRIDGE" and agent and not held:
                held.append(agent)
                self._gate("agent_taken", agent)
                if connected is not None:
                    connected()
        call.bridge_hooks.append(on_bridge)
        try:
            from engine.daemon import _to_queue
            _to_queue(acd, call, queue)
        finally:
            if watcher is not None:
                watcher.kill(block=False)
            call.bridge_hooks.remove(on_bridge)
            for agent in held:
                self._gate("agent_released", agent)
        if call.info.get("outbound_abandoned"):
            return {"result": "abandoned", "cause": "NO_AGENT"}
        agent = call.info.get("agent")
        talk = call.info.get("talk_seconds")
        return {"result": "answered" if agent else "abandoned", "agent": agent,
                "handle_seconds": talk + (call.info.get("wrapup_seconds") or 0) if talk else None}

    @staticmethod
    def _agent_of_leg(acd, call, event):
        """The agent whose ringing leg this bridge event joined to the call, if the ACD rang one."""
        conv = getattr(acd, "conversations", {}).get(call.uuid)
        other = event.get("Other-Leg-Unique-ID") or event.get("Bridge-B-Unique-ID")
        return conv.legs.get(other) if conv is not None and other else None

    def _opt_out(self, number, campaign):
        lists = getattr(self.dialer, "lists", None)
        try:
            if lists is None:
                raise RuntimeError("the number lists are not loaded")
            lists.add_from_optout(number, campaign)
            log.info("%s opted out of campaign %s: on the do-not-call list", number, campaign)
        except Exception as exc:      # noqa: BLE001 - the contact is closed all the same
            log.error("%s opted out of campaign %s but is NOT on the do-not-call list: %s", number, campaign, exc)

    def _gate(self, what, agent):
        note_agent(getattr(self.dialer, "gate", None), what, agent)

    def _abandon_if_waiting(self, acd, call, connected=None):
        waiter = acd.waiters.get(call.uuid)
        if waiter is None or waiter.offer or call.info.get("agent"):
            return
        # Out of the queue before the apology: an agent freed while it plays was offered to this
        # customer, rang while we said goodbye and was left ringing (on the simulator, 28 of 2,973
        # answered customers were so recorded "answered" without ever reaching an agent). The
        # router's take of a caller who left fails, and it releases the agent it reserved.
        acd.waiters.pop(call.uuid, None)
        acd.best_effort("leaving a queue", acd.store.leave, waiter.queue, call.uuid)
        if waiter.offer or call.info.get("agent"):
            acd.waiters[call.uuid] = waiter     # the router took them while we left: served after all
            return
        call.info["outbound_abandoned"] = True
        if connected is not None:
            connected()                     # hung up on: it takes no agent
        call.log.info("no agent within %.1f s for this answered campaign call: abandoned", self.cfg.agent_wait_seconds)
        try:
            call.play([acd.prompt(SORRY)], interruptible=False)
        except Exception:       # noqa: BLE001 - hang up all the same
            pass
        call.hangup()

    def _entry_of(self, flow_path):
        """The entry name of the campaign's flow file in the loaded IVR flows."""
        if self.runtime is None or not flow_path:
            return None
        import pathlib
        want = pathlib.Path(flow_path).resolve()
        for flow in self.runtime.flowset.flows.values():
            if pathlib.Path(flow.path).resolve() == want or flow.name == pathlib.Path(flow_path).stem:
                return next(iter(flow.entry), None)
        return None

    def _ticket_vars(self, reference):
        """summary and ticket_date of the ticket a contact refers to (its number), for the script."""
        if not reference:
            return {}
        try:
            from engine.tickets.models import bound_models
            t = bound_models(self.db.db)
            row = self.db.run(lambda: t.Ticket.get_or_none(t.Ticket.number == reference))
        except Exception:         # noqa: BLE001 - no ticket tables: the contact's own fields only
            return {}
        if row is None:
            return {}
        return {"summary": row.summary or "", "ticket_date": row.created_at.date().isoformat()}
