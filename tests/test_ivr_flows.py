"""The shipped samples over the runtime: five menu levels, lookup, schedules, fallbacks, reload."""
import pathlib
import shutil

import pytest

from engine.ivr.loader import load_flows
from engine.ivr.runtime import IvrRuntime
from engine.ivr.schema import schema_text
from tests.ivrfakes import BizServer, FakeCall, FakeRenderer, at, cn_id

FLOWS = pathlib.Path(__file__).resolve().parents[1] / "ivr_flows"
ID = cn_id("11010119900307777")


@pytest.fixture
def biz():
    server = BizServer({ID: {"paid_through": "2026年9月", "months": 180}})
    yield server
    server.stop()


@pytest.fixture
def runtime():
    rt = IvrRuntime(FLOWS, FakeRenderer())
    assert rt.reload() == []
    return rt


def run(rt, did, keys, when="2026-10-12 10:00", **variables):
    call = FakeCall(did, keys, at(when))
    call.variables.update(variables)
    return rt.run(call), call


def test_samples_pass_lint_and_schema_is_current():
    _, problems = load_flows(FLOWS, strict=False)
    assert problems == []
    assert (FLOWS / "schema.json").read_text(encoding="utf-8") == schema_text()


def test_static_prompts_rendered_at_load():
    renderer = FakeRenderer()
    IvrRuntime(FLOWS, renderer).reload()
    assert "您好，欢迎致电12345政务服务便民热线。" in renderer.rendered
    assert not any("{{" in text for text in renderer.rendered)


def test_five_levels_to_pension_lookup(runtime, biz):
    result, call = run(runtime, "12345", ["1", "1", "1", "1", "1", ID + "#"], biz_base_url=biz.url)
    nodes = [e["node"] for e in call.path]
    assert nodes[3:] == ["12345:main_menu", "12345:to_social_insurance", "si:si_menu", "si:pension_menu",
                         "si:contribution_menu", "si:query_menu", "si:ask_id", "si:query_contributions",
                         "si:tell_paid_through", "si:tell_months", "si:goodbye"]
    assert call.path[9]["digits"] == ID and call.path[10]["branch"] == "ok"
    assert result["outcome"] == "hangup" and call.hung_up == "NORMAL_CLEARING"
    assert "您的养老保险已缴费至2026年9月。" in result["heard"]
    assert "累计缴费一百八十个月。" in result["heard"]
    assert biz.requests == [("/pension/contributions", {"id": [ID]})]
    assert "ivr:12345" in call.tags


def test_id_with_x_keyed_as_star(runtime, biz):
    ident = next(cn_id(f"1101011990030{n:04d}") for n in range(100) if cn_id(f"1101011990030{n:04d}").endswith("X"))
    biz.records[ident] = {"paid_through": "2025年1月", "months": 3}
    result, call = run(runtime, "12333", ["1", "1", "1", "1", ident[:-1] + "*#"], biz_base_url=biz.url)
    assert call.variables["id_number"] == ident and result["outcome"] == "hangup"


def test_lookup_not_found_and_error(runtime, biz):
    result, call = run(runtime, "12333", ["1", "1", "1", "1", cn_id("44030419851212345") + "#"], biz_base_url=biz.url)
    assert [e["branch"] for e in call.path if e["type"] == "lookup"] == ["not_found"]
    assert "没有查到您的缴费记录。" in result["heard"]
    result, call = run(runtime, "12333", ["1", "1", "1", "1", ID + "#"], biz_base_url="http://127.0.0.1:1")
    assert [e["branch"] for e in call.path if e["type"] == "lookup"] == ["error"]
    assert result["outcome"] == "hangup"


def test_invalid_id_exhausts_retries_to_voicemail(runtime):
    bad = "110101199003077770#"
    result, call = run(runtime, "12333", ["1", "1", "1", "1", bad, bad, bad])
    assert call.path[-2]["branch"] == "invalid"
    assert result["outcome"] == "voicemail" and result["box"] == "social_insurance"


