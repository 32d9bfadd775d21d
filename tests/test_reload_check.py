"""Reloads are checked in a bounded process before the swap: a hostile file costs that process
(time and memory limits), never the hub that carries the calls (issue 17, section 4)."""
import sys

import gevent

from engine.infra.configcheck import check_files, run_limited
from tests.test_control_api import TOKENS, api, rig  # noqa: F401  (the fixture)
from tests.test_hostile_yaml import BOMB


def ticking():
    """A greenlet counting hub turns: it advances only while the hub is free."""
    ticks = [0]

    def run():
        while True:
            ticks[0] += 1
            gevent.sleep(0.01)
    return ticks, gevent.spawn(run)


def test_a_checker_over_its_time_is_stopped_and_the_hub_stays_free():
    ticks, ticker = ticking()
    code, out, problem = run_limited([sys.executable, "-c", "while True: pass"], seconds=1)
    ticker.kill()
    assert problem == "checking took longer than 1 s" and out == ""
    assert ticks[0] > 5                  # the hub turned while the checker spun


def test_a_checker_over_its_memory_is_stopped():
    code, out, problem = run_limited([sys.executable, "-c", "x = bytearray(3 * 2**30)"],
                                     memory=512 * 2**20)
    assert problem == "checking needed more than 512 MB"


def test_check_files_reports_every_file(tmp_path):
    (tmp_path / "agents.yaml").write_text(BOMB)
    (tmp_path / "queues.yaml").write_text("queues: {}\n")
    problems = check_files(agents=tmp_path / "agents.yaml", queues=tmp_path / "queues.yaml")
    assert len(problems) == 1 and "alias *l0 refused" in problems[0]


def test_reload_of_a_bomb_is_refused_and_the_running_version_kept(rig):  # noqa: F811
    agents_file = rig.settings.files.agents
    good = agents_file.read_text()
    agents_file.write_text(good + BOMB)
    before = rig.acd.config
    ticks, ticker = ticking()
    answer = api(rig, "TOK_ADMIN").post("/v1/reload")
    ticker.kill()
    assert answer["reloaded"] is False and any("alias *l0 refused" in p for p in answer["problems"])
    assert rig.acd.config is before and ticks[0] > 1
    agents_file.write_text(good)
    assert api(rig, "TOK_ADMIN").post("/v1/reload") == {"reloaded": True, "problems": []}
    assert rig.acd.config is not before
