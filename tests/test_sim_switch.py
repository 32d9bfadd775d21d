"""The simulated switch over real TCP, driven by our own ESL client as the engine would drive it."""
import os
import socket
import time

import gevent
import pytest
from gevent.event import AsyncResult

from engine.esl.connection import InboundConnection
from engine.esl.errors import CommandFailed
from engine.esl.outbound import OutboundServer
from engine.esl.protocol import Parser
from engine.sim.switch import Switch

DIALPLAN = os.path.join(os.path.dirname(__file__), "sim_dialplan")


@pytest.fixture
def switch():
    sw = Switch([DIALPLAN], password="ClueCon", hostname="simtest")
    sw.address = sw.start("127.0.0.1", 0)
    yield sw
    sw.stop()


def raw_session(address):
    """A plain socket + parser, to see the exact replies (texts, order, disconnects)."""
    sock = socket.create_connection(address, timeout=5)
    parser = Parser()
    pending = []

    def read(n=1, timeout=5):
        deadline = time.monotonic() + timeout
        while len(pending) < n:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = sock.recv(65536)
            if not data:
                break
            pending.extend(parser.feed(data))
        out = pending[:n]
        del pending[:n]
        return out

    def send(text):
        sock.sendall(text.encode())
    return sock, send, read


def test_auth_flow_and_error_texts(switch):
    sock, send, read = raw_session(switch.address)
    assert read()[0].content_type == "auth/request"
    send("api status\n\n")
    assert read()[0].reply_text == "-ERR command not found"
    send("auth ClueCon\n\n")
    assert read()[0].reply_text == "+OK accepted"
    send("api nosuchcommand\n\n")
    msg = read()[0]
    assert msg.content_type == "api/response" and msg.text() == "-ERR nosuchcommand Command not found!\n"
    send("api uuid_kill 00000000-0000-0000-0000-000000000000\n\n")
    assert read()[0].text() == "-ERR No such channel!\n"
    send("event plain NOT_AN_EVENT\n\n")
    assert read()[0].reply_text == "-ERR no keywords supplied"
    send("nosuchcommand-esl-verb\n\n")
    assert read()[0].reply_text == "-ERR command not found"
    send("exit\n\n")
    bye, notice = read(2)
    assert bye.reply_text == "+OK bye"
    assert notice.content_type == "text/disconnect-notice"
    assert notice.text().startswith("Disconnected, goodbye.")
    sock.close()


def test_wrong_password_gets_invalid_notice_and_close(switch):
    sock, send, read = raw_session(switch.address)
    read()
    send("auth WrongPassword\n\n")
    reply, notice = read(2)
    assert reply.reply_text == "-ERR invalid"
    assert notice.content_type == "text/disconnect-notice"
    sock.settimeout(2)
    assert sock.recv(100) == b""          # the switch closed the socket
    sock.close()


def collect_events(conn, names=None):
    seen = []
    conn.on("*", lambda ev: seen.append(ev) if names is None or ev.name in names else None)
    return seen


