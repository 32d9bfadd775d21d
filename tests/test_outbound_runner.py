"""The scheduler with a test double in place of the dialler: contacts claimed, dialled at the
pacer's rate, retried, finished; two engines on one database and one Redis never dial a contact
twice at once; a preview contact is offered to one agent and skipped."""
import collections
import random

import gevent
import gevent.event
import pytest

from engine.outbound import campaigns, preview
from engine.outbound.attempts import attempts_of
from engine.outbound.campaigns import OutboundError
from engine.outbound.runner import Runner
from tests.outboundfix import claims_for, outbound_db
from tests.ticketfix import Clock


class FakeCalls:
    """Scripted outcomes; records every dial and which numbers were being dialled at the same time."""

    def __init__(self, script, seconds=0.01):
        self.script = script          # number -> list of results, in order
        self.seconds = seconds
        self.dials = []
        self.live = set()
        self.overlaps = []

    def __call__(self, kind, row, campaign, attempt_id):
        if row["number"] in self.live:
            self.overlaps.append(row["number"])
        self.live.add(row["number"])
        self.dials.append(row["number"])
        try:
            gevent.sleep(self.seconds)
            results = self.script.get(row["number"]) or ["answered"]
            n = self.dials.count(row["number"]) - 1
            result = results[min(n, len(results) - 1)]
            return {"result": result, "cause": {"busy": "USER_BUSY", "no_answer": "NO_ANSWER"}.get(result),
                    "call_uuid": f"leg-{attempt_id}", "agent": "1001" if result == "answered" else None}
        finally:
            self.live.discard(row["number"])


def wait_until(cond, timeout=20):
    with gevent.Timeout(timeout):
        while not cond():
            gevent.sleep(0.01)


def numbers(n, start=0):
    return [{"number": f"1380013{i:04d}"} for i in range(start, start + n)]


def test_progressive_campaign_runs_to_the_end_with_retries(tmp_path, redis_server, redis_prefix):
    clock = Clock()
    db = outbound_db(tmp_path, clock)
    campaigns.create(db, "p", "progressive", queue="pension", max_attempts=2)
    campaigns.add_contacts(db, "p", numbers(20))
    script = {"13800130003": ["busy", "answered"], "13800130004": ["invalid"],
              "13800130005": ["no_answer", "no_answer"]}
    calls = FakeCalls(script)
    claims = claims_for(db, redis_server, redis_prefix, "engine-a")
    runner = Runner(db, claims, calls, agents=lambda c: (4, 0), auto_jobs=False)
    campaigns.control(db, "p", "start")
    peak = 0
    for _ in range(200):
        runner.tick()
        peak = max(peak, runner.in_flight.get(1, 0))
        gevent.sleep(0.005)
        if not runner.greenlets and len(calls.dials) >= 20:
            break
    wait_until(lambda: not runner.greenlets)
    assert peak <= 4                                    # one dial per free agent
    assert len(calls.dials) == 20                       # the retries are not due yet
    clock.advance(minutes=61)
    while runner.tick() or runner.greenlets:
        gevent.sleep(0.01)
    rows = {c["number"]: c for c in campaigns.contacts(db, "p")}
    assert rows["13800130003"]["state"] == "done" and rows["13800130003"]["attempts"] == 2
    assert rows["13800130004"]["state"] == "failed" and rows["13800130004"]["attempts"] == 1
    assert rows["13800130005"]["state"] == "failed" and rows["13800130005"]["attempts"] == 2
    assert collections.Counter(c["state"] for c in rows.values()) == {"done": 18, "failed": 2}
    runner.tick()
    assert campaigns.get(db, "p")["state"] == "finished"


def test_paused_campaign_dials_nobody(tmp_path, redis_server, redis_prefix):
    db = outbound_db(tmp_path)
    campaigns.create(db, "p", "progressive", queue="q")
    campaigns.add_contacts(db, "p", numbers(5))
    calls = FakeCalls({})
    runner = Runner(db, claims_for(db, redis_server, redis_prefix, "a"), calls, agents=lambda c: (5, 0))
    assert runner.tick() == 0                           # draft
    campaigns.control(db, "p", "start")
    campaigns.control(db, "p", "pause")
    assert runner.tick() == 0 and calls.dials == []


