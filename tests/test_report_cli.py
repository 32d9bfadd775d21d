"""`hotline report daily` over a crafted day of CDRs written through the real CdrStore."""
import argparse
import datetime
import json
import os
import sys
import types

import pytest

from engine.cdr import report
from engine.cdr.store import CdrStore
from engine.settings import load_settings
from tests.clifix import UNSET, write_config

UTC = datetime.timezone.utc
DAY = datetime.date(2026, 11, 20)          # local day in Asia/Shanghai (UTC+8)


def local(hour, minute=0, day=DAY):
    """A UTC datetime for a local Asia/Shanghai wall-clock time."""
    return datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - datetime.timedelta(hours=8)


def cdr(uuid, start, **fields):
    return {"uuid": uuid, "start_time": start, "end_time": start + datetime.timedelta(minutes=5),
            "caller_number": "13800138000", "destination": "12345", **fields}


CRAFTED = [
    # Day before / day after, right at the edges: excluded.
    cdr("before", local(23, 59, DAY - datetime.timedelta(days=1)), queue="general", agent="1001",
        wait_seconds=5, talk_seconds=60, wrapup_seconds=30, satisfaction=5),
    cdr("after", local(0, 0, DAY + datetime.timedelta(days=1)), queue="general", agent="",
        wait_seconds=90),
    # The day (hours are local).
    cdr("midnight", local(0, 0), queue="general", agent="1001", wait_seconds=8,
        talk_seconds=100, wrapup_seconds=30, satisfaction=1),                   # in SL, very satisfied
    cdr("late-answer", local(9, 15), queue="general", agent="1002", wait_seconds=25,
        talk_seconds=200, wrapup_seconds=30, satisfaction=2),                   # outside SL, satisfied
    cdr("unhappy", local(9, 40), queue="complaints", agent="1003", wait_seconds=15,
        talk_seconds=300, wrapup_seconds=60, satisfaction=4),                   # in SL, dissatisfied
    cdr("unrated", local(14, 5), queue="general", agent="1001", wait_seconds=20,
        talk_seconds=400, wrapup_seconds=30),                                   # exactly 20 s: in SL
    cdr("abandoned", local(23, 59), queue="general", agent="", wait_seconds=40),  # hung up waiting
    cdr("ivr-only", local(10, 0)),                                              # never reached a queue
    # A call still going (or cut by a crash, not yet completed by the switch's CDR): not counted.
    {**cdr("in-progress", local(15, 0), queue="general", agent="1001", wait_seconds=3),
     "end_time": None, "tags": ["provisional"]},
]


@pytest.fixture
def config(tmp_path):
    # The password variable is deliberately unset: a report must not need the switch's secret.
    cfg, settings = write_config(tmp_path)
    store = CdrStore(settings.database.url, settings.paths.cdr_spool).open()
    for record in CRAFTED:
        assert store.write(record)
    store.close()
    return cfg


@pytest.fixture
def no_tickets(monkeypatch):
    # None in sys.modules makes `import engine.tickets` fail as if the package were absent.
    monkeypatch.setitem(sys.modules, "engine.tickets", None)


