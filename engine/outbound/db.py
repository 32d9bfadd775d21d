"""The outbound tables' connection: one per store, writes serialised like the ticket store's.

    db = OutboundDb(url, clock).open()
    db.run(lambda: ..., write=True)

Same rules as engine/tickets/store.py (whose comments say why): SQLite waits are cooperative
(gevent.sleep between tries, never SQLite's busy handler), writes begin IMMEDIATE so two
engines' claims are serialised at the start of the transaction; PostgreSQL takes a
transaction-scoped advisory lock for the same effect.
"""
import logging
import os
import time

import gevent
import gevent.lock
import peewee

from engine.cdr.models import database_from_url, sqlite_path, utcnow
from engine.outbound.tables import bound_models

log = logging.getLogger("hotline.outbound")

LOCK_POLL = 0.02
LOCK_WAIT = 10.0
PG_WRITE_LOCK = 0x6F75_7462     # 'outb'


class OutboundDb:
    def __init__(self, url, clock=utcnow):
        self.url = url
        self.clock = clock          # naive UTC now(); tests inject their own
        self.db = None
        self.m = None
        self._lock = gevent.lock.RLock()

    def open(self):
        db = database_from_url(self.url)
        path = sqlite_path(db)
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.db, self.m = db, bound_models(db)
        tables = [self.m.CallbackJob, self.m.Campaign, self.m.Contact, self.m.Attempt]
        try:
            self.run(lambda: self.db.create_tables(tables, safe=True), write=True)
        except Exception:
            self.close()
            self.db = self.m = None
            raise
        return self

    def close(self):
        if self.db is not None and not self.db.is_closed():
            self.db.close()

    def run(self, fn, write=False):
        if self.db is None:
            self.open()
        deadline = time.monotonic() + LOCK_WAIT
        with self._lock:
            while True:
                try:
                    if self.db.is_closed():
                        self.db.connect()
                    if not write:
                        return fn()
                    sqlite = sqlite_path(self.db) is not None
                    with self.db.atomic(*(("IMMEDIATE",) if sqlite else ())):
                        if not sqlite:
                            self.db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (PG_WRITE_LOCK,))
                        return fn()
                except peewee.OperationalError as exc:
                    text = str(exc).lower()
                    busy = "locked" in text or "busy" in text or "lock timeout" in text
                    if not busy or time.monotonic() > deadline:
                        raise
                gevent.sleep(LOCK_POLL)
