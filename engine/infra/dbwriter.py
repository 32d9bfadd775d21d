"""A store's one connection to the database, shared by its greenlets, its writes serialised
across processes: the ticket store, the outbound tables, the number lists and the recordings
index build on it.

    class TicketStore(SerialisedDb):
        pg_write_lock = 0x7469636B          # this store's advisory lock key on PostgreSQL
        def bind(self, db):                 # bind the models; the tables open() creates
            self.m = bound_models(db)
            return [self.m.Ticket, self.m.TicketEvent]

    store = TicketStore(url).open()
    store.run(lambda: ..., write=True)      # a transaction, run again while the database is locked

Why waits are cooperative: the database runs with SQLite's own lock wait at 0 (its busy handler
sleeps inside C and stops the gevent hub: engine/infra/database.py); a store polls with
gevent.sleep instead, and lets go of its connection between tries, so its other greenlets' reads
go on meanwhile. SQLite writes start with BEGIN IMMEDIATE, so two writers are serialised at the
start of the transaction, never half-way through it (a deferred one that read first fails its
first write when another writer went ahead); on PostgreSQL a transaction-scoped advisory lock,
one key per store, does the same. A database still locked after `lock_wait` seconds fails the call.
"""
import logging
import time

import gevent
import gevent.lock
import peewee

from engine.infra.database import database_from_url, is_busy, make_sqlite_dir, sqlite_path

log = logging.getLogger("hotline.db")

LOCK_POLL = 0.02            # seconds between tries while another writer holds the database
LOCK_WAIT = 10.0            # seconds before a locked database counts as a failure


class SerialisedDb:
    pg_write_lock = None        # the advisory lock key serialising this store's writers on PostgreSQL
    unique_retries = 1          # runs of a write transaction that lost a unique-key race (1: no rerun)
    open_on_use = False         # run() before open(): open now (True) or refuse (False)
    lock_wait = LOCK_WAIT       # seconds a locked database is waited for before the call fails

    def __init__(self, url):
        self.url = url
        self.db = None
        # one connection, one greenlet at a time: on PostgreSQL the driver yields while it waits
        # (database.make_psycopg2_cooperative), and a second query on the connection meanwhile fails
        self._lock = gevent.lock.RLock()

    def bind(self, db):
        """Bind the store's models to `db`; returns the tables open() creates if missing."""
        raise NotImplementedError

    def open(self):
        """Bind the tables and create them if missing (idempotent). On failure (database down,
        directory not creatable) the store stays unopened: open() again later."""
        db = database_from_url(self.url)
        make_sqlite_dir(db)
        tables = self.bind(db)
        self.db = db
        try:
            # In a write transaction: PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against
            # a concurrent one (duplicate pg_type); serialised, the second finds the tables made.
            self.run(lambda: db.create_tables(tables, safe=True), write=True)
        except Exception:
            self.close()
            self.db = None
            raise
        return self

    def close(self):
        if self.db is not None and not self.db.is_closed():
            self.db.close()

    def run(self, fn, write=False):
        """fn() with the connection (in a serialised transaction when `write`), tried again while
        another writer holds the database, for `lock_wait` seconds at most.

        A write transaction that loses a race on a unique key is rolled back and, when the store
        allows (unique_retries), run again from the start: the second run sees the winner's row."""
        if self.db is None:
            if not self.open_on_use:
                raise RuntimeError(f"{type(self).__name__} used before open()")
            self.open()
        deadline = time.monotonic() + self.lock_wait
        races = 0
        while True:
            try:
                with self._lock:
                    if self.db.is_closed():
                        self.db.connect()
                    if not write:
                        return fn()
                    sqlite = sqlite_path(self.db) is not None
                    with self.db.atomic(*(("IMMEDIATE",) if sqlite else ())):
                        if not sqlite and self.pg_write_lock is not None:
                            self.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (self.pg_write_lock,))
                        return fn()
            except peewee.IntegrityError:
                races += 1
                if not write or races >= self.unique_retries:
                    raise
                log.info("%s: a write raced another writer; running it again", type(self).__name__)
                continue
            except peewee.OperationalError as exc:
                if not is_busy(exc) or time.monotonic() > deadline:
                    raise
            gevent.sleep(LOCK_POLL)
