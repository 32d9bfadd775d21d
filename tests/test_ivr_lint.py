"""Lint reports every problem at once, at the exact file:line:column, in plain words."""
import json
import pathlib
import subprocess
import sys
import wave

import pytest

from engine.acd.config import load_acd
from engine.ivr.lint import LintOptions, lint_flows, spoken_seconds
from engine.ivr.loader import FlowError, load_flows
from tests.ivrfakes import write_flow

REPO = pathlib.Path(__file__).resolve().parents[1]

GOOD_HEAD = """\
name: t
entry: {"100": m}
prompts: {p: "请按键"}
nodes:
"""


def lint(tmp_path, text):
    path = write_flow(tmp_path, text)
    _, problems = load_flows([path], strict=False)
    return [p.replace(str(path), "F") for p in problems]


def lint_all(tmp_path, text, **options):
    """Errors and warnings, as `hotline ivr lint` prints them."""
    path = write_flow(tmp_path, text)
    _, problems, _ = lint_flows([path], LintOptions(**options))
    return [p.lint_text().replace(str(path), "F") for p in problems]


def test_yaml_syntax_error_has_position(tmp_path):
    assert lint(tmp_path, "nodes:\n  a: [1, 2\n  b: 3\n")[0].startswith("F:3:")


def test_unknown_node_type_is_refused(tmp_path):
    problems = lint(tmp_path, GOOD_HEAD + "  m:\n    type: voicemail_box\n    box: q\n")
    # the one problem: the entry naming m is not also "no node 'm'"
    assert len(problems) == 1, problems
    assert problems[0].startswith("F:6:11: node 'm': unknown node type 'voicemail_box' (did you mean 'voicemail'?); "
                                  "types: bot, collect,")
    with pytest.raises(FlowError):
        load_flows([tmp_path / "flow.yaml"])


def test_schema_violation_points_at_the_field(tmp_path):
    problems = lint(tmp_path, GOOD_HEAD + "  m:\n    type: hangup\n    cause: polite\n")
    assert problems == ["F:7:5: node 'm': cause must be a hangup cause in capitals, e.g. NORMAL_CLEARING, "
                        "not the text 'polite'"]


def test_missing_node_prompt_flow_unreachable_and_duplicate(tmp_path):
    problems = lint(tmp_path, GOOD_HEAD + """\
  m:
    type: menu
    prompt: nope
    children: {"1": gone, "2": x, timeout: bye}
  x:
    type: goto
    target: "other:start"
  bye:
    type: hangup
  orphan:
    type: hangup
""")
    # each at the reference itself (line and column of the value), not at the node
    assert "F:7:13: node 'm': no prompt 'nope' in prompts" in problems
    assert "F:8:21: node 'm': no node 'gone' in flow 't'" in problems
    assert "F:11:13: node 'x': no flow 'other'" in problems
    assert not any("unreachable" in p for p in problems)      # a warning of lint, not a load error
    # ... and only once the references are right: what 'gone' meant would look unreachable too
    assert not any("unreachable" in p for p in lint_all(tmp_path, (tmp_path / "flow.yaml").read_text()))
    fixed = (tmp_path / "flow.yaml").read_text().replace("prompt: nope", "prompt: p").replace(
        '"1": gone, "2": x', '"1": bye').replace("other:start", "bye")
    assert lint_all(tmp_path, fixed) == [
        "F:9:3: warning: node 'x' is unreachable (no entry, fallback or other node leads to it)",
        "F:14:3: warning: node 'orphan' is unreachable (no entry, fallback or other node leads to it)"]


def test_entry_to_a_misspelt_node_does_not_make_it_unreachable(tmp_path):
    """An unquoted DID (a number in YAML) still has its position."""
    assert lint_all(tmp_path, "entry:\n  12345: strat\nnodes:\n  start: {type: hangup}\n") == [
        "F:2:10: error: entry 12345: no node 'strat' in flow 'flow' (did you mean 'start'?)"]


def test_duplicate_digit(tmp_path):
    problems = lint(tmp_path, GOOD_HEAD + "  m:\n    type: menu\n    prompt: p\n    children: {1: b, '1': b, timeout: b}\n"
                    "  b:\n    type: hangup\n")
    assert any(p.startswith("F:8:") and "duplicate branch" in p for p in problems)


