"""Unit tests per node type, over small flows and a FakeCall."""
import datetime

import pytest

from engine.ivr.nodes import collect, lookup, transfer
from engine.ivr.runtime import IvrRuntime
from tests.ivrfakes import BizServer, FakeCall, FakeRenderer, at, cn_id, write_flow


def make(tmp_path, nodes, prompts='{p: "请按键", hi: "您好{{ name }}"}', extra="", **kw):
    write_flow(tmp_path, f"name: t\nentry: {{'100': a}}\nfallback: fb\n{extra}prompts: {prompts}\nnodes:\n{nodes}"
               "  fb:\n    type: hangup\n    cause: NORMAL_TEMPORARY_FAILURE\n")
    rt = IvrRuntime(tmp_path, FakeRenderer(), **kw)
    assert rt.reload() == []
    return rt


def go(rt, keys=(), when="2026-10-12 10:00", **variables):
    call = FakeCall("100", list(keys), at(when))
    call.variables.update(variables)
    return rt.run(call), call


def test_cn_id_and_mobile_validators():
    assert collect.cn_id_valid(cn_id("11010119900307777"))
    assert not collect.cn_id_valid("110101199003077770") or cn_id("11010119900307777").endswith("0")
    assert collect.cn_id_valid("11010519491231002X") and collect.cn_id_valid("11010519491231002x")
    assert not collect.cn_id_valid("11010519491231002") and not collect.cn_id_valid("1101051949123100XX")
    assert collect.mobile_valid("13912345678") and not collect.mobile_valid("12912345678")
    assert not collect.mobile_valid("1391234567")


def test_collect_regex_and_variable(tmp_path):
    rt = make(tmp_path, """\
  a:
    type: collect
    prompt: p
    variable: order
    regex: "9\\\\d{3}"
    max_digits: 4
    retries: 1
    children: {ok: ok, invalid: bad}
  ok: {type: hangup}
  bad: {type: hangup, cause: CALL_REJECTED}
""")
    result, call = go(rt, ["1234", "9876"])
    assert call.variables["order"] == "9876" and result["cause"] == "NORMAL_CLEARING"
    result, call = go(rt, ["1", "2"])
    assert result["cause"] == "CALL_REJECTED" and "order" not in call.variables


def test_collect_mobile(tmp_path):
    rt = make(tmp_path, """\
  a: {type: collect, prompt: p, variable: m, validator: mobile, max_digits: 11, children: {ok: ok, invalid: ok}}
  ok: {type: hangup}
""")
    _, call = go(rt, ["13812345678"])
    assert call.variables["m"] == "13812345678"


def test_play_say_set_and_templates(tmp_path):
    rt = make(tmp_path, """\
  a:
    type: set
    variables: {name: "{{ caller[-4:] }}号", amount: "1234.5"}
    tags: [vip]
    children: {next: b}
  b: {type: play, prompt: hi, children: {next: c}}
  c: {type: say, kind: money, value: "{{ amount }}", children: {next: d}}
  d: {type: say, kind: digits, value: "{{ caller }}", children: {next: i}}
  i: {type: say, kind: id_number, value: "11010519491231002X", children: {next: e}}
  e: {type: hangup}
""")
    result, call = go(rt)
    assert call.tags == ["vip"]
    assert result["heard"][0] == "您好8000号"
    assert "元" in result["heard"][1] and result["heard"][2].startswith("一三八")
    assert result["heard"][3] == "一一零一零五一九四九一二三一零零二叉"
    assert [e["type"] for e in call.path] == ["set", "play", "say", "say", "say", "hangup"]
    assert all(set(e) == {"node", "type", "branch", "digits", "ms"} for e in call.path)


def test_a_template_is_compiled_once_for_every_call_that_renders_it(monkeypatch):
    from engine.ivr import runtime
    compiled = []
    real = runtime._JINJA.from_string
    monkeypatch.setattr(runtime._JINJA, "from_string", lambda text: compiled.append(text) or real(text))
    text = "{{ name }}您好，您在{{ ticket_date }}反映的问题（cache test）"
    for name in ("张伟", "李娜", "王芳"):
        assert runtime.render_template(text, {"name": name, "ticket_date": "11月20日"}) == \
            f"{name}您好，您在11月20日反映的问题（cache test）"
    assert compiled.count(text) <= 1
    with pytest.raises(runtime.NodeError):          # a broken template still says so, every time
        runtime.render_template("{{ name", {"name": "x"})
    with pytest.raises(runtime.NodeError):
        runtime.render_template("{{ name", {"name": "x"})


