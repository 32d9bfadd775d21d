"""What the command-line tools share: loading settings without their secrets, JSON-ready rows,
and tables that line up on a terminal with Chinese text in them."""
import datetime
import unicodedata


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
