"""Agent campaigns dialled for real on the simulator (the engine in this process, the ACD on a
real Redis, agents' phones that answer, talk and hang up): the small-scale version of
scripts/bench_outbound.py agents. A realistic population (60% person, 20% no answer, 10% busy,
10% invalid; seeded), timings compressed (talk about a second, ringing a fraction of one), one
pass over the list (max_attempts 1).

Watched from outside all along: the customer legs the switch placed (ringing, answered and
waiting for an agent, bridged) against the agents' states in Redis. Asserted: every contact
finished exactly once (one attempt, one dial of its number), no abandon in progressive and the
abandon rate within the campaign's target in predictive, no more customers connecting than free
agents in progressive, and in predictive no dialling ahead when few agents are free or coming
free. No
wall-clock thresholds: every wait is on a condition with a generous bound.
"""
import collections
import random

import gevent

from engine.outbound import campaigns, pacer, report
from engine.outbound.attempts import attempts_of
from engine.outbound.db import OutboundDb
from engine.outbound.gate import Gate
from engine.sim.pstn import Behaviour, Population
from tests.acdfix import AcdRig, agent, queue
from tests.simfix import wait_for
from tests.test_outbound_sim import ALWAYS_OPEN, PROMPT_CACHE

AGENTS = [f"10{i:02d}" for i in range(6)]
MIX = (("person", 0.6), ("no_answer", 0.2), ("busy", 0.05), ("busy_ringing", 0.05), ("unallocated", 0.1))
TAKING = ("available", "reserved", "ringing")     # agents free, or being given a waiting customer


def rig_for(tmp_path, redis_server, redis_prefix):
    # agent_wait_seconds 1.0: an answered customer no agent was offered to within a second is an
    # abandon; generous for a loaded machine (the router offers a free agent within milliseconds)
    return AcdRig(tmp_path, redis_server.url, redis_prefix, [agent(a) for a in AGENTS],
                  [queue("general", wrapup_seconds=0.2, ring_timeout=5)], paths_prompt_cache=PROMPT_CACHE,
                  outbound_calls={"window": ALWAYS_OPEN, "originate_timeout": 5, "max_agent_share": 1.0,
                                  "jobs": {"tick_seconds": 0.1, "agent_wait_seconds": 1.0}})


def population(numbers, seed=11):
    return Population.drawn(numbers, MIX, random.Random(seed), ring=(0.1, 0.4))


class Watch:
    """Samples the customer legs and the agents' states every 20 ms while the campaign runs."""

    def __init__(self, rig, pop, numbers):
        self.rig, self.pop, self.numbers = rig, pop, numbers
        self.samples = []               # (legs connecting, agents taking, agents busy)
        self.taken = 0                  # most agents the gate saw held by outbound calls at once
        self.gate = Gate(rig.acd.store, rig.settings.outbound_calls)

    def legs(self):
        for n in self.numbers:
            phone = self.pop.phones.get(n)
            yield from (phone.calls if phone else ())

    def run(self):
        while True:
            connecting = sum(1 for c in self.legs() if c.alive and "CHANNEL_BRIDGE" not in c.events)
            states = [d.get("state") for d in self.rig.acd.store.agents(AGENTS).values()]
            taking = sum(s in TAKING for s in states)
            self.samples.append((connecting, taking, len(states) - taking))
            self.taken = max(self.taken, self.gate.agents_taken())
            gevent.sleep(0.02)


