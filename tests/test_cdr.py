"""CDRs: upsert by uuid, outbox in the same transaction, exactly-once consumption, a spool that
loses nothing while the database is locked or gone, hostile caller text intact, the CLI."""
import csv
import datetime
import io
import json
import os
import shutil
import sqlite3
import time

import gevent
import pytest

from engine.cdr import store as store_mod
from engine.cdr.record import cdr_from_hangup
from engine.cdr.rows import normalize
from engine.cdr.store import CdrStore
from engine.esl.protocol import Event, Parser
from engine.sim.transcript import default_fixture_dir, records
from tests.clifix import UNSET, run_cli, write_config

UTC = datetime.timezone.utc
HOSTILE_NAMES = ["x\nhangup", "a},b{c", "' ; uuid_kill", "张三\r\n\x00%0A" + "长" * 5000 + "\x7f"]


def make_store(tmp_path, name="db/hotline.db", **kw):
    kw = {"retries": 2, "busy_timeout": 0.05, "drain_interval": 0.05, **kw}
    return CdrStore(f"sqlite:///{tmp_path / name}", tmp_path / "spool", **kw)


def record(uuid, **fields):
    base = {"uuid": uuid, "caller_number": "13800138000", "caller_name": "caller",
            "destination": "12345", "start_time": datetime.datetime(2026, 11, 22, 21, 44, 5, tzinfo=UTC),
            "answer_time": datetime.datetime(2026, 11, 22, 21, 44, 6, tzinfo=UTC),
            "end_time": datetime.datetime(2026, 11, 22, 21, 44, 36, tzinfo=UTC),
            "duration": 31, "billsec": 30, "hangup_cause": "NORMAL_CLEARING", "hangup_side": "caller"}
    base.update(fields)
    return base


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        gevent.sleep(0.01)
    return predicate()


def raw_rows(path, sql):
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# --- upsert and outbox ----------------------------------------------------------------------

def test_second_write_updates_the_same_row_and_keeps_fields_it_does_not_name(tmp_path):
    s = make_store(tmp_path).open()
    assert s.write(record("call-1", tags=["first"]))
    assert s.write({"uuid": "call-1", "satisfaction": 2, "tags": ["second"]})
    rows = s.list()
    assert len(rows) == 1
    row = rows[0]
    assert row["satisfaction"] == 2 and row["tags"] == ["second"]
    assert row["billsec"] == 30 and row["caller_number"] == "13800138000"
    assert row["answer_time"] == datetime.datetime(2026, 11, 22, 21, 44, 6, tzinfo=UTC)
    assert raw_rows(tmp_path / "db/hotline.db", "select count(*) from cdr") == [(1,)]
    assert s.db.execute_sql("pragma journal_mode").fetchone() == ("wal",)
    assert s.db.execute_sql("pragma foreign_keys").fetchone() == (1,)
    # Each write is an event for consumers, carrying the whole CDR as stored at that moment.
    entries = s.outbox_take("tickets")
    assert [e["cdr_uuid"] for e in entries] == ["call-1", "call-1"]
    assert entries[1]["payload"]["satisfaction"] == 2 and entries[1]["payload"]["billsec"] == 30
    s.close()


def test_unknown_and_wrong_typed_fields_are_kept_in_extra_not_lost(tmp_path):
    s = make_store(tmp_path).open()
    assert s.write(record("call-2", billsec="thirty", hangup_side="martian", survey_channel="sms"))
    row = s.get("call-2")
    assert row["billsec"] is None and row["hangup_side"] == ""
    assert row["extra"]["survey_channel"] == "sms"
    assert row["extra"]["invalid"] == {"billsec": "'thirty'", "hangup_side": "'martian'"}
    with pytest.raises(ValueError, match="call uuid"):
        s.write({"caller_number": "1"})
    s.close()


def test_outbox_row_and_cdr_commit_together_or_not_at_all(tmp_path):
    s = make_store(tmp_path, retries=1).open()
    db_path = tmp_path / "db/hotline.db"
    # Break the outbox insert (table gone) while the CDR upsert itself would succeed.
    con = sqlite3.connect(db_path)
    con.execute("drop table outbox_ack")
    con.execute("drop table outbox")
    con.commit()
    con.close()
    assert s.write(record("call-3")) is False               # spooled, not half written
    assert raw_rows(db_path, "select count(*) from cdr where uuid='call-3'") == [(0,)]
    assert s.pending() == 1
    assert s.drain() == (1, 0)                              # reconnect recreates the tables
    assert raw_rows(db_path, "select count(*) from cdr where uuid='call-3'") == [(1,)]
    assert raw_rows(db_path, "select cdr_uuid from outbox") == [("call-3",)]
    s.close()


