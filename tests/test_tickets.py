"""Tickets: the store (numbers, links, transitions, assignment) and the rules for CDRs."""
import datetime

import pytest

from engine.tickets import DEFAULT_CONFIG, TicketConfigError, TicketError, load_config
from engine.tickets.rules import tickets_for_cdr
from tests.ticketfix import Clock, cdr, cdr_store, ticket_store


# --- rules ------------------------------------------------------------------------------------

def kinds(record):
    return [t["kind"] for t in tickets_for_cdr(record)]


def test_rules_missed_call_in_queue_is_a_callback():
    assert kinds(cdr(queue="general", agent=None, wait_seconds=42.0)) == ["callback"]
    assert "等待 42 秒" in tickets_for_cdr(cdr(queue="general", wait_seconds=42.0))[0]["summary"]


def test_rules_answered_call_gives_no_ticket():
    assert kinds(cdr(queue="general", agent="1001", satisfaction=1)) == []
    assert kinds(cdr()) == []                                  # IVR only, nobody wanted an agent


def test_rules_wanted_agent_and_callback_request():
    assert kinds(cdr(tags=["wanted_agent"])) == ["callback"]
    specs = tickets_for_cdr(cdr(queue="general", tags=["callback"], extra={"callback_number": "13900000000"}))
    assert [s["kind"] for s in specs] == ["callback"]
    assert "13900000000" in specs[0]["summary"]


def test_rules_voicemail_carries_the_file_and_replaces_the_callback(tmp_path):
    message = tmp_path / "x.wav"
    message.write_bytes(b"RIFF" + bytes(100))
    specs = tickets_for_cdr(cdr(queue="general", tags=["voicemail:general"],
                                extra={"voicemail_path": str(message), "voicemail_seconds": 12}))
    assert [(s["kind"], s.get("recording")) for s in specs] == [("voicemail", str(message))]
    # the IVR node keeps it among the call variables
    specs = tickets_for_cdr(cdr(tags=["voicemail:box1"], extra={"variables": {"voicemail_path": str(message)}}))
    assert specs[0]["recording"] == str(message)


def test_rules_never_a_voicemail_ticket_for_a_message_that_does_not_exist(tmp_path):
    # issue 14: the switch hung the caller up (no voicemail directory) and a ticket pointed at a
    # file that was never written; without the file the caller still gets a callback
    for extra in ({"voicemail_path": str(tmp_path / "never-written.wav")}, {}):
        specs = tickets_for_cdr(cdr(caller_number="13800138000", tags=["voicemail:box1"], extra=extra))
        assert [s["kind"] for s in specs] == ["callback"] and "recording" not in specs[0]
        assert "留言未录成" in specs[0]["summary"] and "13800138000" in specs[0]["summary"]


@pytest.mark.parametrize("score,expected", [(1, []), (2, []), (3, []), (4, ["complaint_review"]),
                                            (5, ["complaint_review"]), (None, []), (True, [])])
def test_rules_low_satisfaction_is_a_complaint_review(score, expected):
    assert kinds(cdr(queue="q", agent="1001", satisfaction=score)) == expected


def test_rules_transfer_out_of_queue_is_not_missed_and_bad_input_is_nothing():
    assert kinds(cdr(queue="q", extra={"transfer": "12315"})) == []
    assert tickets_for_cdr({}) == [] and tickets_for_cdr("junk") == []
    assert kinds(cdr(tags=["voicemail:x", 5, None], extra="not a dict")) == ["callback"]


# --- config -----------------------------------------------------------------------------------

