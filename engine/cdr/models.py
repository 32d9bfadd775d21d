"""The CDR tables (peewee).

Tables are bound to a database by `CdrStore.open()`; one store per process is the intended use.
The database, chosen by URL (`sqlite:///path` or `postgresql://...`), comes from
engine.infra.database.
"""
import datetime
import json

import peewee

# re-exported: code written before the URL rules moved to engine.infra.database imports them here
from engine.infra.database import SQLITE_LOCK_WAIT_MS, database_from_url, sqlite_path  # noqa: F401


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