def test_outbox_is_consumed_exactly_once_per_consumer_across_reopen(tmp_path):
    s = make_store(tmp_path).open()
    for i in range(3):
        s.write(record(f"call-{i}"))
    first = s.outbox_take("tickets", limit=2)
    assert [e["cdr_uuid"] for e in first] == ["call-0", "call-1"]
    assert [e["id"] for e in s.outbox_take("tickets", limit=2)] == [e["id"] for e in first]  # not acked yet
    s.outbox_ack("tickets", [e["id"] for e in first])
    s.close()

    s = make_store(tmp_path).open()                          # a restart
    rest = s.outbox_take("tickets")
    assert [e["cdr_uuid"] for e in rest] == ["call-2"]
    assert len(s.outbox_take("audit")) == 3                  # consumers are independent
    s.outbox_ack("tickets", [rest[0]["id"], rest[0]["id"], first[0]["id"]])   # re-acks are harmless
    assert s.outbox_take("tickets") == []
    s.close()


# --- trouble: locked, unavailable, disk full, replays ---------------------------------------

def test_locked_database_spools_then_drains_with_nothing_lost_or_duplicated(tmp_path):
    s = make_store(tmp_path).open().start()
    db_path = tmp_path / "db/hotline.db"
    s.write(record("before"))
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")

    gaps = []

    def ticker():                 # the hub must keep running calls while CDR writes wait
        last = time.monotonic()
        while True:
            gevent.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    tick = gevent.spawn(ticker)
    writers = [gevent.spawn(s.write, record(f"locked-{i}", caller_name=f"n{i}")) for i in range(30)]
    gevent.joinall(writers, timeout=10)
    assert [w.value for w in writers] == [False] * 30
    assert s.pending() == 30
    gevent.sleep(0.2)                                        # drainer runs against the lock: keeps them
    assert s.pending() == 30
    assert max(gaps) < 0.06, f"hub blocked for {max(gaps):.3f} s"
    tick.kill()

    holder.execute("ROLLBACK")
    holder.close()
    assert wait_until(lambda: s.pending() == 0)
    assert not s.db_down
    uuids = [r["uuid"] for r in s.list()]
    assert sorted(uuids) == sorted(["before"] + [f"locked-{i}" for i in range(30)])
    assert raw_rows(db_path, "select count(*), count(distinct uuid) from cdr") == [(31, 31)]
    assert raw_rows(db_path, "select count(*), count(distinct cdr_uuid) from outbox") == [(31, 31)]
    assert s.get("locked-7")["caller_name"] == "n7"
    assert s.write(record("after")) is True                  # back to direct writes
    s.close()


def test_database_directory_gone_spools_until_it_is_back(tmp_path):
    s = make_store(tmp_path).open()
    db_dir = tmp_path / "db"
    assert s.write(record("one"))
    shutil.rmtree(db_dir)
    assert s.write(record("two")) is False
    assert s.write(record("three")) is False
    assert s.pending() == 2
    assert s.drain() == (0, 2)                               # still gone: kept
    db_dir.mkdir()
    assert s.drain() == (2, 0)
    assert sorted(r["uuid"] for r in s.list()) == ["three", "two"]
    s.close()


def test_database_file_dropped_under_the_connection_is_noticed(tmp_path):
    s = make_store(tmp_path).open()
    db_path = tmp_path / "db/hotline.db"
    assert s.write(record("one"))
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(f"{db_path}{suffix}"):
            os.unlink(f"{db_path}{suffix}")
    # Without the check this write would vanish into the unlinked file.
    assert s.write(record("two"))
    s.close()
    assert raw_rows(db_path, "select uuid from cdr") == [("two",)]


def test_unopenable_database_at_start_spools_and_drains_later(tmp_path):
    blocker = tmp_path / "db" / "hotline.db"
    blocker.mkdir(parents=True)                               # a directory where the file should be
    s = make_store(tmp_path).open()
    assert s.db_down
    assert s.write(record("early", caller_name=HOSTILE_NAMES[0])) is False
    s.close()
    assert s.pending() == 1
    blocker.rmdir()
    s = make_store(tmp_path).open()                           # open() replays the spool
    assert s.pending() == 0 and not s.db_down
    assert s.get("early")["caller_name"] == HOSTILE_NAMES[0]
    s.close()


