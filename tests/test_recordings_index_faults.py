"""A recording whose index write meets a locked database (issue 17 point 2): it is never an
archive file that list, export, hold and purge do not know; verify names it; the index is retried,
and a restart indexes what a crash left unindexed."""
import sqlite3

import pytest

from engine.media import recordings as rec_mod
from engine.media.recordings import ArchiveConfig, Archiver
from tests.simfix import make_wav
from tests.test_recordings import U, WHEN


def make_archiver(tmp_path):
    cfg = ArchiveConfig(archive_dir=tmp_path / "archive", live_dir=tmp_path / "live",
                        database_url=f"sqlite:///{tmp_path}/hotline.db", backup_dir=tmp_path / "backup")
    return Archiver(cfg).open()


class Lock:
    """A second connection holding a write transaction: SQLite's real "database is locked"."""

    def __init__(self, path):
        self.con = sqlite3.connect(path, isolation_level=None)

    def __enter__(self):
        self.con.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, *exc):
        self.con.execute("ROLLBACK")
        self.con.close()


@pytest.fixture
def short_lock_wait(monkeypatch):
    # the archiver waits 3 s for a lock (Archiver.lock_wait); the measured lock lasted 20 s
    monkeypatch.setattr(rec_mod.Archiver, "lock_wait", 0.06)


def archive_under_lock(arch, tmp_path, uuids):
    """Archive recordings while another writer holds the database (taken once the first file is
    in the archive; in WAL mode the archiver's reads go on, its index writes wait and give up)."""
    real_archive = arch._archive
    lock = Lock(tmp_path / "hotline.db")

    def archive_then_lock(*a, **kw):
        info = real_archive(*a, **kw)
        if not lock.con.in_transaction:
            lock.__enter__()
        return info
    arch._archive = archive_then_lock
    try:
        for u in uuids:
            arch.finish(u, make_wav(tmp_path / "live" / f"{u}.wav", 1.0), 1, when=WHEN).get(timeout=10)
    finally:
        arch._archive = real_archive
    return lock


def test_a_recording_archived_under_a_lock_is_named_by_verify_then_indexed(tmp_path, short_lock_wait):
    arch = make_archiver(tmp_path)
    try:
        lock = archive_under_lock(arch, tmp_path, U[:5])
        lock.__exit__()
        archived = sorted((tmp_path / "archive").rglob("*.wav"))
        assert len(archived) == 5                                # moved into the archive ...
        assert arch.list() == []                                 # ... but not indexed
        assert sorted(arch.verify()["not_indexed"]) == archived  # verify says so
        assert any("not indexed" in a[2] for a in arch.alarms)
        rows = arch.retry_pending()                              # the daemon's retry loop
        assert sorted(r["call_uuid"] for r in rows) == sorted(U[:5])
        assert sorted(r["call_uuid"] for r in arch.list()) == sorted(U[:5])
        assert arch.verify()["not_indexed"] == [] and arch.unindexed == {}
        row = arch.get(U[0])
        assert row["state"] == "archived" and row["recorded_at"].date() == WHEN.date()
        assert row["backup_path"] and row["seconds"] == 1.0
        assert arch.hold(U[0], reason="complaint")["legal_hold"]
        out = arch.export(U[1], tmp_path / "out.wav")
        assert out.read_bytes() == (tmp_path / "archive/2026/10/01" / f"{U[1]}.wav").read_bytes()
    finally:
        arch.close()


def test_a_restart_indexes_what_the_index_never_got(tmp_path, short_lock_wait):
    arch = make_archiver(tmp_path)
    lock = archive_under_lock(arch, tmp_path, U[:3])
    lock.__exit__()
    arch.close()                                                 # the process dies: memory gone
    fresh = make_archiver(tmp_path)
    try:
        assert len(fresh.verify()["not_indexed"]) == 3
        assert sorted(r["call_uuid"] for r in fresh.reindex()) == sorted(U[:3])
        assert fresh.verify()["not_indexed"] == []
        assert fresh.reindex() == []                              # idempotent
        assert [a["action"] for a in fresh.audit_trail(U[0])] == ["index"]
        # retention knows them now: a purge marks them purged in the index
        gone = fresh.purge(now=WHEN.replace(year=2029))
        assert sorted(g["call_uuid"] for g in gone) == sorted(U[:3])
        assert {r["state"] for r in fresh.list()} == {"purged"}
    finally:
        fresh.close()


