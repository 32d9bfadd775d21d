"""Callbacks and campaigns over the simulator: the engine (in this process) dials through the
simulated trunk gateway over TCP, the answered legs come back to its socket server, a real Redis
holds the claims. Prompts are real espeak-ng renderings (cached across tests)."""
import shutil
import tempfile
from pathlib import Path

import pytest

from engine.outbound import attempts, campaigns
from engine.outbound.db import OutboundDb
from engine.sim.pstn import Behaviour, Population
from tests.enginefix import Rig
from tests.simfix import wait_for

REPO = Path(__file__).resolve().parent.parent
PROMPT_CACHE = Path(tempfile.gettempdir()) / "hotline-test-prompts"
ALWAYS_OPEN = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "hours": ["00:00-24:00"],
               "cn_calendar": False}


@pytest.fixture
def flows(tmp_path):
    dst = tmp_path / "flows"
    dst.mkdir()
    shutil.copy(REPO / "ivr_flows" / "followup.yaml", dst / "followup.yaml")
    return dst


def rig_for(tmp_path, flows, redis_server, redis_prefix, **jobs):
    return Rig(tmp_path, flows_dir=flows, paths_prompt_cache=PROMPT_CACHE,
               redis={"url": redis_server.url, "prefix": redis_prefix},
               outbound_calls={"window": ALWAYS_OPEN, "originate_timeout": 5,
                               "jobs": {"tick_seconds": 0.1, "claim_ttl_seconds": 5, **jobs}})


def test_robot_campaign_collects_answers(tmp_path, flows, redis_server, redis_prefix):
    rig = rig_for(tmp_path, flows, redis_server, redis_prefix)
    try:
        pop = rig.switch.population = Population()
        # confirms, resolved (1), satisfaction 2, no comment (#): keys typed ahead of the prompts
        pop.add("13800138001", Behaviour("person", ring=0.2, dtmf=((0.3, "1"), (0.4, "1"), (0.5, "2"),
                                                                    (0.6, "#"))))
        pop.add("13800138002", Behaviour("person", ring=0.2, hangup_after=1.0))   # never presses 1
        pop.add("13800138003", Behaviour("busy"))
        pop.add("13800138004", Behaviour("unallocated", ring=0.2))
        pop.add("13800138005", Behaviour("person", ring=0.2, dtmf=((0.3, "9"),)))     # opts out
        db = OutboundDb(rig.settings.database.url).open()
        campaigns.create(db, "fu", "robot", flow=str(flows / "followup.yaml"))
        rows = [{"number": f"1380013800{i}", "name": f"市民{i}", "fields": {"summary": "路灯不亮",
                                                                         "ticket_date": "2026-11-20"}}
                for i in range(1, 6)]
        campaigns.add_contacts(db, "fu", rows)
        campaigns.control(db, "fu", "start")

        def settled():
            return all(c["state"] != "claimed" and c["attempts"] >= 1 for c in campaigns.contacts(db, "fu"))
        wait_for(settled, timeout=60)
        got = {c["number"]: c for c in campaigns.contacts(db, "fu")}
        done = got["13800138001"]
        assert done["state"] == "done" and done["last_result"] == "completed"
        assert done["answers"] == {"resolved": "1", "satisfaction": "2"}
        assert got["13800138002"]["last_result"] == "not_confirmed" and got["13800138002"]["answers"] is None
        assert got["13800138002"]["state"] == "pending"            # tried again later
        assert got["13800138003"]["last_result"] == "busy" and got["13800138003"]["state"] == "pending"
        assert got["13800138004"]["last_result"] == "invalid" and got["13800138004"]["state"] == "failed"
        assert got["13800138005"]["state"] == "skipped" and got["13800138005"]["last_result"] == "opted_out"
        assert rig.engine.outbound_calls.lists.is_dnc("13800138005", "fu")
        assert len(pop.phones["13800138001"].calls) == 1            # dialled once
        [attempt] = attempts.attempts_of(db, "contact", done["id"])
        assert attempt["result"] == "completed" and attempt["answered_at"] is not None

        def cdr_of(uuid):
            return rig.engine.store.get(uuid)
        wait_for(lambda: cdr_of(attempt["call_uuid"]) is not None, timeout=10)
        leg = cdr_of(attempt["call_uuid"])
        assert "outbound" in leg["tags"] and leg["extra"]["direction"] == "outbound"
        assert leg["extra"]["campaign"] == "fu" and leg["extra"]["result"] == "completed"
        [busy] = attempts.attempts_of(db, "contact", got["13800138003"]["id"])
        wait_for(lambda: cdr_of(busy["call_uuid"]) is not None, timeout=10)
        assert cdr_of(busy["call_uuid"])["hangup_cause"] == "USER_BUSY"
    finally:
        rig.stop()


