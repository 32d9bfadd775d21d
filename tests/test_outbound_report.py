"""Campaign report and export, callback deadlines (reminder and escalation once each), and the
control API's roles for campaigns and callbacks."""
import csv
import types

import openpyxl
import pytest

from engine.outbound import attempts, campaigns, jobs, report, webapi
from engine.outbound.db import OutboundDb
from engine.outbound.deadlines import check_deadlines
from tests.clifix import run_cli, write_config
from tests.outboundfix import claims_for, outbound_db
from tests.ticketfix import Clock


def run_contact(db, claims, name, result, agent=None, answers=None, answered=True):
    [cid] = claims.claim("contact", where=db.m.Contact.campaign_id == campaigns.get(db, name)["id"], limit=1)
    row = [c for c in campaigns.contacts(db, name) if c["id"] == cid][0]
    a = attempts.begin(db, "contact", row, agent=agent)
    return attempts.finish(db, claims, "contact", row, a, result, agent=agent, answers=answers,
                           answered_at=db.clock() if answered else None)


def test_report_figures_and_export(tmp_path, redis_server, redis_prefix):
    clock = Clock()
    db = outbound_db(tmp_path, clock)
    claims = claims_for(db, redis_server, redis_prefix, "a")
    campaigns.create(db, "fu", "predictive", queue="q")
    campaigns.add_contacts(db, "fu", [{"number": f"1380013800{i}", "name": n, "fields": {"区县": "西湖"}}
                                      for i, n in enumerate(["张三", "=HYPERLINK(\"x\")", "王五", "赵六"])])
    run_contact(db, claims, "fu", "answered", agent="1001", answers={"resolved": "1", "satisfaction": "2"})
    run_contact(db, claims, "fu", "answered", agent="1002", answers={"resolved": "2", "satisfaction": "4"})
    run_contact(db, claims, "fu", "abandoned")
    run_contact(db, claims, "fu", "busy", answered=False)
    r = report.campaign_report(db, "fu")
    assert (r["contacts"], r["reached"], r["completed"], r["dials"]) == (4, 3, 2, 4)
    assert r["reached_pct"] == 75.0 and r["completed_pct"] == 50.0
    assert r["answers"] == {"resolved": {"1": 1, "2": 1}, "satisfaction": {"2": 1, "4": 1}}
    assert r["satisfaction"] == {"rated": 2, "mean": 3.0, "distribution": {2: 1, 4: 1}}
    assert r["abandon_pct"] == pytest.approx(33.3)
    assert r["by_agent"]["1001"]["completed"] == 1 and list(r["by_day"].values())[0]["dials"] == 4
    report.export(db, "fu", tmp_path / "out.csv")
    with open(tmp_path / "out.csv", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["name"] == "张三" and rows[0]["区县"] == "西湖"
    assert rows[0]["answers"] == "resolved=1 satisfaction=2"
    assert rows[1]["name"].startswith("'=")                      # a formula from the list stays text
    report.export(db, "fu", tmp_path / "out.xlsx")
    book = openpyxl.load_workbook(tmp_path / "out.xlsx")
    assert book["contacts"].max_row == 5 and book["summary"]["A1"].value == "campaign"


def missed_then(db, claims, cid, result, agent="1001"):
    """A preview attempt whose agent did not answer (the customer never dialled: agentfirst.py
    writes it so), then one more attempt ending with `result`."""
    for res in ("agent_missed", result):
        assert claims.claim("contact", ids=[cid]) == [cid]
        [row] = [c for c in campaigns.contacts(db, "pv") if c["id"] == cid]
        a = attempts.begin(db, "contact", row, agent=agent)
        missed = res == "agent_missed"
        attempts.finish(db, claims, "contact", row, a, res, agent=agent, counts=not missed,
                        retry_at=db.clock() if missed else None,
                        answered_at=db.clock() if res == "answered" else None)


def test_agent_missed_is_no_dial_of_the_customer(tmp_path, redis_server, redis_prefix, capsys):
    cfg, settings = write_config(tmp_path)
    clock = Clock()
    db = OutboundDb(settings.database.url, clock=clock).open()
    claims = claims_for(db, redis_server, redis_prefix, "a")
    campaigns.create(db, "pv", "preview", queue="q")
    campaigns.add_contacts(db, "pv", [{"number": f"1380013800{i}"} for i in (1, 2, 3)])
    first, second, third = [c["id"] for c in campaigns.contacts(db, "pv")]
    missed_then(db, claims, first, "answered")
    missed_then(db, claims, second, "no_answer")
    claims.claim("contact", ids=[third])                # on the DNC list: refused before any dial
    [row] = [c for c in campaigns.contacts(db, "pv") if c["id"] == third]
    attempts.finish(db, claims, "contact", row, attempts.begin(db, "contact", row, agent="1001"), "dnc",
                    counts=False)
    r = report.campaign_report(db, "pv")
    assert (r["dials"], r["attempts_per_contact"]) == (2, 0.67)     # the customers' phones rang twice
    assert (r["agent_missed"], r["refused"]) == (2, 1)
    assert r["results"] == {"agent_missed": 2, "answered": 1, "no_answer": 1, "dnc": 1}
    [day] = r["by_day"].values()
    assert (day["dials"], day["agent_missed"], day["answered"]) == (2, 2, 1)
    assert (r["by_agent"]["1001"]["calls"], r["by_agent"]["1001"]["missed"]) == (2, 2)
    rc, out, _ = run_cli(capsys, "campaigns", "report", "pv", "--config", cfg)
    assert rc == 0 and "dials 2, attempts per contact 0.67" in out
    assert "not dialled: agent missed 2, refused 1" in out
    report.export(db, "pv", tmp_path / "pv.xlsx")
    summary = {k: v for k, v in openpyxl.load_workbook(tmp_path / "pv.xlsx")["summary"].values}
    assert (summary["dials"], summary["agent_missed"]) == (2, 2)


def test_deadlines_remind_then_escalate_once(tmp_path):
    clock = Clock()
    db = outbound_db(tmp_path, clock)
    job = jobs.create_job(db, "13800138000", "manual", deadline_hours=2)
    seen = []
    assert check_deadlines(db, 30, hooks=[lambda a, j: seen.append(a)]) == []
    clock.advance(minutes=95)
    assert [a for a, _ in check_deadlines(db, 30, hooks=[lambda a, j: seen.append(a)])] == ["remind"]
    assert check_deadlines(db, 30) == []                           # once
    clock.advance(minutes=30)
    assert [a for a, _ in check_deadlines(db, 30)] == ["escalate"]
    assert check_deadlines(db, 30) == [] and seen == ["remind"]
    assert jobs.get_job(db, job["id"])["escalated_at"] == clock()


def test_api_roles(tmp_path, redis_server, redis_prefix):
    db = outbound_db(tmp_path)
    held = []         # the agents the API reserved (rung first, engine/outbound/agentfirst.py)
    agent_first = types.SimpleNamespace(reserve=lambda agent, queue: held.append(agent) or f"res-{agent}",
                                        cancel=lambda res, why: held.remove(res[len("res-"):]))
    service = types.SimpleNamespace(db=db, claims=claims_for(db, redis_server, redis_prefix, "e"),
                                    runner=types.SimpleNamespace(dial_claimed=lambda *a, **k: None),
                                    placer=types.SimpleNamespace(agent_first=agent_first))
    engine = types.SimpleNamespace(outbound_jobs=service, acd=None)
    agent = types.SimpleNamespace(role="agent", name="a", agent="1001")
    sup = types.SimpleNamespace(role="supervisor", name="s", agent=None)
    with pytest.raises(webapi.ApiRefused) as err:
        webapi.handle(engine, agent, "POST", {"name": "x", "mode": "robot", "flow": "f.yaml"}, "campaigns")
    assert err.value.status == 403
    made = webapi.handle(engine, sup, "POST", {"name": "x", "mode": "robot", "flow": "f.yaml"}, "campaigns")
    assert made["campaign"]["state"] == "draft"
    out = webapi.handle(engine, sup, "POST", {"rows": [{"number": "13800138000"}, {"number": "x"}]},
                        "campaigns", "x", "contacts")
    assert out["loaded"] == 0 and out["errors"][0].startswith("rows[1]: number:")
    job = webapi.handle(engine, agent, "POST", {"number": "13900139000", "note": "下午回电"}, "callbacks")["job"]
    with pytest.raises(webapi.ApiRefused) as err:
        webapi.handle(engine, agent, "POST", {"agent": "1002"}, "callbacks", str(job["id"]), "take")
    assert err.value.status == 403                               # an agent acts for itself only
    taken = webapi.handle(engine, agent, "POST", {}, "callbacks", str(job["id"]), "take")["job"]
    assert taken["agent"] == "1001"
    with pytest.raises(webapi.ApiRefused) as err:
        webapi.handle(engine, sup, "POST", {"agent": "1002"}, "callbacks", str(job["id"]), "take")
    assert err.value.status == 409
    assert held == ["1001"]         # reserved for the take; nobody is reserved for a refused one
