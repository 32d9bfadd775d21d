"""The desk's callback panel, over real HTTP with an agent's browser session (no browser): an
agent lists the open callback jobs of its queues only, takes and skips them and closes one with a
disposition (the CSRF token on every POST; a forged POST is refused and changes nothing), a GET
never dials, hostile text comes back as JSON text, and preview campaigns: the agent lists those it
may serve, sees the next contact without a dial, skips it or dials it."""
import json

from engine.outbound import attempts, jobs
from engine.outbound.db import OutboundDb
from engine.sim.pstn import Behaviour, Population
from tests.acdfix import AcdRig, agent, queue
from tests.enginefix import free_port
from tests.simfix import wait_for
from tests.test_outbound_sim import ALWAYS_OPEN, PROMPT_CACHE
from tests.webfix import Browser, add_account, base_url

import pytest

HOSTILE = "<script>window.__pwned=1</script><img src=x onerror=alert(1)>"
BUSY = "13900000001"
PERSON = "13900000002"


@pytest.fixture
def rig(tmp_path, redis_server, redis_prefix):
    r = AcdRig(tmp_path, redis_server.url, redis_prefix,
               [agent("1001"), agent("1002", {"pension": 5}), agent("9001", role="supervisor")],
               [queue("general", skills={"general": 1}), queue("pension", skills={"pension": 1})],
               paths_prompt_cache=PROMPT_CACHE, tickets=True, control={"listen_port": free_port()},
               outbound_calls={"window": ALWAYS_OPEN, "originate_timeout": 5, "max_agent_share": 1.0,
                               "jobs": {"tick_seconds": 0.1, "callback_mode": "preview"}})
    r.switch.population = Population().add(BUSY, Behaviour("busy")).add(
        PERSON, Behaviour("person", ring=0.2, hangup_after=2.0))
    for account, role in (("1001", "agent"), ("1002", "agent"), ("9001", "supervisor")):
        add_account(r.engine, account, f"pw-{account}-secret", role)
    r.url = base_url(r)
    r.db = OutboundDb(r.settings.database.url).open()
    yield r
    r.stop()


def session(rig, account):
    b = Browser(rig.url)
    b.login(account, f"pw-{account}-secret")
    return b


def ids(listing):
    return [j["id"] for j in listing["callbacks"]]


def test_an_agent_lists_takes_skips_and_closes_the_jobs_of_its_queues(rig):
    boss, a1, a2 = session(rig, "9001"), session(rig, "1001"), session(rig, "1002")
    general = boss.post("/v1/callbacks", {"number": BUSY, "queue": "general", "note": HOSTILE})["job"]
    other = boss.post("/v1/callbacks", {"number": PERSON, "queue": "general"})["job"]
    pension = boss.post("/v1/callbacks", {"number": PERSON, "queue": "pension"})["job"]
    assert ids(a1.get("/v1/callbacks")) == [general["id"], other["id"]]
    assert ids(a2.get("/v1/callbacks")) == [pension["id"]]
    # another queue's job: refused, not taken
    a1.post(f"/v1/callbacks/{pension['id']}/take", expect=403)
    # hostile text is JSON text, verbatim (the page shows it with textContent)
    status, headers, text = a1.request("GET", "/v1/callbacks")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert json.loads(text)["callbacks"][0]["note"] == HOSTILE

    # a forged POST (the session's cookie, no CSRF token) changes nothing; nor does a GET
    status, _, text = a1.request("POST", f"/v1/callbacks/{other['id']}/skip", body={}, csrf=False)
    assert status == 400 and "CSRF" in json.loads(text)["error"]
    status, _, _ = a1.request("GET", f"/v1/callbacks/{other['id']}/take")
    assert status == 404
    assert jobs.get_job(rig.db, other["id"])["state"] == "pending"
    assert jobs.get_job(rig.db, other["id"])["skipped_by"] in (None, [])

    # skip: gone from this agent's list only
    assert a1.post(f"/v1/callbacks/{other['id']}/skip")["job"]["skipped_by"] == ["1001"]
    assert ids(a1.get("/v1/callbacks")) == [general["id"]]
    assert other["id"] in ids(boss.get("/v1/callbacks"))

    # take: the engine dials the number (busy here), the job comes back to this agent to close
    rig.login("1001")                   # nobody logged in: the dialler pauses (inbound first)
    taken = a1.post(f"/v1/callbacks/{general['id']}/take")["job"]
    assert taken["agent"] == "1001" and taken["state"] == "claimed"
    wait_for(lambda: [a["result"] for a in attempts.attempts_of(rig.db, "job", general["id"])] == ["busy"],
             timeout=20)
    wait_for(lambda: jobs.get_job(rig.db, general["id"])["state"] == "pending", timeout=10)
    assert len(rig.switch.population.phones[BUSY].calls) == 1
    closed = a1.post(f"/v1/callbacks/{general['id']}/done", {"disposition": "consultation", "note": "已短信告知"})
    assert closed["job"]["state"] == "done" and closed["job"]["last_result"] == "consultation"
    assert ids(a1.get("/v1/callbacks")) == []
    # an agent acts for itself only
    a2.post(f"/v1/callbacks/{pension['id']}/skip", {"agent": "1001"}, expect=403)