def test_originate_to_7000_gives_both_legs_in_fixture_order(switch):
    conn = InboundConnection(*switch.address, "ClueCon", events=("ALL",), reconnect=False)
    seen = collect_events(conn)
    conn.start(timeout=5)
    a_uuid = "11111111-2222-3333-4444-555555555555"
    out = conn.api("originate {origination_uuid=%s,origination_caller_id_number=15550000001,"
                   "origination_caller_id_name='ESL Fixture 1'}sofia/internal/7000@127.0.0.1:5080 &park()" % a_uuid)
    assert out == f"+OK {a_uuid}\n"
    deadline = time.monotonic() + 3
    while not any(e.name == "CHANNEL_PARK" and e.uuid == a_uuid for e in seen) and time.monotonic() < deadline:
        gevent.sleep(0.01)
    a_events = [e.name for e in seen if e.uuid == a_uuid]
    assert a_events == ["CHANNEL_OUTGOING", "CHANNEL_STATE", "CHANNEL_CREATE", "CHANNEL_ORIGINATE",
                        "CHANNEL_STATE", "CHANNEL_STATE", "CODEC", "CODEC", "CHANNEL_ANSWER",
                        "CHANNEL_CALLSTATE", "CALL_UPDATE", "CHANNEL_STATE", "CHANNEL_EXECUTE",
                        "CHANNEL_PARK"]
    b = [e for e in seen if e.uuid and e.uuid != a_uuid]
    b_uuid = b[0].uuid
    assert b[0].get("Channel-Name") == "sofia/external/15550000001@127.0.0.1"
    assert b[0].get("Call-Direction") == "inbound"
    assert [e.name for e in b] == [
        "CHANNEL_STATE", "CHANNEL_STATE", "CHANNEL_CREATE", "CHANNEL_CALLSTATE", "CHANNEL_STATE",
        "CHANNEL_STATE", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_EXECUTE",
        "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_EXECUTE", "CODEC", "CODEC", "CHANNEL_PROGRESS_MEDIA",
        "CHANNEL_CALLSTATE", "CHANNEL_ANSWER", "CHANNEL_CALLSTATE", "CHANNEL_EXECUTE_COMPLETE",
        "CHANNEL_EXECUTE", "CHANNEL_PARK"]
    # header names and order of a channel event follow the captured template
    ex = next(e for e in b if e.name == "CHANNEL_EXECUTE")
    names = ex.header_names()
    assert names[:13] == ["Event-Name", "Core-UUID", "FreeSWITCH-Hostname", "FreeSWITCH-Switchname",
                          "FreeSWITCH-IPv4", "FreeSWITCH-IPv6", "Event-Date-Local", "Event-Date-GMT",
                          "Event-Date-Timestamp", "Event-Calling-File", "Event-Calling-Function",
                          "Event-Calling-Line-Number", "Event-Sequence"]
    assert names[-3:] == ["Application", "Application-Data", "Application-UUID"]
    assert ex.get("Caller-Caller-ID-Name") == "ESL Fixture 1"

    seen.clear()
    assert conn.api(f"uuid_kill {a_uuid} NORMAL_CLEARING") == "+OK\n"
    assert switch.channels.get(b_uuid) is None or switch.channels[b_uuid].wait_hangup(3)
    gevent.sleep(0.05)
    assert [e.name for e in seen if e.uuid == a_uuid] == [
        "CHANNEL_HANGUP", "CHANNEL_UNPARK", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_STATE",
        "CHANNEL_CALLSTATE", "CHANNEL_STATE", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY",
        "CHANNEL_STATE"]
    cdr = next(e for e in seen if e.name == "CHANNEL_HANGUP_COMPLETE" and e.uuid == b_uuid)
    for var in ("start_stamp", "answer_stamp", "end_stamp", "start_epoch", "answer_epoch", "end_epoch",
                "duration", "billsec", "hangup_cause", "sip_hangup_disposition"):
        assert cdr.get("variable_" + var) is not None, var
    assert cdr.get("variable_sip_hangup_disposition") == "recv_bye"
    assert conn.api(f"uuid_kill {a_uuid}", check=False) == "-ERR No such channel!\n"
    conn.stop()


def test_bgapi_job_and_api_errors(switch):
    conn = InboundConnection(*switch.address, "ClueCon", events=("BACKGROUND_JOB",), reconnect=False)
    conn.start(timeout=5)
    job = conn.bgapi("nosuchcommand arg1")
    assert job.get(timeout=3) == "-ERR nosuchcommand Command not found!\n"
    assert conn.bgapi("status").get(timeout=3).startswith("UP ")
    with pytest.raises(CommandFailed):
        conn.api("uuid_getvar 00000000-0000-0000-0000-000000000000 x")
    conn.stop()


