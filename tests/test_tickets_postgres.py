"""Tickets on PostgreSQL: the consumer and the store against a private server (skipped where the
server binaries or psycopg2 are missing, like tests/test_cdr_postgres.py)."""
import datetime

import gevent
import pytest

from engine.cdr.store import CdrStore
from engine.tickets import Consumer, TicketStore, daily_counts, load_config
from tests.ticketfix import cdr

psycopg2 = pytest.importorskip("psycopg2")
from tests.test_cdr_postgres import postgres  # noqa: E402,F401 - the module's private server

CONFIG = load_config("etc/tickets.yaml")


@pytest.fixture
def pg_url(postgres):  # noqa: F811 - the fixture above
    con = psycopg2.connect(postgres.url)
    con.autocommit = True
    con.cursor().execute("DROP TABLE IF EXISTS ticket_event, ticket, outbox_ack, outbox, cdr")
    con.close()
    return postgres.url


def test_two_consumers_in_greenlets_make_each_ticket_once_on_postgres(pg_url, tmp_path):
    """psycopg2 waits cooperatively here, so the two consumers' transactions really interleave."""
    cdrs = CdrStore(pg_url, tmp_path / "spool").open()
    records = [cdr(queue="q", satisfaction=5 if i % 4 == 0 else None) for i in range(40)]
    expected = sum(1 + (i % 4 == 0) for i in range(40))
    a, b = (Consumer(pg_url, config=CONFIG) for _ in range(2))

    def consume(c):
        idle = 0
        while idle < 5:
            before = c.acked
            c.run_once(limit=3)
            idle = idle + 1 if c.acked == before and writing.dead else 0
            gevent.sleep(0.001)

    def writer():
        for r in records:
            assert cdrs.write(r)
    writing = gevent.spawn(writer)
    gevent.joinall([writing] + [gevent.spawn(consume, c) for c in (a, b)], timeout=60, raise_error=True)
    assert a.created > 0 and b.created > 0                  # both really took part
    assert a.created + b.created == expected and a.acked + b.acked == len(records)
    tickets = a.store.list()
    assert len(tickets) == expected
    assert len({t["number"] for t in tickets}) == expected
    assert len({(t["call_uuid"], t["kind"]) for t in tickets}) == expected
    assert Consumer(pg_url, config=CONFIG).run_once() == []
    cdrs.close()


def test_life_cycle_and_daily_counts_on_postgres(pg_url):
    clock = [datetime.datetime(2026, 11, 23, 2, 0)]
    store = TicketStore(pg_url, CONFIG, clock=lambda: clock[0]).open()
    t = store.create(kind="agent", category="complaint", summary="路灯不亮", call_uuid="pg-call",
                     department="城管局", who="1001")
    assert t["number"] == "T20261123-0001" and t["state"] == "assigned"
    store.assign(t["id"], "城管局", "张三")
    store.transition(t["id"], "in_progress")
    store.transition(t["id"], "resolved", note="修好了")
    store.transition(t["id"], "closed")
    assert [h["to_state"] for h in store.history(t["number"])] == [
        "new", "assigned", "assigned", "in_progress", "resolved", "closed"]
    assert daily_counts(pg_url, datetime.date(2026, 11, 23)) == {"opened": 1, "closed": 1, "overdue": 0}
    store.close()
