"""Accounts of the web console: every agent and supervisor logs in with an id and a password.

They live in the CDR database (tables `web_account` and `web_account_audit`, created on first
use), so every engine of a site shares them. Passwords are argon2id hashes (argon2-cffi); hashing
runs in gevent's thread pool (the C code releases the GIL), so a login never stalls the calls on
the hub. Every change (created, password set, role, disabled) is an audit row with who did it.
`hotline users passwd ID` and `POST /v1/users`, `POST /v1/users/<id>/password` (admin) set them.
"""
import logging
import re

import gevent
import peewee
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from engine.cdr.models import JSONField, utcnow

log = logging.getLogger("hotline.web.accounts")

ROLES = ("agent", "supervisor", "admin")
ID = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 256
# OWASP's argon2id minimum (19 MiB, 2 passes): ~20 ms a hash here, off the hub
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_DUMMY = HASHER.hash("not a password anyone has")     # verified for unknown ids: same cost


class AccountError(ValueError):
    """A request about accounts that cannot be done; the message says why."""


class Account(peewee.Model):
    id = peewee.CharField(primary_key=True, max_length=80)
    role = peewee.CharField(max_length=16)
    agent = peewee.CharField(max_length=80, null=True)         # the agent an agent account is
    password_hash = peewee.CharField(max_length=255)
    disabled = peewee.BooleanField(default=False)
    created_at = peewee.DateTimeField(default=utcnow)
    changed_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        database = None
        legacy_table_names = False
        table_name = "web_account"


class AccountAudit(peewee.Model):
    at = peewee.DateTimeField(default=utcnow, index=True)
    actor = peewee.CharField(max_length=96)
    account = peewee.CharField(max_length=80, index=True)
    action = peewee.CharField(max_length=32)          # created | password | role | disabled | enabled
    detail = JSONField(null=True)

    class Meta:
        database = None
        legacy_table_names = False
        table_name = "web_account_audit"


MODELS = [Account, AccountAudit]


def _off_hub(fn, *args):
    hub = gevent.get_hub()
    return hub.threadpool.apply(fn, args)


def _matches(hashed, password):
    try:
        return HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def check_password(password):
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise AccountError(f"password: text of {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


class Accounts:
    """Accounts in the CDR store's database (engine.cdr.store.CdrStore)."""

    def __init__(self, store):
        self.store = store

    def _with(self, fn):
        store = self.store
        with store._lock:
            store._connect()
            with store.db.bind_ctx(MODELS):
                store.db.create_tables(MODELS, safe=True)
                return fn()

    @staticmethod
    def _public(a):
        return {"id": a.id, "role": a.role, "agent": a.agent, "disabled": a.disabled,
                "created_at": a.created_at.isoformat() + "Z", "changed_at": a.changed_at.isoformat() + "Z"}

    def get(self, account_id):
        def read():
            a = Account.get_or_none(Account.id == account_id)
            return None if a is None else self._public(a)
        return self._with(read)

    def list(self):
        return self._with(lambda: [self._public(a) for a in Account.select().order_by(Account.id)])

    def set_password(self, account_id, password, actor, role=None, agent=None):
        """Set (or create with `role`) an account's password; returns (account, created)."""
        if not isinstance(account_id, str) or not ID.match(account_id):
            raise AccountError("id: 1-80 letters, digits, '.', '_' or '-'")
        check_password(password)
        if role is not None and role not in ROLES:
            raise AccountError(f"role: one of {', '.join(ROLES)}")
        hashed = _off_hub(HASHER.hash, password)

        def write():
            with self.store.db.atomic():
                a = Account.get_or_none(Account.id == account_id)
                if a is None:
                    if role is None:
                        raise AccountError(f"no account {account_id!r}: give its role to create it")
                    who = agent if role == "agent" else None
                    a = Account.create(id=account_id, role=role, agent=who or (account_id if role == "agent" else None),
                                       password_hash=hashed)
                    AccountAudit.create(actor=str(actor)[:96], account=account_id, action="created",
                                        detail={"role": role, "agent": a.agent})
                    return self._public(a), True
                a.password_hash, a.changed_at = hashed, utcnow()
                if role is not None and role != a.role:
                    AccountAudit.create(actor=str(actor)[:96], account=account_id, action="role",
                                        detail={"from": a.role, "to": role})
                    a.role = role
                    a.agent = (agent or account_id) if role == "agent" else None
                a.save()
                AccountAudit.create(actor=str(actor)[:96], account=account_id, action="password")
                return self._public(a), False
        return self._with(write)

    def set_disabled(self, account_id, disabled, actor):
        def write():
            with self.store.db.atomic():
                n = (Account.update(disabled=bool(disabled), changed_at=utcnow())
                     .where(Account.id == account_id).execute())
                if not n:
                    raise AccountError(f"no account {account_id!r}")
                AccountAudit.create(actor=str(actor)[:96], account=account_id,
                                    action="disabled" if disabled else "enabled")
        self._with(write)

    def authenticate(self, account_id, password):
        """The account (dict) if the password is right and the account enabled; else None. An
        unknown id costs a hash check too, so timing does not tell which ids exist."""
        row = None
        if isinstance(account_id, str) and ID.match(account_id):
            row = self._with(lambda: Account.get_or_none(Account.id == account_id))
        hashed = row.password_hash if row is not None else _DUMMY
        ok = _off_hub(_matches, hashed, password or "")
        if not ok or row is None or row.disabled:
            return None
        return self._public(row)

    def audit(self, account_id=None):
        def read():
            q = AccountAudit.select().order_by(AccountAudit.at, AccountAudit.id)
            if account_id:
                q = q.where(AccountAudit.account == account_id)
            return [{"at": r.at.isoformat() + "Z", "actor": r.actor, "account": r.account, "action": r.action,
                     "detail": r.detail} for r in q]
        return self._with(read)
