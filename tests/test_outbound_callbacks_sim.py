"""Callback jobs over the simulator with the ACD (real Redis): a caller waiting in a queue
presses the exit key and 1 for a callback; the CDR outbox makes the job (and the ticket); the
engine dials the caller back through the trunk gateway, puts the answered leg in the queue with
priority and an agent takes it; the attempt is on the job, in the ticket's history and in an
outbound CDR linked to the original call. Agents take preview jobs through the control API."""
import json
import urllib.request

import gevent

from engine.outbound import attempts, jobs
from engine.outbound.db import OutboundDb
from engine.sim.pstn import Behaviour, Population
from engine.tickets.store import TicketStore
from tests.acdfix import AcdRig, agent, queue
from tests.simfix import wait_for
from tests.test_outbound_sim import ALWAYS_OPEN, PROMPT_CACHE

CALLER = "13800138000"


def rig_for(tmp_path, redis_server, redis_prefix, mode, tokens=()):
    return AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001")],
                  [queue("general", exit_key="*", exit_action="callback")],
                  paths_prompt_cache=PROMPT_CACHE, tickets=True,
                  outbound_calls={"window": ALWAYS_OPEN, "originate_timeout": 5, "max_agent_share": 1.0,
                                  "jobs": {"tick_seconds": 0.1, "callback_mode": mode}},
                  **({"control": tokens, "env": {"T_AGENT": "agent-secret"}} if tokens else {}))


def ask_for_callback(rig):
    ch = rig.call(CALLER, "Caller")
    wait_for(lambda: rig.acd.store.queue_length("general") == 1, timeout=60)     # cold prompt cache: renders
    # keys count once the queue's music plays (the wait starts by flushing what was typed before)
    wait_for(lambda: ch.events.count("PLAYBACK_START") >= 1, timeout=10)
    ch.press("*")
    wait_for(lambda: ch.events.count("PLAYBACK_START") >= 2, timeout=30)      # the callback offer
    ch.press("1")
    wait_for(lambda: ch.state == "CS_DESTROY" or "CHANNEL_HANGUP" in ch.events, timeout=30)
    return ch.uuid


def test_queue_exit_key_callback_dialled_back_to_an_agent(tmp_path, redis_server, redis_prefix):
    rig = rig_for(tmp_path, redis_server, redis_prefix, "auto")
    try:
        pop = rig.switch.population = Population()
        pop.add(CALLER, Behaviour("person", ring=0.2, hangup_after=3.0))
        original = ask_for_callback(rig)
        db = OutboundDb(rig.settings.database.url).open()
        wait_for(lambda: jobs.list_jobs(db, state="all"), timeout=20)
        [job] = jobs.list_jobs(db, state="all")
        assert (job["reason"], job["number"], job["call_uuid"], job["mode"]) == (
            "queue_callback", CALLER, original, "auto")
        rig.login("1001")
        wait_for(lambda: jobs.get_job(db, job["id"])["state"] == "done", timeout=40)
        done = jobs.get_job(db, job["id"])
        [attempt] = attempts.attempts_of(db, "job", job["id"])
        assert attempt["result"] == "answered" and attempt["agent"] == "1001" and done["agent"] == "1001"
        assert len(pop.phones[CALLER].calls) == 1
        # the outbound CDR, linked to the original call
        wait_for(lambda: rig.engine.store.get(attempt["call_uuid"]) is not None, timeout=15)
        leg = rig.engine.store.get(attempt["call_uuid"])
        assert leg["extra"]["direction"] == "outbound" and leg["extra"]["original_call"] == original
        assert leg["agent"] == "1001"
        # the ticket of the original call has the attempt in its history; no ticket for the dial
        store = TicketStore(rig.settings.database.url).open()
        wait_for(lambda: store.list(), timeout=15)
        [ticket] = [t for t in store.list() if t["call_uuid"] == original]
        wait_for(lambda: any(h["action"] == "callback" for h in store.history(ticket["id"])), timeout=10)
        assert not [t for t in store.list() if t["call_uuid"] == attempt["call_uuid"]]
    finally:
        rig.stop()


