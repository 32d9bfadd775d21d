"""Redis outages as the ACD lives through them: one line when Redis goes away, one when it is back,
the failures in between counted (not one traceback per call, which hides the line that matters).

The ACD keeps serving what it holds in memory meanwhile: a caller connected to an agent is served
to the end, and what could not be written (agent states, queue entries) is reconciled afterwards
by the watchdog and, if Redis came back empty, by re-asserting this engine's calls (service.py).
"""
import logging
import time

import redis

log = logging.getLogger("hotline.acd")

ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError,
          redis.exceptions.ReadOnlyError)


class Outage:
    def __init__(self, reassert=None):
        self.since = None            # time.time() of the first failure, None while Redis answers
        self.skipped = 0             # operations that failed during this outage
        self.outages = 0             # outages seen since start (tests, status)
        # Writes what this engine knows (its agents on calls, its waiting callers) into Redis
        # again (Acd.after_outage). Run before anything else once Redis answers after an outage:
        # a Redis restarted from a snapshot taken before the outage has the same epoch but older
        # states (an agent who answered meanwhile is "available" there); routing on that
        # double-booked an agent in every scripts/chaos redis-restart run.
        self.reassert = reassert

    @property
    def down(self):
        return self.since is not None

    def failed(self, exc, doing):
        if self.since is None:
            self.since = time.time()
            self.skipped = 0
            self.outages += 1
            log.error("Redis unreachable (%s) while %s: the ACD goes on with what it holds in memory; "
                      "skipped updates are counted and reconciled when Redis is back", exc, doing)
        self.skipped += 1

    def recovered(self):
        """True when Redis answers and nothing from an outage is left to reconcile: after an
        outage, this engine's state is written again first (raises a Redis error if it is still
        down, and the outage goes on)."""
        if self.since is None:
            return True
        if self.reassert is not None:
            self.reassert()
        self.ok()
        return True

    def ok(self):
        if self.since is not None:
            log.warning("Redis reachable again after %.1f s; %d ACD operation(s) failed meanwhile and "
                        "are reconciled now", time.time() - self.since, self.skipped)
            self.since = None
