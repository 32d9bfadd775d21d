"""The CDR outbox -> tickets: exactly one ticket per (call, kind) across restarts, replays,
failures half-way through a pass and two consumers racing on one SQLite database."""
import json
import os
import subprocess
import sys

import gevent
import peewee
import pytest

from engine.tickets import Consumer, TicketStore, load_config
from tests.ticketfix import cdr, cdr_store, db_url

CONFIG = load_config("etc/tickets.yaml")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def consumer(tmp_path, **kw):
    return Consumer(db_url(tmp_path), poll_interval=0.02, config=CONFIG, **kw)


def crafted_calls(tmp_path):
    """(record, expected ticket kinds) for a mix of calls (the voicemail's message exists)."""
    message = tmp_path / "voicemail" / "general" / "a.wav"
    message.parent.mkdir(parents=True, exist_ok=True)
    message.write_bytes(b"RIFF" + bytes(100))
    return [
        (cdr(queue="general", wait_seconds=65.0), {"callback"}),                     # abandoned
        (cdr(queue="general", agent="1001", satisfaction=1), set()),                  # fine
        (cdr(queue="general", agent="1002", satisfaction=5), {"complaint_review"}),
        (cdr(queue="general", tags=["voicemail:general"],
             extra={"voicemail_path": str(message)}), {"voicemail"}),
        (cdr(tags=["wanted_agent"]), {"callback"}),
        (cdr(queue="general", agent="1003", satisfaction=4, tags=["wanted_agent"]),
         {"callback", "complaint_review"}),
        (cdr(), set()),
    ]


def tickets_by_call(store):
    out = {}
    for t in store.list():
        out.setdefault(t["call_uuid"], []).append(t["kind"])
    return out


def unacked(store, name="tickets"):
    m = store.m
    acked = m.OutboxAck.select().where((m.OutboxAck.consumer == name) & (m.OutboxAck.outbox == m.Outbox.id))
    return store.run(lambda: m.Outbox.select().where(~peewee.fn.EXISTS(acked)).count())


def test_every_outbox_row_gives_exactly_one_ticket_across_a_restart(tmp_path):
    cdrs = cdr_store(tmp_path)
    calls = crafted_calls(tmp_path)
    for record, _ in calls:
        assert cdrs.write(record)
    first = consumer(tmp_path)
    created = first.run_once()
    assert len(created) == sum(len(k) for _, k in calls)
    assert unacked(first.store) == 0
    first.store.close()                                   # the engine stops ...
    again = consumer(tmp_path)                            # ... and starts again
    assert again.run_once() == []
    by_call = tickets_by_call(again.store)
    for record, expected in calls:
        assert sorted(by_call.get(record["uuid"], [])) == sorted(expected)
    voicemail = again.store.by_call(calls[3][0]["uuid"], "voicemail")
    assert voicemail["recording"] == str(tmp_path / "voicemail" / "general" / "a.wav")
    assert voicemail["department"] == "热线中心" and voicemail["state"] == "assigned"
    assert voicemail["caller_number"] == "13800138000" and "menu:1" in voicemail["ivr_path"]
    assert [(h["who"], h["to_state"], h["note"]) for h in again.store.history(voicemail["id"])] == [
        ("outbox", "new", "from CDR outbox entry 4"),
        ("outbox", "assigned", "department 热线中心 (the category's default)")]
    cdrs.close()


def test_a_cdr_written_again_adds_only_what_is_new(tmp_path):
    cdrs = cdr_store(tmp_path)
    record = cdr(queue="general", wait_seconds=30.0)
    cdrs.write(record)
    c = consumer(tmp_path)
    assert [t["kind"] for t in c.run_once()] == ["callback"]
    cdrs.write(record)                                    # the same CDR again: a new outbox row
    assert c.run_once() == [] and unacked(c.store) == 0
    cdrs.write({**record, "agent": "1001", "satisfaction": 5})  # later version with a survey score
    assert [t["kind"] for t in c.run_once()] == ["complaint_review"]
    assert sorted(tickets_by_call(c.store)[record["uuid"]]) == ["callback", "complaint_review"]
    cdrs.close()


def test_replayed_entries_make_no_second_ticket(tmp_path):
    cdrs = cdr_store(tmp_path)
    for record, _ in crafted_calls(tmp_path):
        cdrs.write(record)
    c = consumer(tmp_path)
    n = len(c.run_once())
    m = c.store.m
    c.store.run(lambda: m.OutboxAck.delete().execute(), write=True)   # every entry handed out again
    assert unacked(c.store) == len(crafted_calls(tmp_path))
    assert c.run_once() == [] and len(c.store.list()) == n and unacked(c.store) == 0
    other = consumer(tmp_path, name="someone-else")           # acks are per consumer
    assert other.run_once() == [] and unacked(other.store, "someone-else") == 0
    cdrs.close()


