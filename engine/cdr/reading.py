"""The hotline's database for commands that only read (cdr list/show, recordings list/show,
tickets list/show, report daily): opened read-only, so a command never creates a database file,
its directory or a table; a missing database is one clear message, not an empty one made on the spot.
"""
import os
import urllib.parse

import peewee

from engine.cdr.models import Cdr
from engine.cdr.rows import as_dict
from engine.infra.database import database_from_url, sqlite_path
from engine.infra.clock import naive_utc


class NoDatabase(Exception):
    """The database is not there (or cannot be opened); the message says which and why."""


def open_readonly(url, models=()):
    """A connected peewee database for `url` that cannot write, with `models` bound to it.
    NoDatabase when a SQLite file does not exist or the server cannot be reached."""
    db = database_from_url(url)
    path = sqlite_path(db)
    if path and path != ":memory:":
        if not os.path.exists(path):
            raise NoDatabase(f"no database at {path} (has the engine run?)")
        # mode=ro: SQLite itself refuses to write (and to create the file); query_only on top.
        uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
        db = peewee.SqliteDatabase(uri, uri=True, thread_safe=False, pragmas={"query_only": 1})
    try:
        db.connect()
        if path:
            db.execute_sql("SELECT count(*) FROM sqlite_master")   # a file that is not SQLite fails here
        else:       # PostgreSQL: the server refuses any write in this session
            db.execute_sql("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    except peewee.DatabaseError as exc:
        raise NoDatabase(f"cannot open the database {path or _safe(url)}: {exc}") from None
    except ImportError as exc:        # postgresql:// without its driver
        raise NoDatabase(str(exc)) from None
    if models:
        db.bind(list(models), bind_refs=False, bind_backrefs=False)
    return db


def _safe(url):
    """The URL without its password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def missing_table(exc):
    """True when a read failed because the tables are not there yet (a database no engine wrote)."""
    text = str(exc).lower()
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def select_cdrs(since=None, until=None, caller=None, agent=None, queue=None, did=None, cause=None,
                provisional=False, limit=None):
    """CDRs (dicts, UTC-aware times) of calls started in [since, until), oldest first, from the
    database Cdr is bound to. caller matches part of the number; agent, queue, DID (the dialled
    number) and cause (hangup cause, any case) match whole values."""
    from engine.cdr.store import PROVISIONAL
    query = Cdr.select().order_by(Cdr.start_time, Cdr.id)
    if not provisional:
        # tags is JSON text: the tag appears with its quotes (as in CdrStore.list)
        pattern = peewee.Value(f'%"{PROVISIONAL}"%', converter=False)
        query = query.where(Cdr.tags.is_null() | ~peewee.Expression(Cdr.tags, peewee.OP.ILIKE, pattern))
    if since is not None:
        query = query.where(Cdr.start_time >= naive_utc(since))
    if until is not None:
        query = query.where(Cdr.start_time < naive_utc(until))
    if caller:
        query = query.where(Cdr.caller_number.contains(caller))
    if agent:
        query = query.where(Cdr.agent == agent)
    if queue:
        query = query.where(Cdr.queue == queue)
    if did:
        query = query.where(Cdr.destination == did)
    if cause:
        query = query.where(peewee.fn.UPPER(Cdr.hangup_cause) == cause.upper())
    if limit is not None:
        query = query.limit(limit)
    return [as_dict(r) for r in query]


def get_cdr(uuid):
    row = Cdr.get_or_none(Cdr.uuid == uuid)
    return as_dict(row) if row else None


def ticket_store(url, config=None):
    """A TicketStore on the database read-only, for list/show and the report's counts: its
    open() would create the tables (TicketStore.open is the engine's and the writers' way in)."""
    from engine.tickets.models import bound_models
    from engine.tickets.store import TicketStore
    store = TicketStore(url, config)
    store.db = open_readonly(url)
    store.m = bound_models(store.db)
    return store