def answering(pop, numbers, after=0.3):
    for n in numbers:
        pop.add(n, Behaviour("person", ring=0.2, dtmf=((after, "1"), (after + 0.1, "1"), (after + 0.2, "3"),
                                                        (after + 0.3, "#"))))


def robot_campaign(db, flows, numbers):
    campaigns.create(db, "fu", "robot", flow=str(flows / "followup.yaml"))
    campaigns.add_contacts(db, "fu", [{"number": n, "fields": {"summary": "噪音", "ticket_date": "2026-11-20"}}
                                      for n in numbers])
    campaigns.control(db, "fu", "start")


def test_two_engines_share_a_campaign_and_never_dial_a_contact_twice(tmp_path, flows, redis_server, redis_prefix):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    numbers = [f"139000000{i:02d}" for i in range(16)]
    rigs = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            rig = Rig(tmp_path / name, flows_dir=flows, paths_prompt_cache=PROMPT_CACHE, database={"url": url},
                      redis={"url": redis_server.url, "prefix": redis_prefix},
                      outbound_calls={"window": ALWAYS_OPEN, "originate_timeout": 5,
                                      "jobs": {"tick_seconds": 0.1, "robot_channels": 3}})
            rig.switch.population = Population()
            answering(rig.switch.population, numbers)
            rigs.append(rig)
        db = OutboundDb(url).open()
        robot_campaign(db, flows, numbers)
        wait_for(lambda: all(c["state"] == "done" for c in campaigns.contacts(db, "fu")), timeout=90)
        dialled = {n: sum(len(r.switch.population.phones[n].calls) if n in r.switch.population.phones else 0
                          for r in rigs) for n in numbers}
        assert dialled == {n: 1 for n in numbers}                  # once each, over both switches
        engines = {a["engine"] for c in campaigns.contacts(db, "fu")
                   for a in attempts.attempts_of(db, "contact", c["id"])}
        assert len(engines) == 2                                    # both engines worked on it
        assert all(c["answers"] == {"resolved": "1", "satisfaction": "3"} for c in campaigns.contacts(db, "fu"))
    finally:
        for rig in rigs:
            rig.stop()


def test_a_restart_mid_campaign_loses_no_contact(tmp_path, flows, redis_server, redis_prefix):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    numbers = [f"139100000{i:02d}" for i in range(8)]
    (tmp_path / "first").mkdir()
    first = Rig(tmp_path / "first", flows_dir=flows, paths_prompt_cache=PROMPT_CACHE, database={"url": url},
                redis={"url": redis_server.url, "prefix": redis_prefix},
                outbound_calls={"window": ALWAYS_OPEN, "originate_timeout": 5,
                                "jobs": {"tick_seconds": 0.1, "robot_channels": 2, "claim_ttl_seconds": 2}})
    pop = first.switch.population = Population()
    answering(pop, numbers, after=1.5)               # each call takes a few seconds
    db = OutboundDb(url).open()
    robot_campaign(db, flows, numbers)
    try:
        wait_for(lambda: sum(c["state"] == "done" for c in campaigns.contacts(db, "fu")) >= 1, timeout=60)
        wait_for(lambda: any(c["state"] == "claimed" for c in campaigns.contacts(db, "fu")), timeout=30)
    finally:
        # the engine goes away mid-call: its dials and the contacts it holds are left claimed
        first.engine.outbound_jobs.runner.stop()
        first.engine.outbound_jobs.keeper.stop()
        first.stop()
    left = [c for c in campaigns.contacts(db, "fu") if c["state"] == "claimed"]
    assert left
    (tmp_path / "second").mkdir()
    second = Rig(tmp_path / "second", flows_dir=flows, paths_prompt_cache=PROMPT_CACHE, database={"url": url},
                 redis={"url": redis_server.url, "prefix": redis_prefix},
                 outbound_calls={"window": ALWAYS_OPEN, "originate_timeout": 5,
                                 "jobs": {"tick_seconds": 0.1, "robot_channels": 2, "claim_ttl_seconds": 2}})
    try:
        answering(_pop(second), numbers, after=0.3)
        wait_for(lambda: all(c["state"] == "done" for c in campaigns.contacts(db, "fu")), timeout=90)
        # a call cut by the stop is on record as lost, then completed by the second engine; one
        # that ended while the first engine stopped wrote its own result (a stopping engine lets
        # ending calls finish their attempts): either way completed once, nothing else before it
        cut = 0
        for c in left:
            results = [a["result"] for a in attempts.attempts_of(db, "contact", c["id"])]
            assert results[-1] == "completed" and results.count("completed") == 1, results
            assert set(results[:-1]) <= {"lost"}, results
            cut += results[0] == "lost"
        assert cut or all(len(attempts.attempts_of(db, "contact", c["id"])) == 1 for c in left)
        assert len(campaigns.contacts(db, "fu")) == len(numbers)
    finally:
        second.stop()


def _pop(rig):
    rig.switch.population = Population()
    return rig.switch.population