def test_config_file_and_errors_point_at_the_line(tmp_path):
    config = load_config("etc/tickets.yaml")
    assert config.categories["callback"].sla_hours == 24 and "城管局" in config.departments
    bad = tmp_path / "t.yaml"
    bad.write_text("categories:\n  callback: {sla_hours: 2, reminder_before_hours: 3}\n"
                   "  voicemail: {}\n  complaint_review: {}\n", encoding="utf-8")
    with pytest.raises(TicketConfigError, match=r"t.yaml:2:\d+: categories.callback.reminder_before_hours"):
        load_config(bad)
    bad.write_text("categories:\n  callback: {}\n", encoding="utf-8")
    with pytest.raises(TicketConfigError, match="'voicemail' is needed"):
        load_config(bad)
    bad.write_text("timezone: Mars/Olympus\ncategories:\n  callback: {}\n  voicemail: {}\n  complaint_review: {}\n")
    with pytest.raises(TicketConfigError, match="t.yaml:1:.*unknown time zone"):
        load_config(bad)
    bad.write_text("categories:\n  callback: {sla_hour: 3}\n")
    with pytest.raises(TicketConfigError, match="did you mean 'sla_hours'"):
        load_config(bad)


# --- the store --------------------------------------------------------------------------------

def test_create_links_the_cdr_and_numbers_by_local_day(tmp_path):
    cdrs = cdr_store(tmp_path)
    record = cdr(queue="general", agent="1001", recording="/arch/2026/11/23/x.wav",
                 bot_transcript=[{"who": "caller", "text": "我要投诉"}])
    cdrs.write(record)
    clock = Clock(datetime.datetime(2026, 11, 23, 15, 59, 0))         # 23:59 in Shanghai
    store = ticket_store(tmp_path, clock)
    t1 = store.create(kind="agent", category="complaint", summary="路灯不亮", call_uuid=record["uuid"],
                      department="城管局", who="1001")
    assert t1["number"] == "T20261123-0001"
    assert t1["caller_number"] == "13800138000" and t1["recording"] == "/arch/2026/11/23/x.wav"
    assert "main" in t1["ivr_path"] and "我要投诉" in t1["bot_transcript"]
    assert t1["state"] == "assigned" and t1["department"] == "城管局"
    assert t1["due_at"] == clock.now + datetime.timedelta(hours=120)
    assert [h["note"] for h in store.history(t1["id"])] == ["路灯不亮", "department 城管局"]
    t2 = store.create(kind="agent", category="consultation", summary="社保咨询", who="1001")
    assert t2["number"] == "T20261123-0002" and t2["state"] == "new" and t2["call_uuid"] is None
    clock.advance(minutes=2)                                          # 00:01 next local day
    assert store.create(kind="agent", category="consultation", summary="x")["number"] == "T20261124-0001"
    cdrs.close()


def test_create_refuses_bad_input_and_changes_nothing(tmp_path):
    store = ticket_store(tmp_path)
    with pytest.raises(TicketError, match="unknown ticket category 'nope'; known:"):
        store.create(kind="agent", category="nope", summary="x")
    with pytest.raises(TicketError, match="unknown department '火星局'"):
        store.create(kind="agent", category="complaint", summary="x", department="火星局")
    with pytest.raises(TicketError, match="unknown ticket kind"):
        store.create(kind="bogus", category="complaint", summary="x")
    with pytest.raises(TicketError, match="at most 2000"):
        store.create(kind="agent", category="complaint", summary="x" * 2001)
    with pytest.raises(TicketError, match="call uuid"):
        store.create(kind="agent", category="complaint", summary="x", call_uuid="a\nb")
    assert store.list() == []
    t = store.create(kind="agent", category="complaint", summary="x", call_uuid="c1")
    with pytest.raises(TicketError, match=f"already has a agent ticket: {t['number']}"):
        store.create(kind="agent", category="complaint", summary="again", call_uuid="c1")
    assert len(store.list()) == 1


