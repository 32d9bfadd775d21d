"""The CDR tables (peewee) and the database they live in, chosen by URL.

Tables are bound to a database by `CdrStore.open()`; one store per process is the intended use.
`sqlite:///path` (the default) runs in WAL mode with foreign keys on; `postgresql://...` goes
through playhouse.db_url (needs psycopg2 or psycopg installed).
"""
import datetime
import json

import peewee
from playhouse.db_url import connect as connect_url

# SQLite's own wait on a lock is off: it sleeps inside C and stops the whole gevent hub (30 queued
# writers waiting 5 ms each stalled every call for 0.18 s). The store polls cooperatively instead
# (store.CdrStore._attempt); with this at 0 the hub stayed within ~17 ms in the same test.
SQLITE_LOCK_WAIT_MS = 0


class JSONField(peewee.TextField):
    """Python lists/dicts as JSON text; Chinese stays readable in the database (ensure_ascii off)."""

    def db_value(self, value):
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)

    def python_value(self, value):
        if value is None:
            return None
        try:
            return json.loads(value)
        except ValueError:
            return value            # written by hand or another tool: show it, do not fail the read


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class BaseModel(peewee.Model):
    class Meta:
        database = None             # bound by CdrStore.open()
        legacy_table_names = False


class Cdr(BaseModel):
    """One row per call, unique by the switch's channel uuid. Times are UTC."""
    uuid = peewee.CharField(max_length=64, unique=True)
    caller_number = peewee.TextField(null=True, index=True)   # as received: may be hostile text;
    # indexed: the agent's screen pop reads the caller's last calls (CdrStore.by_caller)
    caller_name = peewee.TextField(null=True)
    destination = peewee.TextField(null=True)
    start_time = peewee.DateTimeField(null=True, index=True)
    answer_time = peewee.DateTimeField(null=True)
    end_time = peewee.DateTimeField(null=True)
    duration = peewee.IntegerField(null=True)        # seconds, start to end
    billsec = peewee.IntegerField(null=True)         # seconds, answer to end
    hangup_cause = peewee.CharField(max_length=64, null=True)
    hangup_side = peewee.CharField(max_length=16, default="")   # caller|engine|agent|system|''
    ivr_path = JSONField(null=True)
    queue = peewee.TextField(null=True)
    wait_seconds = peewee.FloatField(null=True)
    agent = peewee.TextField(null=True)
    talk_seconds = peewee.FloatField(null=True)
    wrapup_seconds = peewee.FloatField(null=True)
    recording = peewee.TextField(null=True)
    satisfaction = peewee.IntegerField(null=True)
    bot_transcript = JSONField(null=True)
    tags = JSONField(null=True)
    extra = JSONField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    # When the engine produced this version (not when it reached the database): a spooled older
    # version replayed late never overwrites a newer one.
    updated_at = peewee.DateTimeField(default=utcnow)


class Outbox(BaseModel):
    """What consumers (the ticket module) read; written in the same transaction as the CDR."""
    id = peewee.AutoField()
    cdr_uuid = peewee.CharField(max_length=64, index=True)
    kind = peewee.CharField(max_length=32, default="cdr")
    # One id per write() call: replaying a spooled write that had in fact committed adds nothing.
    write_id = peewee.CharField(max_length=64, unique=True)
    payload = JSONField()
    created_at = peewee.DateTimeField(default=utcnow)


class OutboxAck(BaseModel):
    """Entries a consumer has finished with; an entry is handed to each consumer until it acks."""
    consumer = peewee.CharField(max_length=64)
    outbox = peewee.ForeignKeyField(Outbox, on_delete="CASCADE", backref="acks")
    acked_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        primary_key = peewee.CompositeKey("consumer", "outbox")


MODELS = [Cdr, Outbox, OutboxAck]

# Columns a record may set (everything but the bookkeeping ones).
CDR_FIELDS = tuple(f for f in Cdr._meta.sorted_field_names if f not in ("id", "created_at", "updated_at"))
JSON_FIELDS = ("ivr_path", "bot_transcript", "tags", "extra")
TIME_FIELDS = ("start_time", "answer_time", "end_time")
INT_FIELDS = ("duration", "billsec", "satisfaction")
FLOAT_FIELDS = ("wait_seconds", "talk_seconds", "wrapup_seconds")


def database_from_url(url, busy_timeout=1.0):
    """A peewee database for `url`, not yet connected."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        return peewee.SqliteDatabase(
            path, thread_safe=False, timeout=SQLITE_LOCK_WAIT_MS / 1000.0,
            pragmas={"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": SQLITE_LOCK_WAIT_MS,
                     "synchronous": "full"})
    if url.split(":", 1)[0] in ("postgresql", "postgres"):
        make_psycopg2_cooperative()
        # thread_safe off: the store serialises use of its one connection with its own lock.
        # A lock held elsewhere fails the statement after busy_timeout instead of waiting forever
        # (the store retries); an unreachable server fails the connect after a few seconds.
        params = {"thread_safe": False, "autoconnect": True}
        if "connect_timeout" not in url:
            params["connect_timeout"] = 5
        if "options" not in url:
            params["options"] = f"-c lock_timeout={max(1, int(busy_timeout * 1000))}"
        return connect_url(url, **params)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")


def make_psycopg2_cooperative():
    """psycopg2 blocks in C on every round trip; under gevent that would stop every call while
    the database answers (or not). Its wait callback lets the hub run while it waits on the
    socket (what psycogreen does, in a few lines)."""
    try:
        import psycopg2
        from psycopg2 import extensions
    except ImportError:
        raise ImportError("a postgresql:// database needs psycopg2: pip install 'hotline[postgresql]'") from None
    from gevent.socket import wait_read, wait_write

    def wait(conn, timeout=None):
        while True:
            state = conn.poll()
            if state == extensions.POLL_OK:
                return
            if state == extensions.POLL_READ:
                wait_read(conn.fileno(), timeout=timeout)
            elif state == extensions.POLL_WRITE:
                wait_write(conn.fileno(), timeout=timeout)
            else:
                raise psycopg2.OperationalError(f"bad state from poll: {state!r}")

    extensions.set_wait_callback(wait)


def sqlite_path(db):
    return db.database if isinstance(db, peewee.SqliteDatabase) else None
