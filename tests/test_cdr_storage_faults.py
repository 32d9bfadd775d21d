"""A full disk, a failing disk, a locked database: no CDR is lost, none is judged a bad row, and a
switch XML CDR leaves its directory only once its CDR is committed or durably spooled (issue 17
point 2)."""
import errno
import json
import shutil
import sqlite3
from pathlib import Path

import peewee
import pytest

from engine.cdr import store as store_mod
from engine.cdr import xmlcdr
from engine.cdr.store import CdrStore
from tests.test_cdr import make_store, raw_rows, record, wait_until

FILES = Path(__file__).parent / "fixtures" / "esl" / "11-xml-cdr-legs.files"
INBOUND = "9669622a-9119-45ad-9629-f8c364d95b22"     # fixture 11's trunk leg (to DID 7002)


class FullDisk:
    """The data directory full: SQLite says SQLITE_FULL on every write, every file append fails
    with ENOSPC (the spool, the rejected file); reads still work, as on a real full disk."""

    def __init__(self, monkeypatch):
        self.monkeypatch = monkeypatch
        self.real_upsert = CdrStore._upsert
        self.real_append = store_mod._append_durably
        self.on = False
        monkeypatch.setattr(CdrStore, "_upsert", lambda store, row, replay: self._upsert(store, row, replay))
        monkeypatch.setattr(store_mod, "_append_durably", self._append)

    def _upsert(self, store, row, replay):
        if self.on:
            # what sqlite3 raises for SQLITE_FULL (sqlite3ErrStr), through peewee
            raise peewee.OperationalError("database or disk is full")
        return self.real_upsert(store, row, replay)

    def _append(self, path, lines, lock):
        if self.on:
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return self.real_append(path, lines, lock)


@pytest.mark.parametrize("error", [
    peewee.OperationalError("database or disk is full"),
    peewee.OperationalError("disk I/O error"),
    peewee.OperationalError("attempt to write a readonly database"),
    peewee.OperationalError("database is locked"),
    OSError(errno.ENOSPC, "No space left on device"),
    OSError(errno.EIO, "Input/output error"),
    OSError(errno.EROFS, "Read-only file system"),
])
def test_storage_errors_are_transient(error):
    from engine.cdr.storage_errors import is_transient
    assert is_transient(error)


def test_a_refused_value_is_not_transient():
    from engine.cdr.storage_errors import is_transient
    assert not is_transient(peewee.DataError("invalid byte sequence for encoding UTF8: 0x00"))
    assert not is_transient(peewee.IntegrityError("NOT NULL constraint failed: cdr.uuid"))


def test_a_full_disk_loses_no_cdr_and_rejects_none(tmp_path, monkeypatch, caplog):
    """The measured failure: rows that only reached memory were judged bad rows, the rejected
    file on the same full disk raised out of the drainer, and the rows it had taken were gone."""
    s = make_store(tmp_path).open().start()
    disk = FullDisk(monkeypatch)
    assert s.write(record("before"))
    disk.on = True
    assert [s.write(record(f"full-{i}")) for i in range(12)] == [False] * 12
    assert s.pending() == 12
    # the drainer runs against the full disk for a while (drain_interval 0.05 s): it keeps them all
    for _ in range(5):
        s.drain()
    assert s.pending() == 12
    assert not (tmp_path / "spool" / store_mod.REJECTED_NAME).exists()
    # one CRITICAL line for the episode, not one per CDR and drainer pass
    assert caplog.text.count("CANNOT SPOOL") == 1
    disk.on = False                                          # space freed
    assert wait_until(lambda: s.pending() == 0)
    assert sorted(r["uuid"] for r in s.list()) == sorted(["before"] + [f"full-{i}" for i in range(12)])
    assert raw_rows(tmp_path / "db/hotline.db", "select count(*), count(distinct cdr_uuid) from outbox") \
        == [(13, 13)]
    assert not (tmp_path / "spool" / store_mod.REJECTED_NAME).exists()
    assert s.write(record("after")) is True
    s.close()


def test_a_full_disk_with_the_spool_on_another_disk_spools_and_rejects_nothing(tmp_path, monkeypatch):
    s = make_store(tmp_path).open()
    real_upsert = CdrStore._upsert
    full = {"on": True}

    def upsert(store, row, replay):
        if full["on"]:
            raise peewee.OperationalError("database or disk is full")
        return real_upsert(store, row, replay)

    monkeypatch.setattr(CdrStore, "_upsert", upsert)
    assert [s.write(record(f"c-{i}")) for i in range(3)] == [False] * 3
    assert s.drain() == (0, 3)
    assert not (tmp_path / "spool" / store_mod.REJECTED_NAME).exists()
    full["on"] = False
    assert s.drain() == (3, 0)
    s.close()


