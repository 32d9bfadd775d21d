"""What the command-line tools share: loading settings without their secrets, JSON-ready rows,
tables that line up on a terminal with Chinese text in them, and values from outside (caller
names, SIP text, file paths) shown so that they cannot draw on the terminal."""
import datetime
import json
import unicodedata

SECONDS = "%Y-%m-%d %H:%M:%S"


class SecretsNotNeeded(dict):
    """Environment for loading settings in commands that never use the secrets they name (the
    ESL password, SIP and token variables): a missing one is not an error there."""

    def get(self, key, default=None):
        return super().get(key) or "(not needed by this command)"

    def __getitem__(self, key):
        return self.get(key)


def iso(row):
    """A row with its dates and times as ISO text (for --json)."""
    return {k: (v.isoformat() if isinstance(v, datetime.date) else v) for k, v in row.items()}


def width(text):
    """Columns on a terminal: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table(headers, rows):
    """Left-aligned columns two spaces apart, padded by display width; None cells are empty."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(width(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c + " " * (w - width(c)) for c, w in zip(row, widths)).rstrip()
                     for row in cells)


def cell(value, limit=None, time_format=SECONDS):
    """A table cell: '-' for nothing, a time without its zone, text with control characters
    escaped (repr-style, no quotes), cut to `limit` characters."""
    if value is None:
        return "-"
    if isinstance(value, datetime.datetime):
        return value.strftime(time_format)
    text = str(value)
    if not text.isprintable():
        text = repr(text)[1:-1]
    return text if limit is None or len(text) <= limit else text[:limit - 1] + "…"


def quoted(value):
    """A value on its own line: '-' for nothing, a time to the second, and text with control
    characters JSON-quoted, so a caller name cannot fake lines."""
    if value is None:
        return "-"
    if isinstance(value, datetime.datetime):
        return value.strftime(SECONDS)
    text = str(value)
    return text if text.isprintable() else json.dumps(text, ensure_ascii=False)
