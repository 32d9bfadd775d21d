"""Outbound legs and blacklisted callers in the engine: the dialer's `&socket` hand-over to the
daemon's registry, persons and machines behind the simulated trunk, the blacklist's message and
low-priority queue, the hit counts. Engine and simulator talk over TCP as in production."""
import datetime

import pytest

from engine.outbound import legs, service
from engine.outbound.dialer import DialRequest
from engine.sim.pstn import Behaviour, Population
from tests.acdfix import AcdRig, queue
from tests.enginefix import Rig
from tests.simfix import wait_for

OPEN = datetime.datetime(2026, 12, 8, 2, 0, tzinfo=datetime.timezone.utc)   # Tuesday 10:00 Shanghai
NO_TTS = {"edge_enabled": False}


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path, clock=lambda: OPEN, tts=NO_TTS)
    yield r
    r.stop()
    for purpose in ("callback", "campaign"):
        legs.unregister(purpose)


def served(rig):
    """Register a callback handler that collects one digit; returns what it saw."""
    seen = []

    def handler(call, info):
        digits = call.get_digits(1, timeout=2.0, inter_digit_timeout=1.0)
        seen.append({"info": info, "digits": digits, "uuid": call.uuid})
        call.hangup()
    legs.register("callback", handler)
    return seen


def test_answered_leg_is_handed_to_the_handler_of_its_purpose(rig):
    rig.switch.population = Population().add("13800138000", Behaviour("person", dtmf=((0.3, "1"),)))
    seen = served(rig)
    dialer = service.for_engine(rig.engine).dialer
    outcome = dialer.dial(DialRequest("13800138000", purpose="callback", job_id="cb-7", ticket="T1"))
    assert outcome.answered
    wait_for(lambda: seen, timeout=5)
    assert seen[0]["uuid"] == outcome.uuid and seen[0]["digits"] == "1"
    assert seen[0]["info"] == {"purpose": "callback", "job": "cb-7", "ticket": "T1"}
    wait_for(lambda: rig.cdrs(), timeout=5)
    cdr = rig.cdrs()[0]
    assert "outbound" in cdr["tags"] and cdr["extra"]["outbound"]["job"] == "cb-7"
    assert wait_for(lambda: outcome.uuid not in dialer.live) is None       # its hangup was seen


def test_answering_machine_never_presses_a_key(rig):
    rig.switch.population = Population().add("139*", Behaviour("machine", hangup_after=5))
    seen = served(rig)
    outcome = service.for_engine(rig.engine).dialer.dial(DialRequest("13912345678", purpose="callback"))
    assert outcome.answered                       # a machine answers like a person ...
    wait_for(lambda: seen, timeout=5)
    assert seen[0]["digits"] == ""                # ... and never presses the key a person would


def test_leg_of_a_purpose_nobody_serves_is_hung_up_not_sent_to_the_ivr(rig):
    rig.switch.population = Population().add("13800138000", Behaviour("person"))
    outcome = service.for_engine(rig.engine).dialer.dial(DialRequest("13800138000", purpose="campaign",
                                                                     campaign="c1"))
    assert outcome.answered
    leg = rig.switch.channels[outcome.uuid]
    assert leg.wait_hangup(5)
    wait_for(lambda: rig.cdrs(), timeout=5)
    assert "outbound" in rig.cdrs()[0]["tags"]


def test_blacklisted_caller_hears_the_message_and_is_hung_up_and_the_hit_counted(rig):
    out = service.for_engine(rig.engine)
    assert out.wait_lists()
    lists = out.lists
    lists.add("blacklist", "13800138000", reason="abuse", added_by="admin", action="message")
    lists.reload()
    caller = rig.call(number="+86 13800138000")
    assert caller.wait_hangup(10)
    assert caller.hangup_disposition == "send_bye"        # the engine hung up, not the caller
    apps = [app for app, _data, _at in caller.app_log]
    assert apps[-2:] == ["answer", "playback"]            # the message, then the hang-up
    assert "prompts" in [data for app, data, _at in caller.app_log if app == "playback"][0]
    wait_for(lambda: lists.entries("blacklist")[0]["hits"] == 1, timeout=5)
    wait_for(lambda: rig.cdrs(), timeout=5)
    assert "blacklisted" in rig.cdrs()[0]["tags"]
    other = rig.call(number="13900000000")               # not on the list: the usual welcome
    assert other.wait_hangup(10)
    assert lists.entries("blacklist")[0]["hits"] == 1


