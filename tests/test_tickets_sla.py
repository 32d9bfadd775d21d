"""SLA reminder and escalation (each once, in the history, to the hooks) and the daily counts."""
import datetime
import logging

import gevent
import pytest

from engine.tickets import SlaChecker, TicketStore, daily_counts, load_config
from tests.ticketfix import Clock, db_url, ticket_store


def test_reminder_before_and_escalation_after_the_due_time_each_once(tmp_path, caplog):
    clock = Clock()
    store = ticket_store(tmp_path, clock)
    sent = []
    checker = SlaChecker(store, hooks=[lambda action, t: sent.append((action, t["number"]))])
    # callback: 24 h SLA, reminder 4 h before
    t = store.create(kind="callback", category="callback", summary="回拨", call_uuid="c1")
    assert checker.check_once() == [] and sent == []
    clock.advance(hours=19, minutes=59)
    assert checker.check_once() == []                          # 4 h 1 min before: not yet
    clock.advance(minutes=1)
    with caplog.at_level(logging.INFO, logger="hotline.tickets"):
        assert [a for a, _ in checker.check_once()] == ["remind"]
    assert sent == [("remind", t["number"])] and f"c1: ticket {t['number']} reminder" in caplog.text
    clock.advance(hours=1)
    assert checker.check_once() == []                          # reminded once only
    clock.advance(hours=3)                                     # exactly due: overdue now
    with caplog.at_level(logging.WARNING, logger="hotline.tickets"):
        assert [a for a, _ in checker.check_once()] == ["escalate"]
    assert "ESCALATED" in caplog.text
    clock.advance(days=3)
    assert checker.check_once() == []                          # escalated once only
    assert sent == [("remind", t["number"]), ("escalate", t["number"])]
    history = store.history(t["id"])
    assert [(h["action"], h["who"]) for h in history][-2:] == [("remind", "sla"), ("escalate", "sla")]
    got = store.get(t["id"])
    assert got["reminded_at"] == datetime.datetime(2026, 11, 23, 22, 0)
    assert got["escalated_at"] == datetime.datetime(2026, 11, 24, 2, 0)
    # a restarted checker (new objects, same database) sends nothing again
    again = SlaChecker(TicketStore(db_url(tmp_path), store.config, clock=clock).open(), hooks=[sent.append])
    assert again.check_once() == [] and len(sent) == 2


def test_late_discovery_escalates_only_and_handled_tickets_are_left_alone(tmp_path):
    clock = Clock()
    store = ticket_store(tmp_path, clock)
    late = store.create(kind="agent", category="consultation", summary="a")
    done = store.create(kind="agent", category="consultation", summary="b")
    store.assign(done["id"], "城管局", "赵六")
    store.transition(done["id"], "in_progress")
    store.transition(done["id"], "resolved", note="已答复")
    gone = store.create(kind="agent", category="consultation", summary="c")
    store.transition(gone["id"], "withdrawn", note="重复")
    clock.advance(days=10)
    sent = SlaChecker(store).check_once()
    assert [(a, t["number"]) for a, t in sent] == [("escalate", late["number"])]
    assert store.get(late["id"])["reminded_at"] is None


def test_a_failing_hook_does_not_stop_the_others_or_repeat_the_notice(tmp_path, caplog):
    clock = Clock()
    store = ticket_store(tmp_path, clock)
    store.create(kind="agent", category="consultation", summary="a")
    store.create(kind="agent", category="consultation", summary="b")
    got = []

    def broken(action, ticket):
        raise RuntimeError("SMS gateway down")
    checker = SlaChecker(store, hooks=[broken, lambda a, t: got.append(t["number"])])
    clock.advance(days=4)
    assert len(checker.check_once()) == 2 and len(got) == 2
    assert "hook" in caplog.text and "SMS gateway down" in caplog.text
    assert checker.check_once() == []


def test_the_checker_greenlet_runs_on_short_real_times(tmp_path):
    config = load_config("etc/tickets.yaml")
    fast = config.categories["consultation"].__class__(label="快", sla_hours=0.3 / 3600,
                                                         reminder_before_hours=0.2 / 3600)
    config = config.__class__(timezone=config.timezone, departments=config.departments,
                              categories={**config.categories, "consultation": fast})
    store = TicketStore(db_url(tmp_path), config).open()          # the real clock
    sent = []
    checker = SlaChecker(store, hooks=[lambda a, t: sent.append(a)], interval=0.02).start()
    try:
        store.create(kind="agent", category="consultation", summary="a")
        with gevent.Timeout(3):
            while sent != ["remind", "escalate"]:
                gevent.sleep(0.01)
        gevent.sleep(0.1)
        assert sent == ["remind", "escalate"]
    finally:
        checker.stop()


