"""Agents' day from the audit log: time in each state, calls answered, offers missed, breaks by
reason. The audit log is the durable record (Redis holds only the live state), so a report can be
run for any past day and from any engine.

    hotline agents report [--date 2026-11-23] [--tz Asia/Shanghai] [--json]
"""
import collections
import datetime
import zoneinfo

from engine.acd.audit import audit_model
from engine.infra.database import database_from_url

STATES = ("available", "reserved", "ringing", "in_call", "wrap_up", "on_break")
MISSED_REASONS = {"no_answer", "user_busy", "call_rejected", "no_user_response", "user_not_registered",
                  "missed_calls", "subscriber_absent", "recovery_on_timer_expire"}


def day_bounds(day, tz="Asia/Shanghai"):
    """The local day as naive UTC datetimes (the audit log stores UTC)."""
    zone = zoneinfo.ZoneInfo(tz)
    start = datetime.datetime.combine(day, datetime.time(), tzinfo=zone)
    end = start + datetime.timedelta(days=1)
    utc = datetime.timezone.utc
    return start.astimezone(utc).replace(tzinfo=None), end.astimezone(utc).replace(tzinfo=None)


def agent_figures(db_url, day, tz="Asia/Shanghai"):
    """{agent: {"seconds": {state: s}, "logged_in": s, "answered": n, "missed": n,
    "breaks": {reason: s}, "wrapup_ended_early": n}} for the local day. A state is counted when
    it ends (a transition out of it), so time still running at midnight goes to the next day."""
    start, end = day_bounds(day, tz)
    db = database_from_url(db_url)
    event = audit_model(db)
    try:
        db.connect(reuse_if_open=True)
        if not db.table_exists("audit_event"):
            return {}
        rows = list(event.select().where((event.at >= start) & (event.at < end)).order_by(event.id).dicts())
    finally:
        db.close()
    out = collections.defaultdict(lambda: {"seconds": {s: 0.0 for s in STATES}, "logged_in": 0.0,
                                           "answered": 0, "missed": 0, "breaks": collections.Counter(),
                                           "wrapup_ended_early": 0})
    break_reason = {}
    for row in rows:
        agent = row["agent"]
        if not agent:
            continue
        a = out[agent]
        if row["action"] == "wrapup_end" and row["reason"] in ("ready", "break", "logout", "ended"):
            a["wrapup_ended_early"] += 1
        if row["action"] != "state":
            continue
        previous, to = row["from_state"], row["to_state"]
        spent = row["seconds_in_previous"] or 0.0
        if previous in a["seconds"]:
            a["seconds"][previous] += spent
            a["logged_in"] += spent
        if previous == "on_break":
            a["breaks"][break_reason.get(agent) or "?"] += spent
        if to == "on_break":
            break_reason[agent] = row["reason"] or "?"
        if to == "in_call" and previous in ("ringing", "reserved"):
            a["answered"] += 1
        if previous == "ringing" and (row["reason"] or "").lower() in MISSED_REASONS:
            a["missed"] += 1
    result = {}
    for agent, a in sorted(out.items()):
        result[agent] = {"seconds": {k: round(v, 1) for k, v in a["seconds"].items()},
                         "logged_in": round(a["logged_in"], 1), "answered": a["answered"],
                         "missed": a["missed"], "breaks": {k: round(v, 1) for k, v in a["breaks"].items()},
                         "wrapup_ended_early": a["wrapup_ended_early"],
                         "occupancy": _occupancy(a["seconds"])}
    return result


def _occupancy(seconds):
    """Share of working time (available + busy) spent busy with callers, in percent."""
    busy = seconds["reserved"] + seconds["ringing"] + seconds["in_call"] + seconds["wrap_up"]
    working = busy + seconds["available"]
    return round(100.0 * busy / working, 1) if working else None