def test_loop_without_exit_and_menu_without_timeout(tmp_path):
    problems = lint(tmp_path, GOOD_HEAD + """\
  m:
    type: menu
    prompt: p
    children: {"1": s}
  s:
    type: set
    children: {next: m}
""")
    assert "F:8:5: node 'm': menu has no timeout path (add a 'timeout' or 'invalid' child)" in problems
    assert any(p.startswith("F:9:3: node 's' is in a loop with no way out") for p in problems)


def test_depth_beyond_max(tmp_path):
    nodes = "".join(f"  m{i}:\n    type: menu\n    prompt: p\n    children: {{'1': m{i + 1}, timeout: bye}}\n"
                    for i in range(4))
    text = ("name: t\nentry: {'100': m0}\nmax_depth: 3\nprompts: {p: x}\nnodes:\n" + nodes
        + "  m4:\n    type: hangup\n  bye:\n    type: hangup\n")
    problems = lint(tmp_path, text)
    assert problems == ["F:18:3: node 'm3': menu depth 4 from entry 100 is beyond max_depth 3"]


def test_bad_and_overlapping_windows_and_dates(tmp_path):
    problems = lint(tmp_path, """\
nodes: {}
schedule:
  timezone: Mars/Olympus
  windows:
    a: {days: [mon], hours: ["09:00-12:00", "18:00-17:00"]}
    b: {days: [mon], hours: ["11:00-13:00"]}
  holidays: ["2026-13-01", "2026-10-08..2026-10-01"]
""")
    assert "F:3:3: schedule: unknown time zone 'Mars/Olympus'" in problems
    assert any("'18:00-17:00' end before they start" in p for p in problems)
    assert any(p.startswith("F:6:") and "overlaps window 'a'" in p for p in problems)
    assert sum("bad date" in p for p in problems) == 2


def test_missing_audio_file_and_blocked_transfer(tmp_path):
    problems = lint(tmp_path, """\
entry: {"1": t}
prompts: {hello: {file: sounds/hello.wav}}
nodes:
  t:
    type: transfer
    number: "19001234567"
    prompt: hello
    children: {blocked: bye}
  bye: {type: hangup}
""")
    assert any(p.startswith("F:2:25: prompt 'hello': audio file sounds/hello.wav not found") for p in problems)
    assert "F:6:5: node 't': number 19001234567 is on the dial-block list" in problems


