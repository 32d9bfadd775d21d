"""The simulator against the captured FreeSWITCH transcripts (engine/sim/conformance.py).

Targets from the issue: every event name in order and every reply text as the real switch sent
them, and at least 95% of the header names per event type. The scenarios run concurrently, each
on its own simulator; they take as long as their media does (a few seconds), not longer.
"""
import pytest

from engine.sim.conformance import SCENARIOS, run_all
from engine.sim.transcript import default_fixture_dir

pytestmark = pytest.mark.skipif(default_fixture_dir() is None, reason="fixtures not found")


@pytest.fixture(scope="module")
def results():
    return {r.name: r for r in run_all()}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_conforms(results, name):
    r = results[name]
    print(r.line())
    assert r.events == 100.0, r.event_diffs
    assert r.replies == 100.0, r.reply_diffs
    assert r.headers_min >= 95.0, r.missing