def test_full_disk_keeps_the_record_in_memory_for_the_drainer(tmp_path, monkeypatch, caplog):
    s = make_store(tmp_path).open()
    db_dir = tmp_path / "db"
    shutil.rmtree(db_dir)

    def disk_full(path, lines, lock):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_mod, "_append_durably", disk_full)
    assert s.write(record("nowhere")) is False
    assert s.pending() == 1
    assert "CANNOT SPOOL" in caplog.text
    monkeypatch.undo()
    db_dir.mkdir()
    assert s.drain() == (1, 0)
    assert s.get("nowhere") is not None
    s.close()


def test_replayed_older_version_never_overwrites_a_newer_one_nor_duplicates(tmp_path):
    s = make_store(tmp_path).open()
    old = normalize(record("call-9", satisfaction=1))
    old["_write_id"] = "w-old"
    old["updated_at"] = "2026-01-01T00:00:00+00:00"
    assert s.write(record("call-9", satisfaction=5))
    s._spool([old, old])                                      # e.g. a spool replayed twice after a crash
    assert s.drain() == (2, 0)
    assert s.get("call-9")["satisfaction"] == 5
    assert len(s.outbox_take("tickets")) == 1
    s.close()


def test_half_written_spool_line_is_set_aside_and_the_rest_replayed(tmp_path):
    spool = tmp_path / "spool"
    spool.mkdir()
    good = json.dumps(normalize(record("good")) | {"_write_id": "w1", "updated_at": "2026-11-22T21:45:00+00:00"})
    (spool / store_mod.SPOOL_NAME).write_text(good + "\n" + '{"uuid": "cut-off-by-a-cra')
    s = make_store(tmp_path).open()
    assert s.get("good") is not None
    assert s.pending() == 0
    assert (spool / store_mod.CORRUPT_NAME).read_text() == '{"uuid": "cut-off-by-a-cra\n'
    s.close()


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_caller_text_is_stored_intact_directly_and_via_the_spool(tmp_path, name):
    s = make_store(tmp_path).open()
    assert s.write(record("direct", caller_name=name, caller_number=name))
    shutil.rmtree(tmp_path / "db")
    assert s.write(record("spooled", caller_name=name)) is False
    (tmp_path / "db").mkdir()
    s.drain()
    assert s.get("spooled")["caller_name"] == name
    s.close()
    s = make_store(tmp_path).open()
    assert s.get("spooled")["caller_name"] == name
    s.close()


# --- from the switch's event ---------------------------------------------------------------

