"""Callbacks and campaigns inside one engine: the CDR-outbox feed of callback jobs, the claim
keeper, the scheduler placing calls through the dialler, the leg handlers, the deadline checks.

    jobs = OutboundJobs(engine).start()     # Engine.start(), after the ESL and the ACD
    jobs.stop()                             # Engine.shutdown()

Several engines may run this on one database and one Redis: contacts and jobs are claimed
(engine/outbound/claims.py), so each is dialled by one engine at a time; a restarted engine is a
new owner and its predecessor's claims come back to pending when their locks expire.
"""
import logging

import gevent

from engine.infra.periodic import Periodic
from engine.outbound.calls import CallPlacer
from engine.outbound.claims import ClaimKeeper, Claims
from engine.outbound.db import OutboundDb
from engine.outbound.deadlines import check_deadlines
from engine.outbound.feed import JobFeed
from engine.outbound.runner import Runner

log = logging.getLogger("hotline.outbound")

DEADLINE_INTERVAL = 60.0


def dials_per_second(settings):
    """Our share of the switch's new sessions a second for dials: outbound's trunk share of what
    one second admits (the rest is the inbound callers'), at least one. The switch admits
    sessions-per-second - 1 a second (switch_core_session_request_uuid decrements runtime.sps
    before it checks it: engine/sim/throttle.py)."""
    share = settings.outbound_calls.max_trunk_share
    return max(1, int((settings.switch.sessions_per_second - 1) * share))


class OutboundJobs:
    def __init__(self, engine, redis=None, prefix=None):
        from engine.outbound import service
        self.engine = engine
        settings = engine.settings
        self.cfg = settings.outbound_calls.jobs
        self.db = OutboundDb(settings.database.url)
        acd = getattr(engine, "acd", None)
        if redis is None and acd is not None:
            redis, prefix = acd.store.r, acd.store.p
        if redis is None:
            from engine.infra.redisconn import redis_client
            r = settings.redis
            redis = redis_client(r.url, r.sentinels, r.master_name, r.sentinel_password,
                                 socket_connect_timeout=2, socket_timeout=5)
        prefix = prefix if prefix is not None else settings.redis.prefix
        from engine.infra.netutil import instance_id
        self.owner = acd.engine_id if acd is not None else instance_id(settings)
        self.claims = Claims(self.db, redis, prefix, self.owner, ttl=self.cfg.claim_ttl_seconds)
        self.keeper = ClaimKeeper(self.claims)
        self.feed = JobFeed(self.db, self.cfg.callback_deadline_hours, mode=self.cfg.callback_mode)
        runtime = getattr(getattr(engine, "call_handler", None), "runtime", None)
        self.placer = CallPlacer(engine, service.for_engine(engine).dialer, self.db, self.cfg, runtime=runtime)
        self.runner = Runner(self.db, self.claims, self.placer.place_call, agents=self._agents,
                             interval=self.cfg.tick_seconds, robot_channels=self.cfg.robot_channels,
                             cdr_writer=engine.store.write, dials_per_second=dials_per_second(settings))
        self.deadlines = Periodic(lambda: check_deadlines(self.db, self.cfg.callback_remind_minutes),
                                  DEADLINE_INTERVAL, "callback deadlines", log)
        self.placer.on_connected = self.runner.connected     # the pacer counts dials still connecting

    def start(self):
        self.placer.attach()
        gevent.spawn(self._open_and_run)
        return self

    def _open_and_run(self):
        delay = 1.0
        while True:                      # the database away at start: keep trying, calls go on
            try:
                self.db.open()
                break
            except Exception as exc:     # noqa: BLE001
                log.error("callbacks and campaigns waiting for the database: %s", exc)
                gevent.sleep(delay)
                delay = min(delay * 2, 30.0)
        self.keeper.start()
        self.feed.start()
        self.runner.start()
        self.deadlines.start()
        log.info("callbacks and campaigns running as %s", self.owner)

    def stop(self, wait=0.0):
        self.runner.stop(wait=wait)
        self.feed.stop()
        self.keeper.stop()
        self.deadlines.stop()
        self.placer.detach()
        self.db.close()

    def _agents(self, campaign):
        """(available, busy) agents qualified for the campaign's queue, from the ACD's Redis."""
        acd = getattr(self.engine, "acd", None)
        if acd is None:
            return 0, 0
        queue = acd.config.queues.get(campaign.get("queue") or "")
        if queue is None:
            return 0, 0
        ids = [a.id for a in acd.config.agents.values() if acd.config.qualified(a, queue)]
        states = acd.store.agents(ids)
        free = sum(1 for d in states.values() if d.get("state") == "available")
        busy = sum(1 for d in states.values() if d.get("state") in ("reserved", "ringing", "in_call", "wrap_up"))
        return free, busy
