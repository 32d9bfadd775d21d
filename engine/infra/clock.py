"""The hotline's one clock: its time zone (setting `timezone`), now, the times operators type,
and the times they read (tables and JSON).

Stored times are UTC (naive datetimes in the databases mean UTC). Everything an operator types is
read in the hotline's zone unless it carries its own offset, and everything shown is in that zone:
tables as "2026-12-04 09:30:05", JSON as ISO 8601 with the offset ("2026-12-04T09:30:05+08:00").

Tests set the time by replacing `wall_now` (monkeypatch), never by waiting for the real one.
"""
import datetime
import re
import zoneinfo

DEFAULT_ZONE = "Asia/Shanghai"
UTC = datetime.timezone.utc
TABLE_FORMAT = "%Y-%m-%d %H:%M:%S"
TIME_FORMS = ("2026-12-04, 2026-12-04 09:30, 09:30 (today), today, yesterday, now, "
              "-2h / -30m / -3d (ago), or ISO 8601 with an offset (2026-12-04T09:30:00+08:00)")
DAY_FORMS = "2026-12-04, today, yesterday, or -3d (days ago)"

_DATE = r"(?P<y>\d{4})[-/](?P<mo>\d{1,2})[-/](?P<d>\d{1,2})"
_TIME = r"(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?P<frac>\.\d{1,6})?)?"
_OFFSET = r"(?P<off>Z|[+-]\d{2}(?::?\d{2})?)"
_DATETIME = re.compile(rf"^{_DATE}(?:[T\s]+{_TIME})?\s*{_OFFSET}?$", re.IGNORECASE)
_TIME_ONLY = re.compile(rf"^{_TIME}$")
_AGO = re.compile(r"^-\s*((?:\d+\s*[smhdw]\s*)+)$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def wall_now():
    """The real time, aware. The only place that reads the system clock for the commands."""
    return datetime.datetime.now(UTC)


class TimeInputError(ValueError):
    """A time an operator typed that we do not read; the message names the accepted forms."""


def zone(name):
    """ZoneInfo for `name`, ValueError with a readable message for an unknown one."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise ValueError(f"unknown time zone {name!r} (e.g. Asia/Shanghai, Europe/Berlin, UTC)") from None


def utc(dt):
    """An aware datetime from a stored one (naive = UTC)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def naive_utc(dt):
    """The naive UTC datetime the databases store and compare."""
    return utc(dt).astimezone(UTC).replace(tzinfo=None)


class Clock:
    """Now, input and output in one time zone. `now`: a callable returning an aware datetime
    (default: `wall_now`, looked up at each call so tests can replace it)."""

    def __init__(self, zone_name=DEFAULT_ZONE, now=None):
        self.name = zone_name
        self.zone = zone(zone_name)
        self._now = now

    def __repr__(self):
        return f"Clock({self.name!r})"

    # --- now --------------------------------------------------------------------------------
    def now(self):
        return utc((self._now or wall_now)()).astimezone(self.zone)

    def today(self):
        return self.now().date()

    # --- output -----------------------------------------------------------------------------
    def local(self, dt):
        """A stored or aware datetime in the hotline's zone (None stays None)."""
        return None if dt is None else utc(dt).astimezone(self.zone)

    def text(self, dt, fmt=TABLE_FORMAT):
        """For tables and labelled lines: local wall time without the zone ('-' for nothing)."""
        return "-" if dt is None else self.local(dt).strftime(fmt)

    def iso(self, dt):
        """For JSON: ISO 8601 with the zone's offset."""
        return None if dt is None else self.local(dt).isoformat()

    def jsonable(self, value):
        """`value` with every datetime (at any depth) as ISO text with offset, dates as
        YYYY-MM-DD: what --json prints."""
        if isinstance(value, datetime.datetime):
            return self.iso(value)
        if isinstance(value, datetime.date):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: self.jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.jsonable(v) for v in value]
        return value

    def localized(self, row):
        """A row with its datetimes in the hotline's zone (for tables and labelled blocks)."""
        return {k: self.local(v) if isinstance(v, datetime.datetime) else v for k, v in row.items()}

    # --- input ------------------------------------------------------------------------------
    def parse(self, text, what="time"):
        """An aware datetime (in the hotline's zone) from what an operator typed; a date alone is
        its local midnight. TimeInputError naming the accepted forms for anything else."""
        raw = text
        text = (text or "").strip()
        word = text.lower()
        if word == "now":
            return self.now()
        if word in ("today", "yesterday"):
            return self.midnight(self.parse_day(word, what))
        ago = _AGO.match(text)
        if ago:
            return self.now() - _duration(ago.group(1))
        m = _TIME_ONLY.match(text)
        if m:
            return self._build(what, raw, *self.today().timetuple()[:3], m)
        m = _DATETIME.match(text)
        if m:
            return self._build(what, raw, int(m["y"]), int(m["mo"]), int(m["d"]), m)
        raise TimeInputError(f"{what} {raw!r} is not a time; use {TIME_FORMS}")

    def parse_day(self, text, what="day"):
        """A local day (datetime.date) from what an operator typed."""
        raw = text
        word = (text or "").strip().lower()
        today = self.today()
        if word == "today":
            return today
        if word == "yesterday":
            return today - datetime.timedelta(days=1)
        m = re.match(r"^-\s*(\d+)\s*d$", word)
        if m:
            return today - datetime.timedelta(days=int(m.group(1)))
        m = re.match(rf"^{_DATE}$", word)
        if m:
            try:
                return datetime.date(int(m["y"]), int(m["mo"]), int(m["d"]))
            except ValueError as exc:
                raise TimeInputError(f"{what} {raw!r} is not a day ({exc}); use {DAY_FORMS}") from None
        raise TimeInputError(f"{what} {raw!r} is not a day; use {DAY_FORMS}")

    def midnight(self, day):
        return datetime.datetime.combine(day, datetime.time(), tzinfo=self.zone)

    def day_bounds(self, day):
        """The local day [start, end) as naive UTC datetimes (how the databases store times).
        A day is not always 24 hours (daylight saving time), so both ends are local midnights."""
        return (naive_utc(self.midnight(day)),
                naive_utc(self.midnight(day + datetime.timedelta(days=1))))

    def _build(self, what, raw, year, month, day, m):
        frac = m.groupdict().get("frac") or ""
        try:
            dt = datetime.datetime(year, month, day, int(m["h"] or 0), int(m["mi"] or 0), int(m["s"] or 0),
                                   int((frac[1:] + "000000")[:6]) if frac else 0)
        except ValueError as exc:
            raise TimeInputError(f"{what} {raw!r} is not a time ({exc}); use {TIME_FORMS}") from None
        offset = m.groupdict().get("off")
        if offset:
            return dt.replace(tzinfo=_offset(offset)).astimezone(self.zone)
        return dt.replace(tzinfo=self.zone)


def _duration(spec):
    total = datetime.timedelta()
    for number, unit in re.findall(r"(\d+)\s*([smhdw])", spec, re.IGNORECASE):
        total += datetime.timedelta(**{_UNITS[unit.lower()]: int(number)})
    return total


def _offset(text):
    if text.upper() == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    return datetime.timezone(sign * datetime.timedelta(hours=hours, minutes=minutes))


def for_settings(settings, now=None):
    """The clock of the hotline these settings describe."""
    return Clock(getattr(settings, "timezone", DEFAULT_ZONE) or DEFAULT_ZONE, now=now)
