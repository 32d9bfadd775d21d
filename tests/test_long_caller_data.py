"""A caller name of 20,000 characters: the switch's CHANNEL_DATA for that call is far over 64 KB
(the name is in several headers, URL-encoded, 9 bytes a Chinese character). The engine must serve
the call with what is too long cut, and warn with the call's uuid (issue 17, section 4)."""
import logging

import gevent
import pytest

from engine.daemon import welcome_handler
from engine.esl.protocol import MAX_VALUE_BYTES, Parser
from tests.enginefix import SHORT_TONE, Rig
from tests.simfix import wait_for

LONG_NAME = "张" * 20_000


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path, welcome_handler(SHORT_TONE))
    yield r
    r.stop()


def test_a_20000_character_caller_name_is_served_and_warned_with_the_uuid(rig, caplog):
    caplog.set_level(logging.INFO)
    ch = rig.call("13800138000", LONG_NAME)
    assert ch.wait_hangup(timeout=10)
    assert "CHANNEL_ANSWER" in ch.events                      # served, not dropped
    wait_for(lambda: len(rig.cdrs()) == 1, timeout=10)
    (cdr,) = rig.cdrs()
    assert cdr["uuid"] == ch.uuid and cdr["caller_number"] == "13800138000"
    assert cdr["caller_name"] and LONG_NAME.startswith(cdr["caller_name"]) and len(cdr["caller_name"]) < 2000
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith(f"[{ch.uuid}]") and "Caller-Caller-ID-Name" in m for m in warnings), warnings


def test_parser_cuts_long_values_at_an_escape_boundary_and_keeps_the_stream():
    value = "%E5%BC%A0" * 30_000                      # 270 KB of one header
    data = (f"Content-Type: command/reply\nCaller-Caller-ID-Name: {value}\nUnique-ID: abc\n\n"
            "Content-Type: api/response\nContent-Length: 2\n\nok").encode()
    parser = Parser()
    msgs = []
    for i in range(0, len(data), 7000):               # arriving in pieces, as from a socket
        msgs += parser.feed(data[i:i + 7000])
    first, second = msgs
    cut = first.headers["Caller-Caller-ID-Name"]
    assert len(cut) <= MAX_VALUE_BYTES and value.startswith(cut) and len(cut) % 9 == 0
    assert first.headers["Unique-ID"] == "abc" and first.truncated == ("Caller-Caller-ID-Name",)
    assert second.body == b"ok" and second.truncated == ()


def test_a_json_body_over_the_limit_is_skipped_and_the_stream_stays_in_step():
    parser = Parser(max_body=1000)
    data = (b"Content-Type: text/event-json\nContent-Length: 5000\n\n" + b"x" * 5000
            + b"Content-Type: api/response\nContent-Length: 2\n\nok")
    msgs = []
    for i in range(0, len(data), 300):
        msgs += parser.feed(data[i:i + 300])
    skipped, reply = msgs
    assert skipped.body == b"" and skipped.truncated == ("body",)
    assert reply.body == b"ok" and reply.truncated == ()


def test_a_json_event_nested_too_deeply_is_a_protocol_error_not_a_crash():
    import pytest as _pytest
    from engine.esl.protocol import Event, Message, ProtocolError
    msg = Message({"Content-Type": "text/event-json"}, b"[" * 100_000 + b"]" * 100_000)
    with _pytest.raises(ProtocolError):
        Event.from_message(msg)


@pytest.mark.parametrize("chunk", [997, 5000, 65536, 10**7])
def test_a_plain_event_over_the_body_limit_arrives_with_its_values_cut(chunk):
    from engine.esl.protocol import Event
    name = "%E5%BC%A0" * 20_000                     # 180 KB each, in two headers
    inner = (f"Event-Name: CHANNEL_HANGUP_COMPLETE\nUnique-ID: u1\nCaller-Caller-ID-Name: {name}\n"
             f"variable_caller_id_name: {name}\nHangup-Cause: NORMAL_CLEARING\n\n").encode()
    data = (b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(inner) + inner
            + b"Content-Type: api/response\nContent-Length: 2\n\nok")
    parser = Parser(max_body=64 * 1024)
    msgs = []
    for i in range(0, len(data), chunk):
        msgs += parser.feed(data[i:i + chunk])
    event_msg, reply = msgs
    assert event_msg.truncated == ("Caller-Caller-ID-Name", "variable_caller_id_name")
    event = Event.from_message(event_msg)
    assert event.name == "CHANNEL_HANGUP_COMPLETE" and event["Hangup-Cause"] == "NORMAL_CLEARING"
    assert event["Caller-Caller-ID-Name"] == "张" * (MAX_VALUE_BYTES // 9)
    assert reply.body == b"ok"


def test_the_simulated_switch_refuses_an_invite_over_its_2_mb_as_sofia_sip_does():
    from engine.sim.switch import SipRefused, Switch
    switch = Switch()
    with pytest.raises(SipRefused, match="413"):
        switch.place_call("12345", "13800138000", "张" * 700_000)      # 2.1 MB of name
