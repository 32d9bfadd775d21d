"""Preview calls, agent first: the agent who took a callback job or accepted a preview contact is
reserved in the ACD, their phone rings, and only once they answer is the customer dialled (with
the hotline's number) and bridged to them.

    res = placer.agent_first.reserve("1001", "pension")   # AgentBusy (409) unless 1001 is available
    out = placer.agent_first.run(res, kind, row, campaign, token)   # in the attempt's greenlet

The steps, each bounded:
1. reserve: the ACD's own transition (AgentBoard.reserve, one Redis script), so the router offers
   the agent no inbound caller meanwhile; the reservation's key is the agent leg's uuid, which the
   ACD's watchdog knows as live while this engine holds it (Acd.agent_first).
2. the dialler's checks (number, block, DNC, window, inbound first) run before the agent's phone
   rings: an agent is never rung for a customer who cannot be dialled.
3. ring the agent: `originate {origination_uuid=<leg>,originate_timeout=<queue ring timeout>,
   hotline_role=preview_agent,...}user/<ext> &park()` (fixture 10 originates a phone leg the same
   way; fixture 01 the bgapi originate and its BACKGROUND_JOB). `hotline_role` keeps the XML CDR
   import off the leg (engine/cdr/xmlcdr.py). No answer / reject / busy: the agent is released as
   after a missed queue call (AgentBoard.release, misses counted), the job or contact goes back to
   pending at once and the attempt does not count against the customer (`agent_missed`).
4. the agent answered: a short beep on their leg, and the customer is dialled through
   Dialer.dial(target="park") (the one dial place). If the agent hangs up meanwhile, the customer's dial is cancelled (uuid_kill
   ORIGINATOR_CANCEL). Not answered: the dialler's result as for any dial; the agent's leg is hung
   up and the agent goes to wrap-up (or available) by the queue's rules (AgentBoard.call_ended).
5. answered: `uuid_bridge <customer> <agent leg>` (fixture 10, switch_ivr_uuid_bridge); the
   conversation lasts until either leg hangs up (the switch hangs up the other: hangup_after_bridge
   is not false on these legs); talk time goes to the agent, then wrap-up. Meanwhile the call is a
   conversation the in-call actions address (engine/acd/bridged.py): hold / unhold (the customer
   hears the queue's music), blind transfer of the customer (queue, agent, outside number: the
   customer's leg goes on on this engine's socket, the agent to wrap-up), hang-up.
"""
import dataclasses
import logging
import time
import uuid as uuidlib

import gevent
import gevent.event

from engine.acd import bridged
from engine.esl import commands
from engine.outbound.attempts import cdr_fields
from engine.outbound.dialer import DialRequest
from engine.outbound.gate import note_agent

log = logging.getLogger("hotline.outbound.agentfirst")

RING_MARGIN = 10.0          # seconds past the ring timeout before a silent originate is killed
CALL_LIMIT = 3 * 3600.0     # no follow-up call is longer; the wait is bounded all the same
API_TIMEOUT = 5.0
HANGUP_GRACE = 5.0          # seconds for the second leg's hangup after the first
ROLE = "preview_agent"      # hotline_role of the agent's leg
ANSWER_TONE = "tone_stream://%(200,0,640)"     # one short beep: "dialling your customer now"


class AgentBusy(Exception):
    """The agent cannot take a preview call now (the API answers 409)."""


@dataclasses.dataclass
class Reservation:
    agent: str
    queue: str
    extension: str
    leg: str                # the agent leg's uuid, also the `call` the agent is reserved for


