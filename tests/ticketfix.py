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
