"""CDRs on PostgreSQL: the same store against a private server started for this module.

scripts/setup installs Debian's postgresql and psycopg2, so CI runs this; it is skipped only where
the server binaries (initdb, pg_ctl) or psycopg2 are missing (a checkout set up by hand).
"""
import os
import pwd
import shutil
import subprocess
import tempfile

import pytest

from engine.cdr.store import CdrStore
from engine.infra.netutil import free_port
from tests.test_cdr import HOSTILE_NAMES, record

psycopg2 = pytest.importorskip("psycopg2")


def _pg_bin(name):
    found = shutil.which(name)
    if found:
        return found
    for version in ("17", "16", "15", "14", "13"):
        path = f"/usr/lib/postgresql/{version}/bin/{name}"
        if os.path.exists(path):
            return path
    return None


class PrivatePostgres:
    """initdb + pg_ctl in a temporary directory; as root it runs as the 'postgres' user."""

    def __init__(self, base):
        self.base, self.data, self.port = str(base), os.path.join(str(base), "data"), free_port()
        self.url = f"postgresql://hotline@127.0.0.1:{self.port}/postgres"
        self.prefix = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")              # KeyError -> skipped by the fixture
            os.chown(self.base, user.pw_uid, user.pw_gid)
            self.prefix = ["runuser", "-u", "postgres", "--"]

    def run(self, *cmd):
        subprocess.run(self.prefix + list(cmd), check=True, capture_output=True, timeout=60)

    def init(self):
        self.run(_pg_bin("initdb"), "-D", self.data, "-A", "trust", "-U", "hotline")

    def start(self):
        self.run(_pg_bin("pg_ctl"), "-D", self.data, "-w", "-l", os.path.join(self.base, "log"), "-o",
                 f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self):
        self.run(_pg_bin("pg_ctl"), "-D", self.data, "-w", "-m", "fast", "stop")


@pytest.fixture(scope="module")
def postgres():
    if not (_pg_bin("initdb") and _pg_bin("pg_ctl")):
        pytest.skip("PostgreSQL server binaries not installed")
    # Not under pytest's tmp dir: that is private to root and the 'postgres' user must reach it.
    base = tempfile.mkdtemp(prefix="hotline-pg-")
    try:
        pg = PrivatePostgres(base)
        pg.init()
        pg.start()
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"cannot start a private PostgreSQL: {exc}: {exc.stderr.decode(errors='replace')[-300:]}")
    except (KeyError, OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"cannot start a private PostgreSQL: {exc}")
    yield pg
    try:
        pg.stop()
    except subprocess.SubprocessError:
        pass
    shutil.rmtree(base, ignore_errors=True)


def fresh_tables(pg):
    con = psycopg2.connect(pg.url)
    con.autocommit = True
    con.cursor().execute("DROP TABLE IF EXISTS outbox_ack, outbox, cdr")
    con.close()


def test_upsert_outbox_and_hostile_text_on_postgres(postgres, tmp_path):
    fresh_tables(postgres)
    s = CdrStore(postgres.url, tmp_path / "spool", retries=2, busy_timeout=0.1).open()
    assert s.write(record("pg-1", tags=["a"]))
    assert s.write({"uuid": "pg-1", "satisfaction": 4})
    for i, name in enumerate(HOSTILE_NAMES):
        assert s.write(record(f"pg-h{i}", caller_name=name)), name
    rows = {r["uuid"]: r for r in s.list()}
    assert len(rows) == 1 + len(HOSTILE_NAMES)
    assert rows["pg-1"]["satisfaction"] == 4 and rows["pg-1"]["billsec"] == 30 and rows["pg-1"]["tags"] == ["a"]
    for i, name in enumerate(HOSTILE_NAMES):
        stored = rows[f"pg-h{i}"]
        if "\x00" in name:        # PostgreSQL text cannot hold NUL: the exact original is in extra
            assert stored["extra"]["nul_text"]["caller_name"] == name
            assert stored["caller_name"] == name.replace("\x00", "\ufffd")
        else:
            assert stored["caller_name"] == name
    entries = s.outbox_take("tickets")
    assert len(entries) == 2 + len(HOSTILE_NAMES)
    s.outbox_ack("tickets", [e["id"] for e in entries])
    assert s.outbox_take("tickets") == []
    s.close()


def test_postgres_down_spools_then_drains_after_restart(postgres, tmp_path):
    fresh_tables(postgres)
    s = CdrStore(postgres.url, tmp_path / "spool", retries=2, busy_timeout=0.1).open()
    assert s.write(record("before"))
    postgres.stop()
    try:
        assert s.write(record("during-1")) is False
        assert s.write(record("during-2")) is False
        assert s.pending() == 2
    finally:
        postgres.start()
    assert s.drain() == (2, 0)
    assert sorted(r["uuid"] for r in s.list()) == ["before", "during-1", "during-2"]
    assert s.write(record("after")) is True
    s.close()


def test_postgres_lock_is_waited_for_cooperatively_then_spooled_and_drained(postgres, tmp_path):
    import time

    import gevent
    fresh_tables(postgres)
    s = CdrStore(postgres.url, tmp_path / "spool", retries=2, busy_timeout=0.1, drain_interval=0.05).open()
    assert s.write(record("before"))
    holder = psycopg2.connect(postgres.url)
    holder.cursor().execute("LOCK TABLE cdr IN ACCESS EXCLUSIVE MODE")
    gaps = []

    def ticker():
        last = time.monotonic()
        while True:
            gevent.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    tick = gevent.spawn(ticker)
    s.start()
    writers = [gevent.spawn(s.write, record(f"locked-{i}")) for i in range(10)]
    gevent.joinall(writers, timeout=20)
    assert [w.value for w in writers] == [False] * 10
    assert max(gaps) < 0.06, f"hub blocked for {max(gaps):.3f} s"
    tick.kill()
    holder.rollback()
    holder.close()
    deadline = time.monotonic() + 10
    while s.pending() and time.monotonic() < deadline:
        gevent.sleep(0.02)
    assert s.pending() == 0
    assert len(s.list()) == 11
    s.close()
