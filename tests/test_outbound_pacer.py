"""The pacer on a scripted population with a fake clock (engine/outbound/pacesim.py): the
predictive mode holds the abandon rate of answered calls at or under its 3% target, keeps agents
busier than progressive, dials ahead on a large pool even with few agents free at once, and
never dials ahead when the campaign has few agents."""
import pytest

from engine.outbound.pacer import SAFETY, SOON_SHARE, Pacer, expected_excess
from engine.outbound.pacesim import simulate


@pytest.mark.parametrize("agents", [10, 20, 50])
def test_predictive_holds_abandon_target_and_beats_progressive(agents):
    predictive = simulate(Pacer("predictive", abandon_target=0.03), agents=agents, contacts=3000, seed=7)
    progressive = simulate(Pacer("progressive"), agents=agents, contacts=3000, seed=7)
    assert predictive.answered > 1000
    assert predictive.abandon_rate <= 0.03
    assert progressive.abandoned == 0                   # no caller ever waits for an agent
    if agents >= 20:                                    # dialling ahead pays with enough agents
        assert predictive.occupancy > progressive.occupancy
        assert predictive.finished_per_hour > progressive.finished_per_hour


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_abandon_target_over_seeds(seed):
    result = simulate(Pacer("predictive", abandon_target=0.03), agents=30, contacts=2000, seed=seed)
    assert result.abandon_rate <= 0.03


def measured_pacer(**kw):
    """A predictive pacer that has measured a 60% answer rate, 10 s rings and 100 s handling."""
    pacer = Pacer("predictive", **kw)
    for _ in range(200):
        pacer.dial_ended(answered=True, ring_seconds=10)
        pacer.dial_ended(answered=False)
        pacer.dial_ended(answered=True, ring_seconds=10)
    for _ in range(200):
        pacer.handled(100.0)
    return pacer


def test_few_agents_get_one_dial_each():
    pacer = measured_pacer()
    # 4 agents in all (under min_agents_predictive 5): progressive, never over-dial
    assert pacer.dials_to_make(free_agents=3, busy_agents=1, in_flight=0) == 3
    assert pacer.dials_to_make(free_agents=3, busy_agents=1, in_flight=3) == 0
    assert pacer.dials_to_make(free_agents=4, busy_agents=0, in_flight=0) == 4
    assert pacer.dials_to_make(free_agents=20, busy_agents=40, in_flight=0) > 20     # dials ahead


def test_large_pool_dials_ahead_with_few_free():
    # 50 agents, 48-49 busy, 1-2 free: agents come free one at a time, yet some of the busy ones
    # will be free by the time a new dial answers (ring 10 s of a 100 s handling time: 1 + 4.9
    # agents free or coming free, over min_agents_predictive 5)
    pacer = measured_pacer()
    progressive = Pacer("progressive")
    for free in (1, 2):
        busy = 50 - free
        n = pacer.dials_to_make(free_agents=free, busy_agents=busy, in_flight=0)
        assert n > progressive.dials_to_make(free_agents=free, busy_agents=busy, in_flight=0) == free
        assert n <= pacer.max_ratio * (free + busy * 10 / 100)       # never past max_ratio
        # the model held: expected answers with no agent within the target's safety share
        agents = free + SOON_SHARE * busy * pacer.ring_seconds / pacer.handle_seconds
        assert expected_excess(n, pacer.answer_rate, agents) <= SAFETY * 0.03 * n * pacer.answer_rate
        # dials already in flight count against the total
        assert pacer.dials_to_make(free_agents=free, busy_agents=busy, in_flight=n) == 0
    # no dial ahead while the measured abandon rate is over the target
    for _ in range(100):
        pacer.connected(abandoned=True)
    assert pacer.dials_to_make(free_agents=2, busy_agents=48, in_flight=0) == 2


def test_dials_in_flight_count_by_their_chance_to_answer():
    # half the dials are answered (after 10 s), but a no-answer rings 30 s: of every 51 s spent
    # connecting, 20 s are by dials that will be answered, so a dial up now answers 20/51 of the time
    pacer = Pacer("predictive")
    for _ in range(200):
        pacer.dial_ended(answered=True, ring_seconds=10)
        pacer.dial_ended(answered=False, ring_seconds=30)
        pacer.dial_ended(answered=True, ring_seconds=10)
        pacer.dial_ended(answered=False, ring_seconds=1)        # busy: over at once
    for _ in range(200):
        pacer.handled(130.0)
    assert pacer.in_flight_answer_rate == pytest.approx(20 / 51)
    assert pacer.answer_rate == pytest.approx((400 + 10) / (800 + 20))
    fresh = pacer.dials_to_make(free_agents=10, busy_agents=90, in_flight=0, now=0.0)
    assert fresh > 10
    # just made, they count in full: nothing more within the ring (no runaway on its own burst)
    assert pacer.dials_to_make(free_agents=10, busy_agents=90, in_flight=fresh, now=1.0) == 0
    # as many still up a minute on (mostly no-answers by now): a few more; twice as many: none
    ahead = pacer.dials_to_make(free_agents=10, busy_agents=90, in_flight=fresh, now=60.0)
    assert 0 < ahead < fresh
    assert pacer.dials_to_make(free_agents=10, busy_agents=90, in_flight=2 * fresh, now=120.0) == 0
    # without a clock every dial in flight counts in full
    assert pacer.dials_to_make(free_agents=10, busy_agents=90, in_flight=fresh) == 0
    # few agents in all: progressive counts every dial in flight, whatever its chance
    assert pacer.dials_to_make(free_agents=3, busy_agents=1, in_flight=2) == 1


def test_measured_abandons_over_target_fall_back_to_progressive():
    pacer = Pacer("predictive", abandon_target=0.03)
    for i in range(300):
        pacer.dial_ended(answered=i % 2 == 0, ring_seconds=10)
    for i in range(100):
        pacer.connected(abandoned=i % 10 == 0)          # 10% abandoned
    assert pacer.dials_to_make(free_agents=20, busy_agents=0, in_flight=0) == 20
    assert pacer.throttled
    for _ in range(300):
        pacer.connected(abandoned=False)
    assert pacer.dials_to_make(free_agents=20, busy_agents=0, in_flight=0) > 20
    assert not pacer.throttled


def test_preview_never_dials_and_progressive_counts_dials_in_flight():
    assert Pacer("preview").dials_to_make(10) == 0
    assert Pacer("progressive").dials_to_make(10, in_flight=4) == 6


def test_expected_excess():
    assert expected_excess(5, 0.6, 5) == 0.0
    assert expected_excess(2, 1.0, 1) == pytest.approx(1.0)
    assert expected_excess(2, 0.5, 1) == pytest.approx(0.25)        # both answer: 1 too many, p=1/4


def test_bench_outbound_pacing_runs():
    import os
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo)}
    out = subprocess.run([sys.executable, str(repo / "scripts/bench_outbound.py"), "pacing", "--contacts", "1000",
                          "--agents", "20"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "predictive" in out.stdout and "progressive" in out.stdout