def run_campaign(rig, mode, numbers, abandon_target=0.03):
    pop, kinds = population(numbers)
    rig.switch.population = pop
    for i, a in enumerate(AGENTS):
        rig.login(a, answer_after=0.05, hangup_after=0.6 + 0.1 * i)     # talk 0.6-1.1 s, then hang up
    db = OutboundDb(rig.settings.database.url).open()
    campaigns.create(db, mode, mode, queue="general", max_attempts=1, abandon_target=abandon_target)
    campaigns.add_contacts(db, mode, [{"number": n} for n in numbers])
    watch = Watch(rig, pop, numbers)
    watcher = gevent.spawn(watch.run)
    campaigns.control(db, mode, "start")
    try:
        wait_for(lambda: campaigns.get(db, mode)["state"] == "finished", timeout=240)
        wait_for(lambda: not any(c.alive for c in watch.legs()), timeout=30)
        wait_for(lambda: all(rig.state(a) == "available" for a in AGENTS), timeout=30)
    finally:
        watcher.kill()
    return db, pop, kinds, watch


def assert_each_finished_once(db, mode, pop, kinds, numbers):
    contacts = campaigns.contacts(db, mode)
    assert len(contacts) == len(numbers)
    assert all(c["state"] in ("done", "failed") and c["attempts"] == 1 for c in contacts)
    assert all(len(attempts_of(db, "contact", c["id"])) == 1 for c in contacts)
    assert all(len(pop.phones[n].calls) == 1 for n in numbers)             # one dial a number
    by_kind = collections.defaultdict(set)
    for c in contacts:
        by_kind[kinds[c["number"]]].add(c["last_result"])
    assert by_kind["no_answer"] <= {"no_answer"} and by_kind["unallocated"] <= {"invalid"}
    assert by_kind["busy"] | by_kind["busy_ringing"] <= {"busy"}
    assert by_kind["person"] <= {"answered", "abandoned"}
    # the engine's record agrees with the switch: answered means an agent talked to them
    for c in contacts:
        [leg] = pop.phones[c["number"]].calls
        assert (c["last_result"] == "answered") == ("CHANNEL_BRIDGE" in leg.events), (c, leg.events)


def answered_legs(pop, numbers):
    legs = [c for n in numbers for c in pop.phones[n].calls if c.answered]
    return legs, [c for c in legs if "CHANNEL_BRIDGE" not in c.events]


def test_progressive_campaign_never_abandons_nor_over_dials(tmp_path, redis_server, redis_prefix):
    rig = rig_for(tmp_path, redis_server, redis_prefix)
    numbers = [f"13600000{i:03d}" for i in range(40)]
    try:
        db, pop, kinds, watch = run_campaign(rig, "progressive", numbers)
        assert_each_finished_once(db, "progressive", pop, kinds, numbers)
        answered, abandoned = answered_legs(pop, numbers)
        assert answered and abandoned == []
        assert report.campaign_report(db, "progressive")["abandon_pct"] == 0.0
        # customers ringing or waiting never outnumber the agents free to take them
        assert all(connecting <= taking for connecting, taking, _ in watch.samples), \
            max(watch.samples, key=lambda s: s[0] - s[1])
        assert max(s[0] for s in watch.samples) >= 2              # it did dial for several agents
        # the calls were seen holding their agents (the gate's share), and gave them back
        assert watch.taken >= 2 and watch.gate.agents_taken() == 0
        runner = rig.engine.outbound_jobs.runner
        assert sum(runner.connecting.values()) == 0 and sum(runner.in_flight.values()) == 0
    finally:
        rig.stop()


