"""In-call features over the simulator: hold, blind and attended transfers, three-way calls and
supervisors listening in, each driven as the control API drives them (Acd.incall)."""
import pytest

from engine.acd.incall import ControlError
from engine.sim import codecs
from engine.sim.endpoints import AgentPhone
from engine.sim.scenario import AgentSpec
from tests.acdfix import AcdRig, agent, queue, wait_for

MUSIC = "local_stream://moh"


@pytest.fixture
def rig_factory(tmp_path, redis_server, redis_prefix):
    rigs = []

    def make(agents, queues=None, **kw):
        rig = AcdRig(tmp_path, redis_server.url, redis_prefix, agents,
                     queues or [queue("general", music=MUSIC)], **kw)
        rigs.append(rig)
        return rig
    yield make
    for rig in rigs:
        rig.stop()


def talking(rig, agent_id, callers=1):
    """Log in the agent with a phone that answers and stays, place a call, wait for the talk."""
    rig.login(agent_id)
    caller = rig.call()
    assert wait_for(lambda: rig.state(agent_id) == "in_call"), rig.state(agent_id)
    return caller, rig.acd.store.agent(agent_id)["leg"]


def leg(rig, uuid):
    return rig.switch.channels.get(uuid)


def room(rig, caller):
    return rig.switch.conferences.rooms.get(f"hl-{caller.uuid}")


def members(rig, caller):
    r = room(rig, caller)
    return sorted(m.ch.uuid for m in r.members) if r else []


def outside_phone(rig, number, **spec):
    phone = AgentPhone(None, AgentSpec(extension=number, behaviour="answer", answer_after=0.05, **spec))
    rig.switch.register_pstn(number, phone)
    return phone


def playing_music(caller):
    return caller.current_app == "playback" and caller.variables.get("current_application_data") == MUSIC


def test_hold_plays_the_queue_music_to_the_caller_and_unhold_brings_the_agent_back(rig_factory):
    """The caller's own leg plays the music during the hold, while the agent's leg waits with two-way
    media in the call's conference (not `uuid_hold`, whose music waits behind the caller's
    event-locked bridge: fixture 08 A)."""
    rig = rig_factory([agent("1001")])
    caller, agent_leg = talking(rig, "1001")
    rig.acd.incall.hold("1001", actor="test")
    assert wait_for(lambda: playing_music(caller))
    assert members(rig, caller) == [agent_leg]                # the agent waits in the conference
    assert "CHANNEL_HOLD" not in leg(rig, agent_leg).events   # its phone is not held: keys work
    rig.acd.incall.unhold("1001", actor="test")
    assert wait_for(lambda: members(rig, caller) == sorted([caller.uuid, agent_leg]))
    assert not playing_music(caller)
    leg(rig, agent_leg).hangup()
    caller.wait_hangup(5)
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    info = rig.cdrs()[0]["extra"]
    assert info["holds"] == 1 and info["hold_seconds"] > 0
    rig.acd.audit.flush()
    actions = [e["action"] for e in rig.acd.audit.events(agent="1001")]
    assert "hold" in actions and "unhold" in actions


def test_star_1_on_the_agents_phone_takes_the_caller_off_hold(rig_factory):
    """A desk phone held with `uuid_hold` sends no DTMF (fixture 10); the agent's leg in the
    conference does, so *1 toggles the hold both ways."""
    rig = rig_factory([agent("1001")])
    caller, agent_leg = talking(rig, "1001")
    phone = leg(rig, agent_leg)
    phone.press("*1")
    assert wait_for(lambda: playing_music(caller))
    phone.press("*1")
    assert wait_for(lambda: members(rig, caller) == sorted([caller.uuid, agent_leg]))
    phone.press("*1")                                          # and on hold again
    assert wait_for(lambda: playing_music(caller))
    assert rig.acd.conversations[caller.uuid].held
    phone.hangup()                                             # the agent leaves during the hold
    assert caller.wait_hangup(5)                               # not left on the music
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    info = rig.cdrs()[0]["extra"]
    assert info["holds"] == 2 and info["hold_seconds"] > 0


