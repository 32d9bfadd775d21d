"""Originate to registered phones (agents), its failures, the bridge app, barge-in, bad clients."""
import gc
import os
import socket
import time

import gevent
import greenlet
import pytest

from engine.esl.connection import InboundConnection
from engine.sim.switch import Switch
from tests.simfix import DIALPLAN, wait_for


class Phone:
    """A desk phone: answers after `delay`, rejects, or lets it ring."""

    def __init__(self, action="answer", delay=0.05):
        self.action, self.delay, self.rang = action, delay, []

    def on_ring(self, channel):
        self.rang.append(channel)
        gevent.sleep(self.delay)
        if self.action == "answer":
            channel.answer()
        elif self.action == "reject":
            channel.hangup("CALL_REJECTED")


def test_originate_to_registered_agent_phone(switch):
    phone = Phone()
    switch.register("1001", phone)
    seen = []
    switch.subscribe(lambda pairs, body: seen.append(dict(pairs)))
    out = switch.api("originate {origination_uuid=agent-leg-1,hotline_agent=1001,"
                     "origination_caller_id_number=12345}user/1001 &park()")
    assert out == "+OK agent-leg-1\n"
    ch = switch.channels["agent-leg-1"]
    assert phone.rang == [ch] and ch.answered and ch.name.startswith("sofia/internal/1001@")
    assert ch.variables["hotline_agent"] == "1001"
    wait_for(lambda: ch.parked)
    names = [e["Event-Name"] for e in seen if e.get("Unique-ID") == "agent-leg-1"]
    # as fixture 10 #40-#60 (the API-originated user/1005 leg): the user leg's PRESENCE_IN at
    # CS_ROUTING and its answer, CHANNEL_OUTGOING again once answered, then the flip of its caller ID
    # (CALL_UPDATE RECV) as it gets its `&park()`
    assert names[:10] == ["CHANNEL_OUTGOING", "CHANNEL_STATE", "CHANNEL_CREATE", "CHANNEL_ORIGINATE",
                          "CHANNEL_STATE", "PRESENCE_IN", "CHANNEL_STATE", "CHANNEL_PROGRESS",
                          "CHANNEL_CALLSTATE", "CODEC"]
    assert names[names.index("CHANNEL_ANSWER"):] == [
        "CHANNEL_ANSWER", "PRESENCE_IN", "CHANNEL_CALLSTATE", "CHANNEL_OUTGOING", "CALL_UPDATE",
        "CHANNEL_STATE", "CHANNEL_EXECUTE", "CHANNEL_PARK"]
    flip = next(e for e in seen if e.get("Unique-ID") == "agent-leg-1" and e["Event-Name"] == "CALL_UPDATE")
    assert (flip["Caller-Caller-ID-Name"], flip["Caller-Caller-ID-Number"], flip["Caller-Callee-ID-Number"]) \
        == ("Outbound Call", "1001", "12345")
    ch.hangup()                                   # the agent hangs up the handset
    assert ch.wait_hangup(3) and ch.variables["sip_hangup_disposition"] == "recv_bye"


def test_originate_failures(switch):
    assert switch.api("originate user/1009 &park()") == "-ERR USER_NOT_REGISTERED\n"
    switch.register("1002", Phone("reject"))
    assert switch.api("originate user/1002 &park()") == "-ERR CALL_REJECTED\n"
    switch.register("1003", Phone("ring"))
    t0 = time.monotonic()
    assert switch.api("originate {originate_timeout=1}user/1003 &park()") == "-ERR NO_ANSWER\n"
    assert 0.9 <= time.monotonic() - t0 < 2
    switch.unregister("1002")
    assert switch.api("originate user/1002 &park()") == "-ERR USER_NOT_REGISTERED\n"
    assert switch.api("originate error/USER_BUSY &park()") == "-ERR USER_BUSY\n"
    wait_for(lambda: not switch.channels)


