"""The number lists' table (peewee), in the CDR database, bound per store like the ticket tables."""
import peewee

from engine.cdr.models import BaseModel, utcnow

KINDS = ("blacklist", "dnc", "block")
ACTIONS = ("message", "queue")          # what a blacklist hit does to an inbound caller


class ListEntry(BaseModel):
    """One number (or prefix) on one list. Times are naive UTC; `campaign` '' = every campaign."""
    kind = peewee.CharField(max_length=16)
    number = peewee.CharField(max_length=40)          # national form, or the prefix's digits
    prefix = peewee.BooleanField(default=False)
    campaign = peewee.CharField(max_length=64, default="")
    action = peewee.CharField(max_length=16, null=True)
    reason = peewee.TextField(default="")
    added_by = peewee.CharField(max_length=64, default="")
    expires_at = peewee.DateTimeField(null=True)
    hits = peewee.IntegerField(default=0)
    last_hit_at = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("kind", "number", "prefix", "campaign"), True),)


def bound_model(db):
    meta = type("Meta", (), {"database": db, "table_name": ListEntry._meta.table_name})
    return type("ListEntry", (ListEntry,), {"Meta": meta, "__module__": __name__})
