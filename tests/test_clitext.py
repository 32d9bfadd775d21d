"""What the command-line tools share for showing values from outside (engine/infra/clitext.py)."""
import datetime

from engine.infra.clitext import cell, quoted, table


def test_a_table_cell_escapes_control_characters_and_cuts_long_text():
    when = datetime.datetime(2026, 11, 23, 8, 5, 9)
    assert cell(None) == "-" and cell(when) == "2026-11-23 08:05:09"
    assert cell(when, time_format="%Y-%m-%d %H:%M") == "2026-11-23 08:05"
    assert cell("x\x1b[2Jfake\nline") == "x\\x1b[2Jfake\\nline"       # cannot clear or fake a row
    assert cell("张" * 50, limit=30) == "张" * 29 + "…" and cell("短", limit=30) == "短"
    assert cell(42) == "42"


def test_a_value_on_its_own_line_is_json_quoted_when_it_holds_control_characters():
    assert quoted(None) == "-" and quoted(datetime.datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02 03:04:05"
    assert quoted("王芳") == "王芳" and quoted(7) == "7"
    assert quoted("x\nhangup") == '"x\\nhangup"'


def test_a_table_lines_up_chinese_text_by_display_width():
    lines = table(["name", "n"], [["王芳", 1], ["Li", None]]).splitlines()
    assert lines == ["name  n", "王芳  1", "Li"]