def test_trunk_call_over_outbound_socket_answer_play_digits_hangup(switch):
    results = AsyncResult()

    def handler(session):
        try:
            channel = session.handshake()
            info = {"uuid": session.uuid, "direction": channel.get("Call-Direction"),
                    "cid": channel.get("Caller-Caller-ID-Number")}
            seen = []
            session.on("*", lambda ev: seen.append(ev))
            session.execute("answer", timeout=3)
            t0 = time.monotonic()
            done = session.execute("playback", "tone_stream://%(150,50,440);loops=2", timeout=3)
            info["play_seconds"] = time.monotonic() - t0
            info["play_response"] = done.get("Application-Response")
            gevent.spawn_later(0.05, switch.channels[session.uuid].press, "42#")
            done = session.execute("play_and_get_digits",
                                   "1 4 1 2000 # silence_stream://2000 silence_stream://0 my_digits \\d+ 1000",
                                   timeout=5)
            info["pagd_var"] = done.get("variable_my_digits")
            info["getvar"] = session.getvar("my_digits")
            info["events"] = [e.name for e in seen]
            session.hangup()
            deadline = time.monotonic() + 3
            while session.hangup_event is None and time.monotonic() < deadline:
                gevent.sleep(0.01)
            info["hangup_complete"] = session.hangup_event is not None
            # `linger` without a time: the switch keeps the socket until we say exit (fixture 05)
            info["alive_before_exit"] = switch.channels.get(session.uuid) is not None
            session.exit()
            results.set(info)
        except Exception as exc:
            results.set_exception(exc)

    server = OutboundServer("127.0.0.1", 0, handler).start()
    switch.global_vars["engine_socket"] = f"127.0.0.1:{server.address[1]}"
    ch = switch.place_call("12345", "13800138000", "Caller")
    info = results.get(timeout=10)
    server.stop()
    assert info["uuid"] == ch.uuid and info["direction"] == "inbound" and info["cid"] == "13800138000"
    assert 0.38 <= info["play_seconds"] < 0.8        # two loops of 150+50 ms, real time
    assert info["play_response"] == "FILE PLAYED"
    assert "PLAYBACK_START" in info["events"] and "PLAYBACK_STOP" in info["events"]
    assert "CHANNEL_CALLSTATE" not in info["events"]   # myevents leaves it out (fixture 05)
    assert info["pagd_var"] == "42" and info["getvar"] == "42"
    assert info["hangup_complete"] and info["alive_before_exit"]
    assert ch.wait_hangup(3)
    assert ch.hangup_cause == "NORMAL_CLEARING"
    assert ch.events[-2:] == ["CHANNEL_DESTROY", "CHANNEL_STATE"]
    # park without media takes `answer` and drops it; later messages come back as PRIVATE_COMMAND
    # (playback, play_and_get_digits, hangup), as in fixtures 05/05b
    assert ch.events.count("PRIVATE_COMMAND") == 3
    answered = ch.events.index("CHANNEL_ANSWER")
    assert "PRIVATE_COMMAND" not in ch.events[:answered + 3]


def test_far_end_hangup_mid_playback_ends_app_and_sends_linger_notice(switch):
    results = AsyncResult()

    def handler(session):
        try:
            session.handshake()
            notices = []
            orig = session.on_disconnect_notice

            def notice(msg):
                notices.append(dict(msg.headers))
                orig(msg)
            session.on_disconnect_notice = notice
            seen = []
            session.on("*", lambda ev: seen.append(ev.name))
            session.execute("answer", timeout=3)
            gevent.spawn_later(0.2, switch.channels[session.uuid].hangup)
            t0 = time.monotonic()
            try:
                session.execute("playback", "silence_stream://5000", timeout=5)
                outcome = "completed"
            except Exception as exc:
                outcome = type(exc).__name__
            elapsed = time.monotonic() - t0
            deadline = time.monotonic() + 2
            while not notices and time.monotonic() < deadline:
                gevent.sleep(0.01)
            results.set((outcome, elapsed, seen, notices))
        except Exception as exc:
            results.set_exception(exc)

    server = OutboundServer("127.0.0.1", 0, handler).start()
    switch.global_vars["engine_socket"] = f"127.0.0.1:{server.address[1]}"
    ch = switch.place_call("12345", "13800138001")
    outcome, elapsed, seen, notices = results.get(timeout=10)
    server.stop()
    assert elapsed < 1.0
    assert outcome in ("completed", "ChannelGone")
    tail = seen[seen.index("CHANNEL_HANGUP"):]
    assert tail[:6] == ["CHANNEL_HANGUP", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_UNPARK",
                        "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_STATE", "CHANNEL_STATE"] or \
        "CHANNEL_HANGUP_COMPLETE" in tail
    assert notices and notices[0]["Content-Disposition"] == "linger"
    assert notices[0]["Controlled-Session-UUID"] == ch.uuid
    assert ch.wait_hangup(3)
    assert ch.variables["sip_hangup_disposition"] == "recv_bye"


def test_engine_closing_the_socket_ends_the_socket_app(switch):
    def handler(session):
        session.handshake()
        session.execute("answer", timeout=3)
        session.exit()                          # the engine lets go of the call

    server = OutboundServer("127.0.0.1", 0, handler).start()
    switch.global_vars["engine_socket"] = f"127.0.0.1:{server.address[1]}"
    ch = switch.place_call("12345", "13800138002")
    assert ch.wait_hangup(5)
    server.stop()
    assert ch.hangup_cause == "NORMAL_CLEARING"
    assert ch.events.index("CHANNEL_UNPARK") < ch.events.index("CHANNEL_HANGUP")


