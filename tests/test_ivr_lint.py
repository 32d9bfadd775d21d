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
    assert ("F:14:3: warning: node 'orphan' is unreachable (no entry, fallback or other node leads to it)"
            in lint_all(tmp_path, (tmp_path / "flow.yaml").read_text()))


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
