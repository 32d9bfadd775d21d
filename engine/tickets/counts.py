"""Ticket figures of one local day, for the daily report (engine/cdr/report.py calls daily_counts).

opened  = tickets created during the day;
closed  = tickets moved to closed during the day (their history says when);
overdue = tickets past their due time and still open (not resolved, closed or withdrawn) at the
          end of the day, or now if the day is not over yet.
"""
import datetime
import zoneinfo

import peewee

from engine.cdr.models import utcnow
from engine.tickets.store import TicketStore

DEFAULT_TZ = "Asia/Shanghai"
HANDLED = ("resolved", "closed", "withdrawn")


def daily_counts(db_or_url, day, tz=DEFAULT_TZ, now=None):
    """{"opened": n, "closed": n, "overdue": n} for the local day `day` (a datetime.date).
    `db_or_url`: a database URL or an open TicketStore."""
    if not isinstance(day, datetime.date) or isinstance(day, datetime.datetime):
        raise TypeError(f"day must be a datetime.date, got {type(day).__name__}")
    own = not isinstance(db_or_url, TicketStore)
    store = TicketStore(db_or_url).open() if own else db_or_url
    try:
        start, end = day_bounds(day, tz)
        cutoff = min(end, now or utcnow())
        return store.run(lambda: _counts(store.m, start, end, cutoff))
    finally:
        if own:
            store.close()


def _counts(m, start, end, cutoff):
    T, E = m.Ticket, m.TicketEvent
    opened = T.select().where((T.created_at >= start) & (T.created_at < end)).count()
    closed = (E.select(peewee.fn.COUNT(E.ticket_id.distinct()))
              .where((E.to_state == "closed") & (E.from_state != "closed") & (E.at >= start) & (E.at < end))
              .scalar())
    # A ticket's state at the cutoff is the to_state of its last history line before it (every
    # line, reminders included, carries the state the ticket was in afterwards).
    last_lines = E.select(peewee.fn.MAX(E.id)).where(E.at < cutoff).group_by(E.ticket_id)
    handled = E.select(E.ticket_id).where(E.id.in_(last_lines) & E.to_state.in_(HANDLED))
    overdue = T.select().where((T.created_at < cutoff) & (T.due_at < cutoff) & T.id.not_in(handled)).count()
    return {"opened": opened, "closed": closed or 0, "overdue": overdue}


def day_bounds(day, tz=DEFAULT_TZ):
    """The local day [start, end) as naive UTC datetimes (ticket times are stored in UTC)."""
    zone = zoneinfo.ZoneInfo(tz)
    utc = datetime.timezone.utc
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=zone).astimezone(utc)
    end = datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), tzinfo=zone).astimezone(utc)
    return start.replace(tzinfo=None), end.replace(tzinfo=None)