def test_predictive_campaign_holds_its_abandon_target(tmp_path, redis_server, redis_prefix, monkeypatch):
    # the pacer stays progressive for its first hundred dials; this list is shorter
    monkeypatch.setattr(pacer, "WARM_UP_DIALS", 10)
    rig = rig_for(tmp_path, redis_server, redis_prefix)
    numbers = [f"13700000{i:03d}" for i in range(60)]
    decisions = []                  # (free, busy, connecting, dials) of every tick that asked
    runner = rig.engine.outbound_jobs.runner
    real_pacer = runner.pacer

    def recording_pacer(campaign):
        p = real_pacer(campaign)
        if not getattr(p, "recorded", False):
            ask = p.dials_to_make

            def dials_to_make(free, busy=0, in_flight=0, now=None):
                n = ask(free, busy, in_flight, now=now)
                decisions.append((free, busy, in_flight, n, p.agents_within_ring(free, busy)))
                return n
            p.dials_to_make, p.recorded = dials_to_make, True
        return p
    runner.pacer = recording_pacer
    try:
        target = 0.03                                   # the product's default
        db, pop, kinds, watch = run_campaign(rig, "predictive", numbers, abandon_target=target)
        assert_each_finished_once(db, "predictive", pop, kinds, numbers)
        answered, abandoned = answered_legs(pop, numbers)
        assert len(answered) >= 20
        assert len(abandoned) / len(answered) <= target
        assert report.campaign_report(db, "predictive")["abandon_pct"] <= 100 * target
        assert decisions
        for free, busy, in_flight, n, coming in decisions:
            if coming < pacer.Pacer("predictive").min_agents:     # few agents free or coming free
                assert in_flight + n <= max(free, in_flight), (free, busy, in_flight, n)  # one dial a free agent
            assert in_flight + n <= max(in_flight, int((free + 0.5 * busy) * 3)), (free, busy, in_flight, n)
        # outside: customers connecting never beyond what the pacer may have in flight
        assert all(connecting <= 3 * taking + 1.5 * busy for connecting, taking, busy in watch.samples)
    finally:
        rig.stop()



def test_an_abandoned_customer_is_out_of_the_queue_before_the_apology(tmp_path, redis_server, redis_prefix):
    """Predictive: the one agent is taken by an inbound caller while the customer rings; the
    customer answers, finds no agent, is abandoned and hears the apology. The agent comes free
    while it plays: they must not be offered to the customer being told goodbye (before, they
    rang for the rest of the apology, and the attempt was written "answered": the contact closed
    as done though no agent ever talked to them)."""
    rig = AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001")],
                 [queue("general", wrapup_seconds=0, ring_timeout=5)], paths_prompt_cache=PROMPT_CACHE,
                 outbound_calls={"window": ALWAYS_OPEN, "originate_timeout": 5, "max_agent_share": 1.0,
                                 "jobs": {"tick_seconds": 0.1, "agent_wait_seconds": 0.3}})
    number = "13500000001"
    try:
        pop = rig.switch.population = Population()
        pop.add(number, Behaviour("person", ring=1.0, hangup_after=60.0))
        rig.login("1001", answer_after=0.05)            # talks until the caller hangs up
        phone = rig.phones["1001"]
        db = OutboundDb(rig.settings.database.url).open()
        campaigns.create(db, "pd", "predictive", queue="general", max_attempts=3)
        campaigns.add_contacts(db, "pd", [{"number": number}])
        campaigns.control(db, "pd", "start")
        wait_for(lambda: pop.phones.get(number) and pop.phones[number].calls, timeout=30)
        inbound = rig.call("13800138000", "Inbound")    # takes the agent while the customer rings
        wait_for(lambda: rig.state("1001") == "in_call", timeout=30)
        leg = pop.phones[number].calls[0]
        wait_for(lambda: leg.uuid in rig.engine.calls
                 and rig.engine.calls[leg.uuid].info.get("outbound_abandoned"), timeout=30)
        inbound.hangup("NORMAL_CLEARING")               # the agent is free while the apology plays
        wait_for(lambda: rig.state("1001") == "available", timeout=30)
        wait_for(lambda: campaigns.contacts(db, "pd")[0]["state"] != "claimed", timeout=60)
        [contact] = campaigns.contacts(db, "pd")
        assert contact["last_result"] == "abandoned" and contact["state"] == "pending"   # we owe them a call
        assert phone.rings == 1                         # the inbound call only
        assert "CHANNEL_BRIDGE" not in leg.events
        assert report.campaign_report(db, "pd")["abandon_pct"] == 100.0
    finally:
        rig.stop()