def test_cli_lint_exit_codes(tmp_path):
    bad = write_flow(tmp_path, GOOD_HEAD + "  m:\n    type: fax\n", "bad.yaml")
    out = subprocess.run([sys.executable, "-m", "engine", "ivr", "lint", str(bad)], capture_output=True, text=True)
    assert out.returncode == 1 and f"{bad}:6:11: error: node 'm': unknown node type 'fax'" in out.stdout
    assert out.stdout.splitlines()[-1] == "1 file checked: 1 error, 0 warnings"
    out = subprocess.run([sys.executable, "-m", "engine", "ivr", "lint", "ivr_flows"], capture_output=True, text=True,
                         cwd=pathlib.Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stdout


@pytest.mark.parametrize("text, expected", [
    ("nodes: {a: {type: menu, prompt: p, children: [1, 2]}}\n",
     "F:1:46: node 'a': children must be a mapping branch -> node, not a list"),
    ("prompts: [a]\nnodes: {a: {type: hangup}}\n", "F:1:1: prompts must be a mapping (key: value), not a list"),
    ("schedule: {windows: {a: {days: mon}}}\nnodes: {}\n",
     "F:1:26: schedule.windows.a.days must be a list, not the text 'mon'"),
    ("nodes: {a: {type: goto, target: 5}}\n", "F:1:25: node 'a': target must be text, not the number 5"),
    ("nodes: {a: {type: [menu]}}\n", "F:1:19: node 'a': type must be the name of a node type, not a list"),
    ("schedule: {windows: {a: {days: [mon, funday]}}}\nnodes: {}\n",
     "F:1:38: schedule.windows.a.days item 2 is the text 'funday'; allowed: mon, tue, wed, thu, fri, sat, sun"),
    ("max_depth: abc\nnodes: {}\n", "F:1:1: max_depth must be a whole number, not the text 'abc'"),
    ("nodes: {a: {type: hangup, children: {next: }}}\n", "F:1:38: node 'a': children.next must be text, not nothing"),
    ("nodes: {a: {type: hangup, prompt: \"x\x01y\"}}\n", "F:1:37: YAML: unacceptable character #x0001"),
])
def test_malformed_files_get_clear_errors_not_crashes(tmp_path, text, expected):
    assert any(p.startswith(expected) for p in lint(tmp_path, text))


# --- every problem at once, where it is written, once ------------------------------------------

def test_every_problem_of_the_file_in_one_run(tmp_path):
    """A wrong top-level section no longer hides the nodes' problems (fixing two revealed five)."""
    problems = lint(tmp_path, """\
name: t
max_depth: deep
entry: {"100": m}
prompts: {p: x}
nodes:
  m:
    type: menu
    prompt: p
    timout: 5
    children: {"1": gone, timeout: bye}
  bye: {type: hangup, cause: polite}
""")
    assert problems == [
        "F:2:1: max_depth must be a whole number, not the text 'deep'",
        "F:9:5: node 'm': unknown key 'timout' (did you mean 'timeout'?); allowed keys: prompt, timeout, "
        "inter_digit_timeout, max_retries, invalid_prompt, timeout_prompt, keys, type, children, comment",
        "F:10:21: node 'm': no node 'gone' in flow 't'",
        "F:11:23: node 'bye': cause must be a hangup cause in capitals, e.g. NORMAL_CLEARING, not the text 'polite'",
    ]


def test_dangling_child_is_reported_at_the_reference_and_is_not_also_a_loop(tmp_path):
    problems = lint(tmp_path, """\
entry: {"1": start}
nodes:
  start:
    type: set
    variables: {a: "1"}
    children:
      next: welcom
  welcome: {type: hangup}
""")
    assert problems == ["F:7:13: node 'start': no node 'welcom' in flow 'flow' (did you mean 'welcome'?)"]


def test_a_misspelt_section_is_said_once(tmp_path):
    """`prompt:` for `prompts:`: one problem, not one 'no prompt' per node using a prompt."""
    problems = lint(tmp_path, """\
entry: {"1": a}
prompt: {hello: 你好}
nodes:
  a: {type: play, prompt: hello, children: {next: b}}
  b: {type: hangup, prompt: hello}
""")
    assert problems == ["F:2:1: unknown key 'prompt' (did you mean 'prompts'?); allowed keys: name, entry, fallback, "
                        "max_depth, variables, schedule, prompts, nodes"]


def test_a_broken_node_is_not_missing_unreachable_or_a_dead_end(tmp_path):
    text = """\
entry: {"1": a}
fallback: b
nodes:
  a: {type: paly, prompt: x, children: {next: b}}
  b: {type: menu, prompt: x, children: {"1": a, timeout: a}}
"""
    problems = lint_all(tmp_path, text)
    assert problems == ["F:4:13: error: node 'a': unknown node type 'paly' (did you mean 'play'?); types: bot, collect, "
                        "goto, hangup, lookup, menu, play, queue, say, schedule, set, transfer, voicemail",
                        "F:5:27: error: node 'b': no prompt 'x' in prompts"]


def test_did_you_mean_for_branches_prompts_flows_and_windows(tmp_path):
    write_flow(tmp_path, "name: shared\nnodes: {menu: {type: hangup}}\n", "shared.yaml")
    write_flow(tmp_path, """\
entry: {"1": a}
prompts: {goodbye: 再见}
schedule: {windows: {business: {days: [mon], hours: ["09:00-17:00"]}}}
nodes:
  a: {type: schedule, children: {busines: b, closed: b}}
  b: {type: play, prompt: goodby, children: {nxt: c}}
  c: {type: goto, target: "shard:menu"}
""")
    _, problems = load_flows([tmp_path], strict=False)
    problems = [p.replace(str(tmp_path / "flow.yaml"), "F") for p in problems]
    assert "F:5:23: node 'a': branch 'busines' is not a time window of this flow (did you mean 'business'?)" in problems
    assert "F:6:27: node 'b': no prompt 'goodby' in prompts (did you mean 'goodbye'?)" in problems
    assert "F:6:46: node 'b': play has no branch 'nxt' (did you mean 'next'?) (it has next)" in problems
    assert "F:7:27: node 'c': no flow 'shard' (did you mean 'shared'?)" in problems


BROKEN = [
    "nodes: {a: {type: menu, promt: p, children: {timeout: a}}}\n",
    "nodes: {a: {type: hangup, cause: polite}}\n",
    "nodes: {a: {type: collect, prompt: p, variable: v, validator: idcard}}\n",
    "nodes: {a: {type: menu, prompt: p, max_retries: 99, children: {timeout: a}}}\n",
    "nodes: {a: {type: menu}}\n",
    "prompts: {a: {txt: b}}\nnodes: {}\n",
    "prompts: {a: 5}\nnodes: {}\n",
    "schedule: {windows: {a: {days: [mon], hours: [\"9-5\"]}}}\nnodes: {}\n",
    "entry: [1]\nnodes: {}\n",
    "nodes: {a: {type: queue, queue: \"\"}}\n",
]


@pytest.mark.parametrize("text", BROKEN)
def test_messages_are_plain_words_not_jsonschema(tmp_path, text):
    problems = lint(tmp_path, text)
    assert problems
    for raw in ("Additional properties", "is not of type", "does not match", "is not one of",
                "is a required property", "is not valid under any of the given schemas", "is greater than",
                "is less than the minimum"):
        assert not any(raw in p for p in problems), problems


# --- warnings ---------------------------------------------------------------------------------

def _menus(levels, entry_type="set"):
    """An entry node, then `levels` menus one under the other."""
    nodes = f"  start: {{type: {entry_type}, children: {{next: m1}}}}\n" if entry_type == "set" else ""
    for i in range(1, levels + 1):
        nxt = f"m{i + 1}" if i < levels else "bye"
        nodes += f"  m{i}: {{type: menu, prompt: p, children: {{'1': {nxt}, timeout: bye}}}}\n"
    start = "start" if entry_type == "set" else "m1"
    return f"entry: {{'100': {start}}}\nprompts: {{p: 请按键}}\nnodes:\n{nodes}  bye: {{type: hangup}}\n"


def test_menus_deeper_than_five_levels_warn(tmp_path):
    assert lint_all(tmp_path, _menus(5)) == []          # the entry's set node is no menu level
    assert lint_all(tmp_path, _menus(7)) == [
        "F:10:3: warning: node 'm6': menu level 6 from entry 100: callers lose their way beyond 5 levels of "
        "menus; move it up, or offer a person"]
    assert lint_all(tmp_path, _menus(5), menu_levels=4)[0].startswith("F:9:3: warning: node 'm5': menu level 5")
    assert lint(tmp_path, _menus(7)) == []                # warnings never refuse a load


def test_menu_depth_counts_menus_only(tmp_path):
    """max_depth 2 with a set node before two menus: two levels, not three."""
    assert lint(tmp_path, "max_depth: 2\n" + _menus(2)) == []
    assert lint(tmp_path, "max_depth: 2\n" + _menus(3)) == [
        "F:8:3: node 'm3': menu depth 3 from entry 100 is beyond max_depth 2"]


def test_spoken_seconds_estimate():
    assert spoken_seconds("社保业务请按1，住房公积金请按2。") == pytest.approx(13 / 4 + 2 / 14 + 2 * 0.3)
    assert spoken_seconds("Press one for English.") == pytest.approx(18 / 14 + 0.3)


def _wav(path, seconds):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * int(8000 * seconds))


