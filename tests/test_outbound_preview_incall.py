"""In-call actions on a preview call placed agent first (issues 15 and 16), over the simulator with
the ACD and a real Redis: the agent takes a callback, the customer is `uuid_bridge`d to the
agent's leg, and the agent holds (fixture 10: `uuid_hold <agent leg>` -> CHANNEL_HOLD on it and
the agent leg's hold_music played on the customer's leg; unhold stops it, bridged again), blind
transfers the customer (to a queue, another agent, an outside number: the customer's leg goes on
on the engine's socket, the first agent to wrap-up) or hangs up, through the control API and the
desk's state; another agent gets 403."""
import json
import urllib.error
import urllib.request

import pytest

from engine.outbound import attempts, jobs
from engine.infra.netutil import free_port
from engine.outbound.db import OutboundDb
from engine.sim.pstn import Behaviour, Population
from tests.acdfix import AcdRig, agent, queue
from tests.simfix import wait_for
from tests.test_outbound_sim import ALWAYS_OPEN, PROMPT_CACHE

CUSTOMER = "13800138000"
OUTSIDE = "13912345678"
BLOCKED = "110"
HOLD_MUSIC = "tone_stream://%(1000,1000,660);loops=-1"      # fixture 10's hold_music


class Rig:
    def __init__(self, tmp_path, redis_server, redis_prefix):
        self.port = free_port()
        tokens = {"listen_port": self.port,
                  "tokens": [{"name": f"a{a}", "role": "agent", "agent": a, "token_env": f"T_{a}"}
                             for a in ("1001", "1002")]}
        self.rig = AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001"), agent("1002")],
                          [queue("general", ring_timeout=5, wrapup_seconds=2.0, music=HOLD_MUSIC)],
                          paths_prompt_cache=PROMPT_CACHE,
                          outbound_calls={"window": ALWAYS_OPEN, "originate_timeout": 5, "max_agent_share": 1.0,
                                          "jobs": {"tick_seconds": 0.1, "callback_mode": "preview"}},
                          control=tokens, env={"T_1001": "secret-1001", "T_1002": "secret-1002"})
        self.events = []
        self.rig.switch.subscribe(self._seen)
        self.pop = self.rig.switch.population = Population()
        self.db = OutboundDb(self.rig.settings.database.url).open()

    def _seen(self, pairs, body=None):
        d = dict(pairs)
        name = d.get("Event-Name")
        if name in ("CHANNEL_CREATE", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "CHANNEL_HOLD", "CHANNEL_UNHOLD",
                    "PLAYBACK_START", "PLAYBACK_STOP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_EXECUTE"):
            self.events.append((name, d.get("Unique-ID"), d.get("Channel-Name") or "",
                                d.get("Bridge-A-Unique-ID"), d.get("Bridge-B-Unique-ID"),
                                d.get("Application"), d.get("Application-Data")))

    def seen(self, name, uuid=None):
        return [e for e in self.events if e[0] == name and (uuid is None or e[1] == uuid)]

    def api(self, method, path, body=None, agent_id="1001"):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Bearer secret-{agent_id}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def refused(self, method, path, body=None, agent_id="1001"):
        with pytest.raises(urllib.error.HTTPError) as err:
            self.api(method, path, body, agent_id)
        return err.value.code, json.loads(err.value.read())["error"]

    def bridged_callback(self):
        """A callback job taken by 1001 and bridged; (job, agent leg, customer leg)."""
        self.pop.add(CUSTOMER, Behaviour("person", ring=0.2))          # stays until hung up
        job = jobs.create_job(self.db, CUSTOMER, "manual", queue="general", who="test")
        self.api("POST", f"/v1/callbacks/{job['id']}/take", {})
        wait_for(lambda: self.seen("CHANNEL_BRIDGE"), timeout=30)
        [(_, _, _, customer, agent_leg, _, _)] = self.seen("CHANNEL_BRIDGE")
        # the engine registers the call for the in-call actions once uuid_bridge answered +OK
        entry = self.rig.acd.agent_first[agent_leg]
        wait_for(lambda: "conversation" in entry, timeout=10)
        assert entry["conversation"].call.uuid == customer
        return job, agent_leg, customer

    def customer_channel(self):
        [channel] = self.pop.phones[CUSTOMER].calls
        return channel

    def attempt(self, job):
        rows = attempts.attempts_of(self.db, "job", job["id"])
        return rows[0] if rows and rows[0]["result"] else None

    def desk(self, agent_id="1001"):
        return self.api("GET", "/api/desk/state", agent_id=agent_id)


@pytest.fixture
def pv(tmp_path, redis_server, redis_prefix):
    r = Rig(tmp_path, redis_server, redis_prefix)
    yield r
    r.rig.stop()