def test_two_engines_never_dial_one_contact_twice(tmp_path, redis_server, redis_prefix):
    clock = Clock()
    db_a, db_b = outbound_db(tmp_path, clock), outbound_db(tmp_path, clock)
    campaigns.create(db_a, "p", "predictive", queue="q", max_attempts=3)
    campaigns.add_contacts(db_a, "p", numbers(150))
    rng = random.Random(3)
    script = {f"1380013{i:04d}": [rng.choice(["answered", "busy", "no_answer"]), "answered"] for i in range(150)}
    calls = FakeCalls(script, seconds=0.02)             # one fake switch both engines dial through
    a = Runner(db_a, claims_for(db_a, redis_server, redis_prefix, "engine-a"), calls, agents=lambda c: (20, 5))
    b = Runner(db_b, claims_for(db_b, redis_server, redis_prefix, "engine-b"), calls, agents=lambda c: (20, 5))
    campaigns.control(db_a, "p", "start")
    for _ in range(6):
        for _ in range(40):
            a.tick()
            b.tick()
            gevent.sleep(0.01)
        wait_until(lambda: not a.greenlets and not b.greenlets)
        clock.advance(minutes=61)
    assert calls.overlaps == []
    rows = campaigns.contacts(db_a, "p")
    assert all(r["state"] == "done" for r in rows)
    per_number = collections.Counter(calls.dials)
    assert all(per_number[r["number"]] == r["attempts"] for r in rows)     # every dial is an attempt row
    A = db_a.m.Attempt
    engines = collections.Counter(e for (e,) in db_a.run(lambda: list(A.select(A.engine).tuples())))
    assert set(engines) == {"engine-a", "engine-b"}


def test_preview_offer_accept_skip(tmp_path, redis_server, redis_prefix):
    db = outbound_db(tmp_path)
    campaigns.create(db, "v", "preview", queue="q")
    campaigns.add_contacts(db, "v", [{"number": "13800138000", "name": "张三", "reference": "T1"},
                                     {"number": "13800138001", "name": "李四"}])
    claims = claims_for(db, redis_server, redis_prefix, "engine-a")
    with pytest.raises(OutboundError, match="draft"):
        preview.offer(db, claims, "v", "1001")
    campaigns.control(db, "v", "start")
    calls = FakeCalls({})
    runner = Runner(db, claims, calls, agents=lambda c: (9, 0))
    assert runner.tick() == 0                           # preview: nothing dialled unasked
    first = preview.offer(db, claims, "v", "1001")
    assert first["name"] == "张三" and first["reference"] == "T1" and first["agent"] == "1001"
    second = preview.offer(db, claims, "v", "1002")
    assert second["name"] == "李四"                     # the first is 1001's
    assert preview.skip(db, claims, first, "1001")
    assert preview.offer(db, claims, "v", "1001") is None    # 1001 skipped it; 李四 is 1002's
    third = preview.offer(db, claims, "v", "1003")
    assert third["id"] == first["id"]
    runner.dial_claimed("contact", third["id"], campaigns.get(db, "v"), agent="1003").join(10)
    done = [c for c in campaigns.contacts(db, "v") if c["id"] == first["id"]][0]
    assert done["state"] == "done" and done["attempts"] == 1
    assert [a["agent"] for a in attempts_of(db, "contact", first["id"])] == ["1001"]   # the double's agent


def test_robot_campaigns_share_the_robot_channels(tmp_path, redis_server, redis_prefix):
    db = outbound_db(tmp_path)
    for name in ("r1", "r2"):
        campaigns.create(db, name, "robot", flow="ivr_flows/followup.yaml")
        campaigns.add_contacts(db, name, numbers(10, start=0 if name == "r1" else 100))
        campaigns.control(db, name, "start")
    calls = FakeCalls({}, seconds=0.3)
    runner = Runner(db, claims_for(db, redis_server, redis_prefix, "a"), calls, robot_channels=4)
    for _ in range(5):
        runner.tick()
        gevent.sleep(0.01)
    assert len(calls.live) == 4 and len(calls.dials) == 4          # not 4 more every tick
    wait_until(lambda: not runner.greenlets)


