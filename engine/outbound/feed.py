"""The CDR outbox -> callback jobs: every call that ended with a promise to call back.

    feed = JobFeed(db, deadline_hours=2).start()     # a greenlet polling the outbox
    feed.run_once()                                  # one pass (tests)

Read as the outbox consumer `callbacks` (the ticket module reads it as `tickets`: each consumer
acks its own entries). One transaction a pass: the jobs and the acks commit together, and a job is
unique per (call, reason), so a replayed entry never makes a second job.

Which calls (jobs_for_cdr):
- tag `callback`: the queue's callback offer or exit key (engine/acd/exits.py: the caller pressed
  1 to be called back on extra.callback_number), or the bot's registration (extra.callback_source
  `bot`: engine/bot/session.py tags a finished `callback` task the same way);
- tag `voicemail:<box>` with a message file: a voicemail (engine/ivr/nodes/voicemail.py, the queue's
  voicemail exit) is a promise to call back too.
Outbound CDRs (our own dials) are never a reason for a job.
"""
import logging
import os

import peewee

from engine.infra.periodic import Looping, Periodic
from engine.outbound.campaigns import OutboundError
from engine.outbound.jobs import DEFAULT_DEADLINE_HOURS, make_job
from engine.tickets.rules import voicemail_path

log = logging.getLogger("hotline.outbound")

CONSUMER = "callbacks"
BATCH = 100
MAX_AGE_HOURS = 24.0        # older calls make no job: a first start must not turn a year of outbox
                            # into overdue promises (their callback tickets are there already)


def jobs_for_cdr(cdr):
    """[{number, reason, queue, note}] for one CDR (outbox payload)."""
    if not isinstance(cdr, dict) or not cdr.get("uuid"):
        return []
    tags = [t for t in (cdr.get("tags") or []) if isinstance(t, str)]
    extra = cdr.get("extra") if isinstance(cdr.get("extra"), dict) else {}
    if extra.get("direction") == "outbound" or "outbound" in tags or "provisional" in tags:
        return []
    queue = cdr.get("queue") or None
    caller = cdr.get("caller_number")
    out = []
    if "callback" in tags:
        number = extra.get("callback_number") or caller
        bot = extra.get("callback_source") == "bot"
        out.append({"number": number, "reason": "bot" if bot else "queue_callback", "queue": queue,
                    "note": ("语音机器人登记回电" if bot else "来电人在排队时要求回拨")
                    + f"（来电 {caller or '?'}）"})
    boxes = [t.split(":", 1)[1] for t in tags if t.startswith("voicemail:")]
    path = voicemail_path(extra)
    if boxes and path and os.path.isfile(path):      # no message recorded: the callback ticket says so
        out.append({"number": caller, "reason": "voicemail", "queue": queue or None,
                    "note": f"来电留言（信箱 {boxes[-1]}）：{path}"})
    return out


class JobFeed(Looping):
    def __init__(self, db, deadline_hours=DEFAULT_DEADLINE_HOURS, poll_interval=2.0, mode="preview"):
        self.db = db
        self.deadline_hours = deadline_hours
        self.mode = mode
        self.loop = Periodic(self.drain, poll_interval, "callback jobs from the outbox", log)
        self._tables = False
        self.created = 0
        self.acked_last = 0         # entries the last pass acked

    def run_once(self, limit=BATCH):
        """One pass; returns the jobs made (dicts)."""
        from engine.tickets.models import bound_models
        t = bound_models(self.db.db if self.db.db is not None else self.db.open().db)

        def unacked():
            acked = t.OutboxAck.select().where((t.OutboxAck.consumer == CONSUMER) &
                                               (t.OutboxAck.outbox == t.Outbox.id))
            return list(t.Outbox.select().where(~peewee.fn.EXISTS(acked)).order_by(t.Outbox.id).limit(limit))
        if not self._tables:
            self.db.run(lambda: self.db.db.create_tables([t.Outbox, t.OutboxAck], safe=True), write=True)
            self._tables = True
        if not self.db.run(unacked):          # nothing new: no write transaction
            self.acked_last = 0
            return []

        def write():
            entries = unacked()
            made, done = [], []
            for entry in entries:
                specs = jobs_for_cdr(entry.payload) if entry.kind == "cdr" else []
                if specs and _older_than(entry.payload, self.db.clock(), MAX_AGE_HOURS):
                    log.info("%s: call older than %g h: no callback job (its ticket stands)",
                             entry.cdr_uuid, MAX_AGE_HOURS)
                    specs = []
                for spec in specs:
                    try:
                        job, new = make_job(self.db, spec["number"], spec["reason"], queue=spec["queue"],
                                            call_uuid=entry.cdr_uuid, note=spec["note"], mode=self.mode,
                                            deadline_hours=self.deadline_hours, who="outbox")
                        if new:
                            made.append(job)
                    except OutboundError as exc:      # a withheld or hostile number: nobody to call
                        log.warning("%s: no callback job: %s", entry.cdr_uuid, exc)
                done.append(entry.id)
            if done:
                (t.OutboxAck.insert_many([{"consumer": CONSUMER, "outbox": i} for i in done])
                    .on_conflict_ignore().execute())
            self.acked_last = len(done)
            return made
        made = self.db.run(write, write=True)
        self.created += len(made)
        return made

    def drain(self):
        """Passes while the last one acked entries (more may wait)."""
        self.run_once()
        while self.acked_last:
            self.run_once()


def _older_than(cdr, now, hours):
    """The call ended more than `hours` before `now` (naive UTC); unknown times are not old."""
    import datetime
    text = cdr.get("end_time") or cdr.get("start_time")
    try:
        ended = datetime.datetime.fromisoformat(str(text))
    except (TypeError, ValueError):
        return False
    if ended.tzinfo is not None:
        ended = ended.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return now - ended > datetime.timedelta(hours=hours)
