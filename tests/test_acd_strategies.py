"""Each queue strategy picks the expected agent on crafted agent sets (issue 5 §2, §7).

Two levels: the strategy objects alone (ordering of `Candidate`s, ties), and the router over a real
Redis, which adds what the strategies do not see: only qualified, available agents are candidates,
a repeat caller's last agent goes first, ring-all reserves several agents at once.
"""
import collections
import random

import pytest

from engine.acd.agents import AgentBoard
from engine.acd.config import load_acd
from engine.acd.router import RING_ALL_MAX, Router, Waiter
from engine.acd.store import AcdStore
from engine.acd.strategies import (STRATEGIES, Candidate, FewestCalls, LeastTalkTime, LongestIdle,
                                   Random, RingAll, RoundRobin, SkillLevel)
from tests.acdfix import agent, queue, write_yaml


def cand(id_, order, idle_since=100.0, calls=0, talk=0.0, level=0):
    return Candidate(id=id_, extension=id_, idle_since=idle_since, calls=calls, talk=talk, level=level,
                     order=order)


def ids(candidates):
    return [c.id for c in candidates]


def test_every_configured_strategy_name_has_an_object():
    from engine.acd.config import STRATEGIES as NAMES
    assert set(NAMES) == set(STRATEGIES)
    assert all(STRATEGIES[n].name == n for n in NAMES)


# --- the strategy objects ------------------------------------------------------------------------

def test_longest_idle_first_and_ties_by_agents_yaml_order():
    agents = [cand("a", 0, idle_since=300), cand("b", 1, idle_since=100), cand("c", 2, idle_since=200),
              cand("d", 3, idle_since=100)]
    assert ids(LongestIdle().order(agents, None, {})) == ["b", "d", "c", "a"]


def test_round_robin_continues_after_the_agent_offered_last_and_wraps():
    agents = [cand("c", 2), cand("a", 0), cand("d", 3), cand("b", 1)]
    rr = RoundRobin()
    assert ids(rr.order(agents, None, {})) == ["a", "b", "c", "d"]              # nobody offered yet
    assert ids(rr.order(agents, None, {"last_order": 1})) == ["c", "d", "a", "b"]
    assert ids(rr.order(agents, None, {"last_order": 3})) == ["a", "b", "c", "d"]  # wraps around
    # the agent offered last is busy now (not a candidate): the ring still goes on after it
    free = [a for a in agents if a.id != "b"]
    assert ids(rr.order(free, None, {"last_order": 1})) == ["c", "d", "a"]


def test_fewest_calls_then_longest_idle_then_order():
    agents = [cand("a", 0, calls=5, idle_since=10), cand("b", 1, calls=2, idle_since=50),
              cand("c", 2, calls=2, idle_since=40), cand("d", 3, calls=9, idle_since=1),
              cand("e", 4, calls=2, idle_since=40)]
    assert ids(FewestCalls().order(agents, None, {})) == ["c", "e", "b", "a", "d"]


def test_least_talk_time_then_longest_idle():
    agents = [cand("a", 0, talk=600, idle_since=1), cand("b", 1, talk=120.5, idle_since=90),
              cand("c", 2, talk=120.5, idle_since=80), cand("d", 3, talk=0, idle_since=500)]
    assert ids(LeastTalkTime().order(agents, None, {})) == ["d", "c", "b", "a"]


def test_skill_level_highest_level_first_then_longest_idle():
    agents = [cand("a", 0, level=5, idle_since=10), cand("b", 1, level=9, idle_since=90),
              cand("c", 2, level=9, idle_since=30), cand("d", 3, level=7, idle_since=5)]
    assert ids(SkillLevel().order(agents, None, {})) == ["c", "b", "d", "a"]


def test_ring_all_orders_like_longest_idle_and_rings_all():
    agents = [cand("a", 0, idle_since=30), cand("b", 1, idle_since=10), cand("c", 2, idle_since=20)]
    assert RingAll().rings_all is True
    assert not getattr(LongestIdle(), "rings_all", False)
    assert ids(RingAll().order(agents, None, {})) == ["b", "c", "a"]


def test_random_returns_a_permutation_and_does_not_touch_its_input():
    agents = [cand(str(i), i) for i in range(8)]
    before = ids(agents)
    out = STRATEGIES["random"].order(agents, None, {})
    assert sorted(ids(out)) == sorted(before) and ids(agents) == before


