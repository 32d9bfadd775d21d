"""The campaign and auto-callback scheduler of one engine: every `interval` it asks each running
campaign's pacer how many customers to dial, claims that many due contacts (engine/outbound/
claims.py: never one contact on two engines), and runs each attempt in its own greenlet.

    runner = Runner(db, claims, place_call, agents=acd_view, interval=1.0).start()

`place_call(kind, row, campaign, attempt_id) -> dict` makes the call and returns how it went:
{"result", "cause"?, "call_uuid"?, "answered_at"?, "agent"?, "answers"?, "comment"?,
"disposition"?}; engine/outbound/calls.py builds it on the dialler (engine/outbound/dialer.py).
`agents(campaign) -> (free, busy)` counts the campaign queue's agents (robot campaigns count
free robot channels instead). The pacer is told the dials still *connecting* (ringing, or
answered and not yet bridged to an agent): an attempt stays in flight while its customer talks,
and counting those as dials made progressive dial only once more agents were free than calls were
up (on the simulator, 50 agents sat mostly idle). `place_call` says when its customer reached an
agent (or needs none any more) through `runner.connected(attempt_id)`. Campaigns share agents in
priority order (1 first): what a higher-priority campaign dials for in a tick is not offered to
the next one.
"""
import collections
import logging
import time

import gevent

from engine.infra.periodic import Looping, Periodic
from engine.outbound import attempts
from engine.outbound.campaigns import finish_if_done
from engine.outbound.pacer import Pacer
from engine.outbound.tables import as_dict

log = logging.getLogger("hotline.outbound")


