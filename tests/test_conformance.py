"""The simulator against the captured FreeSWITCH transcripts (engine/sim/conformance.py).

Targets from the issue: every event name in order and every reply text as the real switch sent
them, and at least 95% of the header names per event type. Two scenarios captured a race inside
FreeSWITCH (documented in KNOWN_RACES with the evidence); only those exact events may differ there. The scenarios run concurrently, each
on its own simulator; they take as long as their media does (a few seconds), not longer.
"""
import pytest

from engine.sim.conformance import SCENARIOS, run_all

@pytest.fixture(scope="module")
def results():
    return {r.name: r for r in run_all()}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_conforms(results, name):
    r = results[name]
    print(r.line())
    # Every event name in order, except where the captures prove a race inside FreeSWITCH
    # (KNOWN_RACES, each with its evidence); nothing else may differ.
    assert not r.unexplained_event_diffs, r.unexplained_event_diffs
    assert r.events >= 98.0
    assert r.replies == 100.0, r.reply_diffs
    assert r.headers_min >= 95.0, r.missing


def test_a_race_excuses_only_its_own_events():
    from engine.sim.conformance import explained_by_race
    name = "05b-outbound-socket-myevents-json-digits"
    assert explained_by_race(name, "outbound-socket", [" CHANNEL_CREATE", "-CHANNEL_PARK", " CHANNEL_EXECUTE"])
    assert not explained_by_race(name, "outbound-socket", ["-CHANNEL_PARK", "+CHANNEL_ANSWER"])
    assert not explained_by_race(name, "events-plain", ["-CHANNEL_PARK"])
    assert not explained_by_race("01-answer-playback-dtmf-hangup", "events-plain", ["-CHANNEL_PARK"])