def test_a_refused_row_whose_rejected_file_cannot_be_written_stays_in_the_spool(tmp_path, monkeypatch):
    s = make_store(tmp_path).open()
    real_upsert, real_append = CdrStore._upsert, store_mod._append_durably

    def refuse(store, row, replay):
        if row["uuid"] == "poison":
            raise peewee.DataError("invalid byte sequence for encoding UTF8: 0x00")
        return real_upsert(store, row, replay)

    def append(path, lines, lock):
        if path.endswith(store_mod.REJECTED_NAME):
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real_append(path, lines, lock)

    monkeypatch.setattr(CdrStore, "_upsert", refuse)
    monkeypatch.setattr(store_mod, "_append_durably", append)
    s.db_down = True                                         # straight to the spool
    for uuid in ("ok-1", "poison", "ok-2"):
        s.write(record(uuid))
    s.db_down = False
    s.drain()
    assert s.pending() == 2                                  # poison and what followed it: kept
    monkeypatch.setattr(store_mod, "_append_durably", real_append)
    assert s.drain() == (1, 0)
    kept = (tmp_path / "spool" / store_mod.REJECTED_NAME).read_text().splitlines()
    assert [json.loads(k)["cdr"]["uuid"] for k in kept] == ["poison"]
    s.close()


def test_a_drain_that_breaks_midway_puts_the_rows_it_took_back(tmp_path, monkeypatch):
    s = make_store(tmp_path).open()
    disk = FullDisk(monkeypatch)
    disk.on = True
    for i in range(4):
        s.write(record(f"m-{i}"))
    assert s.pending() == 4

    def broken(store, row):
        raise RuntimeError("bug in the replay")

    monkeypatch.setattr(CdrStore, "_replay", broken)
    with pytest.raises(RuntimeError):
        s.drain()
    assert s.pending() == 4
    s.close = lambda: None                                   # nothing to flush in this test


def test_a_real_lock_held_by_another_connection_is_waited_out(tmp_path):
    s = make_store(tmp_path).open()
    holder = sqlite3.connect(tmp_path / "db/hotline.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")                        # a writer holding the database
    try:
        assert s.write(record("locked")) is False
        assert s.drain() == (0, 1)
        assert not (tmp_path / "spool" / store_mod.REJECTED_NAME).exists()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert s.drain() == (1, 0)
    s.close()


# --- the switch's XML CDR files -------------------------------------------------------------

@pytest.fixture
def cdr_dir(tmp_path):
    d = tmp_path / "fs-cdr"
    d.mkdir()
    shutil.copy(FILES / f"a_{INBOUND}.cdr.xml", d / f"a_{INBOUND}.cdr.xml")
    return d


def test_a_switch_cdr_stays_in_place_while_its_cdr_is_only_in_memory(tmp_path, monkeypatch, cdr_dir):
    s = make_store(tmp_path).open()
    disk = FullDisk(monkeypatch)
    disk.on = True
    name = f"a_{INBOUND}.cdr.xml"
    xmlcdr.import_dir(s, str(cdr_dir), {"7002"})
    assert (cdr_dir / name).exists() and not (cdr_dir / "done" / name).exists()
    disk.on = False
    assert s.drain() == (1, 0)                               # the copy in memory
    assert xmlcdr.import_dir(s, str(cdr_dir), {"7002"}) == 0   # known now: only moved aside
    assert (cdr_dir / "done" / name).exists()
    assert raw_rows(tmp_path / "db/hotline.db", "select count(*) from cdr") == [(1,)]
    s.close()


def test_a_switch_cdr_moves_aside_once_its_cdr_is_durably_spooled(tmp_path, monkeypatch, cdr_dir):
    s = make_store(tmp_path).open()
    real_upsert = CdrStore._upsert
    monkeypatch.setattr(CdrStore, "_upsert", lambda *a: (_ for _ in ()).throw(
        peewee.OperationalError("disk I/O error")))
    assert xmlcdr.import_dir(s, str(cdr_dir), {"7002"}) == 1
    assert (cdr_dir / "done" / f"a_{INBOUND}.cdr.xml").exists()
    assert s.pending() == 1
    monkeypatch.setattr(CdrStore, "_upsert", real_upsert)
    assert s.drain() == (1, 0)
    assert s.get(INBOUND)["tags"] == ["from_switch_cdr"]
    s.close()


