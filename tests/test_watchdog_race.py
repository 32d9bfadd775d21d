"""A repair must mean a fault: the watchdog leaves a wrap-up that this engine's own timer is about to
end, even when a stalled hub lets the watchdog look after the deadline first (issue 17, section 4:
one "repair" a minute in a fault-free soak)."""
import time

import pytest

from tests.acdfix import AcdRig, agent, queue, wait_for


@pytest.fixture
def rig(tmp_path, redis_server, redis_prefix):
    r = AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001")], [queue("general", wrapup_seconds=1)])
    yield r
    r.stop()


def in_wrap_up(rig):
    rig.login("1001", hangup_after=0.1)
    rig.call("13800000001")
    assert rig.wait_state("1001", "wrap_up", timeout=10)


def test_a_wrap_up_our_timer_is_ending_is_not_repaired(rig):
    in_wrap_up(rig)
    # what the watchdog sees when the hub stalled past the deadline and it runs before the timer
    rig.acd.store.set_fields("1001", wrap_until=repr(time.time() - 3))
    assert rig.acd.repair() == []
    assert rig.wait_state("1001", "available", timeout=5)     # the timer ended it, the normal way
    rig.acd.audit.flush()
    ended = [e for e in rig.acd.audit.events(agent="1001") if e["action"] == "wrapup_end"]
    assert [e["reason"] for e in ended] == ["timer"]


def test_a_wrap_up_without_its_timer_is_repaired(rig):
    in_wrap_up(rig)
    rig.acd.board._cancel_timer("1001")                      # the fault: the timer is gone
    rig.acd.store.set_fields("1001", wrap_until=repr(time.time() - 3))
    assert rig.acd.repair() == [("1001", "wrap_up")]
    assert rig.state("1001") == "available"
