"""Simulated phones: scenario files, callers against the real daemon, agents' phones rung by originate."""
import gevent
import pytest

from engine.daemon import welcome_handler
from engine.sim.endpoints import ScenarioRunner
from engine.sim.scenario import AgentSpec, CallerSpec, Press, Scenario, ScenarioError, load_scenario
from engine.sim.switch import Switch
from tests.enginefix import SHORT_TONE, Rig


def write(tmp_path, text):
    p = tmp_path / "scenario.yaml"
    p.write_text(text)
    return p


def test_scenario_file_errors_name_the_line(tmp_path):
    ok = load_scenario(write(tmp_path, 'callers:\n  - {did: "12345", number: "1", presses: [{after: 1, digits: "1#"}]}\n'))
    assert ok.callers[0].presses[0].digits == "1#"
    with pytest.raises(ScenarioError, match=r"scenario.yaml:3:25: agents\[0\].behaviour: must be one of"):
        load_scenario(write(tmp_path, 'callers: []\nagents:\n  - {extension: "1001", behaviour: sleepy}\n'))
    with pytest.raises(ScenarioError, match=r":2:\d+: callers\[0\].presses\[0\].digits: not DTMF digits"):
        load_scenario(write(tmp_path, 'callers:\n  - {did: "1", number: "2", presses: [{after: 1, digits: "x;"}]}\n'))
    with pytest.raises(ScenarioError, match=r"callers\[0\].numbr: unknown setting \(did you mean 'number'"):
        load_scenario(write(tmp_path, 'callers:\n  - {did: "1", numbr: "2"}\n'))
    with pytest.raises(ScenarioError, match=r"invalid YAML"):
        load_scenario(write(tmp_path, 'callers: [\n'))


def test_callers_against_the_daemon(tmp_path):
    pressed = []

    def handler(call):
        call.answer()
        call.play(["silence_stream://400"])
        pressed.append(call.get_digits(2, timeout=1.0, inter_digit_timeout=0.3))
        call.hangup()
    rig = Rig(tmp_path, handler)
    try:
        scenario = Scenario(duration=5, callers=(
            CallerSpec(did="12345", number="138", count=3, every=0.05, presses=(Press(after=0.1, digits="42"),)),
            CallerSpec(did="12345", number="139", name="quits", hangup_after=0.2),
        ))
        results = ScenarioRunner(rig.switch, scenario).start().wait()
        by_number = {r.number: r for r in results}
        assert set(by_number) == {"1380", "1381", "1382", "139"}
        assert all(by_number[n].answered and by_number[n].pressed == "42"
                   and by_number[n].hung_up_by == "switch" for n in ("1380", "1381", "1382"))
        assert by_number["139"].hung_up_by == "caller"
        assert sorted(p for p in pressed if p) == ["42", "42", "42"]
    finally:
        rig.stop()


def test_caller_abandons_before_answer(tmp_path):
    rig = Rig(tmp_path, lambda call: call.wait_gone(3))      # never answers
    try:
        scenario = Scenario(duration=5, callers=(CallerSpec(did="12345", number="137", abandon_after=0.2),))
        (result,) = ScenarioRunner(rig.switch, scenario).start().wait()
        assert result.abandoned and not result.answered
        assert result.cause == "ORIGINATOR_CANCEL" and result.hung_up_by == "caller"
    finally:
        rig.stop()


def test_agent_phones_answer_reject_busy_and_change_live():
    switch = Switch(password="x")
    switch.start()
    try:
        runner = ScenarioRunner(switch, Scenario(agents=(
            AgentSpec(extension="1001", answer_after=0.05),
            AgentSpec(extension="1002", behaviour="reject"),
            AgentSpec(extension="1003", behaviour="busy")))).start()
        assert switch.api("originate user/1001 &park()").startswith("+OK")
        assert runner.phones["1001"].answered == 1
        assert "CALL_REJECTED" in switch.api("originate user/1002 &park()")
        assert "USER_BUSY" in switch.api("originate user/1003 &park()")
        runner.set_agent("1001", behaviour="reject")                  # changed while running
        assert "CALL_REJECTED" in switch.api("originate user/1001 &park()")
        runner.set_agent("1001", registered=False)
        assert "USER_NOT_REGISTERED" in switch.api("originate user/1001 &park()")
    finally:
        switch.stop()