@pytest.fixture
def tickets(monkeypatch):
    calls = []
    module = types.ModuleType("engine.tickets")

    def daily_counts(db_url, day):
        calls.append((db_url, day))     # the agreed interface: a stand-in module gets the URL
        return {"opened": 7, "closed": 4, "overdue": 1}

    module.daily_counts = daily_counts
    monkeypatch.setitem(sys.modules, "engine.tickets", module)
    return calls


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def run(capsys, *argv):
    parser = argparse.ArgumentParser()
    report.register(parser.add_subparsers())
    args = parser.parse_args(list(argv))
    rc = args.func(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_json_figures_match_the_crafted_day(config, tmp_path, capsys, no_tickets):
    rc, out, err = run(capsys, "report", "daily", "--date", "2026-11-20", "--config", str(config),
                       "--json", "--no-png")
    assert rc == 0, err
    f = json.loads(out)
    assert f["date"] == "2026-11-20" and f["timezone"] == "Asia/Shanghai"
    assert f["calls"] == 6                                  # before/after excluded, IVR-only kept
    assert (f["offered"], f["answered"], f["abandoned"]) == (5, 4, 1)
    assert f["answer_rate"] == 0.8 and f["answer_rate_below_target"] is True
    assert f["service_level"] == 0.6                        # midnight, unhappy, unrated; not 25 s
    assert f["avg_wait"] == round((8 + 25 + 15 + 20 + 40) / 5, 1)
    assert f["avg_talk"] == 250.0 and f["avg_wrapup"] == 37.5
    assert f["rated"] == 3 and f["scores"] == {"1": 1, "2": 1, "3": 0, "4": 1, "5": 0}
    assert f["satisfaction_rate"] == round(2 / 3, 4) and f["satisfaction_below_target"] is True
    assert f["tickets"] is None and f["png"] is None
    hourly = f["hourly"]
    assert [h for h in range(24) if hourly["offered"][h]] == [0, 9, 14, 23]
    assert hourly["offered"][9] == 2 and hourly["answered"][9] == 2
    assert hourly["offered"][23] == 1 and hourly["answered"][23] == 0
    waits = {(b["from"], b["to"]): (b["answered"], b["abandoned"]) for b in f["wait_distribution"]}
    # Buckets hold from < wait <= to, like the service level: the 20 s call is in 10-20.
    assert waits[(0, 10)] == (1, 0) and waits[(10, 20)] == (2, 0) and waits[(20, 30)] == (1, 0)
    assert waits[(30, 60)] == (0, 1) and waits[(300, None)] == (0, 0)
    in_sl = sum(b["answered"] for b in f["wait_distribution"] if b["to"] is not None and b["to"] <= 20)
    assert in_sl / f["offered"] == f["service_level"]      # the chart's SL line splits the same calls


def test_text_report_flags_targets_and_says_tickets_na(config, tmp_path, capsys, no_tickets):
    rc, out, err = run(capsys, "report", "daily", "--date", "2026-11-20", "--config", str(config), "--no-png")
    assert rc == 0, err
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    assert "80.0%" in lines["answer rate"] and "BELOW TARGET" in lines["answer rate"]
    assert "66.7%" in lines["satisfaction rate"] and "BELOW TARGET" in lines["satisfaction rate"]
    assert lines["calls offered"].split()[-1] == "5" and lines["abandoned"].split()[-1] == "1"
    assert "60.0%" in lines["service level"]
    assert lines["average talk"].endswith(" 250.0 s") and lines["average wrap-up"].endswith(" 37.5 s")
    for name in ("tickets opened", "tickets closed", "tickets overdue"):
        assert lines[name].split()[-1] == "n/a"
    assert "ticket" not in err                              # an absent module is not an error


def test_tickets_from_the_ticket_module(config, capsys, tickets):
    rc, out, _ = run(capsys, "report", "daily", "--date", "2026-11-20", "--config", str(config), "--no-png")
    assert rc == 0
    assert [line.split()[-1] for line in out.splitlines() if line.startswith("tickets")] == ["7", "4", "1"]
    settings = load_settings(config, env={UNSET: "x"})
    # our ticket module's store read-only (an engine.tickets without one gets the URL)
    assert [(getattr(source, "url", source), day) for source, day in tickets] == [(settings.database.url, DAY)]
    rc, out, _ = run(capsys, "report", "daily", "--date", "2026-11-20", "--config", str(config),
                     "--json", "--no-png")
    assert json.loads(out)["tickets"] == {"opened": 7, "closed": 4, "overdue": 1}


def test_broken_ticket_module_costs_only_the_ticket_lines(config, capsys, monkeypatch):
    module = types.ModuleType("engine.tickets")

    def daily_counts(db_url, day):
        raise RuntimeError("no such table: ticket")

    module.daily_counts = daily_counts
    monkeypatch.setitem(sys.modules, "engine.tickets", module)
    rc, out, err = run(capsys, "report", "daily", "--date", "2026-11-20", "--config", str(config), "--no-png")
    assert rc == 0 and "tickets opened       n/a" in out and "calls offered        5" in out
    assert "no such table: ticket" in err


def test_png_chart_only_into_an_explicit_file(config, tmp_path, capsys, monkeypatch, no_tickets):
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path))
    rc, out, err = run(capsys, "report", "daily", "--date", "2026-11-20", "--config", str(config))
    assert rc == 0, err
    assert "chart" not in out and sorted(os.listdir(tmp_path)) == before     # a report writes nothing
    rc, out, err = run(capsys, "report", "daily", "--date", "2026-11-20", "--config", str(config),
                       "--chart", "report-2026-11-20.png")
    default = tmp_path / "report-2026-11-20.png"
    assert rc == 0 and "chart: report-2026-11-20.png" in out
    data = default.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert 10_000 < len(data) < 2_000_000                   # a real 1000x800 chart, not an empty file
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1000, 800)
    chosen = tmp_path / "charts" / "day.png"
    chosen.parent.mkdir()
    rc, out, _ = run(capsys, "report", "daily", "--date", "2026-11-20", "--config", str(config),
                     "--json", "--png", str(chosen))
    assert rc == 0 and json.loads(out)["png"] == str(chosen)
    assert chosen.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert os.listdir(chosen.parent) == ["day.png"]         # no temporary file left behind
    assert os.stat(chosen).st_mode & 0o044 == 0o044 & ~_umask()   # not the temporary file's 0600


