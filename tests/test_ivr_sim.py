"""IVR flows over the simulator: the shipped 12345/12333 samples, driven by DTMF through the daemon.

The engine runs in this process but reaches the simulator only over TCP; the clock it decides
schedules by is fixed per test. Prompts are real espeak-ng renderings (cached across tests).
"""
import datetime
import json
import shutil
import tempfile
import zoneinfo
from pathlib import Path

import gevent
import pytest
from gevent.pywsgi import WSGIServer

from tests.enginefix import Rig

REPO = Path(__file__).resolve().parent.parent
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
PROMPT_CACHE = Path(tempfile.gettempdir()) / "hotline-test-prompts"


def resident_id(body17):
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    check = "10X98765432"[sum(int(d) * w for d, w in zip(body17, weights)) % 11]
    return body17 + check


@pytest.fixture
def business():
    """A local stand-in for the pension business system the `lookup` node queries."""
    seen = []
    mode = {"answer": "ok"}          # ok | not_found | slow

    def app(environ, start_response):
        seen.append(environ.get("QUERY_STRING", ""))
        if mode["answer"] == "not_found":
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "no such person"}']
        if mode["answer"] == "slow":
            gevent.sleep(2)          # beyond the lookup's timeout (set to 0.3 s in `flows`)
        body = json.dumps({"data": {"paid_through": "2026年10月", "months": 120}}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    yield f"http://127.0.0.1:{server.server_port}", seen, mode
    server.stop()


@pytest.fixture
def flows(tmp_path, business):
    """The shipped flows, with the business system's address pointed at the local stand-in."""
    dst = tmp_path / "flows"
    shutil.copytree(REPO / "ivr_flows", dst)
    si = dst / "shared" / "social_insurance.yaml"
    text = si.read_text().replace("http://127.0.0.1:8089", business[0])
    assert "    timeout: 3\n" in text
    si.write_text(text.replace("    timeout: 3\n", "    timeout: 0.3\n"))
    return dst


def run_call(tmp_path, flows, when, keys, until=None, timeout=20):
    """One trunk call to 12345 at `when`; `keys` pressed right after answer (type-ahead)."""
    rig = Rig(tmp_path, flows_dir=flows, clock=lambda: when, paths_prompt_cache=PROMPT_CACHE)
    try:
        ch = rig.call("13800138000", "Tester")
        with gevent.Timeout(timeout):
            while "CHANNEL_ANSWER" not in ch.events:
                gevent.sleep(0.01)
            if keys:
                ch.press(keys)
            while until and not until(ch, rig) and not ch.wait_hangup(0.02):
                pass
        if not ch.wait_hangup(0):
            ch.hangup()
        with gevent.Timeout(10):
            while not rig.cdrs():
                gevent.sleep(0.02)
        return rig.cdrs()[0]
    finally:
        rig.stop()


def reached(node, times=1):
    """Stop the caller once the engine has walked `node` that many times (in-process view)."""
    def check(ch, rig):
        call = rig.engine.calls.get(ch.uuid)
        return call is not None and [s["node"] for s in call.path].count(node) >= times
    return check


def nodes(cdr):
    return [step["node"] for step in cdr["ivr_path"]]


def test_five_levels_by_dtmf_reach_the_lookup_and_the_cdr_holds_the_path(tmp_path, flows, business):
    when = datetime.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)       # a Wednesday morning
    id_number = resident_id("33010219900101123")
    cdr = run_call(tmp_path, flows, when, "11111" + id_number + "#",
                   until=lambda ch, rig: ch.events.count("PLAYBACK_START") >= 3)   # welcome, wait, result
    path = nodes(cdr)
    assert path[:9] == ["12345:start", "12345:hours", "12345:welcome", "12345:main_menu",
                        "12345:to_social_insurance", "si:si_menu", "si:pension_menu",
                        "si:contribution_menu", "si:query_menu"]
    assert "si:ask_id" in path and "si:query_contributions" in path
    steps = {s["node"]: s for s in cdr["ivr_path"]}
    assert steps["si:query_contributions"]["branch"] == "ok"
    assert steps["12345:main_menu"]["digits"] == "1"
    assert business[1] and id_number in business[1][0]
    assert "ivr:12345" in cdr["tags"]


@pytest.mark.parametrize("answer, branch", [("not_found", "not_found"), ("slow", "error")])
def test_lookup_not_found_and_timeout_over_the_simulator(tmp_path, flows, business, answer, branch):
    business[2]["answer"] = answer
    when = datetime.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)
    cdr = run_call(tmp_path, flows, when, "11111" + resident_id("33010219900101123") + "#",
                   until=reached("si:query_contributions"))
    steps = {s["node"]: s for s in cdr["ivr_path"]}
    assert steps["si:query_contributions"]["branch"] == branch


