"""ESL framing against the bytes a real FreeSWITCH sent (our copy of the transcripts: tests/fixtures/esl)."""
import glob
import json
import os

import pytest

from engine.esl.protocol import Event, Parser, ProtocolError, encode_command, encode_message
from engine.sim.transcript import default_fixture_dir, records, stream

FIXTURES = default_fixture_dir()


def fixture(name):
    return os.path.join(FIXTURES, name)


@pytest.mark.parametrize("chunk", [1, 7, 1000, 1 << 20])
def test_every_fixture_message_parses_at_any_split(chunk):
    for path in sorted(glob.glob(os.path.join(FIXTURES, "0*.txt"))):
        conns = {r.conn for r in records(path, direction="S->C")}
        for conn in conns:
            expected = records(path, conn, "S->C")
            data = stream(path, conn)
            parser = Parser()
            msgs = []
            for i in range(0, len(data), chunk):
                msgs.extend(parser.feed(data[i:i + chunk]))
            assert len(msgs) == len(expected), (path, conn)
            for msg, rec in zip(msgs, expected):
                assert rec.data.endswith(msg.body)


def test_plain_event_values_decoded_per_header():
    msgs = Parser().feed(stream(fixture("01-answer-playback-dtmf-hangup.txt"), "events-plain"))
    events = [Event.from_message(m) for m in msgs if m.content_type == "text/event-plain"]
    dtmf = [e for e in events if e.name == "DTMF"]
    assert [e["DTMF-Digit"] for e in dtmf] == ["1", "2", "3", "4", "#"]
    hup = next(e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE")
    assert hup["Hangup-Cause"] == "NORMAL_CLEARING"
    assert hup.get("variable_start_uepoch", "").isdigit()


def test_background_job_body_is_kept_apart_from_headers():
    msgs = Parser().feed(stream(fixture("06-api-json-dump-errors.txt"), "control"))
    jobs = [Event.from_message(m) for m in msgs if m.content_type == "text/event-plain"]
    job = next(e for e in jobs if e.name == "BACKGROUND_JOB" and e.get("Job-Command") == "nosuchcommand")
    assert job.body == "-ERR nosuchcommand Command not found!\n"
    assert "+OK Job-UUID" not in " ".join(job.header_names())


def test_json_events_match_plain_events():
    plain = [Event.from_message(m) for m in Parser().feed(stream(fixture("01-answer-playback-dtmf-hangup.txt"), "events-plain"))
             if m.content_type == "text/event-plain"]
    js = [Event.from_message(m) for m in Parser().feed(stream(fixture("01-answer-playback-dtmf-hangup.json-events.txt"), "events-json"))
          if m.content_type == "text/event-json"]
    assert [e.name for e in js if e.name == "DTMF"] == ["DTMF"] * 5
    assert [e["DTMF-Digit"] for e in js if e.name == "DTMF"] == [e["DTMF-Digit"] for e in plain if e.name == "DTMF"]


def test_encoded_newline_cannot_forge_a_header():
    body = "Event-Name: CUSTOM\nvariable_x: line1%0AInjected-Header: yes\n\n"
    event = Event.from_plain_text(body)
    assert event["variable_x"] == "line1\nInjected-Header: yes"
    assert "Injected-Header" not in event


def test_json_event_body_and_non_string_values():
    data = json.dumps({"Event-Name": "BACKGROUND_JOB", "Job-UUID": "j1", "_body": "+OK done\n", "n": 3}).encode()
    msg = Parser().feed(encode_message({"Content-Length": len(data), "Content-Type": "text/event-json"}, data))[0]
    event = Event.from_message(msg)
    assert event.body == "+OK done\n" and event["Job-UUID"] == "j1" and event["n"] == "3"


@pytest.mark.parametrize("garbage", [
    b"this is not esl\n\n",
    b"Content-Type: api/response\nContent-Length: abc\n\n",
    b"Content-Type: api/response\nContent-Length: 99999999999\n\n",
    b": no name\n\n",
])
def test_garbage_raises_protocol_error(garbage):
    with pytest.raises(ProtocolError):
        Parser().feed(garbage)


def test_endless_header_block_is_refused():
    # over max_header a block is read line by line and cut (tests/test_long_caller_data.py);
    # over `absurd` it is no switch's
    parser = Parser(max_header=1024, absurd=8192)
    with pytest.raises(ProtocolError):
        for _ in range(100):
            parser.feed(b"X-Long: " + b"a" * 100 + b"\n")


def test_many_messages_in_one_read_and_empty_values():
    data = (b"Content-Type: command/reply\nReply-Text: +OK\n\n" * 3
            + b"Content-Type: log/data\nContent-Length: 2\nUser-Data: \n\nhi")
    msgs = Parser().feed(data)
    assert [m.content_type for m in msgs] == ["command/reply"] * 3 + ["log/data"]
    assert msgs[-1].headers["User-Data"] == "" and msgs[-1].body == b"hi"


def test_encode_command_refuses_line_breaks():
    with pytest.raises(ValueError):
        encode_command("api status\nexit")
    with pytest.raises(ValueError):
        encode_command("sendmsg", {"execute-app-arg": "x\ncall-command: hangup"})
    assert encode_command("sendmsg", {"a": "b"}, "body") == b"sendmsg\na: b\nContent-Length: 4\n\nbody"


def test_repeated_header_last_wins_lazily_and_after_split():
    # The real switch repeats Event-Name when it renames an event (fixture 01, PRIVATE_COMMAND).
    block = "Event-Name: COMMAND\nCore-UUID: x\nEvent-Name: PRIVATE_COMMAND\nUnique-ID: u1"
    ev = Event.from_plain_text(block + "\n\n")
    assert ev.name == "PRIVATE_COMMAND" and ev.uuid == "u1"
    assert dict(ev.headers())["Event-Name"] == "PRIVATE_COMMAND"
