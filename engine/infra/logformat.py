"""The engine's log line format, one record to one line.

Callers' numbers and names, DTMF, SIP headers, file contents and API bodies all reach log messages;
a caller number `139\\nZQX` forged a line of its own. This formatter is the one place that escapes
them: CR, LF and every other control character (and the Unicode line and paragraph separators
some viewers break on) in the message become `\\n`, `\\r`, `\\xNN`, `\\u2028`. A traceback keeps
its lines (frames and source are the engine's own), but the exception's text is escaped too: it
often quotes what came from outside.
"""
import logging
import re
import traceback

LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# C0 controls but TAB, DEL, C1 controls, NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r"}
# traceback chunks written from the code (frames, source lines, chaining notes), not from data
_OUR_LINES = ("Traceback (most recent call last):", "  ", "\nDuring handling of the above exception",
              "\nThe above exception was the direct cause")


def escape(text):
    """`text` with no character that could end or rewrite a log line."""
    return _UNSAFE.sub(_escape_one, text)


def _escape_one(match):
    ch = match.group()
    return _NAMED.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")


class OneLineFormatter(logging.Formatter):
    def __init__(self, fmt=LINE_FORMAT, **kw):
        super().__init__(fmt, **kw)

    def formatException(self, ei):
        out = []
        for chunk in traceback.TracebackException(*ei).format():
            if chunk.startswith(_OUR_LINES):
                out.append(chunk)
            else:                       # "ValueError: <text>": the text may be a caller's
                end = "\n" if chunk.endswith("\n") else ""
                out.append(escape(chunk[:len(chunk) - len(end)]) + end)
        return "".join(out).rstrip("\n")

    def formatMessage(self, record):
        # record.message is the formatted message (msg % args), computed in format() just before
        record.message = escape(record.message)
        return super().formatMessage(record)