def test_blind_transfer_after_hold_and_unhold_rings_the_new_agent(rig_factory):
    """Fixture 08 A: after uuid_hold / uuid_hold off the stale hold music ran in front of the
    transfer's bridge, which never rang."""
    rig = rig_factory([agent("1001"), agent("1002")])
    rig.login("1002")
    rig.acd.board.take_break("1002", "rest")
    caller, agent_leg = talking(rig, "1001")
    rig.acd.incall.hold("1001", actor="test")
    assert wait_for(lambda: playing_music(caller))
    rig.acd.incall.unhold("1001", actor="test")
    assert wait_for(lambda: members(rig, caller) == sorted([caller.uuid, agent_leg]))
    rig.acd.board.ready("1002")
    rig.acd.incall.transfer(caller.uuid, "agent:1002", actor="test")
    assert wait_for(lambda: rig.state("1002") == "in_call")
    new_leg = rig.acd.store.agent("1002")["leg"]
    assert wait_for(lambda: caller.bridged_to == new_leg)
    assert not playing_music(caller)
    leg(rig, new_leg).hangup()
    caller.wait_hangup(5)
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    assert rig.cdrs()[0]["extra"]["agents"] == ["1001", "1002"]


def test_blind_transfer_during_the_hold_rings_the_new_agent(rig_factory):
    rig = rig_factory([agent("1001"), agent("1002")])
    rig.login("1002")
    rig.acd.board.take_break("1002", "rest")
    caller, agent_leg = talking(rig, "1001")
    rig.acd.incall.hold("1001", actor="test")
    assert wait_for(lambda: playing_music(caller))
    rig.acd.board.ready("1002")
    rig.acd.incall.transfer(caller.uuid, "agent:1002", actor="test")
    assert wait_for(lambda: rig.state("1002") == "in_call")
    new_leg = rig.acd.store.agent("1002")["leg"]
    assert wait_for(lambda: caller.bridged_to == new_leg)
    assert not leg(rig, agent_leg) or not leg(rig, agent_leg).alive
    leg(rig, new_leg).hangup()
    caller.wait_hangup(5)
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    assert rig.cdrs()[0]["extra"]["holds"] == 1


def test_blind_transfer_to_another_agent(rig_factory):
    rig = rig_factory([agent("1001"), agent("1002")])
    rig.login("1002")
    rig.acd.board.take_break("1002", "rest")                  # not offered the first call
    caller, agent_leg = talking(rig, "1001")
    rig.acd.board.ready("1002")
    rig.acd.incall.transfer(caller.uuid, "agent:1002", actor="test")
    assert wait_for(lambda: rig.state("1002") == "in_call")
    assert rig.wait_state("1001", "wrap_up") or rig.state("1001") == "available"
    assert leg(rig, agent_leg) is None or not leg(rig, agent_leg).alive
    new_leg = rig.acd.store.agent("1002")["leg"]
    assert wait_for(lambda: caller.bridged_to == new_leg)
    leg(rig, new_leg).hangup()
    caller.wait_hangup(5)
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    cdr = rig.cdrs()[0]
    assert cdr["agent"] == "1002" and cdr["extra"]["agents"] == ["1001", "1002"]
    assert cdr["extra"]["transfers"][0]["kind"] == "agent" and cdr["extra"]["transfers"][0]["to"] == "1002"


def test_transfer_targets_are_checked_before_anything_moves(rig_factory):
    rig = rig_factory([agent("1001"), agent("1002")])
    caller, agent_leg = talking(rig, "1001")
    with pytest.raises(ControlError) as e:
        rig.acd.incall.transfer("1001", "agent:1002")          # logged out
    assert e.value.status == 409 and "logged_out" in str(e.value)
    with pytest.raises(ControlError) as e:
        rig.acd.incall.transfer("1001", "agent:9999")
    assert e.value.status == 404
    with pytest.raises(ControlError) as e:
        rig.acd.incall.transfer("1001", "external:110")       # emergency numbers never dialled out
    assert e.value.status == 403
    with pytest.raises(ControlError) as e:
        rig.acd.incall.transfer("1001", "external:13800;rm -rf")
    assert e.value.status == 400
    with pytest.raises(ControlError) as e:
        rig.acd.incall.hold("nobody")
    assert e.value.status == 404
    assert caller.bridged_to == agent_leg and rig.state("1001") == "in_call"   # nothing moved


