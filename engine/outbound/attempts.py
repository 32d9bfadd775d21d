"""Every dial of a callback job or a campaign contact, written where people look for it: the
attempt row, the job or contact (attempts, last result, next due time or final state), the
ticket's history, and an outbound CDR linked to the original call.

    attempt_id = begin(db, "job", job, agent="1001", engine=owner)
    finish(db, claims, "job", job, attempt_id, result="no_answer", cause="NO_ANSWER",
           call_uuid=leg_uuid, cdr_writer=cdr_store.write)

Results: answered / completed (reached: the job or contact is done); the dialler's (busy,
no_answer, rejected, failed, our_fault, and its refusals window_closed, paused: tried again when
it says; invalid, blocked, dnc: final at once); abandoned (answered, no agent free: we owe them a
call, soon), not_confirmed (robot: answered but never pressed 1 to start), lost (the engine died
during the dial: found by the reaper) — tried again after RETRY_AFTER until max attempts.
Preview calls ring the agent first (engine/outbound/agentfirst.py): agent_missed (the agent did
not answer: the customer was never dialled) and agent_hung_up (the agent left while the customer
rang: the dial was cancelled) do not count against the customer and are due again at once.
"""
import datetime
import logging
import uuid as uuidlib

from engine.outbound.tables import as_dict

log = logging.getLogger("hotline.outbound")

REACHED = ("answered", "completed")
FINAL_UNREACHED = ("invalid", "blocked", "dnc")
RETRY_AFTER = {          # minutes before the next try
    "no_answer": 30, "busy": 10, "failed": 15, "abandoned": 5, "not_confirmed": 60, "lost": 0,
    "outside_window": 0,
}


def retry_delay(result, attempts):
    """Minutes before the next try when the dialler gave no time (results of the call itself:
    abandoned, not_confirmed, lost): the dialler's default rules, else our table."""
    from engine.outbound.config import DEFAULT_RETRY
    rule = DEFAULT_RETRY.get(result)
    return rule.delay_minutes if rule is not None else RETRY_AFTER.get(result, 15)


def begin(db, kind, row, agent=None, engine=""):
    """The attempt row (started now); the row's attempt count goes up. Returns the attempt id."""
    A = db.m.Attempt
    M = db.m.Contact if kind == "contact" else db.m.CallbackJob
    now = db.clock()

    def write():
        fields = {"number": row["number"], "started_at": now, "agent": agent, "engine": engine}
        if kind == "contact":
            fields.update(contact_id=row["id"], campaign_id=row["campaign_id"])
        else:
            fields.update(job_id=row["id"])
        attempt = A.create(**fields)
        M.update(attempts=M.attempts + 1, updated_at=now).where(M.id == row["id"]).execute()
        return attempt.id
    return db.run(write, write=True)


def finish(db, claims, kind, row, attempt_id, result, *, cause=None, call_uuid=None, answered_at=None,
           agent=None, answers=None, comment=None, disposition=None, max_attempts=3,
           cdr_writer=None, started_at=None, counts=True, retry_at=None, final=False, cdr_extra=None):
    """Write the attempt's end and release the claim with the row's next state. Returns the
    row's new state ('done', 'failed' or 'pending'). The dialler's verdict, when it has one:
    `counts` False (refused before dialling, or our side failed: not held against the contact),
    `retry_at` (its retry rules, its calling window), `final` (never again)."""
    A = db.m.Attempt
    M = db.m.Contact if kind == "contact" else db.m.CallbackJob
    now = db.clock()
    # The attempt's result is written in the same transaction as the row's release (below): a
    # process killed between the two would leave a finished attempt on a claimed row, and the
    # reaper would have it dialled again.
    attempts = db.run(lambda: M.get_by_id(row["id"]).attempts) - (0 if counts else 1)

    def write_attempt():
        A.update(result=result, cause=cause, call_uuid=call_uuid, answered_at=answered_at,
                 ended_at=now, agent=agent).where(A.id == attempt_id).execute()
        if not counts:
            M.update(attempts=M.attempts - 1).where((M.id == row["id"]) & (M.attempts > 0)).execute()
    limit = row.get("max_attempts") or max_attempts
    fields = {"last_result": result}
    if agent:
        fields["agent"] = agent
    if kind == "contact":
        if answers:
            fields["answers"] = answers
        if comment:
            fields["comment_recording"] = comment
        if disposition:
            fields["disposition"] = disposition
    if result in REACHED:
        state = "done"
    elif result == "opted_out":         # answered and asked never to be called again
        state = "skipped"
    elif final or result in FINAL_UNREACHED or (counts and attempts >= limit):
        state = "failed"
    else:
        state = "pending"
        due = retry_at or now + datetime.timedelta(minutes=retry_delay(result, attempts))
        fields["next_due_at" if kind == "contact" else "due_at"] = due
    if not claims.release(kind, row["id"], state=state, also=write_attempt, **fields):
        return "lost"           # reaped meanwhile: the reaper wrote this attempt off as lost
    log.info("%s: outbound %s %s attempt %d to %s: %s (%s) -> %s", call_uuid or "-", kind, row["id"],
             attempts, row["number"], result, cause or "-", state)
    if kind == "job":
        _ticket_note(db, row, attempts, result, agent, state)
    if cdr_writer is not None:
        _write_cdr(cdr_writer, kind, row, attempts, result, cause, call_uuid, started_at or now,
                   answered_at, now, agent, cdr_extra)
    return state


