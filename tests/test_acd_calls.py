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