def test_blind_transfer_to_a_queue(rig_factory):
    rig = rig_factory([agent("1001", {"general": 5}), agent("1002", {"pension": 5})],
                      [queue("general", skills={"general": 1}, music=MUSIC), queue("pension", skills={"pension": 1}, music=MUSIC)])
    rig.login("1002")
    caller, agent_leg = talking(rig, "1001")
    rig.acd.incall.transfer("1001", "queue:pension", actor="test")
    assert wait_for(lambda: rig.state("1002") == "in_call")
    assert wait_for(lambda: rig.state("1001") in ("wrap_up", "available"))
    leg(rig, rig.acd.store.agent("1002")["leg"]).hangup()
    caller.wait_hangup(5)
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    cdr = rig.cdrs()[0]
    assert cdr["extra"]["agents"] == ["1001", "1002"] and cdr["queue"] == "pension"


def test_blind_transfer_to_an_outside_number_dials_through_the_trunk_endpoint(rig_factory):
    """The caller's bridge out uses dialer.trunk_endpoint, the one dial string to outside numbers
    (normalised, the trunk's prefix, the gateway), as the dialler and consult parties do."""
    rig = rig_factory([agent("1001")])
    caller, agent_leg = talking(rig, "1001")
    outside_phone(rig, "13912345678")
    rig.acd.incall.transfer("1001", "external:13912345678", actor="test")

    def outside():
        far = leg(rig, caller.bridged_to) if caller.bridged_to else None
        return far if far is not None and far.uuid != agent_leg else None
    assert wait_for(outside, timeout=10)
    assert outside().name == "sofia/external/13912345678@trunk"          # through the trunk gateway
    assert rig.wait_state("1001", "wrap_up") or rig.state("1001") == "available"
    outside().hangup()
    assert caller.wait_hangup(5)
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    assert rig.cdrs()[0]["extra"]["transfer"] == "13912345678"


def test_hang_up_action_ends_the_agents_leg_as_the_phone_would(rig_factory):
    rig = rig_factory([agent("1001")])
    caller, agent_leg = talking(rig, "1001")
    assert rig.acd.incall.hangup("1001", actor="test") == {"call": caller.uuid, "hangup": True}
    assert caller.wait_hangup(5)              # no survey on this queue: the caller is let go
    assert not leg(rig, agent_leg) or not leg(rig, agent_leg).alive
    assert rig.wait_state("1001", "wrap_up") or rig.state("1001") == "available"
    with pytest.raises(ControlError):
        rig.acd.incall.hangup("1001")
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    rig.acd.audit.flush()
    assert "hangup" in [e["action"] for e in rig.acd.audit.events(agent="1001")]


def test_consult_then_complete_hands_the_caller_to_the_consulted_agent(rig_factory):
    rig = rig_factory([agent("1001"), agent("1002")])
    rig.login("1002")
    rig.acd.board.take_break("1002", "rest")
    caller, agent_leg = talking(rig, "1001")
    rig.acd.board.ready("1002")
    result = rig.acd.incall.consult("1001", "1002", actor="test")
    consult_leg = result["leg"]
    assert wait_for(lambda: rig.state("1002") == "in_call")
    assert wait_for(lambda: members(rig, caller) == sorted([agent_leg, consult_leg]))
    assert wait_for(lambda: caller.current_app == "playback")          # the caller hears music
    rig.acd.incall.complete("1001", actor="test")
    assert wait_for(lambda: members(rig, caller) == sorted([caller.uuid, consult_leg]))
    assert rig.wait_state("1001", "wrap_up") or rig.state("1001") == "available"
    assert rig.state("1002") == "in_call"
    leg(rig, consult_leg).hangup()                 # the second agent ends: the caller is let go
    assert rig.wait_state("1002", "wrap_up") or rig.state("1002") == "available"
    caller.wait_hangup(5)
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    cdr = rig.cdrs()[0]
    assert cdr["agent"] == "1002" and cdr["extra"]["agents"] == ["1001", "1002"]
    assert cdr["extra"]["transfers"][0]["how"] == "attended" and cdr["extra"]["transfers"][0]["from_agent"] == "1001"
    assert [p["role"] for p in cdr["extra"]["parties"]] == ["consult"]