def test_random_first_choice_is_uniform():
    """Seeded, so the outcome is fixed; the bound is the chi-square 99.9 % point for 4 degrees of
    freedom (18.47): a fair shuffle passes it, a biased one (e.g. always the first) does not."""
    agents = [cand(c, i) for i, c in enumerate("abcde")]
    trials = 10000
    counts = collections.Counter()
    strategy = Random(rng=random.Random(20261123))
    for _ in range(trials):
        counts[strategy.order(agents, None, {})[0].id] += 1
    expected = trials / len(agents)
    chi2 = sum((counts[c] - expected) ** 2 / expected for c in "abcde")
    assert set(counts) == set("abcde")
    assert chi2 < 18.47, (chi2, counts)
    # the same test catches a strategy that is not random
    biased = collections.Counter(LongestIdle().order(agents, None, {})[0].id for _ in range(trials))
    assert sum((biased[c] - expected) ** 2 / expected for c in "abcde") > 18.47


# --- through the router, over a real Redis ---------------------------------------------------------

class FakeCall:
    """What the router touches of a caller: the uuid and interrupt() (off the hold music)."""

    def __init__(self, uuid):
        self.uuid = uuid
        self.interrupted = 0

    def interrupt(self):
        self.interrupted += 1


class Harness:
    """An AcdStore + AgentBoard + Router of one engine, routing by hand (route_once)."""

    def __init__(self, tmp_path, redis_url, prefix, agents, queues, engine_id="e1"):
        write_yaml(tmp_path / "agents.yaml", {"agents": agents})
        write_yaml(tmp_path / "queues.yaml", {"queues": queues})
        self.config = load_acd(tmp_path / "agents.yaml", tmp_path / "queues.yaml")
        self.store = AcdStore(redis_url, prefix=prefix)
        self.board = AgentBoard(self.store, self.config, engine_id=engine_id)
        self.waiters = {}
        self.router = Router(self.store, self.board, lambda: self.config, self.waiters)
        self.engine_id = engine_id
        self.n = 0

    def login(self, *agent_ids, **fields):
        for a in agent_ids:
            self.board.login(a)
            if fields:
                self.store.set_fields(a, **fields)

    def caller(self, queue_name, number=None, preferred=None, priority=0, joined=None):
        self.n += 1
        uuid = f"call-{self.n}"
        score = self.store.join(queue_name, uuid, self.engine_id, number or f"1380000{self.n:04d}", priority,
                                preferred or "", joined)
        waiter = self.waiters[uuid] = Waiter(FakeCall(uuid), queue_name, score, preferred, joined)
        return waiter

    def route(self, queue_name, **caller_kw):
        """One caller joins, one routing pass: the agents offered to them."""
        waiter = self.caller(queue_name, **caller_kw)
        self.router.route_once()
        return waiter.offer

    def finish(self, waiter):
        """The offer is over without a call; the agents are free again with their `since` kept."""
        for a in waiter.offer or ():
            since = self.store.agent(a)["since"]
            self.board.release(a, waiter.call.uuid)
            self.store.set_fields(a, since=since)
        self.waiters.pop(waiter.call.uuid, None)


@pytest.fixture
def harness(tmp_path, redis_server, redis_prefix):
    made = []

    def make(agents, queues, **kw):
        h = Harness(tmp_path, redis_server.url, redis_prefix, agents, queues, **kw)
        made.append(h)
        return h
    yield make
    for h in made:
        h.store.flush()


def test_router_never_offers_an_agent_below_the_queues_minimum_levels(harness):
    h = harness([agent("1001", {"pension": 2}), agent("1002", {"medical": 9}),
                 agent("1003", {"pension": 9, "medical": 1}), agent("1004", {"pension": 4, "medical": 3})],
                [queue("pension", skills={"pension": 3, "medical": 2}, strategy="longest-idle")])
    # the unqualified agents have waited longest: they would win if skills were not checked
    h.login("1001", "1002", since=1)
    h.login("1003", since=3)
    h.login("1004", since=2)
    assert h.route("pension") == ["1004"]
    assert h.route("pension") is None                     # 1003 lacks medical 2; nobody else fits
    assert h.store.agent("1001")["state"] == "available" and h.store.agent("1002")["state"] == "available"
    assert h.store.agent("1003")["state"] == "available"
    assert h.store.queue_length("pension") == 1           # the second caller still waits


