"""Daily report figures (issue 6 section 4) computed from one day's CDRs.

Only the pure computation has landed: `daily_figures(cdrs)` over CDR dicts (engine.cdr fields).
The CLI (`hotline report daily`), ticket figures and the PNG chart are not done yet.
"""
SERVICE_LEVEL_SECONDS = 20   # answered within 20 s of queue wait
ANSWER_RATE_TARGET = 0.95


def _avg(values):
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 1) if values else None


def daily_figures(cdrs):
    """Offered = calls that reached a queue; answered = an agent took it."""
    offered = [c for c in cdrs if c.get("queue")]
    answered = [c for c in offered if c.get("agent")]
    rated = [c["satisfaction"] for c in cdrs if c.get("satisfaction") in (1, 2, 3, 4, 5)]
    within = [c for c in answered if (c.get("wait_seconds") or 0) <= SERVICE_LEVEL_SECONDS]
    n = len(offered)
    return {
        "offered": n,
        "answered": len(answered),
        "answer_rate": round(len(answered) / n, 4) if n else None,
        "answer_rate_target": ANSWER_RATE_TARGET,
        "abandoned": n - len(answered),
        "service_level": round(len(within) / n, 4) if n else None,
        "avg_wait": _avg(c.get("wait_seconds") for c in offered),
        "avg_talk": _avg(c.get("talk_seconds") for c in answered),
        "avg_wrapup": _avg(c.get("wrapup_seconds") for c in answered),
        "rated": len(rated),
        "satisfaction_rate": round(sum(1 for s in rated if s <= 2) / len(rated), 4) if rated else None,
    }
