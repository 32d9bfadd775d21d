"""What the command-line tools share: loading settings without their secrets, JSON-ready rows,
tables that line up on a terminal with Chinese text in them, and values from outside (caller
names, SIP text, file paths) shown so that they cannot draw on the terminal."""
import argparse
import datetime
import json
import os
import re
import unicodedata

SECONDS = "%Y-%m-%d %H:%M:%S"
DEFAULT_CONFIG = os.environ.get("HOTLINE_CONFIG", "etc/hotline.yaml")


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


# --- the same flags, names and metavars in every data command ------------------------------------

def add_config(parser):
    return add_option(parser, "--config", default=default_config())


def add_json(parser, what=None):
    """`--json` with its one wording (`what` is kept for callers; the help is the same everywhere)."""
    return add_option(parser, "--json")


def takes_durations_ago(parser):
    """Let `--since -2h` mean two hours ago: argparse takes any word starting with '-' for an
    option unless it looks like a negative number, so durations are added to what it deems one."""
    parser._negative_number_matcher = re.compile(r"^-\d+$|^-\d*\.\d+$|^-(\d+[smhdwSMHDW])+$")
    return parser


def add_time_range(parser, what=None):
    takes_durations_ago(parser)
    add_option(parser, "--since")
    add_option(parser, "--until")


def add_day(parser, what=None):
    takes_durations_ago(parser)
    add_option(parser, "--date")


def add_limit(parser):
    add_option(parser, "--limit", type=positive_int)


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1")
    return value


def settings_for_reading(config):
    """The settings of a command that only reads (secrets not needed); Refused (exit 2) naming the
    file and the problem."""
    from engine.settings import SettingsError, load_settings
    try:
        return load_settings(config, env=SecretsNotNeeded(os.environ))
    except SettingsError as exc:
        raise Refused(str(exc), 2) from None


class CliError(Exception):
    """A command failed for a reason the user can act on (a missing file, an engine that does not
    answer, a refused request): `hotline: error: <message>` on stderr, exit 1. Nothing to debug."""

    status = 1


class UsageError(CliError):
    """The command line itself is wrong (a bad value argparse could not check): exit 2."""

    status = 2


class Refused(CliError):
    """A data command stops with one line on stderr and an exit code (2 usage, 1 failure); the
    commands print it themselves, and `hotline`'s main does when one escapes them."""

    def __init__(self, message, code=1):
        super().__init__(message)
        self.code = self.status = code


def escaped(text):
    """Text from outside on one line: control characters (newlines too) written escaped, so it
    cannot start a line of its own or draw on the terminal."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


# One wording per option, whichever command has it (tests/test_cli_fuzz.py checks every command):
# name -> (metavar, help). `add_option` adds one with these; a command passes its own default.
OPTIONS = {
    "--json": (None, "print JSON (every field; times ISO 8601 with the hotline's offset) instead of text"),
    "--config": ("FILE", "the engine's settings file (default: $HOTLINE_CONFIG, else etc/hotline.yaml)"),
    "--api": ("URL", "control API, e.g. http://127.0.0.1:8090 (default: $HOTLINE_API_URL, the client "
                     "file, else the settings file's control section)"),
    "--token": ("TOKEN", "control-API token (default: $HOTLINE_TOKEN, else the client file)"),
    "--since": ("TIME", "from TIME: 2026-12-04, '2026-12-04 09:30', today, yesterday, -2h, or ISO "
                        "with an offset (the hotline's time zone unless TIME has an offset)"),
    "--until": ("TIME", "before TIME (the same forms as --since)"),
    "--date": ("DAY", "the day: 2026-12-04, today, yesterday, -3d (in the hotline's time zone; "
                      "default today)"),
    "--tz": ("ZONE", "the time zone (default: the settings' timezone)"),
    "--watch": ("SECONDS", "refresh every SECONDS (default 2) until Ctrl-C"),
    "--limit": ("N", "at most N rows"),
}


def default_config():
    """The settings file a command reads when not given --config."""
    import os
    return os.environ.get("HOTLINE_CONFIG", "etc/hotline.yaml")


def add_option(parser, name, **kw):
    """Add a shared option with its one metavar and help (OPTIONS); kw: default, type, ..."""
    metavar, text = OPTIONS[name]
    if name == "--json":
        return parser.add_argument(name, action="store_true", help=text)
    return parser.add_argument(name, metavar=metavar, help=text, **kw)


def need_database(url):
    """For commands that only read a database: a SQLite file that is not there is a mistake (a
    wrong --db, --config or var_dir), and connecting would create an empty one. CliError says so."""
    import os
    if not url.startswith("sqlite:///"):
        if url.split(":", 1)[0] not in ("postgresql", "postgres"):
            raise UsageError(f"database URL {url!r}: use sqlite:///path or postgresql://...")
        return
    path = url[len("sqlite:///"):]
    if path != ":memory:" and not os.path.isfile(path):
        raise CliError(f"no database at {path} (from {url}): give --db URL, or --config the engine's "
                       "settings file (its database.url)")


def clock_for(config):
    """The hotline's clock (its one `timezone`) from the settings file `config` (secrets not
    needed), for commands that show times."""
    from engine.infra import clock
    return clock.for_settings(settings_for_reading(config or default_config()))


def watch_seconds(text):
    """The --watch period: 0.5 to 3600 seconds (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.5 <= value <= 3600:
        raise argparse.ArgumentTypeError("between 0.5 and 3600 seconds")
    return value