def fixture_hangups():
    fixtures = default_fixture_dir()
    data = b"".join(r.data for r in records(os.path.join(fixtures, "01-answer-playback-dtmf-hangup.txt"),
                                            "events-plain", "S->C"))
    events = [Event.from_message(m) for m in Parser().feed(data) if m.content_type == "text/event-plain"]
    return {e.get("Call-Direction"): e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE"}


def test_cdr_from_the_real_hangup_complete_event(tmp_path):
    hangups = fixture_hangups()
    rec = cdr_from_hangup(hangups["inbound"], {"ivr_path": [{"node": "welcome"}], "tags": ["t"],
                                               "queue": "general", "note": "kept"})
    assert rec["uuid"] == "948dc4a2-7630-4c01-becd-a18204b2fe19"
    assert rec["caller_number"] == "15550000001" and rec["caller_name"] == "ESL Fixture 1"
    assert rec["destination"] == "7000"
    assert rec["start_time"] == datetime.datetime(2026, 11, 22, 21, 44, 5, 554320, tzinfo=UTC)
    assert rec["answer_time"] == datetime.datetime(2026, 11, 22, 21, 44, 5, 574319, tzinfo=UTC)
    assert rec["end_time"] == datetime.datetime(2026, 11, 22, 21, 44, 10, 894327, tzinfo=UTC)
    assert rec["answer_time"] >= rec["start_time"]
    assert abs(rec["billsec"] - (rec["end_time"] - rec["answer_time"]).total_seconds()) <= 1
    assert (rec["duration"], rec["billsec"]) == (5, 5)
    assert rec["hangup_cause"] == "NORMAL_CLEARING"
    assert rec["hangup_side"] == "caller"                    # recv_bye: the caller's side hung up
    assert rec["queue"] == "general" and rec["extra"]["note"] == "kept"
    assert rec["extra"]["sip_hangup_disposition"] == "recv_bye"
    # The originating leg was ended by the switch (send_bye).
    assert cdr_from_hangup(hangups["outbound"])["hangup_side"] == "engine"
    # The engine knows better when an agent hung up.
    assert cdr_from_hangup(hangups["inbound"], {"hangup_side": "agent"})["hangup_side"] == "agent"

    s = make_store(tmp_path).open()
    assert s.write(rec)
    stored = s.get(rec["uuid"])
    assert stored["end_time"] == rec["end_time"] and stored["ivr_path"] == [{"node": "welcome"}]
    s.close()


def test_cdr_from_hangup_keeps_url_decoded_hostile_caller_id_and_handles_unanswered():
    text = ("Event-Name: CHANNEL_HANGUP_COMPLETE\nUnique-ID: u-1\n"
            "Caller-Caller-ID-Name: x%0Ahangup\nCaller-Caller-ID-Number: %27%20%3B%20uuid_kill\n"
            "Caller-Destination-Number: 12345\nHangup-Cause: ORIGINATOR_CANCEL\n"
            "variable_start_uepoch: 1795383845000000\nvariable_answer_uepoch: 0\n"
            "variable_end_uepoch: 1795383857500000\nvariable_duration: 12\nvariable_billsec: 0\n"
            "variable_sip_hangup_disposition: recv_cancel\n")
    rec = cdr_from_hangup(Event.from_plain_text(text))
    assert rec["caller_name"] == "x\nhangup" and rec["caller_number"] == "' ; uuid_kill"
    assert rec["answer_time"] is None and rec["billsec"] == 0 and rec["duration"] == 12
    assert rec["hangup_side"] == "caller"


# --- CLI ------------------------------------------------------------------------------------

@pytest.fixture
def cli_setup(tmp_path):
    # The password variable is deliberately unset: reading CDRs must not need the switch's secret.
    cfg, settings = write_config(tmp_path)
    s = CdrStore(settings.database.url, settings.paths.cdr_spool).open()
    s.write(record("cli-1", caller_name="x\nhangup"))
    s.write(record("cli-2", start_time=datetime.datetime(2026, 11, 23, 8, 0, tzinfo=UTC), tags=["vip"]))
    s.close()
    return cfg


def test_cli_list_table_json_csv_and_since(cli_setup, capsys):
    os.environ.pop(UNSET, None)
    rc, out, _ = run_cli(capsys, "cdr", "list", "--config", str(cli_setup))
    assert rc == 0
    lines = out.splitlines()
    # times in the hotline's zone (default Asia/Shanghai): 21:44:05 UTC is 05:44:05 the next day
    assert lines[0].split()[:3] == ["start", "(Asia/Shanghai)", "uuid"] and len(lines) == 3
    assert lines[1].split()[:3] == ["2026-11-23", "05:44:05", "cli-1"]
    rc, out, _ = run_cli(capsys, "cdr", "list", "--config", str(cli_setup), "--json")
    data = json.loads(out)
    assert rc == 0 and [d["uuid"] for d in data] == ["cli-1", "cli-2"]
    assert data[0]["caller_name"] == "x\nhangup" and data[1]["tags"] == ["vip"]
    assert data[0]["start_time"] == "2026-11-23T05:44:05+08:00"
    assert data[1]["start_time"] == "2026-11-23T16:00:00+08:00"
    rc, out, _ = run_cli(capsys, "cdr", "list", "--config", str(cli_setup), "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rc == 0 and [r["uuid"] for r in rows] == ["cli-1", "cli-2"]
    assert rows[0]["caller_name"] == "x\nhangup" and rows[1]["tags"] == '["vip"]'
    rc, out, _ = run_cli(capsys, "cdr", "list", "--config", str(cli_setup), "--json",
                         "--since", "2026-11-23T00:00:00Z")
    assert [d["uuid"] for d in json.loads(out)] == ["cli-2"]
    # a day alone is the hotline's local midnight: 2026-11-23 00:00 +08:00 = 16:00 UTC the day before
    rc, out, _ = run_cli(capsys, "cdr", "list", "--config", str(cli_setup), "--json",
                         "--since", "2026-11-23", "--until", "2026-11-23 06:00")
    assert rc == 0 and [d["uuid"] for d in json.loads(out)] == ["cli-1"]
    rc, _, err = run_cli(capsys, "cdr", "list", "--config", str(cli_setup), "--since", "last tuesday")
    assert rc == 2 and "is not a time" in err and "2026-12-04 09:30" in err and "Traceback" not in err
    rc, _, err = run_cli(capsys, "cdr", "list", "--config", str(cli_setup), "--since", "2026-11-23",
                         "--until", "2026-11-22")
    assert rc == 2 and "is not after" in err


def test_cli_show_one_and_missing(cli_setup, capsys):
    rc, out, _ = run_cli(capsys, "cdr", "show", "cli-1", "--config", str(cli_setup))
    assert rc == 0
    fields = dict(line.split(": ", 1) for line in out.splitlines())
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    assert fields["uuid"] == "cli-1" and fields["billsec"] == "30"
    assert fields["caller name"] == '"x\\nhangup"'           # control characters shown quoted
    assert fields["start time (Asia/Shanghai)"] == "2026-11-23 05:44:05"
    rc, out, _ = run_cli(capsys, "cdr", "show", "cli-1", "--config", str(cli_setup), "--json")
    data = json.loads(out)
    assert rc == 0 and data["uuid"] == "cli-1" and data["start_time"] == "2026-11-23T05:44:05+08:00"
    rc, _, err = run_cli(capsys, "cdr", "show", "nope", "--config", str(cli_setup))
    assert rc == 1 and "no CDR" in err
    rc, _, err = run_cli(capsys, "cdr", "show", "x", "--config", str(cli_setup) + ".missing")
    assert rc == 2 and "cannot read" in err


def test_a_burst_of_hangups_is_written_in_batches_without_stalling_other_calls(tmp_path):
    s = make_store(tmp_path).open()
    gaps = []

    def ticker():
        last = time.monotonic()
        while True:
            gevent.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    tick = gevent.spawn(ticker)
    writers = [gevent.spawn(s.write, record(f"burst-{i}", ivr_path=[{"node": "menu", "digits": "1"}] * 5))
               for i in range(300)]
    gevent.joinall(writers, timeout=30)
    tick.kill()
    assert all(w.value is True for w in writers)
    db_path = tmp_path / "db/hotline.db"
    assert raw_rows(db_path, "select count(distinct uuid), count(*) from cdr") == [(300, 300)]
    assert raw_rows(db_path, "select count(*) from outbox") == [(300,)]
    assert max(gaps) < 0.06, f"hub blocked for {max(gaps):.3f} s"
    s.close()


def test_a_row_the_database_refuses_is_set_aside_and_does_not_block_the_spool(tmp_path, monkeypatch):
    s = make_store(tmp_path).open()
    rows = []
    for n, uuid in enumerate(["ok-1", "poison", "ok-2"]):
        row = normalize(record(uuid))
        row.update(_write_id=f"w{n}", updated_at="2026-11-22T21:45:00+00:00")
        rows.append(row)
    s._spool(rows)
    real_upsert = CdrStore._upsert

    def refuse_poison(self, row, replay):
        if row["uuid"] == "poison":      # e.g. PostgreSQL refusing a NUL character in text
            raise store_mod.peewee.DataError("invalid byte sequence for encoding UTF8: 0x00")
        return real_upsert(self, row, replay)

    monkeypatch.setattr(CdrStore, "_upsert", refuse_poison)
    assert s.drain() == (2, 0)
    assert sorted(r["uuid"] for r in s.list()) == ["ok-1", "ok-2"]
    kept = [json.loads(line) for line in (tmp_path / "spool" / store_mod.REJECTED_NAME).read_text().splitlines()]
    assert [k["cdr"]["uuid"] for k in kept] == ["poison"] and "0x00" in kept[0]["error"]
    s.close()


def test_a_broken_writer_never_leaves_a_call_waiting_and_loses_nothing(tmp_path, monkeypatch):
    s = make_store(tmp_path).open()

    def explode(self, rows):
        raise RuntimeError("bug in the writer")

    monkeypatch.setattr(CdrStore, "_commit_with_retries", explode)
    writers = [gevent.spawn(s.write, record(f"w-{i}")) for i in range(20)]
    gevent.joinall(writers, timeout=5)
    assert all(w.ready() for w in writers)
    assert [w.value for w in writers] == [False] * 20
    assert s.pending() == 20
    monkeypatch.undo()
    assert s.drain() == (20, 0)
    assert s.write(record("after")) is True
    s.close()


def test_cdr_from_the_channel_data_when_no_hangup_event_arrived():
    # The daemon's fallback: only the outbound socket's CHANNEL_DATA (connect reply) is known.
    fixtures = default_fixture_dir()
    data = b"".join(r.data for r in records(os.path.join(fixtures, "05-outbound-socket.txt"),
                                            "outbound-socket", "S->C"))
    reply = next(m for m in Parser().feed(data) if m.headers.get("Event-Name") == "CHANNEL_DATA")
    before = datetime.datetime.now(UTC)
    rec = cdr_from_hangup(Event(dict(reply.headers)), {"extra": {"incomplete": True}})
    assert rec["uuid"] == reply.headers["Unique-ID"]
    assert rec["caller_number"] == reply.headers["Caller-Caller-ID-Number"]
    assert rec["start_time"] is not None and rec["start_time"] <= rec["end_time"]
    assert rec["end_time"] >= before                          # the call is ending now
    assert rec["duration"] == int((rec["end_time"] - rec["start_time"]).total_seconds())
    assert rec["extra"]["incomplete"] is True
