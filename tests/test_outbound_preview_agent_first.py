"""Preview calls ring the agent first (issue 15), over the simulator with the ACD and a real Redis:
an agent takes a callback job through the control API; the engine reserves the agent, rings their
phone (`originate ... user/<ext> &park()`, fixture 10), and only when they answer dials the
customer through the trunk gateway (`target=park`) with the hotline's number and `uuid_bridge`s
the two legs (fixture 10). Agent no answer: no customer dial, the job pending again, nothing held
against the customer. Customer busy: the attempt says busy, the agent's leg is hung up and the
agent is freed. A reserved agent is offered no inbound caller."""
import json
import time
import urllib.error
import urllib.request

import pytest

from engine.infra.netutil import free_port
from engine.outbound import attempts, jobs
from engine.outbound.db import OutboundDb
from engine.sim.pstn import Behaviour, Population
from tests.acdfix import AcdRig, agent, queue
from tests.simfix import wait_for
from tests.test_outbound_sim import ALWAYS_OPEN, PROMPT_CACHE

CUSTOMER = "13800138000"
INBOUND = "13900139000"


class Preview:
    def __init__(self, tmp_path, redis_server, redis_prefix, ring_timeout=1):
        self.port = free_port()
        tokens = {"listen_port": self.port, "tokens": [{"name": "a1001", "role": "agent", "agent": "1001",
                                                         "token_env": "T_AGENT"}]}
        self.rig = AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001")],
                          [queue("general", ring_timeout=ring_timeout)], paths_prompt_cache=PROMPT_CACHE,
                          outbound_calls={"window": ALWAYS_OPEN, "originate_timeout": 5, "max_agent_share": 1.0,
                                          "jobs": {"tick_seconds": 0.1, "callback_mode": "preview"}},
                          control=tokens, env={"T_AGENT": "agent-secret"})
        self.events = []            # (event name, uuid, channel name, caller id number, extra) in order
        self.rig.switch.subscribe(self._seen)
        self.pop = self.rig.switch.population = Population()
        self.db = OutboundDb(self.rig.settings.database.url).open()

    def _seen(self, pairs, body=None):
        d = dict(pairs)
        name = d.get("Event-Name")
        if name in ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_HANGUP_COMPLETE",
                    "PLAYBACK_START"):
            self.events.append((name, d.get("Unique-ID"), d.get("Channel-Name") or "",
                                d.get("Caller-Caller-ID-Number"),
                                (d.get("Bridge-A-Unique-ID"), d.get("Bridge-B-Unique-ID"))))

    def api(self, method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer agent-secret",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def job(self):
        return jobs.create_job(self.db, CUSTOMER, "manual", queue="general", who="test")

    def take(self, job_id):
        return self.api("POST", f"/v1/callbacks/{job_id}/take", {})

    def creates(self):
        return [e for e in self.events if e[0] == "CHANNEL_CREATE"]

    def stop(self):
        self.rig.stop()


@pytest.fixture
def preview(tmp_path, redis_server, redis_prefix, request):
    p = Preview(tmp_path, redis_server, redis_prefix, **getattr(request, "param", {}))
    yield p
    p.stop()


def test_agent_rung_first_then_customer_dialled_with_hotline_number_and_bridged(preview):
    rig = preview.rig
    preview.pop.add(CUSTOMER, Behaviour("person", ring=0.2, hangup_after=1.0))
    rig.login("1001")
    job = preview.job()
    taken = preview.take(job["id"])
    assert taken["job"]["state"] == "claimed" and taken["ringing_agent"] == "1001"
    wait_for(lambda: jobs.get_job(preview.db, job["id"])["state"] == "done", timeout=40)
    [attempt] = attempts.attempts_of(preview.db, "job", job["id"])
    assert attempt["result"] == "answered" and attempt["agent"] == "1001"
    customer = attempt["call_uuid"]
    # the order of the legs the switch created: the agent's phone, then the customer through the trunk
    legs = [(u, name) for _, u, name, _, _ in preview.creates()]
    assert len(legs) == 2, legs
    (agent_leg, agent_name), (customer_leg, customer_name) = legs
    assert agent_name.startswith("sofia/internal/1001")
    assert customer_leg == customer and customer_name == f"sofia/external/{CUSTOMER}@trunk"     # the gateway
    answers = [u for name, u, *_ in preview.events if name == "CHANNEL_ANSWER"]
    assert answers.index(agent_leg) < answers.index(customer_leg)
    # dialled with the hotline's number; the agent's phone showed the customer's
    hotline = rig.settings.outbound_calls.caller_id or rig.settings.trunk.dids[0]
    assert len(preview.pop.phones[CUSTOMER].calls) == 1
    [customer_create] = [e for e in preview.creates() if e[1] == customer_leg]
    assert customer_create[3] == hotline, customer_create
    [agent_create] = [e for e in preview.creates() if e[1] == agent_leg]
    assert agent_create[3] == CUSTOMER
    assert ("PLAYBACK_START", agent_leg) in [(n, u) for n, u, *_ in preview.events]    # the agent's beep
    # the two legs bridged
    assert ("CHANNEL_BRIDGE", customer, agent_leg) in [(n, b[0], b[1]) for n, _, _, _, b in preview.events]
    # an agent call like any other: counted, talk time, then wrap-up and available again
    rig.wait_state("1001", "available", timeout=10)
    state = rig.acd.store.agent("1001")
    assert int(float(state.get("calls") or 0)) == 1 and float(state.get("talk") or 0) > 0
    # the outbound CDR, written with the agent and the job
    wait_for(lambda: rig.engine.store.get(customer) is not None, timeout=15)
    cdr = rig.engine.store.get(customer)
    assert cdr["extra"]["direction"] == "outbound" and cdr["extra"]["callback_job"] == job["id"]
    assert cdr["agent"] == "1001"


def test_agent_no_answer_dials_nobody_and_the_job_is_pending_again(preview):
    rig = preview.rig
    preview.pop.add(CUSTOMER, Behaviour("person", ring=0.2, hangup_after=1.0))
    rig.login("1001", behaviour="no_answer")
    job = preview.job()
    preview.take(job["id"])
    wait_for(lambda: attempts.attempts_of(preview.db, "job", job["id"])
             and attempts.attempts_of(preview.db, "job", job["id"])[0]["result"], timeout=20)
    [attempt] = attempts.attempts_of(preview.db, "job", job["id"])
    after = jobs.get_job(preview.db, job["id"])
    assert attempt["result"] == "agent_missed" and attempt["cause"] == "NO_ANSWER"
    assert after["state"] == "pending" and after["attempts"] == 0       # not held against the customer
    assert preview.pop.phones == {}                                     # the customer was never dialled
    assert rig.phones["1001"].rings == 1
    rig.wait_state("1001", "available", timeout=5)                      # a missed call (1 of 3 allowed)
    assert int(rig.acd.store.agent("1001").get("misses") or 0) == 1


def test_customer_busy_is_recorded_and_the_agent_freed(preview):
    rig = preview.rig
    preview.pop.add(CUSTOMER, Behaviour("busy"))
    rig.login("1001")
    job = preview.job()
    preview.take(job["id"])
    wait_for(lambda: jobs.get_job(preview.db, job["id"])["state"] == "pending"
             and attempts.attempts_of(preview.db, "job", job["id"])[0]["result"], timeout=20)
    [attempt] = attempts.attempts_of(preview.db, "job", job["id"])
    assert attempt["result"] == "busy" and attempt["cause"] == "USER_BUSY"
    assert jobs.get_job(preview.db, job["id"])["attempts"] == 1
    assert len(preview.pop.phones[CUSTOMER].calls) == 1
    # the agent's leg hung up by the engine, the agent through wrap-up back to available
    [(_, agent_leg, *_)] = [e for e in preview.creates() if "1001" in e[2]]
    assert any(n == "CHANNEL_HANGUP_COMPLETE" and u == agent_leg for n, u, *_ in preview.events)
    rig.wait_state("1001", "available", timeout=10)


def test_not_available_agent_is_refused_with_409_and_the_job_stays_pending(preview):
    job = preview.job()                           # agent 1001 not logged in
    with pytest.raises(urllib.error.HTTPError) as err:
        preview.take(job["id"])
    assert err.value.code == 409 and "logged_out" in json.loads(err.value.read())["error"]
    assert jobs.get_job(preview.db, job["id"])["state"] == "pending"
    assert preview.creates() == []


@pytest.mark.parametrize("preview", [{"ring_timeout": 10}], indirect=True)
def test_reserved_agent_is_offered_no_inbound_caller(preview):
    rig = preview.rig
    preview.pop.add(CUSTOMER, Behaviour("person", ring=0.2, hangup_after=1.0))
    rig.login("1001", behaviour="no_answer")
    job = preview.job()
    preview.take(job["id"])
    wait_for(lambda: rig.phones["1001"].rings == 1, timeout=10)
    assert rig.acd.store.agent("1001")["state"] == "ringing"
    [(_, preview_leg, *_)] = preview.creates()
    caller = rig.call(INBOUND, "Caller")
    wait_for(lambda: rig.acd.store.queue_length("general") == 1, timeout=60)
    held = rig.acd.store.agent("1001")                  # the caller waits: the agent is held for the preview
    assert (held["state"], held.get("call")) == ("ringing", preview_leg)
    # the ACD's watchdog leaves the held agent to the preview call (it would otherwise adopt the
    # ringing leg as an orphan once the state is 2 s old)
    wait_for(lambda: time.time() - float(rig.acd.store.agent("1001")["since"]) > 2.5, timeout=10)
    assert rig.acd.repair() == []
    assert rig.acd.store.agent("1001")["state"] == "ringing" and not rig.acd.adopted
    # the caller waits while the agent is held; once the preview ring ends the router offers the
    # caller to the agent: the second ring of the phone comes after the first leg is gone
    wait_for(lambda: rig.phones["1001"].rings >= 2, timeout=30)
    agent_events = [(n, u) for n, u, name, *_ in preview.events
                    if name.startswith("sofia/internal/1001")]
    second = [u for n, u in agent_events if n == "CHANNEL_CREATE" and u != preview_leg][0]
    assert agent_events.index(("CHANNEL_HANGUP_COMPLETE", preview_leg)) < agent_events.index(("CHANNEL_CREATE", second))
    assert attempts.attempts_of(preview.db, "job", job["id"])[0]["result"] == "agent_missed"


def test_agent_hanging_up_while_the_customer_rings_cancels_the_dial(preview):
    rig = preview.rig
    preview.pop.add(CUSTOMER, Behaviour("no_answer"))
    rig.login("1001", hangup_after=0.5)                 # answers, then hangs up before the customer does
    job = preview.job()
    preview.take(job["id"])
    wait_for(lambda: attempts.attempts_of(preview.db, "job", job["id"])
             and attempts.attempts_of(preview.db, "job", job["id"])[0]["result"], timeout=20)
    [attempt] = attempts.attempts_of(preview.db, "job", job["id"])
    after = jobs.get_job(preview.db, job["id"])
    assert attempt["result"] == "agent_hung_up", attempt
    assert after["state"] == "pending" and after["attempts"] == 0
    [dialled] = preview.pop.phones[CUSTOMER].calls
    ended = [e for e in preview.events if e[0] == "CHANNEL_HANGUP_COMPLETE" and e[1] == dialled.uuid]
    assert ended          # the dial ended ORIGINATOR_CANCEL (ours), not NO_ANSWER: agent_hung_up above
    rig.wait_state("1001", "available", timeout=10)


def test_preview_campaign_next_for_an_agent_not_available_is_409_and_claims_nothing(preview):
    from engine.outbound import campaigns
    campaigns.create(preview.db, "v", "preview", queue="general")
    campaigns.add_contacts(preview.db, "v", [{"number": CUSTOMER, "name": "张三"}])
    campaigns.control(preview.db, "v", "start")
    with pytest.raises(urllib.error.HTTPError) as err:      # agent 1001 not logged in
        preview.api("POST", "/v1/campaigns/v/next", {})
    assert err.value.code == 409
    [contact] = campaigns.contacts(preview.db, "v")
    assert contact["state"] == "pending" and not contact["agent"]
    preview.rig.login("1001")
    preview.pop.add(CUSTOMER, Behaviour("person", ring=0.2, hangup_after=0.5))
    out = preview.api("POST", "/v1/campaigns/v/next", {})
    assert out["contact"]["name"] == "张三" and out["dialling"]
    wait_for(lambda: campaigns.contacts(preview.db, "v")[0]["state"] == "done", timeout=30)
    names = [name for n, _, name, *_ in preview.events if n == "CHANNEL_CREATE"]
    assert names[0].startswith("sofia/internal/1001") and names[1] == f"sofia/external/{CUSTOMER}@trunk"