def test_hold_unhold_then_blind_transfer_to_a_queue_reaches_another_agent(pv):
    rig = pv.rig
    rig.login("1001", "1002")
    job, agent_leg, customer = pv.bridged_callback()
    desk = pv.desk()
    assert desk["call"]["stage"] == "talking"
    assert {c for c, on in desk["controls"].items() if on} == {"hold", "transfer", "hangup"}

    # another agent may not act on 1001's call: 403, and nothing reaches the switch
    code, why = pv.refused("POST", "/v1/calls/1001/hold", {}, agent_id="1002")
    assert code == 403, why
    code, why = pv.refused("POST", f"/v1/calls/{customer}/transfer", {"target": "queue:general"}, agent_id="1002")
    assert code == 403, why
    assert not pv.seen("CHANNEL_HOLD")

    # hold: the agent's leg held, the customer's leg plays the queue's music (the agent leg's hold_music)
    assert pv.api("POST", f"/v1/calls/{agent_leg}/hold", {}) == {"call": customer, "held": True}
    wait_for(lambda: pv.seen("PLAYBACK_START", customer), timeout=5)
    assert pv.seen("CHANNEL_HOLD", agent_leg)
    [music] = [e for e in pv.seen("CHANNEL_EXECUTE", customer) if e[5] == "playback"]
    assert music[6] == HOLD_MUSIC
    desk = pv.desk()
    assert desk["call"]["stage"] == "held"
    assert {c for c, on in desk["controls"].items() if on} == {"unhold", "transfer", "hangup"}
    assert rig.acd.store.agent("1001")["state"] == "in_call"

    # unhold: the music stops, the legs are still bridged
    assert pv.api("POST", "/v1/calls/1001/unhold", {}) == {"call": customer, "held": False}
    wait_for(lambda: pv.seen("PLAYBACK_STOP", customer), timeout=5)
    assert pv.seen("CHANNEL_UNHOLD", agent_leg) and not pv.seen("CHANNEL_UNBRIDGE")
    assert pv.desk()["call"]["stage"] == "talking"

    # blind transfer to the queue: 1001's leg ends and 1001 wraps up; 1002 answers the customer
    assert pv.api("POST", "/v1/calls/1001/transfer", {"target": "queue:general"}) == \
        {"call": customer, "transfer": "queue:general"}
    assert rig.wait_state("1001", "wrap_up", timeout=10)
    assert pv.seen("CHANNEL_HANGUP_COMPLETE", agent_leg)
    assert rig.wait_state("1002", "in_call", timeout=20)
    assert rig.acd.store.agent("1002")["call"] == customer
    second = [e for e in pv.seen("CHANNEL_BRIDGE") if e[3] == customer and e[4] != agent_leg]
    assert second, "the customer is bridged to 1002's leg"
    assert not pv.seen("CHANNEL_HANGUP_COMPLETE", customer)
    # the attempt: answered by 1001, the job done
    wait_for(lambda: pv.attempt(job), timeout=30)
    assert pv.attempt(job)["result"] == "answered" and pv.attempt(job)["agent"] == "1001"
    assert jobs.get_job(pv.db, job["id"])["state"] == "done"
    # 1001's wrap-up goes on the customer's call, which goes on with 1002
    saved = pv.api("POST", "/api/desk/wrapup", {"call": agent_leg, "disposition": "consultation"})
    assert saved["call"] == customer and saved["stored"] == "call"
    # 1002 now has an ordinary conversation: the same in-call actions reach it
    assert pv.api("POST", "/v1/calls/1002/hold", {}, agent_id="1002")["held"] is True
    pv.customer_channel().hangup("NORMAL_CLEARING")
    wait_for(lambda: rig.engine.store.get(customer) is not None
             and "provisional" not in (rig.engine.store.get(customer)["tags"] or []), timeout=20)
    cdr = rig.engine.store.get(customer)
    extra = cdr["extra"]
    assert extra["direction"] == "outbound" and extra["callback_job"] == job["id"] and extra["agent_first"]
    assert cdr["agent"] == "1002" and extra["agents"] == ["1001", "1002"] and "callback_attempt" in cdr["tags"]
    assert cdr["destination"] == CUSTOMER and cdr["queue"] == "general"
    assert [(t["kind"], t["to"], t["from_agent"]) for t in extra["transfers"]] == [("queue", "general", "1001")]
    assert extra["holds"] == 2 and extra["hold_seconds"] > 0          # 1001's hold, then 1002's
    assert extra["disposition"]["agent"] == "1001"
    rig.wait_state("1001", "available", timeout=10)


