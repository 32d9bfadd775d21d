"""The outbound tables' connection: one per store, writes serialised like every store's.

    db = OutboundDb(url, clock).open()
    db.run(lambda: ..., write=True)

The connection, the cooperative wait on a locked database and the serialised writes (two
engines' claims take turns from the start of the transaction) are engine.infra.dbwriter's.
"""
from engine.cdr.models import utcnow
from engine.infra.dbwriter import SerialisedDb
from engine.outbound.tables import bound_models

PG_WRITE_LOCK = 0x6F75_7462     # advisory lock key ('outb') serialising outbound writers on PostgreSQL


class OutboundDb(SerialisedDb):
    pg_write_lock = PG_WRITE_LOCK
    open_on_use = True          # used before open() (the API while the service waits for the database): open now

    def __init__(self, url, clock=utcnow):
        super().__init__(url)
        self.clock = clock          # naive UTC now(); tests inject their own
        self.m = None

    def bind(self, db):
        self.m = bound_models(db)
        return [self.m.CallbackJob, self.m.Campaign, self.m.Contact, self.m.Attempt]
