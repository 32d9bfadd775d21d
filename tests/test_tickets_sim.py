"""Tickets from real calls: the shipped IVR flows over the simulator write CDRs (and outbox rows);
the consumer turns them into tickets exactly once, across engine restarts (each call below runs
on a freshly started engine over the same database)."""
import datetime

import gevent

from engine.tickets import Consumer, load_config
from tests.enginefix import Rig
from tests.test_ivr_sim import PROMPT_CACHE, SHANGHAI, business, flows  # noqa: F401 - fixtures

WHEN = datetime.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)


def one_call(tmp_path, flows, drive):
    """A call on a newly started engine; returns its CDR once stored. The engine stops after."""
    rig = Rig(tmp_path, flows_dir=flows, clock=lambda: WHEN, paths_prompt_cache=PROMPT_CACHE)
    try:
        ch = rig.call("13800138000", "Tester")
        with gevent.Timeout(20):
            while "CHANNEL_ANSWER" not in ch.events:
                gevent.sleep(0.01)
            drive(ch)
        with gevent.Timeout(10):
            while not [c for c in rig.cdrs() if c["uuid"] == ch.uuid]:
                gevent.sleep(0.02)
        return rig.engine.store.get(ch.uuid), rig.settings.database.url
    finally:
        rig.stop()


def wants_an_agent(ch):
    ch.press("0")                       # main menu: agent; no queues here -> told, tagged wanted_agent
    while ch.events.count("PLAYBACK_START") < 2 and not ch.wait_hangup(0.02):
        pass
    if not ch.wait_hangup(0):
        ch.hangup()


def leaves_a_message(ch):
    """Speaks after the tone (well: waits a moment) and ends the message with #."""
    while "RECORD_START" not in ch.events:
        if ch.wait_hangup(0.02):
            raise AssertionError("hung up before the voicemail")
    gevent.sleep(0.1)
    ch.press("#")
    if not ch.wait_hangup(5):
        ch.hangup()


def voicemail_flow(tmp_path):
    """A flow that goes straight to the voicemail node (the shipped ones play real-length
    prompts first, seconds of test time)."""
    flows = tmp_path / "vm-flows"
    flows.mkdir()
    (flows / "vm.yaml").write_text('name: "vm"\nentry: {"12345": leave}\nnodes:\n'
                                   '  leave: {type: voicemail, box: "12345", max_seconds: 30}\n', encoding="utf-8")
    return flows


def test_calls_over_the_simulator_give_one_ticket_each_across_restarts(tmp_path, flows):
    config = load_config("etc/tickets.yaml")
    first, url = one_call(tmp_path, flows, wants_an_agent)
    assert "wanted_agent" in first["tags"]
    consumer = Consumer(url, config=config)
    [ticket] = consumer.drain()
    assert (ticket["kind"], ticket["call_uuid"], ticket["caller_number"]) == ("callback", first["uuid"], "13800138000")
    consumer.store.close()

    second, _ = one_call(tmp_path, voicemail_flow(tmp_path), leaves_a_message)  # a restarted engine
    assert any(t.startswith("voicemail:") for t in second["tags"])
    path = second["extra"]["voicemail_path"]
    consumer = Consumer(url, config=config)                     # and so did the consumer
    [ticket] = consumer.drain()
    assert (ticket["kind"], ticket["call_uuid"], ticket["recording"]) == ("voicemail", second["uuid"], path)
    assert path.endswith(f"{second['uuid']}.wav") and "vm:leave" in ticket["ivr_path"]
    # the box's directory did not exist: the engine made it (the switch would have hung up),
    # and the message is at the configured rate, not the caller's OPUS 48 kHz
    import wave
    with wave.open(path, "rb") as w:
        assert w.getframerate() == 8000 and w.getnframes() > 0

    assert consumer.drain() == []                                # nothing twice
    tickets = consumer.store.list()
    assert sorted((t["call_uuid"], t["kind"]) for t in tickets) == sorted(
        [(first["uuid"], "callback"), (second["uuid"], "voicemail")])