def site_public_dialplan(pv, tmp_path):
    """The switch of a site whose public dialplan routes the hotline's first number elsewhere
    (here its own IVR's refusal: time-of-day routing, another DID order do the same to a leg
    transferred there): our public context replaced by the site's, loaded from its XML."""
    did = pv.rig.settings.trunk.dids[0]
    site = tmp_path / "site-public.xml"
    site.write_text(f"""<include><context name="public">
  <extension name="site_ivr"><condition field="destination_number" expression="^{did}$">
    <action application="hangup" data="CALL_REJECTED"/>
  </condition></extension>
</context></include>""")
    plan = pv.rig.switch.dialplan
    plan.contexts.pop("public")
    plan.context_xml.pop("public")
    plan.load_file(str(site))


def test_blind_transfer_does_not_depend_on_the_public_dialplan_routing_our_number(pv, tmp_path):
    # the customer's leg used to be sent to `<first DID> XML public`: on this site it was hung up
    rig = pv.rig
    site_public_dialplan(pv, tmp_path)
    rig.login("1001", "1002")
    job, agent_leg, customer = pv.bridged_callback()
    assert pv.api("POST", "/v1/calls/1001/transfer", {"target": "queue:general"})["transfer"] == "queue:general"
    assert rig.wait_state("1002", "in_call", timeout=20)
    assert rig.acd.store.agent("1002")["call"] == customer
    # the leg ran our handover extension's socket app, the public dialplan's address
    out = rig.settings.outbound
    [socket] = [e for e in pv.seen("CHANNEL_EXECUTE", customer) if e[5] == "socket"]
    assert socket[6] == f"{out.advertise_host or out.listen_host}:{out.listen_port} async full"
    assert not [e for e in pv.seen("CHANNEL_EXECUTE", customer) if e[5] == "hangup"]
    pv.customer_channel().hangup("NORMAL_CLEARING")
    wait_for(lambda: rig.engine.store.get(customer) is not None
             and "provisional" not in (rig.engine.store.get(customer)["tags"] or []), timeout=20)
    cdr = rig.engine.store.get(customer)
    assert cdr["agent"] == "1002" and cdr["extra"]["callback_job"] == job["id"]
    assert cdr["destination"] == CUSTOMER


def test_blind_transfer_without_the_handover_context_is_refused_and_keeps_the_call(pv, caplog):
    # a switch that merged only part of our dialplan: the check at connect names the missing
    # context; the transfer is refused before anything moves
    rig = pv.rig
    wait_for(lambda: rig.engine.switch_check.missing == [], timeout=10)
    rig.switch.dialplan.contexts.pop("hotline_handover")
    rig.switch.dialplan.context_xml.pop("hotline_handover")
    rig.engine.switch_check.run()                                         # what a connect does
    assert "the switch has no context hotline_handover" in caplog.text
    rig.login("1001", "1002")
    job, agent_leg, customer = pv.bridged_callback()
    pv.api("POST", "/v1/calls/1001/hold", {})
    code, why = pv.refused("POST", "/v1/calls/1001/transfer", {"target": "agent:1002"})
    assert code == 503 and "hotline_handover" in why and "dialplan/handover.xml" in why, why
    assert rig.acd.store.agent("1002")["state"] == "available"           # never reserved
    assert rig.acd.store.agent("1001")["state"] == "in_call" and not pv.seen("CHANNEL_UNBRIDGE")
    assert pv.desk()["call"]["stage"] == "held"                          # still held, nothing moved
    assert not pv.seen("CHANNEL_HANGUP_COMPLETE", customer)
    pv.api("POST", "/v1/calls/1001/hangup", {})


