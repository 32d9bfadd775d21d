"""Shared helpers for the ticket tests: a CDR store and a ticket store on one temporary SQLite
database, a settable clock, and CDRs shaped like the ones the engine writes."""
import datetime
import uuid as uuidlib

from engine.cdr.store import CdrStore
from engine.tickets import TicketStore, load_config


class Clock:
    """A naive-UTC clock the test moves by hand."""

    def __init__(self, start=datetime.datetime(2026, 11, 23, 2, 0, 0)):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **kw):
        self.now += datetime.timedelta(**kw)
        return self.now


def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'hotline.db'}"


def cdr_store(tmp_path):
    return CdrStore(db_url(tmp_path), tmp_path / "spool").open()


def ticket_store(tmp_path, clock=None, config="etc/tickets.yaml"):
    return TicketStore(db_url(tmp_path), load_config(config) if config else None,
                       clock=clock or Clock()).open()


def cdr(**fields):
    """A CDR record as the engine hands it to CdrStore.write (uuid made up unless given)."""
    record = {"uuid": str(uuidlib.uuid4()), "caller_number": "13800138000", "destination": "12345",
              "start_time": "2026-11-23T02:00:00+00:00", "end_time": "2026-11-23T02:03:00+00:00",
              "hangup_cause": "NORMAL_CLEARING", "hangup_side": "caller", "ivr_path": ["main", "menu:1"],
              "tags": []}
    record.update(fields)
    return record


def race(url, workdir, name):
    """One racing consumer in its own process (tests/test_tickets_outbox.py): wait for the go
    file, consume in small passes until the stop file exists and a pass finds nothing, then print
    what this process did as JSON."""
    import json
    import os
    import time

    from engine.tickets import Consumer
    consumer = Consumer(url, config=load_config("etc/tickets.yaml"))
    consumer.store.open()
    open(os.path.join(workdir, f"ready-{name}"), "w").close()
    while not os.path.exists(os.path.join(workdir, "go")):
        time.sleep(0.002)
    passes = 0
    while True:
        stopping = os.path.exists(os.path.join(workdir, "stop"))
        before = consumer.acked
        consumer.run_once(limit=3)
        passes += 1
        if consumer.acked == before:
            if stopping:
                break
            time.sleep(0.002)
    print(json.dumps({"created": consumer.created, "acked": consumer.acked, "passes": passes}))
