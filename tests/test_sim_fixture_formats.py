"""Formats the simulator must write as the switch does: consumed private events, `sofia status`.

A broadcast (uuid_broadcast, uuid_hold's music) is made as a COMMAND event when queued and keeps
that block when fired as PRIVATE_COMMAND (fixtures 01, 08, 09, 09b, 10); a sendmsg is the client's
command itself: `Command:` first, its headers and body, one Event-Name (fixtures 04, 05, 07, 12).
"""
import json
import os
import re

import pytest

from engine.esl.protocol import Event, Parser
from engine.sim.switch import Switch
from engine.sim.transcript import Record, default_fixture_dir, read_transcript
from tests.simfix import wait_for

DIALPLAN = os.path.join(os.path.dirname(__file__), "sim_dialplan")


@pytest.fixture
def sw():
    sw = Switch(dialplan_dirs=[DIALPLAN])
    sw.start("127.0.0.1", 0)
    yield sw
    sw.stop()


def _parked_call(switch):
    """A loopback SIP call to 7000 (answer, park), as in the fixtures: the inbound leg, parked."""
    assert switch.api("originate sofia/internal/7000@127.0.0.1:5080 &park()").startswith("+OK")
    wait_for(lambda: any(c.direction == "inbound" and c.parked for c in switch.channels.values()), timeout=5)
    return next(c for c in switch.channels.values() if c.direction == "inbound")


def test_a_consumed_broadcast_keeps_its_command_block_then_is_named_private_command(sw):
    switch = sw
    seen = []
    switch.subscribe(lambda pairs, body=None: seen.append(pairs))
    ch = _parked_call(switch)
    assert switch.api(f"uuid_broadcast {ch.uuid} tone_stream://%(100,0,440) aleg").startswith("+OK")
    wait_for(lambda: any(dict(p).get("Event-Name") == "PRIVATE_COMMAND" for p in seen), timeout=5)
    pairs = next(p for p in seen if dict(p).get("Event-Name") == "PRIVATE_COMMAND")
    names = [k for k, _ in pairs]
    assert names[0] == "Event-Name" and pairs[0][1] == "COMMAND"
    assert dict(pairs[:13])["Event-Calling-Function"] == "switch_ivr_broadcast"
    second = names.index("Event-Name", 1)
    assert names[13:second] == ["call-command", "execute-app-name", "execute-app-arg", "event-lock", "lead-frames"]
    assert pairs[second][1] == "PRIVATE_COMMAND"
    # both encodings carry both names; a reader takes the last one
    for ev in switch_events(switch, pairs):
        assert ev.name == "PRIVATE_COMMAND"


def switch_events(switch, pairs):
    from engine.sim.events import SimEvent
    sim = SimEvent("PRIVATE_COMMAND", "", None, pairs)
    for raw in (sim.plain(), sim.json()):
        msg = Parser().feed(raw)[0]
        text = msg.body.decode()
        assert text.count("Event-Name") == 2
        yield Event.from_message(msg)
    assert json.loads(Parser().feed(sim.json())[0].body)["Event-Name"] == "PRIVATE_COMMAND"


def test_a_client_may_send_content_length_in_lower_case_as_mod_event_socket_reads_it():
    data = (b"sendmsg\ncall-command: execute\nexecute-app-name: playback\ncontent-type: text/plain\n"
            b"content-length: 18\n\nlocal_stream://mohapi uuid_break x all\n\n")
    msgs = Parser(commands=True).feed(data)
    assert [m.line for m in msgs] == ["sendmsg", "api uuid_break x all"]
    assert msgs[0].body == b"local_stream://moh"


def _fixture_06_reply(command):
    items = [r for r in read_transcript(os.path.join(default_fixture_dir(), "06-api-json-dump-errors.txt"))
             if isinstance(r, Record) and r.conn == "control"]
    for i, r in enumerate(items):
        if r.direction == "C->S" and r.data == f"api {command}\n\n".encode():
            return Parser().feed(items[i + 1].data)[0].text()
    raise AssertionError(command)


def test_sofia_status_tables_are_the_switchs_byte_for_byte(sw):
    """Fixture 06: two loopback calls up; `sofia status` and `sofia status profile external`.
    Only the calls-in counter is the capture's history (19 calls since that switch started)."""
    switch = sw
    _parked_call(switch)
    _parked_call(switch)
    assert switch.api("sofia status") == _fixture_06_reply("sofia status")
    expected = re.sub(r"(CALLS-IN         \t)19\n", r"\g<1>2\n", _fixture_06_reply("sofia status profile external"))
    assert switch.api("sofia status profile external") == expected
    assert switch.api("sofia status profile nosuch") == "Invalid Profile!\n"
