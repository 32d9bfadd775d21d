"""Callback deadlines: the same reminder and escalation as a ticket's SLA (engine/tickets/sla.py),
each once, for open callback jobs: a reminder `remind_minutes` before the deadline, an escalation
once it has passed. Hooks are fn(action, job dict), like the ticket checker's."""
import datetime
import logging

from engine.outbound.tables import OPEN_JOB_STATES, as_dict

log = logging.getLogger("hotline.outbound")


def check_deadlines(db, remind_minutes=30.0, hooks=(), now=None):
    """Send what is due now; returns [(action, job)]."""
    J = db.m.CallbackJob
    now = now or db.clock()
    horizon = now + datetime.timedelta(minutes=remind_minutes)
    rows = db.run(lambda: [as_dict(j) for j in J.select().where(
        J.state.in_(OPEN_JOB_STATES) & J.escalated_at.is_null() & J.deadline_at.is_null(False)
        & (J.deadline_at <= horizon)).order_by(J.deadline_at, J.id)])
    sent = []
    for job in rows:
        if job["deadline_at"] <= now:
            action, field = "escalate", J.escalated_at
        elif job["reminded_at"] is None and remind_minutes:
            action, field = "remind", J.reminded_at
        else:
            continue
        # the mark first, in one statement that only one checker can win: never sent twice
        won = db.run(lambda: J.update({field: now}).where((J.id == job["id"]) & field.is_null()).execute(),
                     write=True)
        if not won:
            continue
        level = logging.WARNING if action == "escalate" else logging.INFO
        log.log(level, "%s: callback job %d to %s (%s, queue %s) %s: deadline %s UTC, %d attempt(s), last %s",
                job["call_uuid"] or "-", job["id"], job["number"], job["reason"], job["queue"] or "-",
                "ESCALATED" if action == "escalate" else "reminder", f"{job['deadline_at']:%Y-%m-%d %H:%M}",
                job["attempts"], job["last_result"] or "-")
        for hook in hooks:
            try:
                hook(action, job)
            except Exception:       # noqa: BLE001 - a broken notifier must not stop the checks
                log.exception("callback job %d: %s hook failed", job["id"], action)
        sent.append((action, job))
    return sent