def test_chart_into_a_missing_directory_fails_clearly_but_prints_figures(config, tmp_path, capsys, no_tickets):
    rc, out, err = run(capsys, "report", "daily", "--date", "2026-11-20", "--config", str(config),
                       "--json", "--png", str(tmp_path / "nope" / "x.png"))
    assert rc == 1 and "cannot write the chart" in err
    assert json.loads(out)["offered"] == 5


def test_an_empty_day(config, capsys, no_tickets):
    rc, out, _ = run(capsys, "report", "daily", "--date", "2026-06-01", "--config", str(config),
                     "--json", "--no-png")
    f = json.loads(out)
    assert rc == 0 and f["offered"] == 0 and f["answer_rate"] is None
    assert f["answer_rate_below_target"] is False and f["satisfaction_rate"] is None
    rc, out, _ = run(capsys, "report", "daily", "--date", "2026-06-01", "--config", str(config), "--no-png")
    assert "average wait         n/a   " in out and "answer rate          n/a   " in out
    assert "BELOW TARGET" not in out                        # no calls: nothing to flag


def test_another_time_zone_moves_the_day(config, capsys, no_tickets):
    # In UTC, 2026-11-20 holds every crafted call from 08:00 local on the 20th to 07:59 local on the 21st.
    rc, out, _ = run(capsys, "report", "daily", "--date", "2026-11-20", "--config", str(config),
                     "--tz", "UTC", "--json", "--no-png")
    f = json.loads(out)
    assert rc == 0 and f["offered"] == 5                    # late-answer, unhappy, unrated, abandoned, after
    assert f["hourly"]["offered"][16] == 1                  # "after": 00:00 local = 16:00 UTC


def test_bad_input_gets_clear_errors(config, tmp_path, capsys, no_tickets):
    rc, _, err = run(capsys, "report", "daily", "--date", "20.11.2026", "--config", str(config))
    assert rc == 2 and "is not a day; use 2026-12-04, today, yesterday" in err
    rc, _, err = run(capsys, "report", "daily", "--date", "2026-11-20", "--config", str(config), "--tz", "Mars/Base")
    assert rc == 2 and "unknown time zone" in err
    rc, _, err = run(capsys, "report", "daily", "--config", str(tmp_path / "missing.yaml"))
    assert rc == 2 and "cannot read" in err
    empty = tmp_path / "empty.yaml"
    empty.write_text('trunk: {dids: ["12345"]}\npaths: {var_dir: elsewhere}\n', encoding="utf-8")
    rc, _, err = run(capsys, "report", "daily", "--config", str(empty), "--no-png")
    assert rc == 1 and "no CDR database" in err
    assert not (tmp_path / "elsewhere" / "hotline.db").exists()   # the report created nothing


def test_registered_in_the_hotline_cli(config, capsys):
    # The real ticket module, if any: the CLI imports every command module, engine.tickets.cli too.
    from engine import cli
    rc = cli.main(["report", "daily", "--date", "2026-11-20", "--config", str(config), "--json", "--no-png"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["answered"] == 4


def test_tickets_from_the_real_ticket_module_count_the_same_local_day(config, capsys):
    tickets = pytest.importorskip("engine.tickets")
    settings = load_settings(config, env={UNSET: "x"})
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    clock_now = [local(1, 0)]                               # 01:00 local on the day = 17:00 UTC the day before
    store = tickets.TicketStore(settings.database.url, tickets.load_config(os.path.join(repo, "etc", "tickets.yaml")),
                                clock=lambda: clock_now[0].replace(tzinfo=None)).open()
    try:
        early = store.create(kind="agent", category="callback", summary="凌晨")
        clock_now[0] = local(9, 0)
        done = store.create(kind="agent", category="callback", summary="上午")
        store.create(kind="agent", category="callback", summary="上午2")
        store.assign(done["id"], "热线中心", "钱七")
        store.transition(done["id"], "in_progress")
        store.transition(done["id"], "resolved", note="done")
        store.transition(done["id"], "closed")
    finally:
        store.close()
    assert early["number"]
    rc, out, err = run(capsys, "report", "daily", "--date", "2026-11-20", "--config", str(config),
                       "--json", "--no-png")
    assert rc == 0, err
    assert json.loads(out)["tickets"] == {"opened": 3, "closed": 1, "overdue": 0}
    # The zone reaches the ticket counts too: in UTC the 01:00-local ticket belongs to the 19th.
    rc, out, _ = run(capsys, "report", "daily", "--date", "2026-11-20", "--config", str(config),
                     "--tz", "UTC", "--json", "--no-png")
    assert json.loads(out)["tickets"] == {"opened": 2, "closed": 1, "overdue": 1}   # due 17:00 UTC
