"""What the supervisors' wallboard shows: live queues, agents by state, calls in progress with their
stage, alerts, and today's figures per hour for the big screen.

Queues and agents come from Redis (engine.acd.views: the whole site, whichever engine serves the
page); calls are this engine's own plus, with several engines, what the others report through the
relay (engine.acd.relay). The service level has one definition (engine.acd.views, the daily
report): answered within the queue's threshold over offered. Today's figures come from the CDRs
through the daily report's own functions (engine.cdr.report), so the big screen and `hotline
report daily` never disagree.
"""
import datetime
import logging
import time
import zoneinfo

from engine.acd import views
from engine.web.boardconfig import DEFAULT_STATE_LIMITS, WallboardSettings  # noqa: F401

log = logging.getLogger("hotline.web.wallboard")


DEFAULTS = WallboardSettings()


def settings_of(engine):
    return getattr(engine.settings, "wallboard", None) or DEFAULTS


def snapshot(engine, queue=None, group=None, now=None):
    """{queues, agents, calls, alerts} for the wallboard, filtered by queue and agent group."""
    now = now or time.time()
    acd = engine.acd
    cfg = settings_of(engine)
    if acd is None:
        return {"queues": [], "agents": [], "calls": calls(engine, now), "alerts": [], "groups": []}
    queues = views.queues(acd, now)
    for q in queues:
        times = acd.store.handle_times(q["name"])
        q["average_handling"] = round(sum(times) / len(times), 1) if times else None
        q["service_level_target"] = cfg.service_level_target
    agents = views.agents(acd, now)
    limits = cfg.state_limits()
    for a in agents:
        a["groups"] = list(acd.config.agents[a["id"]].groups)
        limit = limits.get(a["state"])
        a["over_limit"] = bool(limit and (a["seconds_in_state"] or 0) > limit)
    rows = calls(engine, now)
    alerts = alerts_for(queues, cfg)
    groups = sorted({g for a in agents for g in a["groups"]})
    if queue:
        queues = [q for q in queues if q["name"] == queue]
        qualified = {a.id for a in acd.config.agents.values()
                     if queue in acd.config.queues and acd.config.qualified(a, acd.config.queues[queue])}
        agents = [a for a in agents if a["id"] in qualified]
        rows = [c for c in rows if c.get("queue") == queue]
        alerts = [al for al in alerts if al["queue"] == queue]
    if group:
        agents = [a for a in agents if group in a["groups"]]
        ids = {a["id"] for a in agents}
        rows = [c for c in rows if c.get("agent") in ids]
    return {"queues": queues, "agents": agents, "calls": rows, "alerts": alerts, "groups": groups,
            "queue_names": list(acd.config.queues), "at": now,
            # what the page needs to apply live rows (engine.web.live) between snapshots
            "state_limits": limits, "agent_groups": {a.id: list(a.groups) for a in acd.config.agents.values()}}


def alerts_for(queues, cfg):
    out = []
    for q in queues:
        if q["service_level"] is not None and q["service_level"] < cfg.service_level_target:
            out.append({"queue": q["name"], "kind": "service_level",
                        "text": f"{q['name']} 服务水平 {q['service_level']}% 低于目标 {cfg.service_level_target:g}%"})
        if q["longest_wait"] > cfg.wait_alert_seconds:
            out.append({"queue": q["name"], "kind": "wait",
                        "text": f"{q['name']} 最长等待 {int(q['longest_wait'])} 秒，超过 {cfg.wait_alert_seconds:g} 秒"})
    return out


def stage_of(row):
    """The stage people read from a row of engine.acd.views.calls: a caller taken off hold talks
    to the agent through the call's conference room (engine.acd.incall), which is no conference
    to them while nobody else is in it."""
    state = row.get("state")
    if state == "waiting":
        return "queue"
    if state == "conference" and not row.get("parties"):
        return "talking"
    return state


def calls(engine, now=None):
    """Every call in progress with its stage: ivr, bot, queue (waiting), ringing, talking, held,
    consulting, conference. This engine's calls, and those other engines report."""
    now = now or time.time()
    acd = engine.acd
    rows, seen = [], set()
    acd_rows = {}
    if acd is not None:
        for r in views.calls(acd, now):
            acd_rows[r["call"]] = r
    for call_uuid, call in list(engine.calls.items()):
        r = acd_rows.get(call_uuid)
        if r is not None:
            stage = stage_of(r)
            row = {"call": call_uuid, "caller": r["caller"], "queue": r["queue"], "agent": r.get("agent"),
                   "stage": stage, "seconds": r["seconds"]}
        else:
            node = getattr(call, "ivr_node", None)
            stage = "bot" if node == "bot" else "ivr"
            row = {"call": call_uuid, "caller": call.caller_id_number, "queue": call.info.get("queue"),
                   "agent": call.info.get("agent"), "stage": stage,
                   "seconds": round(time.monotonic() - call.started, 1)}
        row["caller_name"] = call.caller_id_name
        rows.append(row)
        seen.add(call_uuid)
    if acd is not None and len(acd.store.engines()) > 1:
        try:
            site, _missing = acd.relay.site_calls()
        except Exception as exc:
            log.warning("other engines' calls not read: %s", exc)
            site = []
        for r in site:
            if r["call"] in seen:
                continue
            rows.append({"call": r["call"], "caller": r.get("caller"), "caller_name": "",
                         "queue": r.get("queue"), "agent": r.get("agent"),
                         "stage": stage_of(r),
                         "seconds": r.get("seconds")})
    rows.sort(key=lambda r: -(r["seconds"] or 0))
    return rows


def today(engine, now=None):
    """Today's answered / abandoned / answer rate / service level / satisfaction, and per hour,
    from the CDRs (engine.cdr.report's definitions)."""
    from engine.cdr import report
    tz = getattr(engine.settings, "timezone", None) or "Asia/Shanghai"    # the hotline's one zone
    zone = zoneinfo.ZoneInfo(tz)
    day = datetime.datetime.fromtimestamp(now or time.time(), zone).date()
    cdrs = _day_cdrs(engine.store, day, tz)
    figures = report.daily_figures(cdrs)
    hourly = report.hourly_counts(cdrs, tz)
    rated_by_hour, satisfied_by_hour = [0] * 24, [0] * 24
    for c in cdrs:
        if c.get("satisfaction") in (1, 2, 3, 4, 5) and c.get("start_time"):
            hour = report._aware(c["start_time"]).astimezone(zone).hour
            rated_by_hour[hour] += 1
            satisfied_by_hour[hour] += c["satisfaction"] in report.SATISFIED_SCORES
    hourly["abandoned"] = [o - a for o, a in zip(hourly["offered"], hourly["answered"])]
    hourly["satisfaction_rate"] = [round(s / r, 4) if r else None
                                   for s, r in zip(satisfied_by_hour, rated_by_hour)]
    return {"day": day.isoformat(), "figures": figures, "hourly": hourly}


def _day_cdrs(store, day, tz):
    """The local day's final CDRs; under the store's lock (one connection for the engine)."""
    from engine.cdr import report
    with store._lock:
        store._connect()
        return report.day_cdrs(day, tz)      # the Cdr table is bound to the store's database