def test_consult_then_cancel_puts_the_caller_back_with_the_agent(rig_factory):
    rig = rig_factory([agent("1001")])
    caller, agent_leg = talking(rig, "1001")
    outside_phone(rig, "13912345678")
    result = rig.acd.incall.consult("1001", "external:13912345678", actor="test")
    assert wait_for(lambda: members(rig, caller) == sorted([agent_leg, result["leg"]]))
    with pytest.raises(ControlError):
        rig.acd.incall.consult("1001", "external:13912345678")        # one at a time
    rig.acd.incall.cancel("1001", actor="test")
    assert wait_for(lambda: members(rig, caller) == sorted([caller.uuid, agent_leg]))
    assert not leg(rig, result["leg"]) or not leg(rig, result["leg"]).alive
    assert rig.state("1001") == "in_call"
    leg(rig, agent_leg).hangup()
    caller.wait_hangup(5)
    assert rig.wait_state("1001", "wrap_up") or rig.state("1001") == "available"


def test_three_way_call_survives_the_agent_leaving(rig_factory):
    rig = rig_factory([agent("1001")])
    caller, agent_leg = talking(rig, "1001")
    outside_phone(rig, "13900000000")
    result = rig.acd.incall.three_way("1001", "13900000000", actor="test")
    third = result["leg"]
    assert wait_for(lambda: members(rig, caller) == sorted([caller.uuid, agent_leg, third]))
    leg(rig, agent_leg).hangup()                               # the agent leaves
    assert rig.wait_state("1001", "wrap_up") or rig.state("1001") == "available"
    assert wait_for(lambda: members(rig, caller) == sorted([caller.uuid, third]))
    assert caller.alive
    leg(rig, third).hangup()                                   # the caller would be alone: let go
    caller.wait_hangup(5)
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    parties = rig.cdrs()[0]["extra"]["parties"]
    assert parties == [dict(parties[0], kind="external", target="13900000000", role="three_way", by="1001")]


def test_caller_hanging_up_ends_the_conference_for_everyone(rig_factory):
    rig = rig_factory([agent("1001")])
    caller, agent_leg = talking(rig, "1001")
    outside_phone(rig, "13900000001")
    third = rig.acd.incall.three_way("1001", "13900000001")["leg"]
    assert wait_for(lambda: len(members(rig, caller)) == 3)
    caller.hangup()
    assert wait_for(lambda: not leg(rig, third) or not leg(rig, third).alive)
    assert wait_for(lambda: not leg(rig, agent_leg) or not leg(rig, agent_leg).alive)
    assert rig.wait_state("1001", "wrap_up") or rig.state("1001") == "available"


def test_supervisor_whispers_then_barges(rig_factory):
    rig = rig_factory([agent("1001"), agent("2001", role="supervisor")])
    caller, agent_leg = talking(rig, "1001")
    rig.phone("2001")
    with pytest.raises(ControlError) as e:
        rig.acd.incall.supervise("1001", "1001", "monitor")     # an agent is not a supervisor
    assert e.value.status == 403
    result = rig.acd.incall.supervise("1001", "2001", "whisper", actor="test")
    sup = result["leg"]
    assert wait_for(lambda: leg(rig, sup) is not None and leg(rig, sup).answered
                    and getattr(leg(rig, sup), "eavesdrop_modes", None) == ["2"])
    assert leg(rig, sup).variables.get("eavesdrop_target") == agent_leg
    again = rig.acd.incall.supervise("1001", "2001", "barge", actor="test")
    assert again["leg"] == sup                                   # same leg, new mode
    assert wait_for(lambda: leg(rig, sup).eavesdrop_modes == ["2", "3"])
    rig.acd.audit.flush()
    actions = [e["action"] for e in rig.acd.audit.events(agent="1001")]
    assert "whisper" in actions and "barge" in actions
    caller.hangup()
    assert wait_for(lambda: not leg(rig, sup) or not leg(rig, sup).alive)