def test_a_pass_that_fails_half_way_leaves_neither_tickets_nor_acks(tmp_path, monkeypatch):
    cdrs = cdr_store(tmp_path)
    for record, _ in crafted_calls(tmp_path):
        cdrs.write(record)
    c = consumer(tmp_path)
    real = c._create
    calls = []

    def create_then_die(entry, spec):
        calls.append(entry.id)
        if len(calls) == 3:
            raise peewee.OperationalError("disk I/O error")    # the process dies mid-pass
        return real(entry, spec)
    monkeypatch.setattr(c, "_create", create_then_die)
    with pytest.raises(peewee.OperationalError):
        c.run_once()
    assert c.store.list() == [] and unacked(c.store) == len(crafted_calls(tmp_path))
    monkeypatch.setattr(c, "_create", real)
    assert len(c.run_once()) == sum(len(k) for _, k in crafted_calls(tmp_path))
    cdrs.close()


def test_two_consumers_racing_on_sqlite_make_each_ticket_once(tmp_path):
    """Two consumer processes (real contention for the SQLite lock, as two engines would have)
    while this process keeps writing CDRs."""
    cdrs = cdr_store(tmp_path)
    records = [cdr(queue="q", wait_seconds=float(i), satisfaction=5 if i % 3 == 0 else None) for i in range(120)]
    expected = sum(1 + (i % 3 == 0) for i in range(120))
    for r in records[:60]:
        assert cdrs.write(r)
    procs = [subprocess.Popen([sys.executable, "-c", "import sys; from tests.ticketfix import race; race(*sys.argv[1:])",
                               db_url(tmp_path), str(tmp_path), name], stdout=subprocess.PIPE, cwd=ROOT, text=True)
             for name in ("a", "b")]
    with gevent.Timeout(30):
        while not all((tmp_path / f"ready-{n}").exists() for n in "ab"):
            gevent.sleep(0.01)
    (tmp_path / "go").touch()
    for r in records[60:]:
        assert cdrs.write(r)                 # committed: the consumers' lock waits did not spool it
    (tmp_path / "stop").touch()
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert all(r["created"] > 0 for r in results), results      # both really took part
    assert sum(r["created"] for r in results) == expected
    assert sum(r["acked"] for r in results) == len(records)      # no entry acked twice
    store = TicketStore(db_url(tmp_path), CONFIG).open()
    tickets = store.list()
    assert len(tickets) == expected and unacked(store) == 0
    assert len({t["number"] for t in tickets}) == expected
    assert len({(t["call_uuid"], t["kind"]) for t in tickets}) == expected
    cdrs.close()


def test_the_consumer_greenlet_follows_the_outbox_and_survives_a_missing_database(tmp_path, caplog):
    cdrs = cdr_store(tmp_path)
    c = consumer(tmp_path).start()
    try:
        record = cdr(queue="general")
        cdrs.write(record)
        with gevent.Timeout(5):
            while c.store.by_call(record["uuid"], "callback") is None:
                gevent.sleep(0.01)
    finally:
        c.stop()
    (tmp_path / "a-file").write_text("not a directory")
    broken = Consumer(f"sqlite:///{tmp_path}/a-file/x.db", poll_interval=0.01)
    with pytest.raises(OSError):
        broken.run_once()
    assert broken.store.db is None                       # not half-open: the next try starts over
    broken.start()
    try:
        gevent.sleep(0.05)
        assert caplog.text.count("ticket outbox consumer: FileExistsError") == 1     # said once
        assert broken.loop.running                       # it keeps trying
    finally:
        broken.stop()
    cdrs.close()


def test_entries_a_rule_cannot_handle_wait_unacked(tmp_path, monkeypatch, caplog):
    cdrs = cdr_store(tmp_path)
    good, bad = cdr(queue="q"), cdr(queue="q")
    cdrs.write(good), cdrs.write(bad)
    c = consumer(tmp_path)
    from engine.tickets import consumer as consumer_module
    real = consumer_module.tickets_for_cdr

    def rules(payload):
        if payload["uuid"] == bad["uuid"]:
            raise KeyError("a bug")
        return real(payload)
    monkeypatch.setattr(consumer_module, "tickets_for_cdr", rules)
    assert [t["call_uuid"] for t in c.run_once()] == [good["uuid"]]
    assert unacked(c.store) == 1 and "left for a later run" in caplog.text
    monkeypatch.setattr(consumer_module, "tickets_for_cdr", real)
    assert [t["call_uuid"] for t in c.run_once()] == [bad["uuid"]]
    cdrs.close()


def test_a_ticket_filed_before_its_cdr_gets_the_links_when_the_cdr_arrives(tmp_path):
    c = consumer(tmp_path)
    c.store.open()
    record = cdr(queue="general", agent="1001", recording="/arch/x.wav", bot_transcript=[{"text": "查社保"}])
    early = c.store.create(kind="agent", category="consultation", summary="wrap-up", call_uuid=record["uuid"])
    assert early["caller_number"] is None and early["recording"] is None
    other = c.store.create(kind="agent", category="consultation", summary="x", call_uuid="another-call")
    cdrs = cdr_store(tmp_path)
    cdrs.write(record)
    assert c.run_once() == []                                  # answered, no rating: no new ticket
    got = c.store.get(early["id"])
    assert got["caller_number"] == "13800138000" and got["recording"] == "/arch/x.wav"
    assert "查社保" in got["bot_transcript"] and "menu:1" in got["ivr_path"]
    assert c.store.get(other["id"])["caller_number"] is None
    cdrs.write({**record, "recording": "/elsewhere.wav"})      # a later version keeps what is there
    c.run_once()
    assert c.store.get(early["id"])["recording"] == "/arch/x.wav"
    cdrs.close()
