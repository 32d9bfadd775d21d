"""Queues and agents over the simulator with a real Redis: routing, no answer, wrap-up, hang-ups."""
import pytest

from tests.acdfix import AcdRig, agent, queue, wait_for


@pytest.fixture
def rig_factory(tmp_path, redis_server, redis_prefix):
    rigs = []

    def make(agents, queues, **kw):
        rig = AcdRig(tmp_path, redis_server.url, redis_prefix, agents, queues, **kw)
        rigs.append(rig)
        return rig
    yield make
    for rig in rigs:
        rig.stop()


def test_caller_reaches_an_agent_then_wrap_up_then_available(rig_factory):
    rig = rig_factory([agent("1001", {"pension": 8}), agent("1002", {"pension": 5})],
                      [queue("pension", skills={"pension": 3}, strategy="skill-level")])
    rig.login("1001", "1002", hangup_after=0.3)
    caller = rig.call("13800138000")
    assert wait_for(lambda: rig.state("1001") == "in_call"), rig.state("1001")
    assert rig.state("1002") == "available"                 # skill-level: level 8 before level 5
    assert rig.phones["1001"].answered == 1
    assert rig.wait_state("1001", "wrap_up")
    assert rig.wait_state("1001", "available", timeout=3)    # the 0.3 s wrap-up timer ended it
    caller.wait_hangup(5)
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    cdr = rig.cdrs()[0]
    assert cdr["queue"] == "pension" and cdr["agent"] == "1001"
    assert cdr["talk_seconds"] >= 0.25 and cdr["wrapup_seconds"] == pytest.approx(0.3)
    assert cdr["wait_seconds"] < 2
    rig.acd.audit.flush()
    moves = [(e["from_state"], e["to_state"]) for e in reversed(rig.acd.audit.events(agent="1001"))
             if e["action"] == "state"]
    assert moves == [("logged_out", "available"), ("available", "reserved"), ("reserved", "ringing"),
                     ("ringing", "in_call"), ("in_call", "wrap_up"), ("wrap_up", "available")]


def test_no_answer_goes_to_the_next_agent_and_n_misses_make_an_agent_not_ready(rig_factory):
    rig = rig_factory([agent("1001", max_no_answer=2), agent("1002")],
                      [queue("general", strategy="round-robin")])
    rig.login("1001", behaviour="no_answer")
    rig.login("1002", hangup_after=0.2)
    rig.acd.store.set_fields("1002", since=0)                # make 1001 first in the ring
    first = rig.call("13800000001")
    assert wait_for(lambda: rig.phones["1002"].answered == 1, timeout=5)
    assert rig.phones["1001"].rings == 1                      # rang 1 s, no answer, then 1002
    assert rig.acd.store.agent("1001")["misses"] == "1"
    first.wait_hangup(5)
    assert rig.wait_state("1002", "available", timeout=3)
    rig.acd.store.set_fields("1002", since=10**10)           # 1001 first again
    rig.call("13800000002")
    assert wait_for(lambda: rig.phones["1001"].rings == 2, timeout=5)
    assert rig.wait_state("1001", "on_break", timeout=3)     # second miss in a row: not ready
    assert rig.acd.store.agent("1001")["reason"] == "missed_calls"
    assert wait_for(lambda: rig.phones["1002"].answered == 2, timeout=5)


def test_a_caller_who_hangs_up_while_an_agent_rings_frees_the_agent_at_once(rig_factory):
    rig = rig_factory([agent("1001")], [queue("general", ring_timeout=30)])
    rig.login("1001", behaviour="no_answer")
    caller = rig.call()
    assert rig.wait_state("1001", "ringing")
    ringing_leg = rig.acd.store.agent("1001")["leg"]
    caller.hangup("NORMAL_CLEARING")
    assert rig.wait_state("1001", "available", timeout=1.0)
    leg = rig.switch.channels.get(ringing_leg)
    assert leg is None or leg.hangup_cause == "ORIGINATOR_CANCEL"
    assert rig.acd.store.agent("1001").get("misses", "0") == "0"     # not the agent's fault
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    tags = rig.cdrs()[0]["tags"]
    assert "abandoned" in tags and "abandoned_ringing" in tags          # never connected