def test_bridge_app_from_queue_to_agent(switch):
    switch.register("1001", Phone(delay=0.1))
    caller = switch.place_call("7000", "13800000001")
    wait_for(lambda: caller.parked)
    caller.queue_message({"app": "bridge", "arg": "{hotline_queue=q1}user/1001"})
    wait_for(lambda: caller.bridged_to is not None)
    agent = switch.channels[caller.bridged_to]
    assert agent.bridged_to == caller.uuid
    assert "CHANNEL_BRIDGE" in caller.events
    agent.hangup()                               # the caller stays (survey, wrap-up) ...
    assert agent.wait_hangup(3)
    wait_for(lambda: caller.parked and caller.bridged_to is None)
    assert caller.alive and "CHANNEL_UNBRIDGE" in caller.events
    switch.register("1002", Phone(delay=0.05))   # ... unless it asked for hangup_after_bridge
    caller.queue_message({"app": "set", "arg": "hangup_after_bridge=true"})
    caller.queue_message({"app": "bridge", "arg": "user/1002"})
    wait_for(lambda: caller.bridged_to is not None)
    switch.channels[caller.bridged_to].hangup()
    assert caller.wait_hangup(3)


def test_uuid_break_stops_playback_and_keeps_typeahead(switch):
    ch = switch.place_call("7000", "13800000002")
    wait_for(lambda: ch.parked)
    ch.queue_message({"app": "playback", "arg": "silence_stream://5000"})
    wait_for(lambda: "PLAYBACK_START" in ch.events)
    ch.press("5")
    t0 = time.monotonic()
    assert switch.api(f"uuid_break {ch.uuid} all") == "+OK\n"
    wait_for(lambda: "PLAYBACK_STOP" in ch.events)
    assert time.monotonic() - t0 < 0.5
    assert list(ch.dtmf) == ["5"]                 # digits pressed during the prompt stay queued
    ch.queue_message({"app": "read", "arg": "1 1 silence_stream://100 choice 1000 #"})
    wait_for(lambda: ch.variables.get("choice") == "5")


def test_bad_client_is_dropped_and_nothing_leaks(switch):
    before = len(switch.server.sessions)
    for payload in (b"auth ClueCon\n\nthis is not esl\nno colon here\n\n", b"\xff" * 70000):
        s = socket.create_connection(switch.address)
        s.recv(100)
        s.sendall(payload)
        s.settimeout(3)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
    wait_for(lambda: len(switch.server.sessions) == before)
    conn = InboundConnection(*switch.address, "ClueCon", reconnect=False)
    conn.start(timeout=3)
    assert conn.api("status").startswith("UP ")      # the server still serves
    conn.stop()


def test_stop_leaves_no_channel_or_greenlet():
    sw = Switch([DIALPLAN])
    sw.start("127.0.0.1", 0)
    calls = [sw.place_call("7000", f"1380000000{n}") for n in range(5)]
    wait_for(lambda: all(c.parked for c in calls))
    sw.stop()
    assert not sw.channels and all(c.wait_hangup(0) for c in calls)
    gevent.sleep(0.05)
    assert sim_greenlets() == []


def sim_greenlets():
    """Greenlets that are still running code of engine/sim (any frame of their stack)."""
    found = []
    for g in gc.get_objects():
        if not isinstance(g, greenlet.greenlet) or g.dead or g is greenlet.getcurrent():
            continue
        frame = g.gr_frame
        while frame is not None:
            if "/engine/sim/" in frame.f_code.co_filename:
                found.append(g)
                break
            frame = frame.f_back
    return found


def test_sim_greenlets_sees_a_parked_channel():
    sw = Switch([DIALPLAN])
    sw.start("127.0.0.1", 0)
    ch = sw.place_call("7000", "13800000009")
    wait_for(lambda: ch.parked)
    assert sim_greenlets()                       # the check above can fail
    sw.stop()


