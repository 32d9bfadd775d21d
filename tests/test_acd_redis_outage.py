"""Redis goes away, and Redis comes back empty (issue 17 section 3): a caller connected to an agent
is served to the end, the outage is one line (and its end one line), and an engine whose Redis lost
its data re-asserts its conversations and waiters."""
import logging

import pytest

from tests.acdfix import AcdRig, agent, queue, wait_for
from tests.redisfix import RedisServer

FLOW = """name: main
entry: {'12345': q}
fallback: vm
nodes:
  q:
    type: queue
    queue: general
  vm:
    type: voicemail
    max_seconds: 1
    silence_seconds: 0.5
"""


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of this test's own: the test stops and restarts it."""
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    yield server
    server.stop()


def outage_rig(tmp_path, server, agents, flows=True, **queue_kw):
    flows_dir = None
    if flows:
        flows_dir = tmp_path / "flows"
        flows_dir.mkdir()
        (flows_dir / "main.yaml").write_text(FLOW, encoding="utf-8")
    return AcdRig(tmp_path, server.url, "o:", [agent(a) for a in agents],
                  [queue("general", **queue_kw)], flows_dir=flows_dir)


def test_a_caller_talking_when_redis_goes_away_is_served_and_the_outage_is_one_line(
        tmp_path, own_redis, caplog):
    caplog.set_level(logging.INFO)
    rig = outage_rig(tmp_path, own_redis, ["1001"])
    try:
        rig.login("1001")
        caller = rig.call()
        assert rig.wait_state("1001", "in_call", timeout=10)
        leg = rig.acd.store.agent("1001")["leg"]
        own_redis.stop()                                        # Redis goes away mid-conversation
        rig.switch.channels[leg].hangup()                       # the agent ends the conversation
        assert caller.wait_hangup(timeout=15)
        assert wait_for(lambda: len(rig.cdrs()) == 1, timeout=10)
        cdr = rig.cdrs()[0]
        assert cdr["agent"] == "1001"
        assert not any(t.startswith("voicemail") for t in cdr["tags"]), cdr["tags"]
        # more calls during the outage: counted, not one traceback each
        for i in range(3):
            rig.call(number=f"1390000000{i}")
        assert wait_for(lambda: len(rig.cdrs()) == 4, timeout=20)
        own_redis.start()                                       # back (empty: no persistence)
        assert wait_for(lambda: "Redis reachable again" in caplog.text, timeout=15)
        text = caplog.text
        assert text.count("Redis unreachable") == 1 and text.count("Redis reachable again") == 1
        assert "Traceback" not in text
    finally:
        rig.stop()


def test_redis_restarted_empty_the_engine_reasserts_its_calls_and_waiters(tmp_path, own_redis, caplog):
    caplog.set_level(logging.INFO)
    rig = outage_rig(tmp_path, own_redis, ["1001", "1002"], flows=False)
    try:
        rig.login("1001")
        talking = rig.call(number="13900000001")
        assert rig.wait_state("1001", "in_call", timeout=10)
        waiting = rig.call(number="13900000002")
        assert wait_for(lambda: waiting.uuid in rig.acd.waiters, timeout=10)
        own_redis.stop()
        own_redis.start()                               # empty: every agent and entry is gone
        # the agents log in again at once, before any watchdog pass
        rig.acd.board.login("1001")
        assert rig.state("1001") == "in_call"           # the engine knows 1001 is talking
        rig.login("1002")
        # the waiting caller is served by the free agent, 1001 is never rung twice
        assert wait_for(lambda: rig.phones["1002"].rings == 1, timeout=20)
        assert wait_for(lambda: rig.state("1002") == "in_call", timeout=10)
        assert rig.phones["1001"].rings == 1
        assert talking.bridged_to and waiting.bridged_to
        assert caplog.text.count("Redis lost its data") == 1
    finally:
        rig.stop()


def test_after_an_outage_the_watchdog_reconciles_what_could_not_be_written(tmp_path, own_redis):
    """Redis comes back with its data (same epoch): the conversation that ended meanwhile left the
    agent in_call in Redis; the watchdog asks the switch and ends it, no login needed."""
    rig = outage_rig(tmp_path, own_redis, ["1001"], flows=False, wrapup_seconds=0.2)
    try:
        rig.login("1001")
        caller = rig.call(number="13900000001")
        assert rig.wait_state("1001", "in_call", timeout=10)
        rig.acd.store.r.save()                          # Redis restarts from this snapshot
        own_redis.stop()
        caller.hangup()                                 # the conversation ends during the outage
        assert wait_for(lambda: rig.cdrs() and rig.cdrs()[0]["agent"] == "1001", timeout=10)
        own_redis.start()
        assert rig.state("1001") == "in_call"           # as Redis last knew it
        assert rig.wait_state("1001", "available", timeout=20)
        again = rig.call(number="13900000002")
        assert wait_for(lambda: rig.phones["1001"].rings == 2, timeout=10)
        assert wait_for(lambda: again.bridged_to, timeout=10)
    finally:
        rig.stop()