def test_undefined_template_variable_follows_error_then_fallback(tmp_path):
    rt = make(tmp_path, """\
  a: {type: play, prompt: hi, children: {next: b}}
  b: {type: hangup}
""")
    result, call = go(rt)
    assert call.path[0]["branch"] == "error"
    assert call.path[1]["node"] == "t:fb" and result["cause"] == "NORMAL_TEMPORARY_FAILURE"


def test_transition_cap_sends_to_fallback(tmp_path):
    rt = make(tmp_path, """\
  a: {type: menu, prompt: p, children: {"1": b, timeout: fb}}
  b: {type: set, children: {next: a}}
""", max_transitions=20)
    result, call = go(rt, ["1"] * 50)
    assert len(call.path) == 21 and call.path[-1]["node"] == "t:fb"
    assert result["outcome"] == "hangup"


def test_transition_cap_in_the_fallback_too_ends_with_fallback_outcome(tmp_path):
    write_flow(tmp_path, "name: t\nentry: {'100': a}\nfallback: a\nprompts: {p: x}\nnodes:\n"
               "  a: {type: menu, prompt: p, children: {'1': b, timeout: z}}\n  b: {type: set, children: {next: a}}\n"
               "  z: {type: hangup}\n")
    rt = IvrRuntime(tmp_path, FakeRenderer(), max_transitions=10)
    assert rt.reload() == []
    result, call = go(rt, ["1"] * 100)
    assert result["outcome"] == "fallback" and "more than 10 transitions" in result["reason"]
    assert len(call.path) == 20 and call.hung_up is None


def test_schedule_node_windows_and_holiday(tmp_path):
    rt = make(tmp_path, """\
  a: {type: schedule, children: {day: d, holiday: h, closed: c}}
  d: {type: hangup, cause: USER_BUSY}
  h: {type: hangup, cause: CALL_REJECTED}
  c: {type: hangup}
""", extra="schedule: {timezone: Asia/Shanghai, windows: {day: {days: [mon, tue, wed, thu, fri], hours: ['09:00-17:00']}},"
           " holidays: ['2026-12-25'], workdays: ['2026-12-27']}\n")
    assert go(rt, when="2026-12-24 09:00")[0]["cause"] == "USER_BUSY"
    assert go(rt, when="2026-12-24 08:59")[0]["cause"] == "NORMAL_CLEARING"
    assert go(rt, when="2026-12-25 10:00")[0]["cause"] == "CALL_REJECTED"
    assert go(rt, when="2026-12-27 10:00")[0]["cause"] == "USER_BUSY"     # Sunday, make-up day
    assert go(rt, when="2026-12-26 10:00")[0]["cause"] == "NORMAL_CLEARING"


def test_voicemail_records_and_tags(tmp_path):
    rt = make(tmp_path, "  a: {type: voicemail, prompt: p, max_seconds: 30, box: tax}\n", voicemail_dir=str(tmp_path / "vm"))
    result, call = go(rt)
    assert result["outcome"] == "voicemail" and call.recorded == [str(tmp_path / "vm" / "tax" / "walk-0001.wav")]
    assert "voicemail:tax" in call.tags and call.variables["voicemail_seconds"] == 12.0
    assert call.hung_up == "NORMAL_CLEARING"


def test_transfer_and_dial_block_list(tmp_path, monkeypatch):
    assert transfer.blocked("0085212345678") and transfer.blocked("19001234") and transfer.blocked("110")
    assert not transfer.blocked("11012345678") and not transfer.blocked("057187654321")
    assert transfer.blocked("057112345", ["/0571\\d+/"])
    rt = make(tmp_path, """\
  a: {type: transfer, number: "057187654321", children: {blocked: fb}}
""")
    result, call = go(rt)
    assert result == {**result, "outcome": "transferred", "number": "057187654321"}
    assert call.transferred == "057187654321"
    # the list grew after load: a `block` entry in the database (hotline lists add block 0571*)
    from engine.outbound import dialblock
    from engine.outbound.lists import NumberLists
    store = NumberLists(f"sqlite:///{tmp_path / 'lists.db'}").open()
    store.add("block", "0571*")
    store.reload()
    monkeypatch.setattr(dialblock, "_active", store)
    result, call = go(rt)
    assert call.transferred is None and call.path[0]["branch"] == "blocked" and call.path[1]["node"] == "t:fb"