def test_supervisor_leg_is_originated_in_the_agent_legs_codec_so_whisper_and_barge_are_heard(rig_factory):
    """Issue 14 point 3 (fixture 09b): on a switch that kept its vanilla profiles and directory, a
    G.711 trunk caller is bridged to the agent's G.711 desk phone (PCMA/8000) while the supervisor's
    phone would negotiate OPUS/48000; eavesdrop does not resample, so the engine must originate the
    supervisor in the agent leg's codec for whisper and barge to be heard."""
    rig = rig_factory([agent("1001"), agent("2001", role="supervisor")], our_codecs=False)
    rig.login("1001", codecs=codecs.DESK_PHONE)
    caller = rig.switch.place_call("12345", "13800138000", "Caller", codecs=("PCMA",))
    assert wait_for(lambda: rig.state("1001") == "in_call"), rig.state("1001")
    agent_leg = rig.acd.store.agent("1001")["leg"]
    assert leg(rig, agent_leg).codec == ("PCMA", "8000")
    rig.phone("2001", codecs=codecs.SOFTPHONE)               # offers OPUS first
    sup = rig.acd.incall.supervise("1001", "2001", "whisper", actor="test")["leg"]
    assert wait_for(lambda: leg(rig, sup) is not None and len(leg(rig, sup).eavesdrop_mix) == 1)
    rig.acd.incall.supervise("1001", "2001", "barge", actor="test")
    assert wait_for(lambda: leg(rig, sup).eavesdrop_modes == ["2", "3"])
    mixes = leg(rig, sup).eavesdrop_mix
    assert leg(rig, sup).codec == ("PCMA", "8000"), mixes
    assert [(m["mode"], m["audible"]) for m in mixes] == [("2", True), ("3", True)], mixes
    caller.hangup()
    assert wait_for(lambda: not leg(rig, sup) or not leg(rig, sup).alive)


def test_feature_codes_from_the_agents_desk_phone(rig_factory):
    rig = rig_factory([agent("1001"), agent("1002")])
    rig.login("1002")
    rig.acd.board.take_break("1002", "rest")
    caller, agent_leg = talking(rig, "1001")
    phone = leg(rig, agent_leg)
    phone.press("*1")                                          # hold
    assert wait_for(lambda: playing_music(caller))
    phone.press("*1")                                          # and back
    assert wait_for(lambda: members(rig, caller) == sorted([caller.uuid, agent_leg]))
    phone.press("123")                                         # ordinary digits: nothing happens
    phone.press("*9")                                          # unknown code: ignored
    rig.acd.board.ready("1002")
    phone.press("*21002#")                                     # blind transfer to extension 1002
    assert wait_for(lambda: rig.state("1002") == "in_call")
    assert wait_for(lambda: not phone.alive)
    new_leg = rig.acd.store.agent("1002")["leg"]
    assert wait_for(lambda: caller.bridged_to == new_leg)
    rig.acd.audit.flush()
    actors = {(e["action"], e["actor"]) for e in rig.acd.audit.events(agent="1001")}
    assert ("hold", "agent:1001:phone") in actors and ("transfer", "agent:1001:phone") in actors
    caller.hangup()


def test_survey_after_the_agent_leaves_counts_for_the_agent_and_the_queue(rig_factory):
    rig = rig_factory([agent("1001")], [queue("general", music=MUSIC, survey=True)],
                      tts={"edge_enabled": False})
    caller, agent_leg = talking(rig, "1001")
    leg(rig, agent_leg).hangup()                        # the agent ends the call: the survey starts
    assert wait_for(lambda: "CHANNEL_UNBRIDGE" in caller.events and "PLAYBACK_START" in
                    caller.events[caller.events.index("CHANNEL_UNBRIDGE"):], timeout=5)
    caller.press("2")                                   # 满意
    assert caller.wait_hangup(15)
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    assert rig.cdrs()[0]["satisfaction"] == 2
    data = rig.acd.store.agent("1001")
    assert (data["rated"], data["satisfied"]) == ("1", "1")
    import time as _time
    stats = rig.acd.store.stats("general", _time.strftime("%Y%m%d"))
    assert stats["rated"] == 1 and stats["satisfied"] == 1


