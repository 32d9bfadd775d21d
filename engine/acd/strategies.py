"""How a queue chooses among the agents free to take its next caller: one small object per strategy.

`order(candidates, queue, context)` gets the qualified, available agents as `Candidate`s and returns
them best first; the router reserves down the list until one reservation succeeds. A repeat caller's
last agent is moved to the front by the router, whatever the strategy.
"""
import dataclasses
import random as _random


@dataclasses.dataclass
class Candidate:
    id: str
    extension: str
    idle_since: float          # epoch the agent became available
    calls: float = 0.0         # calls answered today
    talk: float = 0.0          # seconds talked today
    level: int = 0             # sum of the agent's levels in the queue's skills
    order: int = 0             # position in agents.yaml (round-robin ring)


class LongestIdle:
    name = "longest-idle"

    def order(self, candidates, queue, context):
        return sorted(candidates, key=lambda c: (c.idle_since, c.order))


class RoundRobin:
    """The ring of agents in agents.yaml order, starting after the agent offered last in this queue."""
    name = "round-robin"

    def order(self, candidates, queue, context):
        ring = sorted(candidates, key=lambda c: c.order)
        last = context.get("last_order")
        if last is None:
            return ring
        after = [c for c in ring if c.order > last]
        return after + [c for c in ring if c.order <= last]


class FewestCalls:
    name = "fewest-calls"

    def order(self, candidates, queue, context):
        return sorted(candidates, key=lambda c: (c.calls, c.idle_since, c.order))


class LeastTalkTime:
    name = "least-talk-time"

    def order(self, candidates, queue, context):
        return sorted(candidates, key=lambda c: (c.talk, c.idle_since, c.order))


class SkillLevel:
    """Highest level in the queue's skills first, then longest idle."""
    name = "skill-level"

    def order(self, candidates, queue, context):
        return sorted(candidates, key=lambda c: (-c.level, c.idle_since, c.order))


class RingAll(LongestIdle):
    """Every free agent rings at once; the router reserves them all (see router.RING_ALL_MAX)."""
    name = "ring-all"
    rings_all = True


class Random:
    name = "random"

    def __init__(self, rng=None):
        self.rng = rng or _random.Random()

    def order(self, candidates, queue, context):
        shuffled = list(candidates)
        self.rng.shuffle(shuffled)
        return shuffled


STRATEGIES = {s.name: s for s in (LongestIdle(), RoundRobin(), FewestCalls(), LeastTalkTime(),
                                   SkillLevel(), RingAll(), Random())}
