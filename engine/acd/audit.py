"""The audit log: every agent state change and every supervisor action, with time, actor and reason.

Writes never hold up routing: `record()` only queues the row; one writer greenlet inserts them in
batches and retries while the database is busy or down (rows wait in memory, bounded; the oldest
are dropped with an ERROR line only if the database stays away for very long).
"""
import collections
import datetime
import logging

import gevent
import gevent.event
import peewee

from engine.cdr.models import JSONField, utcnow
from engine.infra.database import database_from_url

log = logging.getLogger("hotline.acd.audit")

MAX_PENDING = 100_000
BATCH = 200


class AuditEvent(peewee.Model):
    at = peewee.DateTimeField(default=utcnow, index=True)
    actor = peewee.CharField(max_length=64, default="system")     # system | agent:<id> | token name
    action = peewee.CharField(max_length=32)                      # state | wrapup_start | login | barge ...
    agent = peewee.CharField(max_length=64, null=True, index=True)
    from_state = peewee.CharField(max_length=16, null=True)
    to_state = peewee.CharField(max_length=16, null=True)
    seconds_in_previous = peewee.FloatField(null=True)
    reason = peewee.CharField(max_length=64, null=True)
    call_uuid = peewee.CharField(max_length=64, null=True, index=True)
    detail = JSONField(null=True)

    class Meta:
        database = None
        legacy_table_names = False
        table_name = "audit_event"


def audit_model(db):
    """AuditEvent bound to `db` as a subclass of its own (same table). Binding the shared class
    (`db.bind([AuditEvent])`) rebinds it for the whole process: an agents' report opening the
    database sent the engine's later audit writes to the report's closed connection (to another
    file, or "no such table", when the URLs differ). No foreign keys: nothing keeps it alive."""
    meta = type("Meta", (), {"database": db, "table_name": AuditEvent._meta.table_name})
    return type("AuditEvent", (AuditEvent,), {"Meta": meta, "__module__": __name__})


class AuditLog:
    def __init__(self, url):
        self.url = url
        self.db = None
        self._pending = collections.deque(maxlen=MAX_PENDING)
        self._wake = gevent.event.Event()
        self._idle = gevent.event.Event()
        self._idle.set()
        self._writer = None
        self.model = None           # AuditEvent bound to self.db (open)
        self.written = 0

    def open(self):
        self.db = database_from_url(self.url)
        self.model = audit_model(self.db)
        for _ in range(50):
            try:
                self.db.connect(reuse_if_open=True)
                self.db.create_tables([self.model], safe=True)
                break
            except peewee.OperationalError:          # locked by a concurrent writer
                gevent.sleep(0.05)
        self._writer = gevent.spawn(self._write_loop)
        return self

    def close(self, timeout=5):
        self.flush(timeout)
        if self._writer is not None:
            self._writer.kill()
        if self.db is not None:
            self.db.close()

    def record(self, action, actor="system", **fields):
        if len(self._pending) == self._pending.maxlen:
            log.error("audit backlog full (database away?): dropping the oldest row")
        fields.setdefault("at", utcnow())
        self._pending.append(dict(action=action, actor=actor, **fields))
        self._idle.clear()
        self._wake.set()

    def flush(self, timeout=5):
        return self._idle.wait(timeout)

    def _write_loop(self):
        backoff = 0.05
        while True:
            self._wake.wait()
            self._wake.clear()
            while self._pending:
                rows = [self._pending[i] for i in range(min(BATCH, len(self._pending)))]
                try:
                    with self.db.atomic():
                        self.model.insert_many(rows).execute()
                except (peewee.DatabaseError, peewee.InterfaceError, OSError) as exc:
                    log.warning("audit write failed (%s); retrying in %.2f s", exc, backoff)
                    gevent.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.05
                for _ in rows:
                    self._pending.popleft()
                self.written += len(rows)
                gevent.sleep(0)
            self._idle.set()

    # --- reading (CLI, reports) ---------------------------------------------------------------
    def events(self, agent=None, since=None, limit=200):
        m = self.model
        q = m.select().order_by(m.id.desc()).limit(limit)
        if agent:
            q = q.where(m.agent == agent)
        if since:
            q = q.where(m.at >= since)
        return list(q.dicts())


def day_start(day):
    return datetime.datetime.combine(day, datetime.time())