def test_the_survey_key_sends_the_caller_to_the_survey(rig_factory):
    rig = rig_factory([agent("1001")], [queue("general", music=MUSIC, survey=True)],
                      tts={"edge_enabled": False})
    caller, agent_leg = talking(rig, "1001")
    leg(rig, agent_leg).press("*7")
    assert wait_for(lambda: not leg(rig, agent_leg) or not leg(rig, agent_leg).alive)
    assert rig.wait_state("1001", "wrap_up") or rig.state("1001") == "available"
    assert wait_for(lambda: "CHANNEL_UNBRIDGE" in caller.events and "PLAYBACK_START" in
                    caller.events[caller.events.index("CHANNEL_UNBRIDGE"):], timeout=5)
    caller.press("5")                                   # 非常不满意: a comment is offered
    after = lambda: caller.events[caller.events.index("CHANNEL_UNBRIDGE"):]   # noqa: E731
    assert wait_for(lambda: after().count("PLAYBACK_START") >= 2, timeout=8)
    caller.hangup()                                     # ...but the caller leaves
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    cdr = rig.cdrs()[0]
    assert cdr["satisfaction"] == 5
    rig.acd.audit.flush()
    assert ("survey", "agent:1001:phone") in {(e["action"], e["actor"]) for e in rig.acd.audit.events(agent="1001")}


def test_recording_on_demand_pause_and_resume(rig_factory):
    rig = rig_factory([agent("1001")], [queue("general", music=MUSIC, record="on_demand")])
    caller, agent_leg = talking(rig, "1001")
    assert not caller.media                                     # on demand: nothing yet
    with pytest.raises(ControlError):
        rig.acd.incall.record("1001", "pause")                  # nothing to pause
    started = rig.acd.incall.record("1001", "start", actor="test")
    path = started["recording"]
    assert path in caller.media and caller.variables.get("RECORD_STEREO") == "true"
    with pytest.raises(ControlError):
        rig.acd.incall.record("1001", "start")                  # once
    assert rig.acd.incall.record("1001", "pause", actor="test")["paused"] is True
    assert caller.record_masked is True                         # FreeSWITCH writes silence now
    assert rig.acd.incall.record("1001", "resume", actor="test")["paused"] is False
    assert caller.record_masked is False
    leg(rig, agent_leg).hangup()
    caller.wait_hangup(5)
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    cdr = rig.cdrs()[0]
    assert cdr["recording"] == path and cdr["extra"]["recording_paused_seconds"] >= 0
    rig.acd.audit.flush()
    actions = [e["action"] for e in rig.acd.audit.events(agent="1001")]
    assert {"record_start", "record_pause", "record_resume"} <= set(actions)


def test_recording_refused_when_the_queue_never_records(rig_factory):
    rig = rig_factory([agent("1001")], [queue("general", music=MUSIC, record="none")])
    caller, agent_leg = talking(rig, "1001")
    with pytest.raises(ControlError) as e:
        rig.acd.incall.record("1001", "start")
    assert e.value.status == 403 and not caller.media
    caller.hangup()


def test_hold_consult_and_three_way_without_the_conference_context_fail_clearly_and_keep_the_call(rig_factory, caplog):
    # issue 14: an operator merged only dialplan/public.xml; the consult transferred the agent's
    # leg into a context the switch does not have, which hung the agent up
    rig = rig_factory([agent("1001"), agent("1002")])
    assert wait_for(lambda: rig.engine.switch_check.missing == [])      # checked at connect
    rig.switch.dialplan.contexts.pop("hotline_conference")
    rig.switch.dialplan.context_xml.pop("hotline_conference")
    rig.engine.switch_check.run()                                         # what a connect does
    assert "the switch has no context hotline_conference" in caplog.text
    rig.login("1002")
    rig.acd.board.take_break("1002", "rest")
    caller, agent_leg = talking(rig, "1001")
    rig.acd.board.ready("1002")
    for operation in (rig.acd.incall.consult, rig.acd.incall.three_way):
        with pytest.raises(ControlError) as err:
            operation("1001", "1002", actor="test")
        assert err.value.status == 503 and "hotline_conference" in str(err.value)
        assert "dialplan/conference.xml" in str(err.value)
    with pytest.raises(ControlError) as err:                             # hold waits there too
        rig.acd.incall.hold("1001", actor="test")
    assert err.value.status == 503 and "hotline_conference" in str(err.value)
    assert rig.state("1002") == "available"                              # never reserved
    assert leg(rig, agent_leg).alive and rig.state("1001") == "in_call"  # the call goes on
    assert caller.alive