def test_full_life_cycle_with_history(tmp_path):
    clock = Clock()
    store = ticket_store(tmp_path, clock)
    t = store.create(kind="agent", category="complaint", summary="噪音扰民", who="1001")
    with pytest.raises(TicketError, match="has no assignee yet"):
        store.assign(t["id"], "城管局") and store.transition(t["id"], "in_progress")
    clock.advance(minutes=1)
    t = store.assign(t["number"], "住建局", "张三", who="班长")
    assert (t["state"], t["department"], t["assignee"]) == ("assigned", "住建局", "张三")
    t = store.transition(t["id"], "in_progress", who="张三")
    t = store.transition(t["id"], "resolved", who="张三", note="已协调物业")
    t = store.transition(t["id"], "closed", who="班长")
    assert t["state"] == "closed" and t["updated_at"] == clock.now
    history = store.history(t["id"])
    assert [(h["action"], h["from_state"], h["to_state"]) for h in history] == [
        ("create", None, "new"), ("assign", "new", "assigned"), ("assign", "assigned", "assigned"),
        ("transition", "assigned", "in_progress"), ("transition", "in_progress", "resolved"),
        ("transition", "resolved", "closed")]
    assert history[1]["note"] == "department 城管局" and history[2]["note"] == "department 住建局, person 张三"
    assert history[4]["note"] == "已协调物业" and history[5]["who"] == "班长"


@pytest.mark.parametrize("path,bad,message", [
    ([], "in_progress", "is new; it cannot go to in_progress"),
    ([], "resolved", "is new; it cannot go to resolved"),
    ([], "closed", "allowed: assigned, withdrawn"),
    (["in_progress", "resolved", "closed"], "withdrawn", "is closed; it cannot go to withdrawn (allowed: none: it is final)"),
    (["withdrawn"], "in_progress", "is withdrawn"),
    (["in_progress", "resolved"], "withdrawn", "is resolved; it cannot go to withdrawn"),
])
def test_illegal_transitions_are_refused(tmp_path, path, bad, message):
    store = ticket_store(tmp_path)
    t = store.create(kind="agent", category="complaint", summary="x")
    if path:
        store.assign(t["id"], "城管局", "李四")
    for state in path:
        store.transition(t["id"], state, note="why")
    before = store.get(t["id"])
    with pytest.raises(TicketError, match=message.replace("(", r"\(").replace(")", r"\)")):
        store.transition(t["id"], bad, note="because")
    assert store.get(t["id"]) == before and len(store.history(t["id"])) == 1 + (len(path) + 1 if path else 0)


def test_withdraw_needs_a_note_and_works_from_any_open_state(tmp_path):
    store = ticket_store(tmp_path)
    for steps in ([], ["assign"], ["assign", "in_progress"]):
        t = store.create(kind="agent", category="complaint", summary="x")
        if steps:
            store.assign(t["id"], "城管局", "王五")
        if "in_progress" in steps:
            store.transition(t["id"], "in_progress")
        with pytest.raises(TicketError, match="needs a note"):
            store.transition(t["id"], "withdrawn")
        assert store.transition(t["id"], "withdrawn", note="来电人撤回")["state"] == "withdrawn"
    with pytest.raises(TicketError, match="no ticket 'T20991231-0001'"):
        store.get("T20991231-0001")
    with pytest.raises(TicketError, match="use assign"):
        store.transition(1, "assigned")


def test_default_config_allows_any_department(tmp_path):
    store = ticket_store(tmp_path, config=None)
    assert store.config is DEFAULT_CONFIG
    t = store.create(kind="agent", category="consultation", summary="x", department="任何部门")
    assert t["department"] == "任何部门"


def test_a_write_that_loses_a_unique_race_runs_again_cleanly(tmp_path, monkeypatch):
    """PostgreSQL does not serialise writers up front: two may pick the same number. The loser's
    transaction is rolled back whole and run again (here: the race forced once)."""
    store = ticket_store(tmp_path)
    first = store.create(kind="agent", category="consultation", summary="a")
    real, raced = store._next_number, []

    def stale_number(now):
        if not raced:
            raced.append(1)
            return first["number"]              # what a concurrent writer just took
        return real(now)
    monkeypatch.setattr(store, "_next_number", stale_number)
    second = store.create(kind="agent", category="consultation", summary="b")
    assert raced and second["number"] == first["number"][:-4] + "0002"
    assert [t["summary"] for t in store.list()] == ["a", "b"]
    assert len(store.history(second["id"])) == 1           # the lost attempt left no history line