def test_preview_campaigns_an_agent_may_serve_next_skip_and_dial(rig):
    boss, a1, a2 = session(rig, "9001"), session(rig, "1001"), session(rig, "1002")
    boss.post("/v1/campaigns", {"name": "fu", "mode": "preview", "queue": "general"})
    boss.post("/v1/campaigns", {"name": "fu-pension", "mode": "preview", "queue": "pension"})
    boss.post("/v1/campaigns", {"name": "robo", "mode": "robot", "flow": "ivr_flows/followup.yaml"})
    boss.post("/v1/campaigns/fu/contacts", {"rows": [
        {"number": PERSON, "name": HOSTILE, "reference": "T-20261204-0001", "fields": {"事项": "<b>补缴</b>"}},
        {"number": BUSY, "name": "李四"}]})
    assert a1.get("/v1/campaigns?preview_for=me")["campaigns"] == []       # not running yet
    a1.get("/v1/campaigns", expect=403)                                     # the full list: supervisors
    for name in ("fu", "fu-pension"):
        boss.post(f"/v1/campaigns/{name}/start")
    assert [c["name"] for c in a1.get("/v1/campaigns?preview_for=me")["campaigns"]] == ["fu"]
    assert [c["name"] for c in a2.get("/v1/campaigns?preview_for=me")["campaigns"]] == ["fu-pension"]

    # next without a dial: who and why, as JSON text; a GET never takes one
    status, _, _ = a1.request("GET", "/v1/campaigns/fu/next")
    assert status == 405
    first = a1.post("/v1/campaigns/fu/next", {"accept": False})
    assert first["dialling"] is False
    c = first["contact"]
    # a reloaded desk asks again: the same contact, not a second one claimed
    assert a1.post("/v1/campaigns/fu/next", {"accept": False})["contact"]["id"] == c["id"]
    assert (c["name"], c["reference"], c["fields"]) == (HOSTILE, "T-20261204-0001", {"事项": "<b>补缴</b>"})
    # another agent cannot dial or skip the contact shown to 1001; a forged POST is refused
    boss_try = boss.request("POST", "/v1/campaigns/fu/dial", body={"contact": c["id"], "agent": "1002"})
    assert boss_try[0] == 409
    status, _, _ = a1.request("POST", "/v1/campaigns/fu/dial", body={"contact": c["id"]}, csrf=False)
    assert status == 400
    assert a1.post("/v1/campaigns/fu/skip", {"contact": c["id"]})["skipped"] is True
    a1.post("/v1/campaigns/fu/skip", {"contact": c["id"]}, expect=409)       # given back already

    rig.login("1001")
    second = a1.post("/v1/campaigns/fu/next", {"accept": False})["contact"]
    assert second["number"] == BUSY                                        # 1001 skipped the first
    assert a1.post("/v1/campaigns/fu/dial", {"contact": second["id"]})["dialling"] is True
    a1.post("/v1/campaigns/fu/dial", {"contact": second["id"]}, expect=409)   # one dial, whatever is pressed
    wait_for(lambda: [a["result"] for a in attempts.attempts_of(rig.db, "contact", second["id"])] == ["busy"],
             timeout=20)
    assert a1.post("/v1/campaigns/fu/next", {"accept": False})["contact"] is None
    assert PERSON not in rig.switch.population.phones                      # the skipped one: never dialled
