"""Contacts built from our own data, for follow-up campaigns:

    tickets_closed   tickets closed on a local day (optionally of one category)
    survey_low       calls of a local day whose satisfaction score was 1-2 (满意 scale: the survey
                     asks 1 非常满意 ... 5 非常不满意, so "low" is a score the caller chose as good or
                     bad: `scores` says which, default 4-5, the unhappy ones)
    unreachable      callback jobs that failed (every attempt used up)

Each returns (rows, errors) like a contact file, rows with `source` naming the record.
"""
import datetime
import zoneinfo

from engine.outbound.contacts import normalise_number


def _day_bounds(day, tz):
    zone = zoneinfo.ZoneInfo(tz)
    start = datetime.datetime.combine(day, datetime.time(), zone).astimezone(datetime.timezone.utc)
    return start.replace(tzinfo=None), (start + datetime.timedelta(days=1)).replace(tzinfo=None)


def _row(number, name, reference, fields, source, errors):
    clean, problem = normalise_number(number)
    if clean is None:
        errors.append(f"{source}: number: {problem}")
        return None
    return {"number": clean, "name": name or "", "reference": reference or "", "fields": fields, "source": source}


def _dedupe(rows):
    seen, out = set(), []
    for r in rows:
        if r and r["number"] not in seen:
            seen.add(r["number"])
            out.append(r)
    return out


def tickets_closed(db, day, category=None, tz="Asia/Shanghai"):
    from engine.tickets.models import bound_models
    t = bound_models(db.db)
    start, end = _day_bounds(day, tz)
    E, T = t.TicketEvent, t.Ticket
    closed = (E.select(E.ticket_id).where((E.to_state == "closed") & (E.at >= start) & (E.at < end)))
    q = T.select().where(T.id.in_(closed))
    if category:
        q = q.where(T.category == category)
    errors = []
    rows = db.run(lambda: [_row(x.caller_number, "", x.number,
                                {"summary": x.summary or "", "ticket_date": x.created_at.date().isoformat(),
                                 "category": x.category}, f"ticket {x.number}", errors)
                           for x in q.order_by(T.id)])
    return _dedupe(rows), errors


def survey_scores(db, day, scores=(4, 5), tz="Asia/Shanghai"):
    from engine.tickets.models import bound_models
    C = bound_models(db.db).Cdr
    start, end = _day_bounds(day, tz)
    errors = []
    rows = db.run(lambda: [_row(c.caller_number, c.caller_name, c.uuid,
                                {"satisfaction_before": str(c.satisfaction), "agent": c.agent or "",
                                 "ticket_date": (c.start_time or start).date().isoformat()},
                                f"call {c.uuid}", errors)
                           for c in C.select().where((C.start_time >= start) & (C.start_time < end)
                                                     & C.satisfaction.in_(list(scores))).order_by(C.id)])
    return _dedupe(rows), errors


def unreachable_callbacks(db, since=None):
    J = db.m.CallbackJob
    q = J.select().where(J.state == "failed")
    if since:
        q = q.where(J.updated_at >= since)
    errors = []
    rows = db.run(lambda: [_row(j.number, "", j.call_uuid or f"job {j.id}",
                                {"summary": j.note or "", "last_result": j.last_result or ""},
                                f"callback job {j.id}", errors) for j in q.order_by(J.id)])
    return _dedupe(rows), errors
