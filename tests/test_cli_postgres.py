"""The read-only data commands on PostgreSQL (skipped where the server binaries or psycopg2 are
missing, like tests/test_cdr_postgres.py): they read without creating a table, say when there is
none yet, and read the hotline's clock the same way as on SQLite."""
import datetime
import json

import pytest

from engine.cdr.store import CdrStore
from engine.infra import clock as clockmod
from tests.clifix import run_cli, write_config

psycopg2 = pytest.importorskip("psycopg2")
from tests.test_cdr_postgres import postgres  # noqa: E402,F401 - the module's private server

UTC = datetime.timezone.utc
TABLES = "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"


@pytest.fixture
def pg(postgres, tmp_path):  # noqa: F811 - the fixture above
    con = psycopg2.connect(postgres.url)
    con.autocommit = True
    cur = con.cursor()
    cur.execute(TABLES)
    for (name,) in cur.fetchall():
        cur.execute(f'DROP TABLE IF EXISTS "{name}" CASCADE')
    cfg, settings = write_config(tmp_path, f"database: {{url: '{postgres.url}'}}\n")
    yield cfg, settings, cur
    con.close()


def test_no_tables_yet_is_said_and_nothing_is_created(pg, capsys):
    cfg, _, cur = pg
    for argv, said in ((("cdr", "list"), "no CDR table yet"), (("cdr", "show", "x"), "no CDR table yet"),
                       (("tickets", "list"), "no ticket tables yet"),
                       (("recordings", "list"), "no recordings index yet"),
                       (("report", "daily"), "no CDR table yet")):
        rc, out, err = run_cli(capsys, *argv, "--config", cfg)
        assert rc == 1 and out == "" and said in err and "Traceback" not in err, (argv, err)
    cur.execute(TABLES)
    assert cur.fetchall() == []


def test_cdr_list_filters_and_json_times_on_postgres(pg, capsys, monkeypatch):
    cfg, settings, _ = pg
    late = datetime.datetime(2026, 12, 3, 23, 30, tzinfo=UTC)       # 07:30 on the 4th in Shanghai
    store = CdrStore(settings.database.url, settings.paths.cdr_spool).open()
    for uid, start, agent in (("a", late, "1001"), ("b", late - datetime.timedelta(hours=9), "")):
        assert store.write({"uuid": uid, "start_time": start, "caller_number": "13800138000",
                            "destination": "12345", "queue": "general", "agent": agent,
                            "hangup_cause": "NORMAL_CLEARING"})
    store.close()
    monkeypatch.setattr(clockmod, "wall_now", lambda: datetime.datetime(2026, 12, 4, 2, 0, tzinfo=UTC))
    rc, out, err = run_cli(capsys, "cdr", "list", "--json", "--since", "today", "--config", cfg)
    assert rc == 0, err
    assert [(d["uuid"], d["start_time"]) for d in json.loads(out)] == [("a", "2026-12-04T07:30:00+08:00")]
    rc, out, _ = run_cli(capsys, "cdr", "list", "--json", "--cause", "normal_clearing", "--agent", "1001",
                         "--caller", "0013", "--config", cfg)
    assert [d["uuid"] for d in json.loads(out)] == ["a"]
    rc, out, _ = run_cli(capsys, "report", "daily", "--json", "--config", cfg)
    assert rc == 0 and json.loads(out)["calls"] == 1 and json.loads(out)["date"] == "2026-12-04"


def test_an_unreachable_server_is_one_line_without_the_password(tmp_path, capsys):
    from engine.infra.netutil import free_port
    cfg, _ = write_config(tmp_path, f"database: {{url: 'postgresql://hotline:s3cret@127.0.0.1:{free_port()}/x'}}\n")
    rc, out, err = run_cli(capsys, "cdr", "list", "--config", cfg)
    assert rc == 1 and out == "" and "cannot open the database" in err
    assert "s3cret" not in err and "Traceback" not in err