def test_after_hours_and_holiday_variants_by_date(tmp_path, flows):
    evening = datetime.datetime(2026, 11, 25, 20, 0, tzinfo=SHANGHAI)
    cdr = run_call(tmp_path / "a", flows, evening, "", until=lambda ch, rig: "PLAYBACK_START" in ch.events)
    assert nodes(cdr)[:3] == ["12345:start", "12345:hours", "12345:after_hours"]
    national_day = datetime.datetime(2026, 10, 2, 10, 0, tzinfo=SHANGHAI)
    cdr = run_call(tmp_path / "b", flows, national_day, "", until=lambda ch, rig: "PLAYBACK_START" in ch.events)
    assert nodes(cdr)[:3] == ["12345:start", "12345:hours", "12345:holiday"]
    makeup_saturday = datetime.datetime(2026, 10, 10, 10, 0, tzinfo=SHANGHAI)      # 调休 workday
    cdr = run_call(tmp_path / "c", flows, makeup_saturday, "", until=lambda ch, rig: "PLAYBACK_START" in ch.events)
    assert nodes(cdr)[:3] == ["12345:start", "12345:hours", "12345:welcome"]


def test_invalid_digits_exhaust_retries_and_go_where_configured(tmp_path, flows):
    when = datetime.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)
    state = {"seen": 0}

    def press_into_every_prompt(ch, rig):       # a caller who keeps pressing a key no menu has
        starts = ch.events.count("PLAYBACK_START")
        if starts > state["seen"]:
            state["seen"] = starts
            ch.press("7")
        return reached("12345:main_menu")(ch, rig)
    cdr = run_call(tmp_path, flows, when, "", until=press_into_every_prompt)
    steps = [s for s in cdr["ivr_path"] if s["node"] == "12345:main_menu"]
    assert steps and steps[-1]["branch"] == "invalid"
    assert "12345:leave_message" in nodes(cdr)


def test_hot_reload_during_live_calls(tmp_path, flows):
    """Calls in progress finish on the version they started with; a broken file changes nothing."""
    when = datetime.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)
    rig = Rig(tmp_path, flows_dir=flows, clock=lambda: when, paths_prompt_cache=PROMPT_CACHE)
    try:
        def in_main_menu(ch):
            call = rig.engine.calls.get(ch.uuid)
            with gevent.Timeout(10):
                while call is None or "12345:welcome" not in [s["node"] for s in call.path]:
                    gevent.sleep(0.02)
                    call = rig.engine.calls.get(ch.uuid)
            return call
        old = rig.call("13800000001")
        while "CHANNEL_ANSWER" not in old.events:
            gevent.sleep(0.01)
        old.press("#")                         # skip the welcome; now in the main menu
        old_call = in_main_menu(old)

        main = flows / "12345.yaml"
        text = main.read_text()
        assert '"3": complaint' in text and '"4": info' in text
        main.write_text(text.replace('"3": complaint', '"3": INFO').replace('"4": info', '"4": complaint')
                        .replace('"3": INFO', '"3": info'))      # keys 3 and 4 swapped
        assert rig.engine.reload() == []

        broken = flows / "broken.yaml"
        broken.write_text("name: broken\nnodes: [\n")
        problems = rig.engine.reload()
        assert problems and any("broken.yaml" in p for p in problems)
        broken.unlink()

        new = rig.call("13800000002")
        while "CHANNEL_ANSWER" not in new.events:
            gevent.sleep(0.01)
        new.press("#")
        new_call = in_main_menu(new)
        old.press("4")
        new.press("4")
        with gevent.Timeout(10):                 # both menus took the 4, each call is in its leaf
            while not all("12345:main_menu" in [s["node"] for s in c.path] for c in (old_call, new_call)):
                gevent.sleep(0.02)
        old.hangup()
        new.hangup()
        with gevent.Timeout(10):                 # the leaf a hung-up call was in is on its path too
            while rig.engine.calls:
                gevent.sleep(0.02)
        old_nodes = [s["node"] for s in old_call.path]
        new_nodes = [s["node"] for s in new_call.path]
        assert "12345:info" in old_nodes and "12345:complaint" not in old_nodes
        assert "12345:complaint" in new_nodes and "12345:info" not in new_nodes
    finally:
        rig.stop()


def test_asking_for_an_agent_before_queues_exist_is_told_not_cut_off(tmp_path, flows):
    when = datetime.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)
    # 0 cuts the welcome and picks "agent" in the main menu; the next prompt is the apology
    cdr = run_call(tmp_path, flows, when, "0", until=lambda ch, rig: ch.events.count("PLAYBACK_START") >= 2)
    assert "wanted_agent" in cdr["tags"]
    assert cdr["extra"]["ivr_outcome"] == "agent"
