"""Callback jobs: every promise to call someone back, from wherever it was made.

    job = create_job(db, number="13800138000", reason="queue_callback", queue="pension",
                     call_uuid=cdr_uuid, deadline_hours=2)
    list_jobs(db, state="pending", skills={"pension"})     # what an agent may take
    take(db, claims, job_id, agent="1001")                  # preview: the agent accepts
    skip(db, job_id, agent="1001")                          # not offered to 1001 again
    done(db, claims, job_id, agent="1001", disposition="resolved")

Where they come from: the CDR outbox (engine/outbound/feed.py: the queue's callback offer and
exit key, voicemail, the bot's registration), a ticket marked for call-back (from_ticket), or a
person (create_job with reason "manual"). Jobs made from a call are unique per (call, reason).
Dial results are written by engine/outbound/attempts.py; deadlines are watched by JobSla.
"""
import datetime
import logging

import peewee

from engine.outbound.campaigns import OutboundError
from engine.outbound.contacts import normalise_number
from engine.outbound.tables import JOB_REASONS, OPEN_JOB_STATES, as_dict

log = logging.getLogger("hotline.outbound")

DEFAULT_DEADLINE_HOURS = 2.0


def create_job(db, number, reason, **kw):
    """A new job (dict); for a call that already has a job for this reason, that job."""
    return make_job(db, number, reason, **kw)[0]


def make_job(db, number, reason, *, queue=None, skills=None, call_uuid=None, ticket_id=None, note="",
             mode="preview", due_at=None, deadline_hours=DEFAULT_DEADLINE_HOURS, max_attempts=3,
             who="system"):
    """(job, True) when made now, (the call's existing job for this reason, False) otherwise."""
    if reason not in JOB_REASONS:
        raise OutboundError(f"reason {reason!r}: one of {', '.join(JOB_REASONS)}")
    if mode not in ("preview", "auto"):
        raise OutboundError(f"mode {mode!r}: preview or auto")
    clean, problem = normalise_number(number)
    if clean is None:
        raise OutboundError(f"cannot call back: {problem}")
    J = db.m.CallbackJob
    now = db.clock()
    due = due_at or now
    deadline = due + datetime.timedelta(hours=float(deadline_hours)) if deadline_hours else None

    def write():
        if call_uuid:
            old = J.get_or_none((J.call_uuid == call_uuid) & (J.reason == reason))
            if old is not None:
                return as_dict(old), False
        row = J.create(number=clean, reason=reason, queue=queue, skills=sorted(skills or []),
                       call_uuid=call_uuid, ticket_id=ticket_id, note=note or "", mode=mode, due_at=due,
                       deadline_at=deadline, max_attempts=int(max_attempts), created_by=who,
                       created_at=now, updated_at=now)
        return as_dict(row), True
    job, made = db.run(write, write=True)
    if made:
        log.info("%s: callback job %d (%s) for %s, queue %s, deadline %s", call_uuid or "-", job["id"],
                 reason, clean, queue or "-", deadline and f"{deadline:%Y-%m-%d %H:%M} UTC")
    return job, made


def from_ticket(db, ticket_store, ticket_id, who="system", queue=None, deadline_hours=None):
    """A ticket marked for call-back: a job with the ticket's caller, call and summary."""
    ticket = ticket_store.get(ticket_id)
    if not ticket.get("caller_number"):
        raise OutboundError(f"ticket {ticket['number']} has no caller number to call back")
    hours = deadline_hours
    if hours is None and ticket.get("due_at"):
        hours = max(0.1, (ticket["due_at"] - db.clock()).total_seconds() / 3600.0)
    return create_job(db, ticket["caller_number"], "ticket", queue=queue, call_uuid=ticket.get("call_uuid"),
                      ticket_id=ticket["id"], note=f"工单 {ticket['number']}：{ticket.get('summary') or ''}",
                      deadline_hours=hours or DEFAULT_DEADLINE_HOURS, who=who)


def get_job(db, job_id):
    J = db.m.CallbackJob
    row = db.run(lambda: J.get_or_none(J.id == int(job_id)))
    if row is None:
        raise OutboundError(f"no callback job {job_id}")
    return as_dict(row)


def list_jobs(db, state=None, skills=None, agent=None, limit=None):
    """Jobs, oldest due first. `skills`: only jobs whose skills the agent has (a job without
    skills is anyone's); `agent`: not those this agent skipped."""
    J = db.m.CallbackJob

    def query():
        q = J.select().order_by(J.due_at, J.id)
        if state == "open":
            q = q.where(J.state.in_(OPEN_JOB_STATES))
        elif state and state != "all":
            q = q.where(J.state == state)
        return [as_dict(r) for r in q]
    rows = db.run(query)
    if skills is not None:
        have = set(skills)
        rows = [r for r in rows if set(r["skills"] or []) <= have]
    if agent is not None:
        rows = [r for r in rows if agent not in (r["skipped_by"] or [])]
    return rows[:limit] if limit else rows


def take(db, claims, job_id, agent):
    """The agent accepts the job (preview): it is theirs; the dial follows (runner.dial_job)."""
    job = get_job(db, job_id)
    if job["state"] != "pending":
        raise OutboundError(f"callback job {job_id} is {job['state']}"
                            + (f" (taken by {job['agent']})" if job["agent"] else ""))
    if not claims.claim("job", ids=[job["id"]]):
        raise OutboundError(f"callback job {job_id} was just taken by someone else")
    J = db.m.CallbackJob
    db.run(lambda: J.update(agent=agent).where(J.id == job["id"]).execute(), write=True)
    return get_job(db, job_id)


def skip(db, job_id, agent):
    J = db.m.CallbackJob

    def write():
        row = J.get_or_none(J.id == int(job_id))
        if row is None:
            raise OutboundError(f"no callback job {job_id}")
        skipped = sorted(set(row.skipped_by or []) | {agent})
        J.update(skipped_by=skipped, updated_at=db.clock()).where(J.id == row.id).execute()
    db.run(write, write=True)
    return get_job(db, job_id)


def done(db, claims, job_id, agent, disposition="done", note=""):
    """Close a job by hand (the agent reached the caller some other way, or it is moot)."""
    job = get_job(db, job_id)
    if job["state"] not in OPEN_JOB_STATES:
        raise OutboundError(f"callback job {job_id} is {job['state']} already")
    J = db.m.CallbackJob
    text = (job["note"] + f"\n{agent}: {disposition} {note}".rstrip()).strip()
    if job["state"] == "claimed" and (job["claimed_by"] == claims.owner):
        claims.release("job", job["id"], state="done", agent=agent, last_result=disposition, note=text)
    else:
        n = db.run(lambda: J.update(state="done", agent=agent, last_result=disposition, note=text,
                                    updated_at=db.clock())
                   .where((J.id == job["id"]) & (J.state == "pending")).execute(), write=True)
        if not n:
            raise OutboundError(f"callback job {job_id} is being dialled by {job['claimed_by']}")
    return get_job(db, job_id)


def counts(db):
    J = db.m.CallbackJob
    return dict(db.run(lambda: list(J.select(J.state, peewee.fn.COUNT(J.id)).group_by(J.state).tuples())))
