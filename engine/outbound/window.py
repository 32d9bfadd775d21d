"""When a campaign may call: weekday hours in the hotline's time zone, minus holidays, plus 调休
make-up working days, from the same calendar the IVR's `schedule` node uses (engine/ivr/schedule.py:
explicit dates and, with cn_calendar, the chinese-calendar package). No call outside the window.

Times: aware datetimes in any zone; a naive datetime is taken as UTC (the database's convention).
"""
import datetime
from zoneinfo import ZoneInfo

from engine.ivr.schedule import DAYS, _cn_calendar, parse_dates, parse_hours

SEARCH_DAYS = 400        # next_open looks this far ahead, then says "never"


class TimeWindow:
    def __init__(self, days=("mon", "tue", "wed", "thu", "fri"), hours=("09:00-12:00", "14:00-20:00"),
                 timezone="Asia/Shanghai", cn_calendar=True, holidays=(), workdays=()):
        bad = [d for d in days if d not in DAYS]
        if bad:
            raise ValueError(f"unknown day {bad[0]!r} (use {', '.join(DAYS)})")
        self.days = {DAYS.index(d) for d in days}
        self.spans = sorted(parse_hours(h) for h in hours)
        self.tz = ZoneInfo(timezone)
        self.cn_calendar = bool(cn_calendar)
        self.holidays = {d for s in holidays for d in parse_dates(s)}
        self.workdays = {d for s in workdays for d in parse_dates(s)}

    @classmethod
    def from_settings(cls, w):
        return cls(days=w.days, hours=w.hours, timezone=w.timezone, cn_calendar=w.cn_calendar,
                   holidays=w.holidays, workdays=w.workdays)

    def _local(self, dt):
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=datetime.timezone.utc)
        return dt.astimezone(self.tz)

    def working(self, day):
        """Is this local date a day the window opens at all (its weekday, or a make-up day)?"""
        holiday, workday = day in self.holidays, day in self.workdays
        if self.cn_calendar and not (holiday or workday):
            holiday, workday = _cn_calendar(day)
        if holiday:
            return False
        # a make-up working day (调休) counts as a Monday, as in the IVR's schedule
        return (0 if workday else day.weekday()) in self.days

    def is_open(self, dt):
        local = self._local(dt)
        if not self.working(local.date()):
            return False
        minute = local.hour * 60 + local.minute
        return any(s <= minute < e for s, e in self.spans)

    def next_open(self, dt):
        """The first moment at or after `dt` inside the window (aware, in the window's zone), or
        None if it never opens within SEARCH_DAYS."""
        local = self._local(dt)
        if self.is_open(local):
            return local
        day = local.date()
        for i in range(SEARCH_DAYS):
            d = day + datetime.timedelta(days=i)
            if not self.working(d):
                continue
            for start, _end in self.spans:
                at = datetime.datetime.combine(d, datetime.time(start // 60, start % 60), tzinfo=self.tz)
                if at >= local:
                    return at
        return None

    def closes_at(self, dt):
        """End of the span `dt` is in (None when closed): a dial started just before need not ring
        past it."""
        local = self._local(dt)
        if not self.is_open(local):
            return None
        minute = local.hour * 60 + local.minute
        for s, e in self.spans:
            if s <= minute < e:
                base = datetime.datetime.combine(local.date(), datetime.time(0), tzinfo=self.tz)
                return base + datetime.timedelta(minutes=e)
        return None