def test_later_parts_are_indexed_after_their_first(tmp_path, short_lock_wait):
    arch = make_archiver(tmp_path)
    try:
        arch.finish(U[0], make_wav(tmp_path / "live" / f"{U[0]}.wav", 1.0), 1, when=WHEN).get(timeout=10)
        lock = archive_under_lock(arch, tmp_path, [U[0]])        # part 2, index locked
        lock.__exit__()
        assert [p.name for p in arch.verify()["not_indexed"]] == [f"{U[0]}.part2.wav"]
        arch.reindex()
        assert [p["path"].rsplit("/", 1)[1] for p in arch.get(U[0])["parts"]] == [f"{U[0]}.part2.wav"]
        assert arch.verify()["not_indexed"] == []
    finally:
        arch.close()


def test_the_cli_verify_counts_unindexed_files_as_problems_and_reindex_fixes_them(
        tmp_path, capsys, short_lock_wait):
    from tests.clifix import run_cli, write_config
    cfg, settings = write_config(tmp_path, "recordings: {retention_months: 12}\n")
    arch = Archiver(settings).open()
    lock = Lock(settings.database.url[len("sqlite:///"):])
    real_archive = arch._archive

    def archive_then_lock(*a, **kw):
        info = real_archive(*a, **kw)
        lock.__enter__()
        return info
    arch._archive = archive_then_lock
    arch.finish(U[0], make_wav(settings.paths.recordings / f"{U[0]}.wav", 1.0), 1).get(timeout=10)
    lock.__exit__()
    arch.close()
    c = ("--config", str(cfg))
    rc, out, _ = run_cli(capsys, "recordings", "verify", *c)
    assert rc == 1 and "NOINDEX" in out and U[0] in out and "1 problem(s)" in out
    rc, out, _ = run_cli(capsys, "recordings", "reindex", *c)
    assert rc == 0 and "1 recording(s) indexed" in out
    rc, out, _ = run_cli(capsys, "recordings", "verify", *c)
    assert rc == 0 and "0 problem(s)" in out
    rc, out, _ = run_cli(capsys, "recordings", "list", *c)
    assert U[0] in out


def test_the_start_up_pass_looks_at_recent_days_only(tmp_path, short_lock_wait):
    import datetime
    arch = make_archiver(tmp_path)
    try:
        now = datetime.datetime.now(datetime.timezone.utc)
        real_archive = arch._archive
        lock = Lock(tmp_path / "hotline.db")

        def archive_then_lock(*a, **kw):
            info = real_archive(*a, **kw)
            lock.__enter__()
            return info
        arch._archive = archive_then_lock
        arch.finish(U[0], make_wav(tmp_path / "live" / f"{U[0]}.wav", 1.0), 1, when=now).get(timeout=10)
        lock.__exit__()
        lock = Lock(tmp_path / "hotline.db")
        arch.finish(U[1], make_wav(tmp_path / "live" / f"{U[1]}.wav", 1.0), 1, when=WHEN).get(timeout=10)
        lock.__exit__()
        arch._archive = real_archive
        assert [p.name for p in arch.unindexed_files(days=2)] == [f"{U[0]}.wav"]
        assert sorted(p.name for p in arch.unindexed_files()) == sorted([f"{U[0]}.wav", f"{U[1]}.wav"])
        assert [r["call_uuid"] for r in arch.reindex(days=2)] == [U[0]]
        assert [r["call_uuid"] for r in arch.reindex()] == [U[1]]
    finally:
        arch.close()
