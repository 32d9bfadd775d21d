"""Inbound comes first. Outbound calls may hold at most `max_trunk_share` of the trunk's channels
and `max_agent_share` of the logged-in agents, and no new dial starts while an inbound caller has
waited longer than `pause_inbound_wait` seconds in any queue.

Everything is read from and kept in the ACD's Redis (engine/acd/store.py), so several engines
share one budget: queue entries (`<prefix>q:<queue>` sorted sets and their `qe:` hashes with
`joined`), agents' hashes, and two sets of our own: the outbound legs alive
(`<prefix>ob:legs`, uuid -> expiry) and the agents held by outbound calls (`<prefix>ob:agents`).
"""
import logging
import math
import time

log = logging.getLogger("hotline.outbound.gate")

LEG_TTL = 4 * 3600          # a leg whose hangup we never saw stops counting after this


class Gate:
    def __init__(self, store, cfg, clock=time.time):
        self.store = store          # engine.acd.store.AcdStore (its .r and .p)
        self.cfg = cfg              # OutboundCallSettings
        self.clock = clock

    @property
    def k_legs(self):
        return f"{self.store.p}ob:legs"

    @property
    def k_agents(self):
        return f"{self.store.p}ob:agents"

    # --- what outbound holds ------------------------------------------------------------------
    def leg_started(self, uuid):
        self.store.r.zadd(self.k_legs, {uuid: self.clock() + LEG_TTL})

    def leg_ended(self, uuid):
        self.store.r.zrem(self.k_legs, uuid)

    def legs(self):
        r = self.store.r
        r.zremrangebyscore(self.k_legs, "-inf", self.clock())
        return r.zcard(self.k_legs)

    def agent_taken(self, agent_id):
        self.store.r.sadd(self.k_agents, agent_id)

    def agent_released(self, agent_id):
        self.store.r.srem(self.k_agents, agent_id)

    # --- the figures --------------------------------------------------------------------------
    def longest_inbound_wait(self):
        """Seconds the longest-waiting inbound caller has waited, over every queue."""
        store = self.store
        oldest = None
        start = len(store.k_queue(""))
        for key in store.r.scan_iter(store.k_queue("*"), count=500):
            joined = store.oldest_joined(key[start:])
            if joined is not None and (oldest is None or joined < oldest):
                oldest = joined
        return max(0.0, self.clock() - oldest) if oldest is not None else 0.0

    def staffed_agents(self):
        """Agents logged in (any state but logged_out), from their hashes in Redis."""
        store = self.store
        start = len(store.k_agent(""))
        ids = [k[start:] for k in store.r.scan_iter(store.k_agent("*"), count=500) if not k.endswith(":time")]
        states = store.agents(ids) if ids else {}
        return sum(1 for d in states.values() if d.get("state", "logged_out") != "logged_out")

    def check(self, needs_agent=False):
        """None when a new dial may start, else why not (a sentence)."""
        cfg = self.cfg
        wait = self.longest_inbound_wait()
        if wait > cfg.pause_inbound_wait:
            return (f"inbound first: a caller has waited {wait:.0f} s "
                    f"(> pause_inbound_wait {cfg.pause_inbound_wait:.0f} s)")
        limit = math.floor(cfg.trunk_channels * cfg.max_trunk_share)
        held = self.legs()
        if held >= limit:
            return f"inbound first: outbound holds {held} of {limit} trunk channels allowed"
        if needs_agent:
            staffed = self.staffed_agents()
            allowed = math.floor(staffed * cfg.max_agent_share)
            taken = self.store.r.scard(self.k_agents)
            if taken >= allowed:
                return f"inbound first: outbound holds {taken} of {allowed} agents allowed ({staffed} logged in)"
        return None
