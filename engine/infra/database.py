"""The database a URL names (peewee), set up for a gevent process; the same for every store.

    db = database_from_url("sqlite:///var/hotline.db")     # or postgresql://user@host/hotline
    make_sqlite_dir(db)                                    # its directory, for a new SQLite file

`sqlite:///path` runs in WAL mode with foreign keys on and SQLite's own lock wait off;
`postgresql://...` goes through playhouse.db_url (needs psycopg2) with psycopg2 made cooperative.
Stores that share one connection among greenlets and serialise their writes build on this in
engine/infra/dbwriter.py.
"""
import os

import peewee
from playhouse.db_url import connect as connect_url

# SQLite's own wait on a lock is off: it sleeps inside C and stops the whole gevent hub (30 queued
# writers waiting 5 ms each stalled every call for 0.18 s). The stores poll cooperatively instead
# (engine.cdr.store.CdrStore._attempt, engine.infra.dbwriter); with this at 0 the hub stayed
# within ~17 ms in the same test.
SQLITE_LOCK_WAIT_MS = 0


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


def make_sqlite_dir(db):
    """Create the directory of a SQLite database file (nothing for PostgreSQL or :memory:)."""
    path = sqlite_path(db)
    if path and path != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def is_busy(exc):
    """Another writer holds the database: SQLite's locked or busy, PostgreSQL's lock_timeout (set
    above). The statement may be tried again; nothing is wrong with it."""
    if exc is None:
        return False
    text = str(exc).lower()
    return "locked" in text or "busy" in text or "lock timeout" in text     # sqlite, postgresql
