"""The stores' one connection (engine/infra/dbwriter.py): a write waits cooperatively while another
process holds the database, without keeping the store's own reads waiting, and gives up after the
store's bound; on PostgreSQL every store that builds on it opens, and writes under its lock."""
import sqlite3
import types
import uuid as uuidlib

import gevent
import peewee
import pytest

from engine.infra import dbwriter
from engine.media.recordings import Archiver, ArchiveConfig
from engine.outbound import campaigns
from engine.outbound.db import OutboundDb
from engine.outbound.lists import NumberLists
from engine.tickets import TicketStore, load_config
from tests.simfix import wait_for
from tests.ticketfix import db_url


class Held:
    """Another process's write transaction on the SQLite file: its real "database is locked"."""

    def __init__(self, path):
        self.con = sqlite3.connect(path, isolation_level=None)
        self.con.execute("BEGIN IMMEDIATE")

    def release(self):
        self.con.execute("ROLLBACK")
        self.con.close()


@pytest.fixture
def lists(tmp_path):
    store = NumberLists(db_url(tmp_path)).open()
    yield store
    store.close()


def counting_polls(monkeypatch):
    """The dbwriter's sleeps between tries, counted (the rest of gevent untouched)."""
    polls = []

    def sleep(seconds):
        polls.append(seconds)
        gevent.sleep(seconds)
    monkeypatch.setattr(dbwriter, "gevent", types.SimpleNamespace(sleep=sleep))
    return polls


def test_a_write_waits_for_another_writer_and_the_stores_reads_go_on(tmp_path, monkeypatch):
    db = OutboundDb(db_url(tmp_path)).open()
    polls = counting_polls(monkeypatch)
    monkeypatch.setattr(db, "lock_wait", 60.0)
    held = Held(tmp_path / "hotline.db")
    try:
        writer = gevent.spawn(campaigns.create, db, "fu", "preview", queue="q")
        wait_for(lambda: len(polls) >= 2, timeout=10)           # tried, found it locked, waits
        # the same store reads meanwhile: the waiting writer does not hold the connection
        with gevent.Timeout(20):
            assert db.run(lambda: db.m.Campaign.select().count()) == 0
        assert not writer.ready()
    finally:
        held.release()
    assert writer.get(timeout=10)["name"] == "fu"
    assert campaigns.get(db, "fu")["state"] == "draft"
    db.close()


def test_a_write_gives_up_after_the_stores_bound(lists, tmp_path, monkeypatch):
    monkeypatch.setattr(lists, "lock_wait", 0.1)
    held = Held(tmp_path / "hotline.db")
    try:
        with pytest.raises(peewee.OperationalError, match="locked"):
            lists.add("dnc", "13800138000")
    finally:
        held.release()
    assert lists.entries("dnc") == []                           # nothing half-written


def test_a_store_used_before_open_is_refused_or_opens(tmp_path):
    with pytest.raises(RuntimeError, match="TicketStore used before open"):
        TicketStore(db_url(tmp_path)).run(lambda: None)
    db = OutboundDb(db_url(tmp_path))              # the API may reach it before the service opened it
    assert db.run(lambda: db.m.Campaign.select().count()) == 0


# --- PostgreSQL ----------------------------------------------------------------------------------

psycopg2 = pytest.importorskip("psycopg2")
from tests.test_cdr_postgres import postgres  # noqa: E402,F401 - the module's private server


@pytest.fixture
def pg_url(postgres):  # noqa: F811 - the fixture above
    """A database of the test's own: every store creates its tables in it."""
    name = f"t_{uuidlib.uuid4().hex[:12]}"
    con = psycopg2.connect(postgres.url)
    con.autocommit = True
    con.cursor().execute(f"CREATE DATABASE {name}")
    con.close()
    return postgres.url.rsplit("/", 1)[0] + "/" + name


def test_every_store_opens_together_and_writes_on_postgres(pg_url, tmp_path):
    """Two of each store open at once on an empty database (CREATE TABLE IF NOT EXISTS is not
    safe against a concurrent one there: the write lock serialises them), then write. One
    archiver: its models are bound process-wide (one per engine)."""
    archive = ArchiveConfig(database_url=pg_url, live_dir=tmp_path / "live", archive_dir=tmp_path / "archive")
    stores = [TicketStore(pg_url, load_config("etc/tickets.yaml")), OutboundDb(pg_url), NumberLists(pg_url),
              Archiver(archive), TicketStore(pg_url), OutboundDb(pg_url), NumberLists(pg_url)]
    gevent.joinall([gevent.spawn(s.open) for s in stores], timeout=60, raise_error=True)
    tickets, outbound, lists, archiver = stores[:4]
    assert tickets.create(kind="agent", category="complaint", summary="路灯不亮")["number"].endswith("-0001")
    campaigns.create(outbound, "pg", "preview", queue="q")
    assert campaigns.get(outbound, "pg")["state"] == "draft"
    # two engines add the same number at once: serialised, one adds it and the others update it
    # (unserialised, both read "none" and the second insert breaks the unique index)
    adds = [gevent.spawn(store.add, "dnc", "13800138000", reason=f"r{i}")
            for i in range(3) for store in (lists, stores[6])]
    gevent.joinall(adds, timeout=60, raise_error=True)
    assert [e["number"] for e in lists.entries("dnc")] == ["13800138000"]
    assert lists.is_dnc("13800138000") and archiver.list() == []
    for s in stores:
        s.close()