def test_dials_a_second_stay_under_the_switch_session_rate(tmp_path, redis_server, redis_prefix):
    """A robot campaign with 50 free channels asks for 50 dials at once; the switch refuses sessions
    past its sessions-per-second (Throttle Error!), so no more than dials_per_second start in any
    one second, and the rest follow in the next seconds."""
    db = outbound_db(tmp_path)
    campaigns.create(db, "r", "robot", flow="ivr_flows/followup.yaml")
    campaigns.add_contacts(db, "r", numbers(25))
    campaigns.control(db, "r", "start")
    calls = FakeCalls({}, seconds=0.2)
    now = [100.0]
    runner = Runner(db, claims_for(db, redis_server, redis_prefix, "a"), calls, robot_channels=50,
                    dials_per_second=10, monotonic=lambda: now[0])
    assert runner.tick() == 10
    assert runner.tick() == 0                       # the same second: nothing more
    wait_until(lambda: len(calls.dials) == 10)
    now[0] += 0.99
    assert runner.tick() == 0
    now[0] += 0.01                                  # a second after the first dials
    assert runner.tick() == 10
    now[0] += 1.0
    assert runner.tick() == 5
    wait_until(lambda: not runner.greenlets)
    assert sorted(calls.dials) == sorted(n["number"] for n in numbers(25))


def test_calls_with_an_agent_do_not_hold_back_the_next_dials(tmp_path, redis_server, redis_prefix):
    """Two agents, one talking to the first answered customer: the other, free, gets a dial at
    once. The talking call's attempt is still running, but its customer is with an agent
    (place_call said so): only dials still connecting count against the free agents. (Counting
    whole attempts made progressive wait until more agents were free than calls were up.)"""
    db = outbound_db(tmp_path)
    campaigns.create(db, "p", "progressive", queue="q")
    campaigns.add_contacts(db, "p", numbers(3))
    hang_up = gevent.event.Event()
    dials = []
    runner = None

    def place_call(kind, row, campaign, attempt_id):
        dials.append(row["number"])
        runner.connected(attempt_id)            # answered and bridged to an agent: talking
        hang_up.wait(10)
        return {"result": "answered", "agent": "1001"}

    free = {"n": 1}
    runner = Runner(db, claims_for(db, redis_server, redis_prefix, "a"), place_call,
                    agents=lambda c: (free["n"], 2 - free["n"]), auto_jobs=False)
    campaigns.control(db, "p", "start")
    assert runner.tick() == 1
    wait_until(lambda: dials)
    assert runner.in_flight[1] == 1 and runner.connecting[1] == 0
    assert runner.tick() == 1                           # the other agent is free: dialled for
    wait_until(lambda: len(dials) == 2)
    free["n"] = 0
    assert runner.tick() == 0                           # both talking: nobody free, no dial
    hang_up.set()
    wait_until(lambda: not runner.greenlets)
    assert runner.connecting[1] == 0 and runner.in_flight[1] == 0


def test_a_dial_still_ringing_holds_back_one_dial(tmp_path, redis_server, redis_prefix):
    db = outbound_db(tmp_path)
    campaigns.create(db, "p", "progressive", queue="q")
    campaigns.add_contacts(db, "p", numbers(3))
    answer = gevent.event.Event()

    def place_call(kind, row, campaign, attempt_id):
        answer.wait(10)                         # ringing: never said it connected
        return {"result": "no_answer"}

    runner = Runner(db, claims_for(db, redis_server, redis_prefix, "a"), place_call,
                    agents=lambda c: (1, 0), auto_jobs=False)
    campaigns.control(db, "p", "start")
    assert runner.tick() == 1
    assert runner.tick() == 0 and runner.connecting[1] == 1    # one free agent, one dial ringing
    answer.set()
    wait_until(lambda: not runner.greenlets)
    assert runner.connecting[1] == 0