class Runner(Looping):
    def __init__(self, db, claims, place_call, agents=None, interval=1.0, robot_channels=30,
                 cdr_writer=None, auto_jobs=True, dials_per_second=None, monotonic=time.monotonic):
        self.db = db
        self.claims = claims
        self.place_call = place_call
        self.agents = agents or (lambda campaign: (0, 0))
        self.robot_channels = robot_channels
        self.cdr_writer = cdr_writer
        self.auto_jobs = auto_jobs
        self.pacers = {}            # campaign id -> Pacer (this engine's measurements)
        self.in_flight = {}         # campaign id (None: callback jobs) -> attempts running here
        self.connecting = {}        # campaign id -> of those, dials not yet bridged to an agent
        self._slots = {}            # attempt id -> its connecting slot [campaign id, still counted]
        self.robot_campaigns = set()  # ids of robot campaigns seen (their calls share robot_channels)
        self.greenlets = set()
        self.loop = Periodic(self.tick, interval, "outbound scheduler", log)
        # The switch refuses new sessions past its sessions-per-second (switch_core_session.c,
        # switch_core_session_request_uuid: "Throttle Error!", no channel, the originate fails), and
        # inbound callers need that budget too: at most this many dials start in any second (None:
        # no bound). A robot campaign with 200 free channels would otherwise ask for 200 in a tick.
        self.dials_per_second = dials_per_second
        self.monotonic = monotonic
        self._dialled_at = collections.deque()   # monotonic start of each dial in the last second

    def stop_dialling(self):
        """No new dials (an engine shutting down); attempts in progress go on."""
        self.loop.stop()

    def stop(self, wait=0.0):
        """No new dials; calls in progress finish within `wait` seconds (their results are written),
        the rest are killed (their contacts are reaped back to pending once the locks expire)."""
        self.stop_dialling()
        if wait and self.greenlets:
            gevent.joinall(list(self.greenlets), timeout=wait)
        gevent.killall(list(self.greenlets), block=False)

    def pacer(self, campaign):
        p = self.pacers.get(campaign["id"])
        if p is None or p.mode != campaign["mode"]:
            p = self.pacers[campaign["id"]] = Pacer(campaign["mode"], campaign["abandon_target"])
        return p

    def tick(self):
        """One round: returns the number of dials started."""
        C, K = self.db.m.Campaign, self.db.m.Contact
        now = self.db.clock()
        running = self.db.run(lambda: [as_dict(c) for c in C.select().where(C.state == "running")
                                       .order_by(C.priority, C.id)])
        started = 0
        taken = {}                  # queue -> agents promised this tick
        for campaign in running:
            if campaign["mode"] == "preview":
                continue            # agents pick their contacts (take_contact)
            flying = self.in_flight.get(campaign["id"], 0)
            if campaign["mode"] == "robot":         # no agents: as many calls as robot channels
                self.robot_campaigns.add(campaign["id"])
                n = max(0, self.robot_channels - self._robot_calls())
            else:
                free, busy = self.agents(campaign)
                free = max(0, free - taken.get(campaign["queue"], 0))
                n = self.pacer(campaign).dials_to_make(free, busy, self.connecting.get(campaign["id"], 0),
                                                        now=self.monotonic())
            n = min(n, self._dial_budget())
            if n <= 0:
                continue
            ids = self.claims.claim("contact", where=(K.campaign_id == campaign["id"]) & (K.next_due_at <= now),
                                    order=(K.next_due_at, K.id), limit=n)
            taken[campaign["queue"]] = taken.get(campaign["queue"], 0) + len(ids)
            for contact_id in ids:
                self._spawn("contact", contact_id, campaign)
                started += 1
            if not ids and not flying:
                finish_if_done(self.db, campaign["id"])
        if self.auto_jobs:
            started += self._auto_jobs(now)
        return started

    def _dial_budget(self):
        """Dials that may start now without going over dials_per_second in the last second."""
        if self.dials_per_second is None:
            return 1 << 30
        now = self.monotonic()
        while self._dialled_at and now - self._dialled_at[0] >= 1.0:
            self._dialled_at.popleft()
        return max(0, self.dials_per_second - len(self._dialled_at))

    def _robot_calls(self):
        return sum(self.in_flight.get(cid, 0) for cid in self.robot_campaigns)

    def _auto_jobs(self, now):
        """Callback jobs in `auto` mode: the customer first, then the queue with priority."""
        J = self.db.m.CallbackJob
        limit = min(5, self._dial_budget())
        if limit <= 0:
            return 0
        ids = self.claims.claim("job", where=(J.mode == "auto") & (J.due_at <= now), order=(J.due_at, J.id),
                                limit=limit)
        for job_id in ids:
            self._spawn("job", job_id, None)
        return len(ids)

    def dial_claimed(self, kind, row_id, campaign=None, agent=None, reservation=None):
        """Dial a row this engine has claimed (preview: the agent accepted it; `reservation`: the
        agent reserved in the ACD, rung first). Returns the greenlet."""
        return self._spawn(kind, row_id, campaign, agent, reservation)

    def _spawn(self, kind, row_id, campaign, agent=None, reservation=None):
        key = campaign["id"] if campaign else None
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        self._dialled_at.append(self.monotonic())
        slot = [key, True]
        self.connecting[key] = self.connecting.get(key, 0) + 1
        g = gevent.spawn(self._attempt, kind, row_id, campaign, agent, reservation, slot)
        self.greenlets.add(g)

        def done(_):
            self.greenlets.discard(g)
            self.in_flight[key] -= 1
            self._release(slot)
        g.link(done)
        return g

    def connected(self, attempt_id):
        """The attempt's customer is with an agent (or needs none any more: abandoned, gone): its
        dial no longer counts as connecting for the pacer. Idempotent."""
        slot = self._slots.pop(attempt_id, None)
        if slot is not None:
            self._release(slot)

    def _release(self, slot):
        if slot[1]:
            slot[1] = False
            self.connecting[slot[0]] -= 1

    def _attempt(self, kind, row_id, campaign, agent, reservation=None, slot=None):
        M = self.db.m.Contact if kind == "contact" else self.db.m.CallbackJob
        row = as_dict(self.db.run(lambda: M.get_by_id(row_id)))
        if campaign:
            row["max_attempts"] = campaign["max_attempts"]
        attempt_id = attempts.begin(self.db, kind, row, agent=agent, engine=self.claims.owner)
        if slot is not None:
            self._slots[attempt_id] = slot
        try:
            self._call(kind, row, campaign, agent, reservation, attempt_id)
        finally:
            self._slots.pop(attempt_id, None)

    def _call(self, kind, row, campaign, agent, reservation, attempt_id):
        started = self.db.clock()
        try:
            more = {"reservation": reservation} if reservation is not None else {}
            out = self.place_call(kind, row, campaign, attempt_id, **more) or {}
        except Exception as exc:          # noqa: BLE001 - a bug must not leave the row claimed
            log.exception("outbound %s %s: the call failed: %s", kind, row["id"], exc)
            out = {"result": "failed", "cause": type(exc).__name__}
        result = out.get("result") or "failed"
        if campaign and campaign["mode"] in ("progressive", "predictive"):
            pacer = self.pacer(campaign)
            pacer.dial_ended(out.get("answered_at") is not None or result in attempts.REACHED + ("abandoned",),
                             out.get("ring_seconds"))
            if result in attempts.REACHED or result == "abandoned":
                pacer.connected(result == "abandoned")
            if out.get("handle_seconds"):
                pacer.handled(out["handle_seconds"])
        attempts.finish(self.db, self.claims, kind, row, attempt_id, result, cause=out.get("cause"),
                        call_uuid=out.get("call_uuid"), answered_at=out.get("answered_at"),
                        agent=out.get("agent") or agent, answers=out.get("answers"), comment=out.get("comment"),
                        disposition=out.get("disposition"), max_attempts=row.get("max_attempts") or 3,
                        # an answered leg served by the engine has the engine's CDR; `cdr` says otherwise
                        cdr_writer=self.cdr_writer if out.get("cdr", not out.get("answered_at")) else None,
                        started_at=started,
                        counts=out.get("counts", True), retry_at=out.get("retry_at"), final=out.get("final", False),
                        cdr_extra=out.get("cdr_extra"))