def test_agent_takes_a_preview_callback_through_the_api(tmp_path, redis_server, redis_prefix):
    from engine.infra.netutil import free_port
    port = free_port()
    tokens = {"listen_port": port, "tokens": [{"name": "a1001", "role": "agent", "agent": "1001",
                                                "token_env": "T_AGENT"}]}
    rig = rig_for(tmp_path, redis_server, redis_prefix, "preview", tokens=tokens)
    try:
        pop = rig.switch.population = Population()
        pop.add(CALLER, Behaviour("person", ring=0.2, hangup_after=3.0))
        original = ask_for_callback(rig)
        db = OutboundDb(rig.settings.database.url).open()
        wait_for(lambda: jobs.list_jobs(db, state="all"), timeout=20)
        gevent.sleep(1.0)
        assert pop.phones == {}                           # preview: nobody dialled unasked

        def api(method, path, body=None):
            req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Authorization": "Bearer agent-secret",
                                                  "Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        [listed] = api("GET", "/v1/callbacks")["callbacks"]
        assert listed["call_uuid"] == original
        rig.login("1001")
        taken = api("POST", f"/v1/callbacks/{listed['id']}/take", {})["job"]
        assert taken["agent"] == "1001" and taken["state"] == "claimed"
        wait_for(lambda: jobs.get_job(db, listed["id"])["state"] == "done", timeout=40)
        [attempt] = attempts.attempts_of(db, "job", listed["id"])
        assert attempt["result"] == "answered" and attempt["agent"] == "1001"
    finally:
        rig.stop()


def campaign_rig(tmp_path, redis_server, redis_prefix, tokens=None):
    return AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001"), agent("1002")], [queue("general")],
                  paths_prompt_cache=PROMPT_CACHE,
                  outbound_calls={"window": ALWAYS_OPEN, "originate_timeout": 5, "max_agent_share": 1.0,
                                  "jobs": {"tick_seconds": 0.1}},
                  **({"control": tokens, "env": {"T_AGENT": "agent-secret"}} if tokens else {}))


def test_progressive_campaign_reaches_agents_and_no_caller_waits(tmp_path, redis_server, redis_prefix):
    from engine.outbound import campaigns, report
    rig = campaign_rig(tmp_path, redis_server, redis_prefix)
    try:
        numbers = [f"1370000000{i}" for i in range(6)]
        pop = rig.switch.population = Population()
        for n in numbers[:5]:
            pop.add(n, Behaviour("person", ring=0.2, hangup_after=1.5))
        pop.add(numbers[5], Behaviour("busy"))
        rig.login("1001", "1002")
        db = OutboundDb(rig.settings.database.url).open()
        campaigns.create(db, "p", "progressive", queue="general")
        campaigns.add_contacts(db, "p", [{"number": n} for n in numbers])
        in_flight = []
        runner = rig.engine.outbound_jobs.runner
        campaigns.control(db, "p", "start")

        def settled():
            in_flight.append(runner.in_flight.get(1, 0))
            return all(c["attempts"] >= 1 and c["state"] != "claimed" for c in campaigns.contacts(db, "p"))
        wait_for(settled, timeout=90)
        assert max(in_flight) <= 2                          # one dial per free agent
        got = {c["number"]: c for c in campaigns.contacts(db, "p")}
        assert all(got[n]["state"] == "done" and got[n]["agent"] in ("1001", "1002") for n in numbers[:5])
        assert got[numbers[5]]["last_result"] == "busy"
        r = report.campaign_report(db, "p")
        assert r["completed"] == 5 and r["abandon_pct"] == 0.0 and set(r["by_agent"]) <= {"1001", "1002"}
    finally:
        rig.stop()