# --- daily counts ---------------------------------------------------------------------------

def test_daily_counts_for_a_local_day(tmp_path):
    # 2026-11-23 in Shanghai = 2026-11-22 16:00 .. 2026-11-23 16:00 UTC
    clock = Clock(datetime.datetime(2026, 11, 22, 15, 30))        # 23:30 on the 22nd, local
    store = ticket_store(tmp_path, clock)
    before = store.create(kind="agent", category="consultation", summary="day before")   # due 25th
    clock.now = datetime.datetime(2026, 11, 22, 16, 30)                                   # 00:30 local
    a = store.create(kind="agent", category="callback", summary="a")                     # due 24th 00:30
    b = store.create(kind="agent", category="callback", summary="b")
    c = store.create(kind="agent", category="consultation", summary="c")
    for t in (a, b, before):
        store.assign(t["id"], "热线中心", "钱七")
        store.transition(t["id"], "in_progress")
    clock.now = datetime.datetime(2026, 11, 23, 3, 0)
    store.transition(a["id"], "resolved", note="done")
    store.transition(a["id"], "closed")
    store.transition(before["id"], "resolved", note="done")
    store.transition(before["id"], "closed")
    clock.now = datetime.datetime(2026, 11, 23, 16, 30)                                   # 00:30 on the 24th
    store.create(kind="agent", category="consultation", summary="next day")
    day = datetime.date(2026, 11, 23)
    late = datetime.datetime(2026, 12, 1)
    assert daily_counts(db_url(tmp_path), day, now=late) == {"opened": 3, "closed": 2, "overdue": 0}
    # the 24th: b (due 16:30 UTC on the 23rd) is overdue by the end of it; c is due the 25th
    assert daily_counts(store, datetime.date(2026, 11, 24), now=late) == {"opened": 1, "closed": 0, "overdue": 1}
    # the 26th: c is overdue too (withdrawn tickets would not be)
    clock.now = datetime.datetime(2026, 11, 25, 1, 0)
    store.transition(c["id"], "withdrawn", note="来电人撤回")
    assert daily_counts(store, datetime.date(2026, 11, 26), now=late)["overdue"] == 1
    # today, before b's due time: not overdue yet
    assert daily_counts(store, day, now=datetime.datetime(2026, 11, 23, 10, 0))["overdue"] == 0
    # a different zone moves the day's edges
    assert daily_counts(store, datetime.date(2026, 11, 22), tz="UTC", now=late)["opened"] == 4
    with pytest.raises(TypeError):
        daily_counts(store, "2026-11-23")


def test_daily_counts_on_an_empty_database_and_through_the_report(tmp_path):
    from engine.cdr import report
    url = db_url(tmp_path)
    assert daily_counts(url, datetime.date(2026, 11, 23)) == {"opened": 0, "closed": 0, "overdue": 0}
    counts, problem = report.ticket_counts(url, datetime.date(2026, 11, 23))
    assert problem is None and counts == {"opened": 0, "closed": 0, "overdue": 0}


def test_the_service_runs_consumer_and_checker_from_settings(tmp_path):
    import shutil

    from engine.tickets import TicketService
    from tests.clifix import write_config
    from tests.ticketfix import cdr
    shutil.copy("etc/tickets.yaml", tmp_path / "tickets.yaml")
    _, settings = write_config(tmp_path)
    sent = []
    service = TicketService(settings, hooks=[lambda a, t: sent.append((a, t["kind"]))],
                            poll_interval=0.02, sla_interval=0.02)
    assert service.config.categories["callback"].department == "热线中心"     # the file beside it
    from engine.cdr.store import CdrStore
    cdrs = CdrStore(settings.database.url, settings.paths.cdr_spool).open()
    record = cdr(queue="general")
    cdrs.write(record)
    # the ticket is due in the past for the checker: it escalates what the consumer made
    service.checker.store.clock = lambda: datetime.datetime(2030, 1, 1)
    service.start()
    try:
        with gevent.Timeout(5):
            while sent != [("escalate", "callback")]:
                gevent.sleep(0.01)
    finally:
        service.stop()
        cdrs.close()