def test_long_prompts_warn_text_by_length_files_by_duration(tmp_path):
    _wav(tmp_path / "sounds" / "long.wav", 31)
    _wav(tmp_path / "sounds" / "short.wav", 3)
    text = ("entry: {'1': a}\nprompts:\n  long_text: \"" + "请您在提示音后说明您要办理的业务。" * 6 + "\"\n"
            "  short_text: 您好\n  long_file: {file: sounds/long.wav}\n  short_file: {file: sounds/short.wav}\n"
            "nodes:\n  a: {type: play, prompt: [long_text, short_text, long_file, short_file], children: {next: b}}\n"
            "  b: {type: hangup}\n")
    problems = lint_all(tmp_path, text)
    assert problems == [
        "F:3:3: warning: prompt 'long_text' lasts about 25.8 s (102 characters of text); callers stop listening "
        "after 20 s: shorten or split it",
        "F:5:3: warning: prompt 'long_file' lasts about 31.0 s (audio file); callers stop listening after 20 s: "
        "shorten or split it"]
    assert len(lint_all(tmp_path, text, prompt_seconds=2.5)) == 3       # 您好 is shorter


def test_hand_listed_holidays_without_cn_calendar_warn(tmp_path):
    text = ("entry: {'1': a}\nschedule:\n  holidays: ['2026-10-01..2026-10-07']\n  workdays: ['2026-10-10']\n"
            "nodes:\n  a: {type: hangup}\n")
    assert lint_all(tmp_path, text) == [
        "F:3:3: warning: schedule: holidays are listed by hand for 2026 without cn_calendar: true; from 2027 on no "
        "holiday counts until someone adds them (cn_calendar takes the statutory holidays and make-up days from "
        "chinese-calendar)"]
    assert lint_all(tmp_path, text.replace("schedule:\n", "schedule:\n  cn_calendar: true\n")) == []