def test_router_skill_level_sums_the_queues_skills(harness):
    h = harness([agent("1001", {"pension": 6, "medical": 1}), agent("1002", {"pension": 4, "medical": 4}),
                 agent("1003", {"pension": 10}), agent("1004", {"pension": 4, "medical": 4})],
                [queue("mixed", skills={"pension": 1, "medical": 1}, strategy="skill-level")])
    h.login("1001", since=1)
    h.login("1002", since=20)
    h.login("1003", since=0)                              # level 10 but no medical: never offered
    h.login("1004", since=10)
    assert h.route("mixed") == ["1004"]                   # level 8, idle longer than 1002
    assert h.route("mixed") == ["1002"]                   # level 8
    assert h.route("mixed") == ["1001"]                   # level 7
    assert h.route("mixed") is None


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_a_repeat_callers_last_agent_goes_first_whatever_the_strategy(harness, strategy):
    h = harness([agent(str(1001 + i)) for i in range(5)], [queue("general", strategy=strategy)])
    for i in range(5):
        h.login(str(1001 + i), since=i, calls=5 - i, talk=100 - i)
    offer = h.route("general", preferred="1004")
    assert offer[0] == "1004"
    if strategy == "ring-all":
        assert sorted(offer) == ["1001", "1002", "1003", "1004", "1005"]
    else:
        assert offer == ["1004"]


def test_a_busy_preferred_agent_does_not_hold_the_caller_back(harness):
    h = harness([agent("1001"), agent("1002")], [queue("general", strategy="longest-idle")])
    h.login("1001", since=1)
    h.login("1002", since=2)
    first = h.route("general")
    assert first == ["1001"]
    assert h.route("general", preferred="1001") == ["1002"]


def test_router_round_robin_goes_round_the_ring(harness):
    h = harness([agent(str(1001 + i)) for i in range(4)], [queue("general", strategy="round-robin")])
    h.login("1001", "1002", "1003", "1004")
    seen = []
    for _ in range(6):
        w = h.caller("general")
        h.router.route_once()
        seen += w.offer
        h.finish(w)
    assert seen == ["1001", "1002", "1003", "1004", "1001", "1002"]


def test_router_fewest_calls_and_least_talk_time_read_todays_counters(harness):
    h = harness([agent("1001"), agent("1002"), agent("1003")],
                [queue("a", strategy="fewest-calls"), queue("b", strategy="least-talk-time")])
    h.login("1001", calls=3, talk=10, since=1)
    h.login("1002", calls=1, talk=900, since=2)
    h.login("1003", calls=2, talk=50, since=3)
    w = h.caller("a")
    h.router.route_once()
    assert w.offer == ["1002"]
    h.finish(w)
    w = h.caller("b")
    h.router.route_once()
    assert w.offer == ["1001"]


def test_router_ring_all_reserves_every_free_qualified_agent_up_to_the_cap(harness):
    n = RING_ALL_MAX + 3
    agents = [agent(str(2000 + i)) for i in range(n)] + [agent("3000", {"medical": 5})]
    h = harness(agents, [queue("general", strategy="ring-all", skills={"general": 1})])
    for i in range(n):
        h.login(str(2000 + i), since=n - i)               # the last ones have waited longest
    h.login("3000", since=0)
    offer = h.route("general")
    assert len(offer) == RING_ALL_MAX and "3000" not in offer
    assert offer == [str(2000 + i) for i in range(n - 1, n - 1 - RING_ALL_MAX, -1)]
    states = h.store.agents([str(2000 + i) for i in range(n)])
    assert sum(1 for d in states.values() if d["state"] == "reserved") == RING_ALL_MAX
    assert h.route("general") == ["2002", "2001", "2000"]  # the rest for the next caller


def test_router_random_spreads_first_offers_over_all_agents(harness, monkeypatch):
    monkeypatch.setattr(STRATEGIES["random"], "rng", random.Random(7))
    h = harness([agent(str(1001 + i)) for i in range(4)], [queue("general", strategy="random")])
    h.login("1001", "1002", "1003", "1004")
    counts = collections.Counter()
    for _ in range(400):
        w = h.caller("general")
        h.router.route_once()
        counts[w.offer[0]] += 1
        h.finish(w)
    chi2 = sum((counts[a] - 100) ** 2 / 100 for a in ("1001", "1002", "1003", "1004"))
    assert chi2 < 16.27, counts                            # 99.9 % point, 3 degrees of freedom


def test_router_serves_higher_priority_first_then_by_join_time(harness):
    h = harness([agent("1001")], [queue("general")])
    plain_early = h.caller("general", joined=1000.0)
    vip_late = h.caller("general", priority=10, joined=2000.0)
    plain_late = h.caller("general", joined=1500.0)
    h.login("1001")
    h.router.route_once()
    assert vip_late.offer == ["1001"] and plain_early.offer is None and plain_late.offer is None
    assert h.store.waiting("general") == [plain_early.call.uuid, plain_late.call.uuid]
    assert len(h.router.decisions) == 1