def test_wrap_up_blocks_offers_until_it_ends_and_ready_ends_it_early(rig_factory):
    rig = rig_factory([agent("1001")], [queue("general", wrapup_seconds=30)])
    rig.login("1001", hangup_after=0.1)
    rig.call("13800000001")
    assert rig.wait_state("1001", "wrap_up", timeout=5)
    second = rig.call("13800000002")
    assert wait_for(lambda: rig.acd.store.queue_length("general") == 1)
    import gevent
    gevent.sleep(0.5)
    assert rig.phones["1001"].rings == 1 and rig.state("1001") == "wrap_up"   # not offered
    rig.acd.board.ready("1001", actor="test")
    assert wait_for(lambda: rig.phones["1001"].rings == 2, timeout=3)
    rig.acd.audit.flush()
    actions = [e["action"] for e in rig.acd.audit.events(agent="1001")]
    assert actions.count("wrapup_start") == 1 and actions.count("wrapup_end") == 1
    ended = [e for e in rig.acd.audit.events(agent="1001") if e["action"] == "wrapup_end"][0]
    assert ended["reason"] == "ready"                   # ended early by the agent, not the timer
    second.hangup()


def test_skills_are_respected(rig_factory):
    rig = rig_factory([agent("1001", {"medical": 9}), agent("1002", {"pension": 2}), agent("1003", {"pension": 4})],
                      [queue("pension", skills={"pension": 3})])
    rig.login("1001", "1002", "1003", hangup_after=0.1)
    for i in range(3):
        rig.call(f"1380000000{i}")
    assert wait_for(lambda: rig.phones["1003"].answered == 3, timeout=8)
    assert rig.phones["1001"].rings == 0 and rig.phones["1002"].rings == 0


def test_a_waiting_caller_hears_position_and_expected_wait(rig_factory):
    rig = rig_factory([agent("1001")],
                      [queue("general", announce={"every_seconds": 0.5, "position": True,
                                                  "expected_wait": False})],
                      tts={"edge_enabled": False})
    rig.login("1001")                                   # answers the first caller and stays
    first = rig.call("13800000001")
    assert wait_for(lambda: rig.state("1001") == "in_call")
    second = rig.call("13800000002")
    assert wait_for(lambda: rig.acd.store.queue_length("general") == 1)
    waiter = rig.acd.waiters[second.uuid]
    assert wait_for(lambda: waiter.call.info.get("announcements", 0) >= 2, timeout=30)   # TTS renders the announcement: slow under load
    played = [e for e in second.events if e == "PLAYBACK_START"]
    assert len(played) >= 3                             # music, announcement, music again...
    first.hangup()
    second.hangup()
    assert wait_for(lambda: len(rig.cdrs()) == 2)
    cdr = next(c for c in rig.cdrs() if c["caller_number"] == "13800000002")
    assert cdr["extra"]["announcements"] >= 2
    # expected wait: recent handling times x position / agents working
    rig.acd.store.r.delete(rig.acd.store.p + "aht:general")
    for seconds in (100, 200, 300):
        rig.acd.store.add_handle_time("general", seconds)
    general = rig.acd.config.queues["general"]
    assert rig.acd.expected_wait(general, 3) == pytest.approx(600)     # 1 agent logged in


def test_agents_day_report_from_the_audit_log(rig_factory, capsys):
    import datetime
    import json as _json

    from engine.acd.agentreport import agent_figures
    from engine.cli import main
    rig = rig_factory([agent("1001", max_no_answer=5), agent("1002")], [queue("general")])
    rig.login("1001", behaviour="no_answer")
    rig.acd.board.take_break("1001", "meal")
    rig.acd.board.ready("1001")
    rig.call()
    assert wait_for(lambda: rig.phones["1001"].rings == 1)
    rig.login("1002", hangup_after=0.1)
    assert rig.wait_state("1002", "wrap_up", timeout=5)
    rig.acd.board.ready("1002")
    rig.acd.audit.flush()
    day = datetime.datetime.now(datetime.timezone(datetime.timedelta(hours=8))).date()
    figures = agent_figures(rig.settings.database.url, day)
    assert figures["1001"]["missed"] >= 1 and figures["1001"]["answered"] == 0
    assert "meal" in figures["1001"]["breaks"]
    assert figures["1002"]["answered"] == 1 and figures["1002"]["seconds"]["in_call"] >= 0.1
    assert figures["1002"]["wrapup_ended_early"] == 1
    db = rig.settings.database.url
    assert main(["agents", "report", "--db", db, "--json"]) == 0
    printed = _json.loads(capsys.readouterr().out)
    assert printed["agents"]["1002"]["answered"] == 1
    assert main(["agents", "report", "--db", db, "--date", "2020-01-01"]) == 0
    assert "1001" not in capsys.readouterr().out                 # nothing that day