def test_blind_transfer_to_an_agent_and_to_an_outside_number(pv):
    rig = pv.rig
    rig.login("1001", "1002")
    job, agent_leg, customer = pv.bridged_callback()
    # 1002 is reserved at once (checked before anything moves), rung, answers
    assert pv.api("POST", "/v1/calls/1001/transfer", {"target": "agent:1002"})["transfer"] == "agent:1002"
    assert rig.wait_state("1002", "in_call", timeout=20)
    assert rig.wait_state("1001", "wrap_up", timeout=10)
    # 1002 sends the customer on to an outside number: through the trunk gateway
    pv.pop.add(OUTSIDE, Behaviour("person", ring=0.2))
    code, why = pv.refused("POST", "/v1/calls/1002/transfer", {"target": f"external:{BLOCKED}"}, agent_id="1002")
    assert code == 403 and "dial-block" in why, why
    assert pv.api("POST", "/v1/calls/1002/transfer", {"target": f"external:{OUTSIDE}"},
                  agent_id="1002")["transfer"] == f"external:{OUTSIDE}"
    wait_for(lambda: OUTSIDE in pv.pop.phones and pv.pop.phones[OUTSIDE].calls, timeout=20)
    [out_leg] = pv.pop.phones[OUTSIDE].calls
    assert out_leg.name == f"sofia/external/{OUTSIDE}@trunk"
    assert rig.wait_state("1002", "wrap_up", timeout=10)
    wait_for(lambda: any(e[3] == customer and e[4] == out_leg.uuid for e in pv.seen("CHANNEL_BRIDGE")), timeout=10)
    out_leg.hangup("NORMAL_CLEARING")
    wait_for(lambda: (rig.engine.store.get(customer) or {}).get("tags") is not None
             and "provisional" not in rig.engine.store.get(customer)["tags"], timeout=20)
    cdr = rig.engine.store.get(customer)
    assert cdr["extra"]["callback_job"] == job["id"]
    assert pv.attempt(job)["result"] == "answered" and pv.attempt(job)["agent"] == "1001"


def test_preview_customer_sent_straight_to_an_outside_number_and_a_blocked_one_refused(pv):
    rig = pv.rig
    rig.login("1001")
    job, agent_leg, customer = pv.bridged_callback()
    code, why = pv.refused("POST", "/v1/calls/1001/transfer", {"target": f"external:{BLOCKED}"})
    assert code == 403 and "dial-block" in why, why
    code, why = pv.refused("POST", "/v1/calls/1001/transfer", {"target": "agent:1002"})   # logged out
    assert code == 409 and "logged_out" in why, why
    assert rig.acd.store.agent("1001")["state"] == "in_call" and not pv.seen("CHANNEL_UNBRIDGE")
    assert rig.acd.store.agent("1002")["state"] == "logged_out"
    pv.pop.add(OUTSIDE, Behaviour("person", ring=0.2, hangup_after=0.5))
    pv.api("POST", "/v1/calls/1001/transfer", {"target": f"external:{OUTSIDE}"})
    wait_for(lambda: OUTSIDE in pv.pop.phones and pv.pop.phones[OUTSIDE].calls, timeout=20)
    assert rig.wait_state("1001", "wrap_up", timeout=10)
    # the outside party hangs up after 0.5 s: the customer's call ends, one CDR
    wait_for(lambda: pv.seen("CHANNEL_HANGUP_COMPLETE", customer), timeout=20)
    wait_for(lambda: (rig.engine.store.get(customer) or {}).get("tags") is not None
             and "provisional" not in rig.engine.store.get(customer)["tags"], timeout=20)
    cdr = rig.engine.store.get(customer)
    assert cdr["extra"]["direction"] == "outbound" and cdr["extra"]["callback_job"] == job["id"]
    wait_for(lambda: pv.attempt(job), timeout=20)
    assert pv.attempt(job)["result"] == "answered"


def test_hang_up_from_the_desk_ends_both_legs_and_the_agent_wraps_up(pv):
    rig = pv.rig
    rig.login("1001")
    job, agent_leg, customer = pv.bridged_callback()
    pv.api("POST", "/v1/calls/1001/hold", {})
    code, why = pv.refused("POST", "/v1/calls/1001/consult", {"target": "agent:1002"})
    assert code == 409 and "preview call" in why, why
    assert pv.api("POST", "/v1/calls/1001/hangup", {}) == {"call": customer, "hangup": True}
    wait_for(lambda: pv.seen("CHANNEL_HANGUP_COMPLETE", customer) and pv.seen("CHANNEL_HANGUP_COMPLETE", agent_leg),
             timeout=10)
    assert rig.wait_state("1001", "wrap_up", timeout=10)
    wait_for(lambda: pv.attempt(job), timeout=20)
    assert pv.attempt(job)["result"] == "answered"
    wait_for(lambda: rig.engine.store.get(customer) is not None, timeout=15)
    extra = rig.engine.store.get(customer)["extra"]
    assert extra["callback_job"] == job["id"] and extra["agent_first"] and extra["result"] == "answered"
    assert extra["holds"] == 1 and extra["hold_seconds"] > 0
    # the wrap-up of the desk (its call is the agent's leg) lands on the customer's CDR
    assert pv.desk()["call"]["call"] == agent_leg
    saved = pv.api("POST", "/api/desk/wrapup", {"call": agent_leg, "disposition": "consultation"})
    assert saved["call"] == customer and saved["stored"] == "committed"
    assert rig.engine.store.get(customer)["extra"]["disposition"]["category"] == "consultation"
    code, _ = pv.refused("POST", "/v1/calls/1001/unhold", {})
    assert code == 404