def attempts_of(db, kind, row_id):
    A = db.m.Attempt
    field = A.contact_id if kind == "contact" else A.job_id
    return db.run(lambda: [as_dict(a) for a in A.select().where(field == int(row_id)).order_by(A.id)])


def _ticket_note(db, job, attempts, result, agent, state):
    """A line in the history of the job's ticket (or of the call's callback/voicemail ticket)."""
    from engine.tickets.models import bound_models
    try:
        t = bound_models(db.db)

        def write():
            ticket_id = job.get("ticket_id")
            if ticket_id is None and job.get("call_uuid"):
                row = (t.Ticket.select(t.Ticket.id).where(t.Ticket.call_uuid == job["call_uuid"])
                       .order_by(t.Ticket.id).first())
                ticket_id = row and row.id
            if ticket_id is None:
                return None
            t.TicketEvent.create(ticket_id=ticket_id, at=db.clock(), who=agent or "outbound", action="callback",
                                 note=f"回拨第 {attempts} 次 {job['number']}：{result}"
                                      f"（任务 {job['id']}，{state}）")
            return ticket_id
        return db.run(write, write=True)
    except Exception as exc:        # noqa: BLE001 - no ticket tables yet: the job keeps the attempt
        log.warning("%s: callback job %s: ticket history not written: %s", job.get("call_uuid") or "-",
                    job["id"], exc)
        return None


def cdr_fields(kind, row, attempts, result):
    """(extra, tags) of an attempt's CDR: its own (below), or the CDR of a preview call's customer
    handed to the engine by a blind transfer (engine/acd/bridged.py)."""
    extra = {"direction": "outbound", "result": result, "attempt": attempts}
    tags = ["outbound"]
    if kind == "job":
        extra.update(callback_job=row["id"], original_call=row.get("call_uuid"), reason=row.get("reason"),
                     callback_queue=row.get("queue"))
        if row.get("ticket_id"):
            extra["ticket_id"] = row["ticket_id"]
        tags.append("callback_attempt")
    else:
        extra.update(campaign=row.get("campaign_id"), contact=row["id"], reference=row.get("reference") or None)
        tags.append("campaign")
    return extra, tags


def _write_cdr(cdr_writer, kind, row, attempts, result, cause, call_uuid, started, answered, ended, agent,
               more=None):
    """The outbound CDR: direction outbound, linked to the original call (job) or the campaign."""
    def iso(t):
        return t.replace(tzinfo=datetime.timezone.utc).isoformat() if t else None
    extra, tags = cdr_fields(kind, row, attempts, result)
    extra.update(more or {})            # what the call adds (a preview call's holds)
    record = {"uuid": call_uuid or f"ob-{uuidlib.uuid4()}", "destination": row["number"],
              "start_time": iso(started), "answer_time": iso(answered), "end_time": iso(ended),
              "duration": int((ended - started).total_seconds()),
              "billsec": int((ended - answered).total_seconds()) if answered else 0,
              "hangup_cause": cause, "hangup_side": "", "agent": agent,
              "tags": tags, "extra": extra}
    try:
        cdr_writer(record)
    except Exception as exc:       # noqa: BLE001 - the attempt row holds the result anyway
        log.error("%s: outbound CDR not written: %s", record["uuid"], exc)
