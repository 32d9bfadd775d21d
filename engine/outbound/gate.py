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

LEG_TTL = 4 * 3600          # a leg (or an agent) whose end we never saw stops counting after this

# Reserve one place in a sorted set of live members (score = expiry) if fewer than the limit are
# there, in one step: two engines dialling at once cannot both take the last channel.
_RESERVE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
return 1
"""


class Gate:
    def __init__(self, store, cfg, clock=time.time, queues=None, agents=None):
        self.store = store          # engine.acd.store.AcdStore (its .r and .p)
        self.cfg = cfg              # OutboundCallSettings
        self.clock = clock
        # the ACD's queue names and agent ids (callables, they change on reload); None: found by
        # SCAN over the prefix (another engine's queues included, at the cost of a keyspace walk)
        self.queues, self.agent_ids = queues, agents
        self._reserve = store.r.register_script(_RESERVE)

    @property
    def k_legs(self):
        return f"{self.store.p}ob:legs"

    @property
    def k_agents(self):
        return f"{self.store.p}ob:agents"

    # --- what outbound holds ------------------------------------------------------------------
    @property
    def trunk_limit(self):
        return math.floor(self.cfg.trunk_channels * self.cfg.max_trunk_share)

    def reserve_leg(self, uuid):
        """Take one of outbound's trunk channels for this leg, if one is left (atomic)."""
        now = self.clock()
        return bool(self._reserve(keys=[self.k_legs], args=[now, self.trunk_limit, now + LEG_TTL, uuid]))

    def leg_started(self, uuid):
        self.store.r.zadd(self.k_legs, {uuid: self.clock() + LEG_TTL})

    def leg_ended(self, uuid):
        self.store.r.zrem(self.k_legs, uuid)

    def legs(self):
        r = self.store.r
        r.zremrangebyscore(self.k_legs, "-inf", self.clock())
        return r.zcard(self.k_legs)

    def agent_taken(self, agent_id):
        """An outbound call holds this agent (refresh it for calls over LEG_TTL)."""
        self.store.r.zadd(self.k_agents, {agent_id: self.clock() + LEG_TTL})

    def agent_released(self, agent_id):
        self.store.r.zrem(self.k_agents, agent_id)

    def agents_taken(self):
        r = self.store.r
        r.zremrangebyscore(self.k_agents, "-inf", self.clock())
        return r.zcard(self.k_agents)

    # --- the figures --------------------------------------------------------------------------
    def longest_inbound_wait(self):
        """Seconds the longest-waiting inbound caller has waited, over every queue."""
        store = self.store
        oldest = None
        start = len(store.k_queue(""))
        names = self.queues() if self.queues is not None else \
            [key[start:] for key in store.r.scan_iter(store.k_queue("*"), count=500)]
        for name in names:
            joined = store.oldest_joined(name)
            if joined is not None and (oldest is None or joined < oldest):
                oldest = joined
        return max(0.0, self.clock() - oldest) if oldest is not None else 0.0

    def staffed_agents(self):
        """Agents logged in (any state but logged_out), from their hashes in Redis."""
        store = self.store
        start = len(store.k_agent(""))
        ids = list(self.agent_ids()) if self.agent_ids is not None else \
            [k[start:] for k in store.r.scan_iter(store.k_agent("*"), count=500) if not k.endswith(":time")]
        states = store.agents(ids) if ids else {}
        return sum(1 for d in states.values() if d.get("state", "logged_out") != "logged_out")

    def check(self, needs_agent=False):
        """None when a new dial may start, else why not (a sentence)."""
        cfg = self.cfg
        wait = self.longest_inbound_wait()
        if wait > cfg.pause_inbound_wait:
            return (f"inbound first: a caller has waited {wait:.0f} s "
                    f"(> pause_inbound_wait {cfg.pause_inbound_wait:.0f} s)")
        limit = self.trunk_limit
        held = self.legs()
        if held >= limit:
            return f"inbound first: outbound holds {held} of {limit} trunk channels allowed"
        if needs_agent:
            staffed = self.staffed_agents()
            allowed = math.floor(staffed * cfg.max_agent_share)
            taken = self.agents_taken()
            if taken >= allowed:
                return f"inbound first: outbound holds {taken} of {allowed} agents allowed ({staffed} logged in)"
        return None


def note_agent(gate, what, agent):
    """Tell the gate an agent was taken by or released from an outbound call (`what`:
    "agent_taken" / "agent_released"); best effort, `gate` may be None."""
    if gate is None:
        return
    try:
        getattr(gate, what)(agent)
    except Exception as exc:     # noqa: BLE001 - Redis away: the gate's own TTL cleans up
        log.warning("outbound gate %s(%s) failed: %s", what, agent, exc)
