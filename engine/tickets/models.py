"""The ticket tables (peewee), in the CDR database, bound per database object.

Why per database: the consumer must create tickets and ack the outbox in ONE transaction on ONE
connection, and two consumers (or the CLI beside the engine) must not share a connection. peewee
binds a model class to one database globally, so every TicketStore gets its own subclasses of
these models (and of the CDR outbox models) bound to its own database (`bound_models`).
"""
import types
import weakref

import peewee

from engine.cdr.models import BaseModel, Cdr, Outbox, OutboxAck, utcnow

KINDS = ("callback", "voicemail", "complaint_review", "agent")
STATES = ("new", "assigned", "in_progress", "resolved", "closed", "withdrawn")
OPEN_STATES = ("new", "assigned", "in_progress")
# Allowed moves; withdrawn is possible from any open state. assigned -> assigned = reassignment.
TRANSITIONS = {
    "new": ("assigned", "withdrawn"),
    "assigned": ("assigned", "in_progress", "withdrawn"),
    "in_progress": ("assigned", "resolved", "withdrawn"),
    "resolved": ("closed", "in_progress"),          # reopened when the caller is not satisfied
    "closed": (),
    "withdrawn": (),
}


class Ticket(BaseModel):
    """One work order. Times are naive UTC. Unique per (call_uuid, kind): a replayed outbox
    entry finds its ticket instead of making another."""
    number = peewee.CharField(max_length=32, unique=True)       # T20261123-0001 (local day)
    kind = peewee.CharField(max_length=24)
    category = peewee.CharField(max_length=64)
    summary = peewee.TextField(default="")
    department = peewee.CharField(max_length=64, null=True)
    assignee = peewee.CharField(max_length=64, null=True)
    state = peewee.CharField(max_length=16, default="new", index=True)
    call_uuid = peewee.CharField(max_length=64, null=True)
    caller_number = peewee.TextField(null=True)                 # as received: may be hostile text
    recording = peewee.TextField(null=True)
    ivr_path = peewee.TextField(null=True)                      # JSON text, as in the CDR
    bot_transcript = peewee.TextField(null=True)                # JSON text, as in the CDR
    due_at = peewee.DateTimeField(null=True, index=True)
    reminded_at = peewee.DateTimeField(null=True)
    escalated_at = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField(default=utcnow, index=True)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("call_uuid", "kind"), True),)


class TicketEvent(BaseModel):
    """The history of a ticket: every state change, assignment, reminder and escalation."""
    ticket_id = peewee.IntegerField(index=True)
    at = peewee.DateTimeField(default=utcnow, index=True)
    who = peewee.CharField(max_length=64)
    action = peewee.CharField(max_length=24)         # create|assign|transition|remind|escalate
    from_state = peewee.CharField(max_length=16, null=True)
    to_state = peewee.CharField(max_length=16, null=True)
    note = peewee.TextField(default="")


# One set of bound classes per database object, made once: a class made is never freed (the bound
# OutboxAck's foreign key registers itself in the shared Outbox's backrefs), and the callback-job
# feed binds at every pass (every 2 s: ~12 KiB each, 500 MiB a day), the dialler per ticket look-up.
_BOUND = weakref.WeakKeyDictionary()


def bound_models(db):
    """Ticket, TicketEvent, Cdr, Outbox, OutboxAck as subclasses bound to `db` (same tables); the
    same classes for every call with the same database object."""
    models = _BOUND.get(db)
    if models is not None:
        return models

    def bound(model):
        meta = type("Meta", (), {"database": db, "table_name": model._meta.table_name})
        return type(model.__name__, (model,), {"Meta": meta, "__module__": __name__})
    models = _BOUND[db] = types.SimpleNamespace(Ticket=bound(Ticket), TicketEvent=bound(TicketEvent), Cdr=bound(Cdr),
                                                Outbox=bound(Outbox), OutboxAck=bound(OutboxAck))
    return models
