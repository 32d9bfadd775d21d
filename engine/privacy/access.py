"""Seeing a caller's personal data in clear: only with a reason, and never without an audit row.

`reveal_cdr(store, uuid, actor, reason, via)` decrypts the clear copies a CDR keeps in
extra["pii_sealed"] (engine.cdr.rows) and returns the CDR as it was before masking. The audit row
(`pii_access`: when, who, which call, which fields, why, through what) is committed first: if it
cannot be written, nothing is revealed. `hotline privacy audit` lists the rows.
"""
import datetime

import peewee

from engine import privacy
from engine.cdr.models import JSONField, utcnow

MAX_REASON = 200


class AccessRefused(Exception):
    """No reason given, or the request cannot be audited."""


class PiiAccess(peewee.Model):
    at = peewee.DateTimeField(default=utcnow, index=True)
    actor = peewee.CharField(max_length=96)                  # api:<token name> | cli:<os user>
    via = peewee.CharField(max_length=16)                    # api | cli
    call_uuid = peewee.CharField(max_length=64, index=True)
    fields = JSONField(null=True)                            # the CDR fields shown in clear
    reason = peewee.CharField(max_length=MAX_REASON)

    class Meta:
        database = None
        legacy_table_names = False
        table_name = "pii_access"


def _with_table(store, fn):
    """Run fn() with PiiAccess bound to the CDR store's database (created on first use)."""
    with store._lock:
        store._connect()
        with store.db.bind_ctx([PiiAccess]):
            store.db.create_tables([PiiAccess], safe=True)
            return fn()


def reveal_cdr(store, uuid, actor, reason, via, env=None):
    """The CDR of `uuid` with its personal data in clear (None: no such CDR). Raises AccessRefused
    (no reason), privacy.PrivacyError (no or wrong key)."""
    reason = (reason or "").strip()
    if not reason:
        raise AccessRefused("a reason is required to see personal data in clear (it is audited)")
    row = store.get(uuid)
    if row is None:
        return None
    sealed = (row.get("extra") or {}).get(privacy.SEALED_KEY)
    clear = privacy.unseal(sealed, env) if sealed else {}

    def audit():
        PiiAccess.create(actor=str(actor)[:96], via=via, call_uuid=uuid, fields=sorted(clear),
                         reason=reason[:MAX_REASON])
    try:
        _with_table(store, audit)
    except peewee.DatabaseError as exc:
        raise AccessRefused(f"the access cannot be audited ({exc}): nothing revealed") from None
    return {**row, **clear}


def audit_rows(store, call_uuid=None, since=None):
    def read():
        query = PiiAccess.select().order_by(PiiAccess.at, PiiAccess.id)
        if call_uuid:
            query = query.where(PiiAccess.call_uuid == call_uuid)
        if since:
            query = query.where(PiiAccess.at >= since)
        return [{"at": r.at.replace(tzinfo=datetime.timezone.utc), "actor": r.actor, "via": r.via,
                 "call_uuid": r.call_uuid, "fields": r.fields, "reason": r.reason} for r in query]
    return _with_table(store, read)
