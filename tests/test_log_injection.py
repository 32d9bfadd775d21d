"""No text from outside starts a log line: the formatter escapes CR, LF and other controls
(issue 17, section 4: a caller number `139\\nZQX` forged a line)."""
import logging
import re

from engine.infra.logformat import OneLineFormatter, escape
from tests.enginefix import EngineProcess
from tests.simfix import wait_for


def test_escape():
    assert escape("139\nZQX") == "139\\nZQX"
    assert escape("a\r\nb\x1b[2Jc\x00d\x85e\u2028f\tg") == "a\\r\\nb\\x1b[2Jc\\x00d\\x85e\\u2028f\tg"
    assert escape("张三 <13800138000>") == "张三 <13800138000>"


def test_formatter_keeps_one_line_per_record_but_a_traceback_keeps_its_lines():
    fmt = OneLineFormatter()
    record = logging.LogRecord("hotline", logging.INFO, __file__, 1, "call from %r <%s>", ("x\ny", "139\nZQX"), None)
    assert "\n" not in fmt.format(record) and "<139\\nZQX>" in fmt.format(record)
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        record = logging.LogRecord("hotline", logging.ERROR, __file__, 1, "failed: %s", ("a\nb",), sys.exc_info())
    text = fmt.format(record)
    assert text.splitlines()[0].endswith("failed: a\\nb") and "Traceback" in text.splitlines()[1]


def test_an_exception_quoting_outside_text_cannot_start_a_line():
    fmt = OneLineFormatter()
    try:
        try:
            raise KeyError("x")
        except KeyError:
            raise ValueError("bad number 139\n2026-01-01 00:00:00,000 INFO hotline: forged")
    except ValueError:
        import sys
        record = logging.LogRecord("hotline", logging.ERROR, __file__, 1, "call failed", (), sys.exc_info())
    lines = fmt.format(record).splitlines()
    assert not [line for line in lines if line.startswith("2026-01-01")]
    assert lines[-1] == "ValueError: bad number 139\\n2026-01-01 00:00:00,000 INFO hotline: forged"
    assert any(line.startswith("During handling of the above exception") for line in lines)


def test_a_forged_caller_number_stays_on_its_call_line(tmp_path):
    ep = EngineProcess(tmp_path)
    try:
        channel = ep.switch.place_call("12345", "139\nZQX", "Forged\r\n2026-01-01 00:00:00 INFO fake")
        assert channel.wait_hangup(timeout=20)
        wait_for(lambda: "CDR written" in ep.log.read_text(), timeout=20)
    finally:
        ep.stop()
    lines = ep.log.read_text().splitlines()
    # every line is a record of the engine's (its date first) or a traceback's continuation
    stray = [line for line in lines if not re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} |\s|Traceback", line)]
    assert stray == [] and not [line for line in lines if line.startswith("2026-01-01 00:00:00 INFO fake")]
    call_line = next(line for line in lines if "call from" in line)
    assert "<139\\nZQX>" in call_line and "Forged\\r\\n2026-01-01" in call_line
