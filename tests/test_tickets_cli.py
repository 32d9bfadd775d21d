"""`hotline tickets ...` round trip through engine.cli.main: consume, list, show, create, assign,
start, resolve, close, withdraw, sla; refusals are one clear line and exit 1."""
import json
import shutil

import pytest

from engine.cdr.store import CdrStore
from engine.settings import load_settings
from tests.clifix import UNSET, run_cli, write_config
from tests.ticketfix import cdr


@pytest.fixture
def cfg(tmp_path):
    # The password variable is deliberately unset: tickets never need the switch's secret.
    path, _ = write_config(tmp_path)
    shutil.copy("etc/tickets.yaml", tmp_path / "tickets.yaml")
    return path


def cdr_write(cfg, *records):
    settings = load_settings(cfg, env={UNSET: "x"})
    store = CdrStore(settings.database.url, settings.paths.cdr_spool).open()
    for r in records:
        assert store.write(r)
    store.close()


def test_round_trip(cfg, capsys):
    missed = cdr(queue="general", wait_seconds=33.0, caller_number="13900001111")
    answered = cdr(queue="general", agent="1001", caller_name="x\x1b[2Jfake")
    cdr_write(cfg, missed, answered)
    c = ("--config", cfg)
    rc, out, err = run_cli(capsys, "tickets", "consume", *c)
    assert rc == 0 and "1 ticket(s) from 2 outbox entries" in out and "callback" in out
    assert run_cli(capsys, "tickets", "consume", *c)[1].strip() == "0 ticket(s) from 0 outbox entries"

    rc, out, _ = run_cli(capsys, "tickets", "create", "--call", answered["uuid"], "--category", "complaint",
                     "--summary", "小区噪音扰民", "--by", "1001", *c)
    assert rc == 0
    number = out.split()[0]
    assert number.startswith("T") and "new" in out
    rc, out, _ = run_cli(capsys, "tickets", "list", "--json", *c)
    tickets = json.loads(out)
    assert [(t["kind"], t["state"]) for t in tickets] == [("callback", "assigned"), ("agent", "new")]
    assert tickets[0]["caller_number"] == "13900001111" and tickets[1]["call_uuid"] == answered["uuid"]

    assert run_cli(capsys, "tickets", "assign", number, "--department", "城管局", "--to", "张三", "--by", "班长", *c)[0] == 0
    assert run_cli(capsys, "tickets", "start", number, "--by", "张三", *c)[1].split() == [number, "in_progress"]
    assert run_cli(capsys, "tickets", "resolve", number, "--note", "已协调", *c)[1].split() == [number, "resolved"]
    assert run_cli(capsys, "tickets", "close", number, *c)[1].split() == [number, "closed"]
    rc, out, _ = run_cli(capsys, "tickets", "show", number, *c)
    assert rc == 0 and "城管局" in out and "张三" in out and "in_progress -> resolved" in out and "已协调" in out
    assert "班长" in out and "new -> assigned" in out
    rc, out, _ = run_cli(capsys, "tickets", "show", number, "--json", *c)
    shown = json.loads(out)
    assert shown["state"] == "closed" and [h["to_state"] for h in shown["history"]] == [
        "new", "assigned", "in_progress", "resolved", "closed"]

    rc, out, _ = run_cli(capsys, "tickets", "list", "--state", "assigned", *c)
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 2 and lines[0].split()[:3] == ["number", "state", "kind"]
    assert "callback" in lines[1] and "热线中心" in lines[1]

    callback = tickets[0]["number"]
    with pytest.raises(SystemExit) as exit:
        run_cli(capsys, "tickets", "withdraw", callback, *c)
    assert exit.value.code == 2 and "--note" in capsys.readouterr().err     # argparse: a note is required
    assert run_cli(capsys, "tickets", "withdraw", callback, "--note", "来电人已自行解决", *c)[0] == 0
    assert run_cli(capsys, "tickets", "list", "--state", "withdrawn", "--json", *c)[1].count(callback) == 1
    assert run_cli(capsys, "tickets", "sla", *c)[0] == 0