class AgentFirst:
    def __init__(self, engine, dialer, db, next_due=None):
        self.engine = engine
        self.dialer = dialer
        self.db = db
        self.next_due = next_due or (lambda outcome, row: None)
        self.ended = {}         # leg uuid -> Event set by its CHANNEL_HANGUP_COMPLETE
        self.causes = {}        # leg uuid -> its hangup cause
        self._esl = getattr(engine, "esl", None)
        if hasattr(self._esl, "on"):
            self._esl.on("CHANNEL_HANGUP_COMPLETE", self._on_hangup)

    def close(self):
        if hasattr(self._esl, "off"):
            self._esl.off("CHANNEL_HANGUP_COMPLETE", self._on_hangup)

    @property
    def acd(self):
        return getattr(self.engine, "acd", None)

    # --- the reservation ------------------------------------------------------------------------
    def reserve(self, agent_id, queue=None):
        acd = self.acd
        if acd is None:
            raise AgentBusy("preview calls need the ACD, and this engine runs none")
        agent = acd.config.agents.get(agent_id)
        if agent is None:
            raise AgentBusy(f"unknown agent {agent_id!r}")
        queue = queue if queue in acd.config.queues else acd.default_queue()
        leg = str(uuidlib.uuid4())
        acd.agent_first[leg] = {"agent": agent_id, "queue": queue, "state": "reserved"}
        try:
            t = acd.board.reserve(agent_id, leg, queue)
        except Exception:
            acd.agent_first.pop(leg, None)
            raise
        if not t:
            acd.agent_first.pop(leg, None)
            raise AgentBusy(f"agent {agent_id} is {t.previous}, not available: "
                            + ("log in first" if t.previous == "logged_out" else "finish or end it first"))
        log.info("[%s] agent %s reserved for a preview call (queue %s)", leg, agent_id, queue)
        return Reservation(agent_id, queue, agent.extension, leg)

    def cancel(self, res, why):
        """Give a reservation back unused (the take was refused after it)."""
        acd = self.acd
        try:
            acd.board.release(res.agent, res.leg, missed=False, why=why)
        finally:
            acd.agent_first.pop(res.leg, None)

    # --- the call -------------------------------------------------------------------------------
    def run(self, res, kind, row, campaign, token):
        """One attempt, agent first. Returns the attempt's outcome for the runner."""
        acd = self.acd
        try:
            return self._run(acd, res, kind, row, campaign, token)
        except Exception:
            # a bug or a lost switch: never leave the agent booked; the watchdog is the last resort
            acd.best_effort("freeing a preview agent", self._free_agent, acd, res)
            raise
        finally:
            acd.agent_first.pop(res.leg, None)
            self._unwatch(res.leg)

    def _run(self, acd, res, kind, row, campaign, token):
        prefix = f"[{res.leg}] "
        purpose = "campaign" if kind == "contact" else "callback"
        customer = str(uuidlib.uuid4())
        req = DialRequest(row["number"], purpose=purpose, job_id=token,
                          campaign=campaign["name"] if campaign else "",
                          ticket=str(row["ticket_id"]) if row.get("ticket_id") else None,
                          original_call=row.get("call_uuid"), target="park", needs_agent=True, uuid=customer)
        # what the agent's desk shows of this call (engine/web/screenpop.py, desk.py)
        acd.agent_first[res.leg].update(number=row["number"], name=row.get("name") or "", kind=kind,
                                        row_id=row["id"], campaign=campaign["name"] if campaign else "",
                                        ticket=row.get("ticket_id"), original_call=row.get("call_uuid"),
                                        reason=row.get("reason") or row.get("note") or "")
        refusal, _ = self.dialer.check(req)
        if refusal is not None:             # not dialled: the agent is not rung for nothing
            log.info("%spreview %s %s: %s (%s): agent %s not rung", prefix, kind, row["id"], refusal.result,
                     refusal.reason, res.agent)
            acd.best_effort("releasing an agent", acd.board.release, res.agent, res.leg, missed=False,
                            why=refusal.result)
            return self._dial_result(refusal, row, res)
        # 1. the agent's phone
        queue = acd.config.queues[res.queue]
        ring = max(1, int(queue.ring_timeout))
        variables = {"origination_uuid": res.leg, "originate_timeout": ring,
                     "origination_caller_id_number": commands.safe_number(row["number"]) or "anonymous",
                     "origination_caller_id_name": commands.safe_text(f"回访 {row.get('name') or row['number']}", 40),
                     "hotline_role": ROLE, "hotline_agent": res.agent, "hotline_call": res.leg,
                     "hotline_queue": res.queue, "hotline_purpose": purpose, "hotline_job": token,
                     # what the customer hears while the agent holds (`uuid_hold <agent leg>`: the
                     # switch plays the held leg's hold_music to its partner, fixture 10)
                     "hold_music": commands.media_var(queue.music)}
        agent_gone = self._watch(res.leg)
        acd.board.ringing(res.agent, res.leg, res.leg)
        acd.agent_first[res.leg]["state"] = "ringing"
        log.info("%sringing agent %s (%s) for preview %s %s, %d s", prefix, res.agent, res.extension, kind,
                 row["id"], ring)
        reply = self._originate(commands.originate(commands.endpoint_user(res.extension, acd.domain), variables),
                                ring + RING_MARGIN, res.leg)
        if not reply.startswith("+OK"):
            from engine.acd.waiting import MISSED_CAUSES
            words = reply.split()
            cause = words[1] if reply.startswith("-ERR") and len(words) > 1 else "NO_REPLY"
            log.info("%sagent %s did not answer (%s): %s %s back to pending", prefix, res.agent, cause, kind,
                     row["id"])
            acd.best_effort("releasing an agent", acd.board.release, res.agent, res.leg,
                            missed=cause in MISSED_CAUSES, why=cause.lower())
            return {"result": "agent_missed", "cause": cause, "agent": res.agent, "counts": False,
                    "retry_at": self.db.clock(), "cdr": False}
        # 2. the agent answered: the customer
        acd.board.answered(res.agent, res.leg)
        acd.agent_first[res.leg].update(state="in_call", answered_at=time.time())
        log.info("%sagent %s answered: dialling %s", prefix, res.agent, row["number"])
        self._beep(res.leg)
        customer_gone = self._watch(customer)
        if agent_gone.is_set():             # hung up as it answered: nobody to bridge the customer to
            self._wrap_up(acd, res, 0.0)
            return {"result": "agent_hung_up", "cause": self.causes.get(res.leg), "agent": res.agent,
                    "counts": False, "retry_at": self.db.clock(), "cdr": False}
        canceller = gevent.spawn(self._cancel_dial_if, agent_gone, customer, prefix)
        try:
            outcome = self.dialer.dial(req)
        finally:
            canceller.kill(block=False)
        if not outcome.answered:
            agent_left = agent_gone.is_set()
            self._kill(res.leg, "NORMAL_CLEARING")
            self._wrap_up(acd, res, 0.0)
            self._unwatch(customer)
            out = self._dial_result(outcome, row, res)
            if agent_left and outcome.hangup_cause == "ORIGINATOR_CANCEL":
                out.update(result="agent_hung_up", counts=False, retry_at=self.db.clock(), final=False)
            return out
        # 3. both answered: bridge them
        answered_at = self.db.clock()
        try:
            reply = self._esl.api(commands.uuid_bridge(customer, res.leg), timeout=API_TIMEOUT, check=False) or ""
        except Exception as exc:          # noqa: BLE001 - as a failed bridge
            reply = f"-ERR {exc}"
        if not reply.startswith("+OK"):
            log.error("%scustomer %s answered but the bridge to agent %s failed (%s): both hung up", prefix,
                      customer, res.agent, reply.strip())
            self._kill(customer, "NORMAL_CLEARING")
            self._kill(res.leg, "NORMAL_CLEARING")
            self._wrap_up(acd, res, 0.0)
            self._unwatch(customer)
            return {"result": "abandoned", "cause": "BRIDGE_FAILED", "call_uuid": customer, "agent": res.agent,
                    "answered_at": answered_at, "cdr": True}
        bridged_at = time.time()
        log.info("%scustomer %s bridged to agent %s", prefix, customer, res.agent)
        # the in-call actions (hold, transfer, hang-up: engine/acd/incall.py) address this
        extra, tags = cdr_fields(kind, row, (row.get("attempts") or 0) + 1, "answered")
        conv = bridged.conversation(customer, row["number"], row.get("name") or "", queue, res.agent, res.leg,
                                    dict(extra, agent_first=True), tags)
        acd.agent_first[res.leg]["conversation"] = conv
        self._gate("agent_taken", res.agent)
        try:
            gevent.wait([agent_gone, customer_gone], count=1, timeout=CALL_LIMIT)
            conv.agent_finished = True          # no in-call action from here on
            for leg, gone in ((res.leg, agent_gone), (customer, customer_gone)):
                if not gone.is_set() and not (leg == customer and conv.handed_over):
                    self._kill(leg, "NORMAL_CLEARING")
            gevent.wait([agent_gone] if conv.handed_over else [agent_gone, customer_gone], timeout=HANGUP_GRACE)
        finally:
            self._gate("agent_released", res.agent)
        talk = round(time.time() - bridged_at, 3)
        if conv.held:
            acd.incall.end_hold(conv, "call ended")
        self._wrap_up(acd, res, talk)
        cause = self.causes.get(customer)
        self._unwatch(customer)
        out = {"result": "answered", "cause": cause, "call_uuid": customer, "answered_at": answered_at,
               "agent": res.agent, "handle_seconds": talk, "cdr": True,
               "cdr_extra": dict(bridged.hold_figures(conv), agent_first=True)}
        if conv.handed_over:
            out.update(self._handed_over(conv, customer, prefix))
        log.info("%spreview call ended after %.1f s (%s)", prefix, talk,
                 f"transferred to {conv.handed_over.kind} {conv.handed_over.target}" if conv.handed_over
                 else cause or "-")
        return out

    def _handed_over(self, conv, customer, prefix):
        """The agent blind-transferred the customer (engine/acd/bridged.py): the customer's call
        goes on on this engine's socket, whose CDR (with this attempt's fields) is the call's; the
        attempt's own CDR only if the leg never arrived there."""
        entry = conv.handed_over
        if entry.arrived.wait(bridged.ARRIVAL_SECONDS):
            return {"cdr": False, "cause": None}
        bridged.forget(customer)
        log.error("%scustomer %s was transferred but never reached the engine's socket: the attempt's "
                  "CDR is written", prefix, customer)
        return {}

    def _dial_result(self, outcome, row, res):
        return {"result": outcome.result, "cause": outcome.hangup_cause, "call_uuid": outcome.uuid,
                "counts": outcome.counts_attempt, "retry_at": self.next_due(outcome, row),
                "final": not outcome.retry, "agent": res.agent}

    # --- agent state ------------------------------------------------------------------------------
    def _wrap_up(self, acd, res, talk):
        """After an answered agent leg: wrap-up by the queue's (or agent's) time, as after any call."""
        acd.best_effort("ending a preview call", acd.board.call_ended, res.agent, res.leg, res.queue, talk)

    def _free_agent(self, acd, res):
        state = acd.store.agent(res.agent)
        if state.get("call") != res.leg:
            return
        if state.get("state") in ("reserved", "ringing"):
            acd.board.release(res.agent, res.leg, missed=False, why="error")
        elif state.get("state") == "in_call":
            acd.board.call_ended(res.agent, res.leg, res.queue, 0.0)

    def _gate(self, what, agent):
        note_agent(getattr(self.dialer, "gate", None), what, agent)

    # --- legs -------------------------------------------------------------------------------------
    def _originate(self, cmd, timeout, leg):
        try:
            return (self._esl.bgapi(cmd).get(timeout=timeout) or "").strip()
        except Exception as exc:            # gevent.Timeout, connection lost, -ERR on bgapi itself
            log.error("[%s] no answer from the switch to the agent's originate (%s): killing the leg", leg,
                      type(exc).__name__ if not str(exc) else exc)
            self._kill(leg, "ORIGINATOR_CANCEL")
            return ""

    def _beep(self, leg):
        """A short tone to the agent: the customer is being dialled. `uuid_broadcast` on the parked
        leg plays it and the leg stays parked (fixture 01: PLAYBACK_START/STOP on a parked leg)."""
        try:
            self._esl.api(commands.uuid_broadcast(leg, ANSWER_TONE, "aleg"), timeout=API_TIMEOUT, check=False)
        except Exception as exc:      # noqa: BLE001 - only a courtesy: the call goes on
            log.warning("[%s] no tone for the agent: %s", leg, exc)

    def _cancel_dial_if(self, agent_gone, customer, prefix):
        agent_gone.wait()
        log.info("%sthe agent hung up while the customer rang: cancelling the dial", prefix)
        while True:             # until the dial returns (this greenlet is killed then)
            self._kill(customer, "ORIGINATOR_CANCEL")
            gevent.sleep(0.5)

    def _kill(self, leg, cause):
        try:
            self._esl.api(commands.uuid_kill(leg, cause), timeout=API_TIMEOUT, check=False)
        except Exception as exc:      # noqa: BLE001 - the switch's own timers end it
            log.warning("[%s] not killed: %s", leg, exc)

    def _watch(self, leg):
        event = self.ended[leg] = gevent.event.Event()
        return event

    def _unwatch(self, leg):
        self.ended.pop(leg, None)
        self.causes.pop(leg, None)

    def _on_hangup(self, event):
        gone = self.ended.get(event.uuid)
        if gone is not None:
            self.causes[event.uuid] = event.get("Hangup-Cause")
            gone.set()