def test_blacklisted_caller_waits_behind_everyone_in_the_queue(tmp_path, redis_server, redis_prefix):
    rig = AcdRig(tmp_path, redis_server.url, redis_prefix, [], [queue("general")], tts=NO_TTS,
                 outbound_calls={"blacklist": {"priority": -10}})
    try:
        out = service.for_engine(rig.engine)
        assert out.wait_lists()
        lists = out.lists
        lists.add("blacklist", "13800138000", action="queue")
        lists.reload()
        first = rig.call(number="13900000001")
        wait_for(lambda: rig.acd.store.queue_length("general") == 1, timeout=5)
        flagged = rig.call(number="13800138000")
        wait_for(lambda: rig.acd.store.queue_length("general") == 2, timeout=5)
        last = rig.call(number="13900000003")
        wait_for(lambda: rig.acd.store.queue_length("general") == 3, timeout=5)
        assert rig.acd.store.waiting("general") == [first.uuid, last.uuid, flagged.uuid]
        assert lists.entries("blacklist")[0]["hits"] == 1 or wait_for(
            lambda: lists.entries("blacklist")[0]["hits"] == 1) is None
        for c in (first, flagged, last):
            c.hangup()
    finally:
        rig.stop()


def test_without_a_trunk_gateway_every_dial_is_our_fault(tmp_path):
    """trunk.proxy unset: the rendered configuration has no gateway, and the switch answers
    sofia/gateway/trunk/... with INVALID_GATEWAY; the contact is not held responsible."""
    r = Rig(tmp_path, clock=lambda: OPEN, tts=NO_TTS, trunk={"gateway": "trunk"})
    try:
        r.switch.population = Population().add("13800138000", Behaviour("person"))
        out = service.for_engine(r.engine).dialer.dial(DialRequest("13800138000", purpose="manual"))
        assert (out.result, out.hangup_cause, out.counts_attempt) == ("our_fault", "INVALID_GATEWAY", False)
        assert r.switch.population.phones == {}
    finally:
        r.stop()


def test_engine_pauses_callbacks_while_its_callers_wait(tmp_path, redis_server, redis_prefix):
    rig = AcdRig(tmp_path, redis_server.url, redis_prefix, [], [queue("general")], tts=NO_TTS, clock=lambda: OPEN,
                 outbound_calls={"pause_inbound_wait": 0.5})
    try:
        rig.switch.population = Population().add("13800138000", Behaviour("person"))
        out = service.for_engine(rig.engine)
        assert out.wait_lists()
        caller = rig.call(number="13900000001")
        wait_for(lambda: rig.acd.store.queue_length("general") == 1, timeout=5)
        wait_for(lambda: out.gate.longest_inbound_wait() > 0.5, timeout=5)
        paused = out.dialer.dial(DialRequest("13800138000", purpose="callback", target="park"))
        assert paused.result == "paused" and "inbound first" in paused.reason
        caller.hangup()
        wait_for(lambda: rig.acd.store.queue_length("general") == 0, timeout=5)
        assert out.dialer.dial(DialRequest("13800138000", purpose="callback", target="park")).answered
    finally:
        rig.stop()


def test_a_trunk_call_carrying_our_variables_is_still_a_trunk_call(rig):
    seen = served(rig)
    caller = rig.switch.place_call("12345", "13900000000", "x", variables={"hotline_purpose": "callback",
                                                                          "hotline_job": "forged"})
    assert caller.wait_hangup(10)
    assert seen == []                                   # the callback handler never saw it
    wait_for(lambda: rig.cdrs(), timeout=5)
    assert "outbound" not in (rig.cdrs()[0]["tags"] or [])
