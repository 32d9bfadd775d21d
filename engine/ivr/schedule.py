"""Time windows for the `schedule` node: weekly hours in a time zone, holidays, make-up working days
(调休: a weekend day worked as a weekday), and manual overrides set from the CLI.

Holidays and make-up days are explicit dates in the flow's YAML (`holidays`, `workdays`), so an
administrator sees the year's calendar in one place; dates take 'YYYY-MM-DD' or 'YYYY-MM-DD..YYYY-MM-DD'.
With `cn_calendar: true` the `chinese-calendar` package (State Council notices, updated yearly)
adds the statutory holidays and make-up days; explicit dates still apply, and for a year the
package does not know yet only the explicit dates count.
Overrides live in <var_dir>/ivr_overrides.json, re-read when its mtime changes.
"""
import datetime
import json
import os
import re
from zoneinfo import ZoneInfo

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
OVERRIDE_MODES = ("closed", "emergency", "open")


def parse_dates(spec):
    """'2026-10-01' or '2026-10-01..2026-10-08' -> list of dates (ValueError with the reason)."""
    first, _, last = str(spec).partition("..")
    start = datetime.date.fromisoformat(first.strip())
    end = datetime.date.fromisoformat(last.strip()) if last else start
    if end < start:
        raise ValueError(f"range {spec} ends before it starts")
    return [start + datetime.timedelta(days=i) for i in range((end - start).days + 1)]


def parse_hours(spec):
    match = _HOURS.match(str(spec))
    if not match:
        raise ValueError(f"hours {spec!r} must look like 08:30-12:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if end <= start or end > 24 * 60:
        raise ValueError(f"hours {spec!r} end before they start")
    return start, end


def problems(schedule):
    """[(key path, message)] for invalid or overlapping windows."""
    out = []
    try:
        ZoneInfo(schedule.get("timezone", "Asia/Shanghai"))
    except Exception:
        out.append((("timezone",), f"unknown time zone {schedule.get('timezone')!r}"))
    for key in ("holidays", "workdays"):
        for i, spec in enumerate(schedule.get(key) or []):
            try:
                parse_dates(spec)
            except ValueError as exc:
                out.append(((key, i), f"bad date {spec!r}: {exc}"))
    if schedule.get("cn_calendar"):
        try:
            import chinese_calendar  # noqa: F401
        except ImportError:
            out.append((("cn_calendar",), "cn_calendar needs the chinese-calendar package (pip install chinese-calendar)"))
    spans = {}
    for name, window in (schedule.get("windows") or {}).items():
        for day in window.get("days") or []:
            if day not in DAYS:
                out.append((("windows", name, "days"), f"unknown day {day!r} (use {', '.join(DAYS)})"))
        for i, spec in enumerate(window.get("hours") or []):
            try:
                start, end = parse_hours(spec)
            except ValueError as exc:
                out.append((("windows", name, "hours", i), str(exc)))
                continue
            for day in window.get("days") or []:
                for other, (s2, e2) in spans.get(day, []):
                    if start < e2 and s2 < end:
                        out.append((("windows", name, "hours", i), f"{day} {spec} overlaps window {other!r}"))
                spans.setdefault(day, []).append((name, (start, end)))
    return out


def _cn_calendar(day):
    """(statutory holiday, make-up working day) from chinese-calendar; (False, False) if unknown."""
    import chinese_calendar
    try:
        on_holiday, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:      # a year the installed package does not cover
        return False, False
    return bool(on_holiday and name), (not on_holiday and day.weekday() >= 5)


class Overrides:
    """Manual overrides {flow name or '*': {'mode': 'closed'|'emergency'|'open', 'message': text}}:
    closed now, an emergency message, or open now (staff working late, a holiday on duty)."""

    def __init__(self, path):
        self.path = path
        self._mtime = None
        self._data = {}

    def current(self):
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            self._mtime, self._data = None, {}
            return self._data
        if mtime != self._mtime:
            try:
                with open(self.path, encoding="utf-8") as handle:
                    self._data = json.load(handle)
            except ValueError:
                pass        # a half-written file keeps the last good overrides
            self._mtime = mtime
        return self._data

    def get(self, flow):
        data = self.current()
        return data.get(flow) or data.get("*")

    def set(self, flow, mode, message=""):
        if mode not in OVERRIDE_MODES:
            raise ValueError(f"override mode must be one of {', '.join(OVERRIDE_MODES)}")
        data = dict(self.current())
        data[flow] = {"mode": mode, "message": message}
        self._write(data)

    def clear(self, flow):
        data = dict(self.current())
        found = data.pop(flow, None) is not None
        self._write(data)
        return found

    def _write(self, data):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        tmp = f"{self.path}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, indent=1)
        os.replace(tmp, self.path)


class Schedule:
    def __init__(self, spec, flow_name="", overrides=None):
        spec = spec or {}
        self.flow_name = flow_name
        self.overrides = overrides
        self.tz = ZoneInfo(spec.get("timezone", "Asia/Shanghai"))
        self.holidays = {d for s in spec.get("holidays") or [] for d in parse_dates(s)}
        self.workdays = {d for s in spec.get("workdays") or [] for d in parse_dates(s)}
        self.cn_calendar = bool(spec.get("cn_calendar"))
        self.windows = {name: ([DAYS.index(d) for d in w.get("days") or []],
                               [parse_hours(h) for h in w.get("hours") or []])
                        for name, w in (spec.get("windows") or {}).items()}

    def override(self):
        return self.overrides.get(self.flow_name) if self.overrides else None

    def override_message(self):
        return (self.override() or {}).get("message", "")

    def branch(self, now, names=None):
        override = self.override()
        if override and override["mode"] == "open":
            # open now: the first window the node tests (or of the flow), whatever the clock says
            return (list(names or []) or list(self.windows) or ["closed"])[0]
        if override:
            return override["mode"]
        local = now.astimezone(self.tz)
        day = local.date()
        holiday, workday = day in self.holidays, day in self.workdays
        if self.cn_calendar and not (holiday or workday):
            holiday, workday = _cn_calendar(day)
        if holiday:
            return "holiday"
        weekday = 0 if workday else local.weekday()   # a make-up day counts as a Monday
        minute = local.hour * 60 + local.minute
        for name in names or self.windows:
            days, spans = self.windows[name]
            if weekday in days and any(s <= minute < e for s, e in spans):
                return name
        return "closed"
