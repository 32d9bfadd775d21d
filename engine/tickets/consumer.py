"""The CDR outbox -> tickets, exactly once per entry, restart-safe and idempotent.

    consumer = Consumer(db_url, poll_interval=2.0).start()    # a greenlet; stop() ends it
    consumer.run_once()                                       # one pass (tests, `tickets consume`)

Each pass is ONE transaction: read the entries `tickets` has not acked, create their tickets,
insert the acks (OutboxAck), commit. A crash before the commit leaves neither tickets nor acks;
after it, both. A replay (the same CDR written twice: another outbox entry, or an entry seen by
two consumers) finds the ticket already there: tickets are unique per (call uuid, kind). SQLite
writers start with BEGIN IMMEDIATE, so two consumers take turns, never interleave.
"""
import logging

import peewee

from engine.infra.periodic import Looping, Periodic
from engine.tickets.rules import tickets_for_cdr
from engine.tickets.store import TicketError, TicketStore, as_dict, link_fields

log = logging.getLogger("hotline.tickets")

CONSUMER_NAME = "tickets"
BATCH = 100            # outbox entries a transaction


class Consumer(Looping):
    def __init__(self, db_url, poll_interval=2.0, config=None, store=None, name=CONSUMER_NAME):
        self.store = store or TicketStore(db_url, config)
        self.name = name
        # a database that is down at start is retried every poll
        self.loop = Periodic(self.drain, poll_interval, "ticket outbox consumer", log)
        self.created = 0          # tickets made by this process
        self.acked = 0            # outbox entries acked by this process

    def run_once(self, limit=BATCH):
        """One pass; returns the tickets created (dicts). Raises peewee.DatabaseError when the
        database is unavailable (nothing is then acked)."""
        if self.store.db is None:
            self.store.open()
        created, acked = self.store.run(lambda: self._pass(limit), write=True)
        self.created += len(created)
        self.acked += acked
        return created

    def drain(self):
        """Passes until the outbox has nothing left for us; returns the tickets created."""
        created = []
        while True:
            before = self.acked
            created += self.run_once()
            if self.acked == before:
                return created

    def _pass(self, limit):
        m = self.store.m
        acked = m.OutboxAck.select().where((m.OutboxAck.consumer == self.name) & (m.OutboxAck.outbox == m.Outbox.id))
        entries = list(m.Outbox.select().where(~peewee.fn.EXISTS(acked)).order_by(m.Outbox.id).limit(limit))
        created, done = [], []
        for entry in entries:
            try:
                specs = tickets_for_cdr(entry.payload) if entry.kind == "cdr" else []
                made = [t for t in (self._create(entry, spec) for spec in specs) if t is not None]
            except (TicketError, ValueError, TypeError, KeyError):
                # A bug or a configuration problem: this entry waits (unacked, nothing lost),
                # the others go on. Tickets it already made are found again on the next try.
                log.exception("%s: outbox entry %d: no ticket made; left for a later run",
                              entry.cdr_uuid, entry.id)
                continue
            if entry.kind == "cdr" and isinstance(entry.payload, dict):
                self._fill_links(entry)
            created += made
            done.append(entry.id)
        if done:
            (m.OutboxAck.insert_many([{"consumer": self.name, "outbox": i} for i in done])
                .on_conflict_ignore().execute())
        return created, len(done)

    def _create(self, entry, spec):
        T = self.store.m.Ticket
        kind = spec["kind"]
        if T.select().where((T.call_uuid == entry.cdr_uuid) & (T.kind == kind)).exists():
            log.debug("%s: %s ticket already there (outbox entry %d is a replay)", entry.cdr_uuid, kind, entry.id)
            return None
        fields = self.store.new_fields(kind, spec["category"], spec["summary"], entry.cdr_uuid, None, "outbox")
        if spec.get("recording"):
            fields["recording"] = spec["recording"]
        row = self.store.insert(fields, entry.payload, "outbox", note=f"from CDR outbox entry {entry.id}")
        return as_dict(row)

    def _fill_links(self, entry):
        """Tickets filed before their call's CDR existed (an agent's, during wrap-up, while the
        caller is still in the survey) get the caller number, recording, IVR path and bot
        transcript when the CDR arrives; what a ticket already has is kept."""
        T = self.store.m.Ticket
        for key, value in link_fields(entry.payload).items():
            field = getattr(T, key)
            T.update({field: value}).where((T.call_uuid == entry.cdr_uuid) & field.is_null()).execute()