def test_menu_invalid_and_no_input_go_where_configured(runtime):
    result, call = run(runtime, "12345", ["7", "8", "5"])
    assert call.path[3]["branch"] == "invalid" and result["outcome"] == "voicemail"
    assert result["heard"].count("输入有误，请重新选择。") == 2
    result, call = run(runtime, "12345", ["", "", ""])
    assert call.path[3]["branch"] == "timeout" and result["box"] == "general"
    result, call = run(runtime, "12345", ["", "2", "1"])      # one timeout, then a valid key
    assert [e["node"] for e in call.path][-2:] == ["12345:housing_withdraw", "12345:goodbye"]


def test_back_repeat_and_agent_keys(runtime):
    result, call = run(runtime, "12345", ["2", "*", "9", "4"])
    nodes = [e["node"] for e in call.path]
    assert nodes[3:6] == ["12345:main_menu", "12345:housing_menu", "12345:main_menu"]
    assert nodes[-2] == "12345:info"
    result, call = run(runtime, "12345", ["1", "0"])
    assert result == {**result, "outcome": "agent", "queue": "pension"}   # the si_agent queue node


@pytest.mark.parametrize("when, branch", [
    ("2026-10-01 10:00", "holiday"),          # National Day
    ("2026-10-12 10:00", "business"),         # a Monday
    ("2026-10-12 12:30", "closed"),           # lunch break
    ("2026-10-10 10:00", "business"),         # Saturday, make-up working day (调休)
    ("2026-10-17 10:00", "weekend_duty"),     # ordinary Saturday morning
    ("2026-10-17 15:00", "closed"),
])
def test_schedule_variants_by_date(runtime, when, branch):
    result, call = run(runtime, "12345", ["4"], when)
    assert call.path[1]["branch"] == branch
    if branch in ("holiday", "closed"):
        assert result["outcome"] == "voicemail"


def test_override_closed_and_emergency(tmp_path):
    overrides = tmp_path / "ivr_overrides.json"
    rt = IvrRuntime(FLOWS, FakeRenderer(), overrides_path=str(overrides))
    assert rt.reload() == []
    rt.overrides.set("12345", "emergency", "因系统维护，热线暂停人工服务。")
    result, call = run(rt, "12345", [])
    assert call.path[1]["branch"] == "emergency" and "因系统维护，热线暂停人工服务。" in result["heard"]
    rt.overrides.clear("12345")
    result, call = run(rt, "12345", ["4"])
    assert call.path[1]["branch"] == "business"
    rt.overrides.set("12345", "open")                        # staff on duty late: open at 22:00
    result, call = run(rt, "12345", ["4"], "2026-10-12 22:00")
    assert call.path[1]["branch"] == "business" and result["outcome"] != "voicemail"
    rt.overrides.clear("12345")
    result, call = run(rt, "12345", ["4"], "2026-10-12 22:00")
    assert call.path[1]["branch"] == "closed"


def test_reload_keeps_running_version_on_broken_file_and_calls_keep_theirs(tmp_path):
    flows = tmp_path / "flows"
    shutil.copytree(FLOWS, flows)
    rt = IvrRuntime(flows, FakeRenderer())
    assert rt.reload() == []
    old = rt.flowset
    text = (flows / "12345.yaml").read_text(encoding="utf-8")
    (flows / "12345.yaml").write_text(text.replace('"2": housing_menu', '"2": nowhere'), encoding="utf-8")
    problems = rt.reload()
    assert any("12345.yaml" in p and "no node 'nowhere'" in p for p in problems)
    assert rt.flowset is old
    # A call that started before a good reload finishes on its version.
    (flows / "12345.yaml").write_text(text.replace("人工服务请按0。", "人工服务请按0，新版本。"), encoding="utf-8")
    call = FakeCall("12345", ["4"], at("2026-10-12 10:00"))
    original_play = call.play

    def play_and_reload(sources, interruptible=True):
        if len(call.path) == 3 and rt.flowset is old:
            assert rt.reload() == []
        return original_play(sources, interruptible)
    call.play = play_and_reload
    result = rt.run(call)
    assert rt.flowset is not old
    assert any("人工服务请按0。" in h for h in result["heard"])
    assert result2_heard(rt)


def result2_heard(rt):
    result, _ = run(rt, "12345", ["4"])
    return any("新版本" in h for h in result["heard"])