def test_goto_other_flow_and_menu_type_ahead(tmp_path):
    write_flow(tmp_path, "name: s\nprompts: {p: x}\nnodes:\n  x: {type: menu, prompt: p, children: {'5': y, timeout: y}}\n"
               "  y: {type: hangup, cause: USER_BUSY}\n", "shared.yaml")
    rt = make(tmp_path, "  a: {type: goto, target: 's:x'}\n")
    call = FakeCall("100", [], at("2026-10-12 10:00"))
    call.buffer = "5"             # pressed before the menu prompt began
    result = rt.run(call)
    assert result["cause"] == "USER_BUSY" and call.path[1] == {**call.path[1], "node": "s:x", "branch": "5", "digits": "5"}


@pytest.fixture
def biz():
    server = BizServer({"1": {"name": "张三", "items": [{"v": 7}]}, "empty": []}, delay=0)
    yield server
    server.stop()


def lookup_flow(tmp_path, url, method="GET", timeout=1.0, body=""):
    return make(tmp_path, f"""\
  a:
    type: lookup
    method: {method}
    url: "{url}"
    timeout: {timeout}
    {body}
    fields: {{who: data.name, first: data.items.0.v}}
    children: {{ok: ok, not_found: nf, error: err}}
  ok: {{type: hangup}}
  nf: {{type: hangup, cause: UNALLOCATED_NUMBER}}
  err: {{type: hangup, cause: CALL_REJECTED}}
""")


def test_lookup_ok_not_found_error(tmp_path, biz):
    rt = lookup_flow(tmp_path, "{{ base }}/q?id={{ ident }}")
    result, call = go(rt, base=biz.url, ident="1")
    assert result["cause"] == "NORMAL_CLEARING" and call.variables["who"] == "张三" and call.variables["first"] == 7
    assert go(rt, base=biz.url, ident="nobody")[0]["cause"] == "UNALLOCATED_NUMBER"
    assert go(rt, base=biz.url, ident="500")[0]["cause"] == "CALL_REJECTED"
    assert go(rt, base=biz.url, ident="badjson")[0]["cause"] == "CALL_REJECTED"


def test_lookup_post_body_and_timeout(tmp_path):
    slow = BizServer({"1": {"name": "x"}}, delay=0.5)
    try:
        rt = lookup_flow(tmp_path, "{{ base }}/q?id=1", method="POST", timeout=0.1, body="body: '{\"id\": \"{{ ident }}\"}'")
        started = datetime.datetime.now()
        result, call = go(rt, base=slow.url, ident="1")
        assert result["cause"] == "CALL_REJECTED" and call.path[0]["branch"] == "error"
        assert (datetime.datetime.now() - started).total_seconds() < 0.45
    finally:
        slow.stop()


def test_dotted_paths():
    data = {"a": {"b": [{"c": 1}]}}
    assert lookup.dotted(data, "a.b.0.c") == 1 and lookup.dotted(data, "a.x") is lookup._MISSING


def test_schedule_with_chinese_calendar(tmp_path):
    rt = make(tmp_path, """\
  a: {type: schedule, children: {day: d, holiday: h, closed: c}}
  d: {type: hangup, cause: USER_BUSY}
  h: {type: hangup, cause: CALL_REJECTED}
  c: {type: hangup}
""", extra="schedule: {cn_calendar: true, windows: {day: {days: [mon, tue, wed, thu, fri], hours: ['09:00-17:00']}}}\n")
    assert go(rt, when="2026-10-02 10:00")[0]["cause"] == "CALL_REJECTED"    # National Day, a Friday
    assert go(rt, when="2026-10-10 10:00")[0]["cause"] == "USER_BUSY"        # Saturday worked (调休)
    assert go(rt, when="2026-10-17 10:00")[0]["cause"] == "NORMAL_CLEARING"  # ordinary Saturday
    assert go(rt, when="2026-10-13 10:00")[0]["cause"] == "USER_BUSY"