def test_a_switch_cdr_never_supersedes_the_engines_own_cdr_waiting_in_the_spool(tmp_path, cdr_dir):
    """The database away when a call ends: the engine's full CDR is spooled. The switch's file of
    the same call must not be imported over it (its newer stamp would make the replay stale)."""
    s = make_store(tmp_path).open()
    try:
        s.db_down = True
        s.write(record(INBOUND, agent="1001", queue="general", wait_seconds=12.5, ivr_path=[{"node": "t:start"}]))
        s.db_down = False
        assert xmlcdr.import_dir(s, str(cdr_dir), {"7002"}) == 0
        assert (cdr_dir / "done" / f"a_{INBOUND}.cdr.xml").exists()
        assert s.drain() == (1, 0)
        cdr = s.get(INBOUND)
        assert cdr["agent"] == "1001" and cdr["wait_seconds"] == 12.5 and "from_switch_cdr" not in (cdr["tags"] or [])
    finally:
        s.close()


def test_a_full_data_disk_under_load_loses_no_cdr_end_to_end(tmp_path, monkeypatch):
    """The measured scenario, on the simulator: calls keep ending while the data directory is full
    (database and spool on it), the drainer and the switch-CDR import keep running; when space
    comes back every call has exactly one CDR, the engine's own, and no switch file was moved aside
    while its CDR was only in memory."""
    import gevent

    from engine.daemon import welcome_handler
    from tests.enginefix import SHORT_TONE, Rig
    rig = Rig(tmp_path, handler=welcome_handler(SHORT_TONE))
    try:
        rig.switch.xml_cdr_dir = str(rig.settings.switch.cdr_dir)
        disk = FullDisk(monkeypatch)
        calls, moved_while_full = [], []

        def place(n):
            for _ in range(n):
                calls.append(rig.call(f"1380000{len(calls):04d}"))
                gevent.sleep(0.03)

        place(10)
        disk.on = True
        placing = gevent.spawn(place, 30)
        while not placing.ready():
            rig.engine._import_switch_cdrs()            # the minute's import, many times over
            done = rig.settings.switch.cdr_dir / "done"
            moved_while_full.extend(p.name for p in done.glob("*.cdr.xml")) if done.is_dir() else None
            gevent.sleep(0.1)
        assert all(ch.wait_hangup(timeout=10) for ch in calls)
        assert wait_until(lambda: not rig.engine.calls, timeout=20)
        in_memory = rig.engine.store.pending()
        assert in_memory >= 30 and in_memory + len(rig.cdrs()) == 40     # every CDR somewhere
        rig.engine._import_switch_cdrs()
        disk.on = False
        assert wait_until(lambda: rig.engine.store.pending() == 0, timeout=20)
        rig.engine._import_switch_cdrs()
        cdrs = rig.cdrs()
        assert sorted(c["uuid"] for c in cdrs) == sorted(ch.uuid for ch in calls)       # 40 of 40
        assert not any("from_switch_cdr" in (c["tags"] or []) for c in cdrs)
        spool = rig.settings.paths.cdr_spool
        assert not (spool / store_mod.REJECTED_NAME).exists()
        done = sorted(p.name for p in (rig.settings.switch.cdr_dir / "done").glob("*.cdr.xml"))
        assert done == sorted(f"a_{ch.uuid}.cdr.xml" for ch in calls)
        full_uuids = {ch.uuid for ch in calls[10:]}
        assert not any(name[2:-8] in full_uuids for name in set(moved_while_full))
        db = rig.settings.database.url[len("sqlite:///"):]
        assert raw_rows(db, "select count(*), count(distinct uuid) from cdr") == [(40, 40)]
    finally:
        rig.stop()


def test_a_postgresql_disk_full_or_read_only_error_is_transient_by_its_sqlstate():
    from engine.cdr.storage_errors import is_transient

    class DriverError(Exception):           # what psycopg2 raises: the SQLSTATE in .pgcode
        def __init__(self, text, pgcode):
            super().__init__(text)
            self.pgcode = pgcode

    # peewee wraps the driver's exception as its first argument
    assert is_transient(peewee.OperationalError(DriverError("could not extend file", "53100")))
    assert is_transient(peewee.InternalError(DriverError("cannot execute INSERT in a read-only "
                                                         "transaction", "25006")))
    assert not is_transient(peewee.DataError(DriverError("invalid byte sequence", "22021")))


def test_closing_with_cdrs_only_in_memory_waits_for_the_disk_a_while(tmp_path, monkeypatch, caplog):
    import gevent
    s = make_store(tmp_path, close_wait=5.0).open()
    disk = FullDisk(monkeypatch)
    disk.on = True
    s.write(record("at-shutdown"))
    assert s.pending() == 1
    gevent.spawn_later(0.3, setattr, disk, "on", False)      # space freed during the shutdown
    s.close()
    assert "CDR NOT STORED" not in caplog.text
    assert raw_rows(tmp_path / "db/hotline.db", "select uuid from cdr") == [("at-shutdown",)]