def test_preview_campaign_agent_takes_the_next_contact_through_the_api(tmp_path, redis_server, redis_prefix):
    from engine.infra.netutil import free_port
    from engine.outbound import campaigns
    port = free_port()
    tokens = {"listen_port": port, "tokens": [{"name": "a1001", "role": "agent", "agent": "1001",
                                                "token_env": "T_AGENT"}]}
    rig = campaign_rig(tmp_path, redis_server, redis_prefix, tokens=tokens)
    try:
        pop = rig.switch.population = Population()
        pop.add("13700000001", Behaviour("person", ring=0.2, hangup_after=1.5))
        rig.login("1001")
        db = OutboundDb(rig.settings.database.url).open()
        campaigns.create(db, "v", "preview", queue="general")
        campaigns.add_contacts(db, "v", [{"number": "13700000001", "name": "张三", "reference": "T20261120-0007"}])
        campaigns.control(db, "v", "start")
        gevent.sleep(0.5)
        assert pop.phones == {}                            # preview: nothing dialled before the agent asks
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/campaigns/v/next", method="POST", data=b"{}",
                                     headers={"Authorization": "Bearer agent-secret",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            out = json.loads(r.read())
        assert out["contact"]["name"] == "张三" and out["contact"]["reference"] == "T20261120-0007"
        wait_for(lambda: campaigns.contacts(db, "v")[0]["state"] == "done", timeout=40)
        assert campaigns.contacts(db, "v")[0]["agent"] == "1001"
    finally:
        rig.stop()


def test_auto_callback_customer_who_never_reached_an_agent_is_called_again(tmp_path, redis_server,
                                                                            redis_prefix):
    """Issue 15, auto mode: the customer answers our call back and waits in the queue, but the one
    agent is taken by an inbound caller; the customer hangs up before any agent takes them. Nobody
    talked to them: the attempt is 'abandoned' (it counts), the job is pending again, due after the
    retry rule (before, it was written 'answered' and the job closed as done: the promised call
    back lost). Once due again with the agent free, the call back reaches the agent: answered."""
    import datetime

    rig = AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001")],
                 [queue("general", wrapup_seconds=0, ring_timeout=5)], paths_prompt_cache=PROMPT_CACHE,
                 outbound_calls={"window": ALWAYS_OPEN, "originate_timeout": 5, "max_agent_share": 1.0,
                                 "jobs": {"tick_seconds": 0.1}})
    try:
        pop = rig.switch.population = Population()
        pop.add(CALLER, Behaviour("person", ring=0.2, hangup_after=2.0))
        rig.login("1001", answer_after=0.05)            # talks until the caller hangs up
        phone = rig.phones["1001"]
        inbound = rig.call("13900139000", "Inbound")    # the agent is busy before we call back
        wait_for(lambda: rig.state("1001") == "in_call", timeout=30)
        db = OutboundDb(rig.settings.database.url).open()
        job = jobs.create_job(db, CALLER, "queue_callback", mode="auto", max_attempts=3)
        wait_for(lambda: jobs.get_job(db, job["id"])["attempts"] == 1
                 and jobs.get_job(db, job["id"])["state"] != "claimed", timeout=40)
        [attempt] = attempts.attempts_of(db, "job", job["id"])
        [leg] = pop.phones[CALLER].calls
        assert "CHANNEL_ANSWER" in leg.events and "CHANNEL_BRIDGE" not in leg.events   # answered, no agent
        assert attempt["result"] == "abandoned" and not attempt["agent"]
        again = jobs.get_job(db, job["id"])
        assert again["state"] == "pending" and again["last_result"] == "abandoned" and not again["agent"]
        delay = attempts.retry_delay("abandoned", 1)
        assert again["due_at"] == attempt["ended_at"] + datetime.timedelta(minutes=delay)
        assert phone.rings == 1                         # the inbound call only
        wait_for(lambda: rig.engine.store.get(attempt["call_uuid"]) is not None, timeout=15)
        assert rig.engine.store.get(attempt["call_uuid"])["extra"]["result"] == "abandoned"

        # the retry, with the agent free: the customer reaches them
        inbound.hangup("NORMAL_CLEARING")
        wait_for(lambda: rig.state("1001") == "available", timeout=30)
        J = db.m.CallbackJob
        db.run(lambda: J.update(due_at=db.clock()).where(J.id == job["id"]).execute(), write=True)
        wait_for(lambda: jobs.get_job(db, job["id"])["state"] == "done", timeout=40)
        first, second = attempts.attempts_of(db, "job", job["id"])
        assert second["result"] == "answered" and second["agent"] == "1001"
        done = jobs.get_job(db, job["id"])
        assert done["attempts"] == 2 and done["agent"] == "1001"
        assert "CHANNEL_BRIDGE" in pop.phones[CALLER].calls[1].events
    finally:
        rig.stop()
