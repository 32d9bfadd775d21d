"""The simulator refuses new sessions past switch.conf.xml's sessions-per-second and max-sessions
as the real switch does (engine/sim/throttle.py cites the source): an originate answers
-ERR DESTINATION_OUT_OF_ORDER, a call from the trunk gets 503 and no channel at all. The counting
window is the switch's own one-second refill, driven here by an injected clock."""
import uuid

import pytest

from engine.sim.switch import SipRefused, Switch
from engine.sim.throttle import read_limits
from tests.simfix import DIALPLAN, conn, switch, wait_for  # noqa: F401  (fixtures)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def originate_park(conn):
    a = str(uuid.uuid4())
    return a, conn.api(f"originate {{origination_uuid={a}}}sofia/internal/7000@127.0.0.1:5080 &park()", check=False)


def test_originates_past_the_rate_fail_until_the_window_refills(switch, conn):
    clock = Clock()
    switch.throttle.clock = clock
    switch.sessions_per_second = 5
    # each originate to 7000 makes two sessions (our leg and the loopback SIP leg into the public
    # context); the counter is decremented before `<= 0` refuses, so 4 sessions fit in a window
    results = [originate_park(conn) for _ in range(4)]
    assert [out for _, out in results[:2]] == [f"+OK {a}\n" for a, _ in results[:2]]
    assert [out for _, out in results[2:]] == ["-ERR DESTINATION_OUT_OF_ORDER\n"] * 2
    assert not any(a in switch.channels for a, _ in results[2:])       # no channel, no event
    assert not any(e.get("Unique-ID") in {a for a, _ in results[2:]} for e in conn.seen)
    assert len(switch.channels) == 4
    clock.now += 0.999                                                  # still the same window
    assert originate_park(conn)[1] == "-ERR DESTINATION_OUT_OF_ORDER\n"
    clock.now += 0.001                                                  # the timer's refill
    a, out = originate_park(conn)
    assert out == f"+OK {a}\n"


def test_the_far_leg_of_a_loopback_sip_call_can_be_the_one_refused(switch, conn):
    clock = Clock()
    switch.throttle.clock = clock
    switch.sessions_per_second = 4          # 3 sessions a window: one call and our next leg only
    a, out = originate_park(conn)
    assert out == f"+OK {a}\n"
    a2, out = originate_park(conn)
    # our INVITE reaches our own profile, which answers 503: NORMAL_TEMPORARY_FAILURE
    assert out == "-ERR NORMAL_TEMPORARY_FAILURE\n"
    wait_for(lambda: a2 not in switch.channels)


def test_a_trunk_call_past_the_rate_gets_503_and_no_channel(switch, conn):
    clock = Clock()
    switch.throttle.clock = clock
    switch.sessions_per_second = 3
    switch.place_call("7000", "15550000001")
    switch.place_call("7000", "15550000002")
    before = len(conn.seen)
    with pytest.raises(SipRefused, match="503 Maximum Calls In Progress"):
        switch.place_call("7000", "15550000003")
    assert len(switch.channels) == 2
    clock.now += 1
    switch.place_call("7000", "15550000004")
    assert len(switch.channels) == 3
    assert not any("15550000003" in str(e.headers()) for e in conn.seen[before:])


def test_max_sessions_refuses_the_session_past_it(switch, conn):
    switch.max_sessions = 3
    a, out = originate_park(conn)
    assert out == f"+OK {a}\n"
    switch.place_call("7000", "15550000001")
    with pytest.raises(SipRefused, match="503"):
        switch.place_call("7000", "15550000002")
    assert originate_park(conn)[1] == "-ERR DESTINATION_OUT_OF_ORDER\n"


def test_limits_come_from_the_configuration_else_the_vanilla_ones(tmp_path):
    conf = tmp_path / "autoload_configs"
    conf.mkdir()
    (conf / "switch.conf.xml").write_text(
        '<configuration name="switch.conf"><settings>'
        '<param name="max-sessions" value="1600"/><param name="sessions-per-second" value="120"/>'
        '</settings></configuration>')
    assert read_limits(tmp_path) == (1600, 120)
    sw = Switch([DIALPLAN], conf_dir=tmp_path)
    assert (sw.max_sessions, sw.sessions_per_second) == (1600, 120)
    vanilla = Switch([DIALPLAN])
    assert (vanilla.max_sessions, vanilla.sessions_per_second) == (1000, 30)


def test_a_scenario_caller_refused_by_the_switch_is_reported_not_crashed(switch):
    from engine.sim.endpoints import ScenarioRunner
    from engine.sim.scenario import CallerSpec, Scenario
    switch.throttle.clock = Clock()
    switch.sessions_per_second = 4                                      # 3 sessions this window
    scenario = Scenario(duration=5, callers=(CallerSpec(did="7000", number="138", count=4, every=0,
                                                        abandon_after=0.1),))
    results = ScenarioRunner(switch, scenario).start().wait()
    refused = [r for r in results if r.cause.startswith("503")]
    assert len(results) == 4 and len(refused) == 1
    assert not refused[0].uuid and not refused[0].answered and refused[0].hung_up_by == "switch"
    assert all(r.uuid for r in results if r not in refused)