def test_refusals_are_one_clear_line(cfg, tmp_path, capsys):
    c = ("--config", cfg)
    db = tmp_path / "var" / "hotline.db"
    # list and show only read: no database yet is said, and none is made
    for argv in (("list",), ("list", "--json"), ("show", "T20991231-0001")):
        rc, out, err = run_cli(capsys, "tickets", *argv, *c)
        assert rc == 1 and out == "" and err.strip() == f"hotline tickets: no database at {db} (has the engine run?)"
    assert not (tmp_path / "var").exists()
    cdr_write(cfg)                                  # the CDR tables only: the engine ran without tickets
    rc, _, err = run_cli(capsys, "tickets", "list", *c)
    assert rc == 1 and "no ticket tables yet" in err and "Traceback" not in err
    rc, _, err = run_cli(capsys, "tickets", "create", "--call", "u0", "--category", "complaint", "--summary", "x", *c)
    assert rc == 0                                  # a writer makes the tables
    rc, _, err = run_cli(capsys, "tickets", "show", "T20991231-0001", *c)
    assert rc == 1 and err.strip() == ("hotline tickets show: no ticket 'T20991231-0001' "
                                       "(give its id or its number, e.g. T20261123-0001)")
    rc, _, err = run_cli(capsys, "tickets", "create", "--call", "u1", "--category", "nope", "--summary", "x", *c)
    assert rc == 1 and "unknown ticket category 'nope'" in err and "Traceback" not in err
    rc, _, err = run_cli(capsys, "tickets", "create", "--call", "u1", "--category", "complaint", "--summary", "x",
                     "--department", "火星局", *c)
    assert rc == 1 and "unknown department '火星局'" in err
    rc, out, _ = run_cli(capsys, "tickets", "create", "--call", "u1", "--category", "complaint", "--summary", "x", *c)
    number = out.split()[0]
    rc, _, err = run_cli(capsys, "tickets", "close", number, *c)
    assert rc == 1 and f"ticket {number} is new; it cannot go to closed" in err
    rc, _, err = run_cli(capsys, "tickets", "list", "--state", "open", *c)
    assert rc == 1 and "unknown state 'open'" in err
    rc, _, err = run_cli(capsys, "tickets", "list", "--config", tmp_path / "missing.yaml")
    assert rc == 2 and "missing.yaml" in err
    (tmp_path / "tickets.yaml").write_text("categories:\n  callback: {sla_hours: -1}\n", encoding="utf-8")
    rc, _, err = run_cli(capsys, "tickets", "list", *c)
    assert rc == 2 and "tickets.yaml:2:" in err and "sla_hours" in err


def test_without_a_tickets_file_the_defaults_apply(cfg, tmp_path, capsys):
    (tmp_path / "tickets.yaml").unlink()
    rc, out, _ = run_cli(capsys, "tickets", "create", "--call", "u2", "--category", "consultation",
                     "--summary", "x", "--department", "任何部门", "--config", cfg)
    assert rc == 0 and "assigned" in out


def test_json_from_every_ticket_command(cfg, capsys):
    missed = cdr(queue="general", wait_seconds=33.0, caller_number="13900001111")
    cdr_write(cfg, missed)
    c = ("--config", cfg)
    rc, out, _ = run_cli(capsys, "tickets", "consume", "--json", *c)
    (made,) = [json.loads(line) for line in out.splitlines()]      # JSON lines, one a ticket
    assert rc == 0 and made["kind"] == "callback" and made["call_uuid"] == missed["uuid"]
    assert made["created_at"].endswith("+08:00") and made["due_at"].endswith("+08:00")
    rc, out, _ = run_cli(capsys, "tickets", "create", "--call", missed["uuid"], "--category", "complaint",
                         "--summary", "x", "--json", *c)
    created = json.loads(out)
    assert rc == 0 and created["state"] == "new" and created["created_at"].endswith("+08:00")
    rc, out, _ = run_cli(capsys, "tickets", "assign", created["number"], "--department", "城管局", "--to", "张三",
                         "--json", *c)
    assert json.loads(out)["department"] == "城管局"
    rc, out, _ = run_cli(capsys, "tickets", "start", created["number"], "--json", *c)
    assert json.loads(out)["state"] == "in_progress"
    rc, out, _ = run_cli(capsys, "tickets", "sla", "--json", *c)
    assert rc == 0 and all(json.loads(line)["action"] for line in out.splitlines())
    rc, out, _ = run_cli(capsys, "tickets", "show", created["number"], "--json", *c)
    shown = json.loads(out)
    assert [h["to_state"] for h in shown["history"]] == ["new", "assigned", "in_progress"]
    assert all(h["at"].endswith("+08:00") for h in shown["history"])