def test_filters_pass_events_matching_any_filter(switch):
    conn = InboundConnection(*switch.address, "ClueCon", events=("CHANNEL_PARK",), reconnect=False)
    seen = []
    conn.on("*", seen.append)
    conn.start(timeout=5)
    assert conn.command("filter Caller-Caller-ID-Number 13800000001").reply_text == \
        "+OK filter added. [Caller-Caller-ID-Number]=[13800000001]"
    conn.command("filter Caller-Caller-ID-Number 13800000003")
    calls = [switch.place_call("7000", f"1380000000{n}") for n in (1, 2, 3)]
    deadline = time.monotonic() + 3
    while len(seen) < 2 and time.monotonic() < deadline:
        gevent.sleep(0.01)
    gevent.sleep(0.1)
    assert sorted(e.get("Caller-Caller-ID-Number") for e in seen) == ["13800000001", "13800000003"]
    assert {e.uuid for e in seen} == {calls[0].uuid, calls[2].uuid}
    conn.stop()


def test_listener_that_stops_reading_is_dropped(switch):
    switch.listener_queue_max = 200
    sock, send, read = raw_session(switch.address)
    read()
    send("auth ClueCon\n\n")
    read()
    send("event plain ALL\n\n")
    assert read()[0].reply_text == "+OK event listener enabled plain"
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    for _ in range(6000):                   # never read: the socket buffers fill, then the queue
        switch.heartbeat()
        if not switch.listeners:
            break
        gevent.sleep(0)
    assert switch.listeners == []           # dropped after losing 500 events
    other = InboundConnection(*switch.address, "ClueCon", reconnect=False)
    other.start(timeout=3)
    assert other.api("status").startswith("UP ")
    other.stop()
    sock.close()


def test_outbound_session_with_json_events_as_fixture_05b(switch):
    results = AsyncResult()

    def handler(session):
        try:
            session.handshake(linger=False)
            seen = []
            session.on("*", seen.append)
            session.execute("answer", timeout=3)
            gevent.spawn_later(0.35, switch.channels[session.uuid].press, "7")   # after the prompt
            done = session.execute("play_and_get_digits",
                                   "1 1 1 2000 # tone_stream://%(100,50,440);loops=1 silence_stream://250 "
                                   "esl_digits \\d 1000", timeout=5)
            results.set((seen, done, session.getvar("esl_digits")))
            session.hangup()
        except Exception as exc:
            results.set_exception(exc)

    server = OutboundServer("127.0.0.1", 0, handler, event_format="json").start()
    switch.global_vars["engine_socket"] = f"127.0.0.1:{server.address[1]}"
    ch = switch.place_call("12345", "15550000052")
    seen, done, digits = results.get(timeout=10)
    assert ch.wait_hangup(3)
    server.stop()
    assert all(e.format == "json" for e in seen)
    names = [e.name for e in seen]
    assert names[names.index("PLAYBACK_START"):] == ["PLAYBACK_START", "PLAYBACK_STOP", "DTMF",
                                                     "CHANNEL_EXECUTE_COMPLETE"]
    assert done.get("variable_esl_digits") == "7" and digits == "7"
    assert done.get("Application-Response") == "_none_"


def test_hostile_and_chinese_caller_names_stay_values(switch):
    conn = InboundConnection(*switch.address, "ClueCon", events=("CHANNEL_PARK",), reconnect=False)
    seen = []
    conn.on("*", seen.append)
    conn.start(timeout=5)
    hostile = "x\nEvil-Header: yes\n\nContent-Length: 5"
    switch.place_call("7000", "13800138003", hostile, variables={"note": "张三 a},b{c\r\n"})
    switch.place_call("7000", "13800138004", "张三")
    deadline = time.monotonic() + 3
    while len(seen) < 2 and time.monotonic() < deadline:
        gevent.sleep(0.01)
    first, second = sorted(seen, key=lambda e: e.get("Caller-Caller-ID-Number"))
    assert "Evil-Header" not in first.header_names()
    assert first.get("Caller-Caller-ID-Name") == hostile
    assert first.get("variable_note") == "张三 a},b{c\r\n"
    assert second.get("Caller-Caller-ID-Name") == "张三"
    assert conn.api(f"uuid_getvar {first.uuid} note") == "张三 a},b{c\r\n"
    conn.stop()
