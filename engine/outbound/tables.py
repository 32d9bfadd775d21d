"""The outbound tables (peewee), in the CDR database: callback jobs, campaigns, their contacts,
and every dial attempt of either. Bound per database object like the ticket tables (see
engine/tickets/models.py: one store, one connection, its own model subclasses).

Times are naive UTC. A row's `state` is the truth about who may dial it: a contact or job is
dialled only by the engine that moved it to `claimed` (engine/outbound/claims.py).
"""
import types

import peewee

from engine.cdr.models import BaseModel, JSONField, utcnow

JOB_REASONS = ("queue_callback", "voicemail", "bot", "ticket", "manual", "campaign")
JOB_STATES = ("pending", "claimed", "done", "failed", "cancelled")
OPEN_JOB_STATES = ("pending", "claimed")
CAMPAIGN_MODES = ("robot", "preview", "progressive", "predictive")
CAMPAIGN_STATES = ("draft", "running", "paused", "stopped", "finished")
CONTACT_STATES = ("pending", "claimed", "done", "failed", "skipped")
OPEN_CONTACT_STATES = ("pending", "claimed")


class CallbackJob(BaseModel):
    """A promise to call someone back. Unique per (call_uuid, reason): the CDR outbox replayed
    finds its job instead of making another (manual jobs have no call and are never merged)."""
    number = peewee.CharField(max_length=40)
    reason = peewee.CharField(max_length=24)
    note = peewee.TextField(default="")
    queue = peewee.CharField(max_length=64, null=True)
    skills = JSONField(null=True)                       # ["pension", ...]; empty = the queue's
    call_uuid = peewee.CharField(max_length=64, null=True)   # the original call
    ticket_id = peewee.IntegerField(null=True)
    mode = peewee.CharField(max_length=12, default="preview")   # preview | auto
    state = peewee.CharField(max_length=12, default="pending", index=True)
    due_at = peewee.DateTimeField(index=True)
    deadline_at = peewee.DateTimeField(null=True, index=True)
    attempts = peewee.IntegerField(default=0)
    max_attempts = peewee.IntegerField(default=3)
    last_result = peewee.CharField(max_length=32, null=True)
    agent = peewee.CharField(max_length=64, null=True)        # who took it
    skipped_by = JSONField(null=True)                   # agents who skipped it (not offered again)
    claimed_by = peewee.CharField(max_length=128, null=True)
    claimed_at = peewee.DateTimeField(null=True)
    reminded_at = peewee.DateTimeField(null=True)
    escalated_at = peewee.DateTimeField(null=True)
    created_by = peewee.CharField(max_length=64, default="system")
    created_at = peewee.DateTimeField(default=utcnow, index=True)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("call_uuid", "reason"), True),)


class Campaign(BaseModel):
    name = peewee.CharField(max_length=64, unique=True)
    mode = peewee.CharField(max_length=12)
    state = peewee.CharField(max_length=12, default="draft", index=True)
    priority = peewee.IntegerField(default=5)           # 1 first ... 9 last
    queue = peewee.CharField(max_length=64, null=True)  # agents' skills (agent modes)
    flow = peewee.TextField(null=True)                  # robot: the IVR flow file
    max_attempts = peewee.IntegerField(default=3)
    abandon_target = peewee.FloatField(default=0.03)
    note = peewee.TextField(default="")
    created_by = peewee.CharField(max_length=64, default="system")
    created_at = peewee.DateTimeField(default=utcnow)
    started_at = peewee.DateTimeField(null=True)
    stopped_at = peewee.DateTimeField(null=True)
    updated_at = peewee.DateTimeField(default=utcnow)


class Contact(BaseModel):
    """One person a campaign calls. `source` is file:line of the list row it came from."""
    campaign_id = peewee.IntegerField(index=True)
    number = peewee.CharField(max_length=40)
    name = peewee.TextField(default="")
    reference = peewee.TextField(default="")            # ticket number or call uuid
    fields = JSONField(null=True)                       # free columns the script uses
    source = peewee.TextField(default="")
    state = peewee.CharField(max_length=12, default="pending", index=True)
    next_due_at = peewee.DateTimeField(null=True, index=True)
    attempts = peewee.IntegerField(default=0)
    last_result = peewee.CharField(max_length=32, null=True)
    answers = JSONField(null=True)                      # {"resolved": 1, "satisfaction": 2}
    comment_recording = peewee.TextField(null=True)
    agent = peewee.CharField(max_length=64, null=True)
    disposition = peewee.CharField(max_length=64, null=True)
    skipped_by = JSONField(null=True)                   # preview: agents who skipped it
    claimed_by = peewee.CharField(max_length=128, null=True)
    claimed_at = peewee.DateTimeField(null=True)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("campaign_id", "number"), True),)


class Attempt(BaseModel):
    """One dial of a job or a contact, its result, and the outbound call's uuid (its CDR)."""
    job_id = peewee.IntegerField(null=True, index=True)
    contact_id = peewee.IntegerField(null=True, index=True)
    campaign_id = peewee.IntegerField(null=True, index=True)
    number = peewee.CharField(max_length=40)
    started_at = peewee.DateTimeField(default=utcnow, index=True)
    answered_at = peewee.DateTimeField(null=True)
    ended_at = peewee.DateTimeField(null=True)
    result = peewee.CharField(max_length=32, null=True)     # answered|no_answer|busy|invalid|abandoned|...
    cause = peewee.CharField(max_length=64, null=True)      # the switch's hangup cause
    agent = peewee.CharField(max_length=64, null=True)
    call_uuid = peewee.CharField(max_length=64, null=True)  # the outbound leg (its CDR's uuid)
    engine = peewee.CharField(max_length=128, default="")


MODELS = (CallbackJob, Campaign, Contact, Attempt)


def bound_models(db):
    """The outbound models as subclasses bound to `db` (same tables)."""
    def bound(model):
        meta = type("Meta", (), {"database": db, "table_name": model._meta.table_name})
        return type(model.__name__, (model,), {"Meta": meta, "__module__": __name__})
    return types.SimpleNamespace(**{m.__name__: bound(m) for m in MODELS})


def as_dict(row):
    return {name: getattr(row, name) for name in row._meta.sorted_field_names}