def _acd(tmp_path, agents, queues):
    (tmp_path / "agents.yaml").write_text(agents, encoding="utf-8")
    (tmp_path / "queues.yaml").write_text(queues, encoding="utf-8")
    return load_acd(tmp_path / "agents.yaml", tmp_path / "queues.yaml")


QUEUE_FLOW = """\
entry: {'1': a}
nodes:
  a: {type: queue, queue: pension, children: {overflow: b}}
  b: {type: queue, queue: generl}
"""


def test_queues_no_agent_serves_and_unknown_queues(tmp_path):
    acd = _acd(tmp_path, "agents:\n  - {id: a1, extension: '1001', skills: {medical: 5}}\n",
               "queues:\n  - {name: pension, skills: {pension: 3}}\n  - {name: general}\n")
    flows = tmp_path / "flows"
    flows.mkdir()
    problems = lint_all(flows, QUEUE_FLOW, acd=acd)
    assert problems == [
        "F:3:27: warning: node 'a': no agent can serve queue 'pension' (it needs pension 3+): its callers wait "
        "until the queue's overflow",
        "F:4:27: error: node 'b': no queue 'generl' in the queues file (did you mean 'general'?); "
        "queues: general, pension"]
    served = _acd(tmp_path, "agents:\n  - {id: a1, extension: '1001', skills: {pension: 3}}\n",
                  "queues:\n  - {name: pension, skills: {pension: 3}}\n  - {name: generl}\n")
    assert lint_all(flows, QUEUE_FLOW, acd=served) == []


def test_cli_warnings_fail_only_with_strict_and_json(tmp_path):
    path = write_flow(tmp_path, "entry: {'1': a}\nnodes:\n  a: {type: hangup}\n  lost: {type: hangup}\n")
    run = lambda *args: subprocess.run([sys.executable, "-m", "engine", "ivr", "lint", str(path), *args],  # noqa: E731
                                       capture_output=True, text=True, cwd=tmp_path)
    out = run()
    assert out.returncode == 0
    assert out.stdout.splitlines() == [
        f"{path}:4:3: warning: node 'lost' is unreachable (no entry, fallback or other node leads to it)",
        "1 file checked: 0 errors, 1 warning"]
    assert run("--strict").returncode == 1
    report = json.loads(run("--json").stdout)
    assert report == {"ok": True, "files": [str(path)], "errors": 0, "warnings": 1, "problems": [
        {"file": str(path), "line": 4, "col": 3, "severity": "warning",
         "message": "node 'lost' is unreachable (no entry, fallback or other node leads to it)"}]}
    assert json.loads(run("--json", "--strict").stdout)["ok"] is False


def test_cli_checks_queues_against_the_config_files(tmp_path):
    _acd(tmp_path, "agents:\n  - {id: a1, extension: '1001', skills: {pension: 3}}\n",
         "queues:\n  - {name: pension, skills: {pension: 3}}\n")
    path = write_flow(tmp_path, "entry: {'1': a}\nnodes:\n  a: {type: queue, queue: medical}\n")
    out = subprocess.run([sys.executable, "-m", "engine", "ivr", "lint", str(path), "--agents",
                          str(tmp_path / "agents.yaml"), "--queues", str(tmp_path / "queues.yaml")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 1
    assert f"{path}:3:27: error: node 'a': no queue 'medical' in the queues file; queues: pension" in out.stdout


def test_shipped_samples_lint_clean_with_the_shipped_agents_and_queues():
    acd = load_acd(REPO / "etc" / "agents.yaml", REPO / "etc" / "queues.yaml")
    _, problems, files = lint_flows([REPO / "ivr_flows"], LintOptions(acd=acd))
    assert problems == [] and sorted(p.name for p in files) == ["12333.yaml", "12345.yaml", "followup.yaml",
                                                                "social_insurance.yaml"]   # not the bots