def test_shipped_dialplans_load(tmp_path):
    """The repository's dialplan templates use the same subset (multi-condition, ${var} fields)."""
    from engine.sim.dialplan import Dialplan
    repo = os.path.join(os.path.dirname(__file__), "..", "dialplans")
    if not os.path.isdir(repo):
        pytest.skip("no dialplans/ in this checkout")
    for name in os.listdir(repo):
        text = open(os.path.join(repo, name), encoding="utf-8").read()
        text = text.replace("{%- for did in dids %}", "").replace("{%- endfor %}", "")
        text = text.replace("{{ loop.index }}", "1").replace("{{ did.regex }}", "^12345$")
        text = text.replace("{{ socket_data }}", "127.0.0.1:1 async full")
        text = text.replace("{%- if standby_socket_data %}", "<!--").replace("{%- endif %}", "-->")
        text = text.replace("{{ unavailable_prompt }}", "silence_stream://100")
        (tmp_path / name).write_text(text, encoding="utf-8")
    plan = Dialplan([str(tmp_path)])
    assert {"public", "agents", "hotline_conference"} <= set(plan.contexts)
    sw = Switch([str(tmp_path)])
    ch = sw.place_call("12345", "13800000011")
    assert ch.wait_hangup(5)                     # nothing listens on port 1: the socket app fails
    # ... and the dialplan goes on to the fallback (mod_event_socket's socket_function returns)
    assert ch.variables["hotline_fallback"] == "engine_down" and ch.answered
    assert ch.variables["last_app"] == "hangup" and ch.hangup_cause == "NORMAL_TEMPORARY_FAILURE"
    other = sw.place_call("99999999", "13800000012")  # no extension: refused from routing
    assert other.wait_hangup(3)
    assert other.hangup_cause == "NO_ROUTE_DESTINATION" and "CHANNEL_EXECUTE" not in other.events
    sw.stop()


def test_early_media_apps_and_hangup_app(switch):
    ch = switch.place_call("7003", "13800000013")
    assert ch.wait_hangup(3)
    ev = ch.events
    assert ev.index("CHANNEL_PROGRESS") < ev.index("CHANNEL_PROGRESS_MEDIA") < ev.index("CHANNEL_ANSWER")
    assert ev.count("CHANNEL_PROGRESS_MEDIA") == 1          # answer after pre_answer: no second one
    assert ch.variables["hotline_flow"] == "7003"            # $1 from the condition's capture
    assert ch.hangup_cause == "USER_BUSY" and ch.variables["hangup_cause_q850"] == "17"
    assert ch.variables["sip_hangup_disposition"] == "send_bye"
    assert int(ch.variables["answer_uepoch"]) - int(ch.variables["start_uepoch"]) >= 50_000


def test_originate_loopback_and_to_an_extension(switch):
    out = switch.api("originate {origination_caller_id_number=8001}loopback/7000/public &park()")
    a = switch.channels[out.split()[1]]
    assert a.name == "loopback/7000-a" and a.answered
    b = a.sip_peer
    assert b.name == "loopback/7000-b" and b.context == "public"
    switch.register("1001", Phone())
    out = switch.api("originate {origination_uuid=leg-ext}user/1001 7000 XML public")
    assert out == "+OK leg-ext\n"
    leg = switch.channels["leg-ext"]
    wait_for(lambda: leg.parked)                   # the answered leg runs extension 7000 (answer, park)
    assert leg.context == "public" and "CHANNEL_PARK" in leg.events
    assert switch.api("originate").startswith("-USAGE")


def test_supervisor_phone_listens_to_an_agent_with_the_shipped_agents_dialplan(tmp_path):
    repo = os.path.join(os.path.dirname(__file__), "..", "dialplans", "agents.xml")
    if not os.path.exists(repo):
        pytest.skip("no dialplans/agents.xml in this checkout")
    (tmp_path / "agents.xml").write_text(open(repo, encoding="utf-8").read(), encoding="utf-8")
    (tmp_path / "public.xml").write_text(open(os.path.join(DIALPLAN, "public.xml"), encoding="utf-8").read(),
                                         encoding="utf-8")
    sw = Switch([str(tmp_path)])
    sw.start("127.0.0.1", 0)
    try:
        sw.register("1001", Phone())
        caller = sw.place_call("7000", "13800000020")
        wait_for(lambda: caller.parked)
        caller.queue_message({"app": "bridge", "arg": "user/1001"})
        wait_for(lambda: caller.bridged_to is not None)
        agent_leg = sw.channels[caller.bridged_to]
        nobody = sw.place_call("*01001", "1009", context="agents", profile="internal")
        sup = sw.place_call("*01001", "1008", context="agents", profile="internal",
                            variables={"hotline_role": "supervisor"})
        assert nobody.wait_hangup(3)                      # not a supervisor: *0 is just digits
        wait_for(lambda: "MEDIA_BUG_START" in agent_leg.events)
        assert sup.name == "sofia/internal/1008@127.0.0.1" and sup.answered
        assert sup.variables["eavesdrop_enable_dtmf"] == "true"
        sup.hangup()
        wait_for(lambda: "MEDIA_BUG_STOP" in agent_leg.events)
    finally:
        sw.stop()