def test_a_caller_waiting_through_an_outage_keeps_waiting_and_is_served_after(tmp_path, own_redis, caplog):
    caplog.set_level(logging.INFO)
    rig = outage_rig(tmp_path, own_redis, ["1001"], flows=False, wrapup_seconds=0.2,
                     announce={"every_seconds": 0.5, "position": True, "expected_wait": False})
    try:
        rig.login("1001")
        talking = rig.call(number="13900000001")
        assert rig.wait_state("1001", "in_call", timeout=10)
        waiting = rig.call(number="13900000002")
        assert wait_for(lambda: rig.acd.store.position("general", waiting.uuid) == 1, timeout=10)
        asked = []                          # the announcements' position look-ups (a spy)
        position = rig.acd.store.position
        rig.acd.store.position = lambda *a: asked.append(a) or position(*a)
        rig.acd.store.r.save()
        own_redis.stop()
        # two announcements reach for Redis while it is down; the caller waits on
        assert wait_for(lambda: len(asked) >= 2, timeout=10)
        assert waiting.uuid in rig.acd.waiters and "Redis unreachable" in caplog.text
        own_redis.start()                                       # with its data
        talking.hangup()
        assert wait_for(lambda: waiting.bridged_to, timeout=20)  # served once 1001 is free
        assert "Traceback" not in caplog.text
    finally:
        rig.stop()


def test_a_caller_arriving_during_an_outage_without_flows_hears_an_apology(tmp_path, own_redis, caplog):
    rig = outage_rig(tmp_path, own_redis, ["1001"], flows=False)
    try:
        own_redis.stop()
        caller = rig.call()
        assert caller.wait_hangup(timeout=15)
        assert "PLAYBACK_START" in caller.events              # told, not cut off in silence
        assert wait_for(lambda: len(rig.cdrs()) == 1, timeout=10)
        assert "wanted_agent" in rig.cdrs()[0]["tags"]
        assert "Traceback" not in caplog.text
        own_redis.start()
    finally:
        rig.stop()


def test_an_engine_started_while_redis_is_down_serves_once_it_is_back(tmp_path, own_redis):
    own_redis.stop()
    rig = outage_rig(tmp_path, own_redis, ["1001"], flows=False)     # Restart=always meets the outage
    try:
        own_redis.start()
        assert wait_for(lambda: rig.acd.epoch is not None, timeout=15)   # the watchdog caught up
        rig.login("1001")
        caller = rig.call()
        assert wait_for(lambda: caller.bridged_to, timeout=10)
    finally:
        rig.stop()


def test_redis_back_with_an_older_snapshot_does_not_ring_an_agent_who_answered_during_the_outage(
        tmp_path, own_redis):
    """Redis restarts from its last snapshot (RDB: writes after it are lost), taken while 1001 was
    available; 1001 was rung just after it and answered while Redis was down. Back, Redis says
    1001 is available: the next caller must not ring 1001, who is talking."""
    rig = outage_rig(tmp_path, own_redis, ["1001"], flows=False, ring_timeout=10)
    try:
        rig.login("1001", answer_after=0.5)
        rig.acd.store.r.save()                          # the snapshot: 1001 available
        talking = rig.call(number="13900000001")
        assert wait_for(lambda: rig.phones["1001"].rings == 1, timeout=10)
        own_redis.stop()
        assert wait_for(lambda: talking.bridged_to, timeout=10)       # answered during the outage
        own_redis.start()                                             # with the older snapshot
        assert rig.state("1001") == "available"
        nxt = rig.call(number="13900000002")
        assert wait_for(lambda: nxt.uuid in rig.acd.waiters or nxt.bridged_to or rig.phones["1001"].rings > 1,
                        timeout=10)
        wait_for(lambda: rig.phones["1001"].rings > 1, timeout=8)      # watchdog passes every 5 s
        assert rig.phones["1001"].rings == 1, "1001 was rung while talking"
    finally:
        rig.stop()