def test_an_engine_restarted_mid_call_keeps_the_agent_busy_until_the_leg_ends(rig_factory):
    from engine.acd.service import Acd
    from engine.acd.store import AcdStore
    rig = rig_factory([agent("1001")], [queue("general")])
    rig.login("1001")
    rig.call()
    assert wait_for(lambda: rig.state("1001") == "in_call")
    leg_uuid = rig.acd.store.agent("1001")["leg"]
    # The restarted engine: same id, nothing in memory, same switch and Redis.
    restarted = Acd(rig.settings, rig.engine.esl, engine_id=rig.acd.engine_id,
                    store=AcdStore(rig.settings.redis.url, prefix=rig.settings.redis.prefix))
    rig.engine.esl.on("CHANNEL_HANGUP", restarted.on_esl_event)
    rig.acd.store.set_fields("1001", since=0)                    # in the call for a long time
    assert restarted.repair() == [("1001", "adopted")]
    assert rig.state("1001") == "in_call" and leg_uuid in restarted.adopted
    assert restarted.repair() == []                              # once
    rig.switch.channels[leg_uuid].hangup()
    assert wait_for(lambda: leg_uuid not in restarted.adopted)
    assert rig.wait_state("1001", "wrap_up") or rig.state("1001") == "available"


def test_an_offer_to_a_caller_who_just_hung_up_frees_the_agent_at_once(rig_factory):
    """The router can reserve an agent for a caller whose hang-up the engine has not seen yet; the
    caller's side then leaves the queue without ringing. Leaving frees the offered agent."""
    from types import SimpleNamespace

    from engine.acd import waiting
    rig = rig_factory([agent("1001")], [queue("general")])
    rig.login("1001")
    call = SimpleNamespace(uuid="5a3c2b1d-0000-4000-8000-00000000abcd", info={})
    rig.acd.router.stop()                                   # no routing behind the test's back
    assert rig.acd.board.reserve("1001", call.uuid, "general")
    waiter = waiting.Waiter(call, "general", 0.0)
    waiter.offer = ["1001"]
    rig.acd.waiters[call.uuid] = waiter
    waiting._leave(rig.acd, call, waiter)
    assert rig.state("1001") == "available"
    assert call.uuid not in rig.acd.waiters


# --- callers who join while agents are free (issue 14, point 1) -----------------------------------
# The router offers a free agent the moment a caller joins, while the caller's greenlet has just
# sent `execute playback <music>`: the switch has queued it and starts it on the channel's next media
# frame. A break that flushes it (`uuid_break all`) leaves no CHANNEL_EXECUTE(_COMPLETE) to wait for
# (fixture 07 A). A frame of 100 ms (a slow frame read, as under load) makes the offer land inside
# that window on every run.

def test_a_caller_joining_while_an_agent_is_free_is_connected(rig_factory):
    rig = rig_factory([agent("1001")], [queue("general")])
    rig.switch.frame_seconds = 0.1
    rig.login("1001", hangup_after=0.2)
    caller = rig.call("13800000001")
    assert wait_for(lambda: rig.phones["1001"].answered == 1, timeout=8), rig.state("1001")
    assert caller.wait_hangup(8)
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    assert rig.cdrs()[0]["agent"] == "1001"
    assert rig.wait_state("1001", "available", timeout=3)      # never left reserved


def test_ten_callers_five_free_agents_every_caller_is_connected(rig_factory):
    ids = [str(1001 + i) for i in range(5)]
    rig = rig_factory([agent(i) for i in ids], [queue("general", wrapup_seconds=0.1)])
    rig.switch.frame_seconds = 0.1
    rig.login(*ids, hangup_after=0.3)
    callers = [rig.call(f"138000000{n:02d}") for n in range(10)]
    assert wait_for(lambda: sum(p.answered for p in rig.phones.values()) == 10, timeout=20), \
        {i: rig.state(i) for i in ids}
    for caller in callers:
        assert caller.wait_hangup(10)
    assert wait_for(lambda: len(rig.cdrs()) == 10)
    assert sorted(c["agent"] in ids for c in rig.cdrs()) == [True] * 10
    assert all(rig.wait_state(i, "available", timeout=3) for i in ids)
