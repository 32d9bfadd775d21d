"""Codec negotiation on the simulator and eavesdrop across sample rates (fixture 09b), on the vanilla
configuration and on the one `hotline fs-config render` writes."""
import uuid

import pytest

from engine.fsconf.render import render
from engine.settings import default_settings
from engine.sim import codecs
from engine.sim.endpoints import AgentPhone
from engine.sim.scenario import AgentSpec
from tests.simfix import wait_for


def phone(switch, ext, supported):
    switch.register(ext, AgentPhone(None, AgentSpec(extension=ext, answer_after=0.02, codecs=supported)))


def leg_to_7000(switch, conn, tag, absolute=None):
    """As fixture 09b: a SIP call to 7000 (answer, park), its codec forced or not; the inbound leg."""
    a = str(uuid.uuid4())
    forced = f",absolute_codec_string={absolute}" if absolute else ""
    out = conn.api(f"originate {{origination_uuid={a},origination_caller_id_number=155500000{tag}"
                   f"{forced}}}sofia/internal/7000@127.0.0.1:5080 &park()")
    assert out == f"+OK {a}\n"
    b = switch.channels[a].sip_peer.uuid
    wait_for(lambda: switch.channels[b].parked)
    return b


def supervise(switch, conn, supervisor_codec):
    """Fixture 09b's run: agent and caller legs forced to PCMA, the supervisor's as given; the
    supervisor eavesdrops on the agent leg and switches modes with uuid_recv_dtmf 2, 3, 0."""
    agent = leg_to_7000(switch, conn, "91", "PCMA")
    caller = leg_to_7000(switch, conn, "92", "PCMA")
    sup = leg_to_7000(switch, conn, "93", supervisor_codec)
    assert conn.api(f"uuid_bridge {agent} {caller}").startswith("+OK")
    assert conn.api(f"uuid_setvar {sup} eavesdrop_enable_dtmf true").startswith("+OK")
    switch.channels[sup].queue_message({"app": "eavesdrop", "arg": agent})
    wait_for(lambda: "MEDIA_BUG_START" in switch.channels[agent].events)
    for digit in "230":
        assert conn.api(f"uuid_recv_dtmf {sup} {digit}").startswith("+OK")
    sup_leg = switch.channels[sup]
    wait_for(lambda: sup_leg.eavesdrop_modes == ["0", "2", "3", "0"])
    return agent, caller, sup_leg


def test_eavesdrop_across_codec_rates_switches_modes_but_the_supervisor_is_inaudible(switch, conn):
    agent, caller, sup = supervise(switch, conn, None)
    # fixture 09b: read_codec/read_rate of I1, I2, I3
    assert [(conn.api(f"uuid_getvar {u} original_read_codec"), conn.api(f"uuid_getvar {u} original_read_rate"))
            for u in (agent, caller, sup.uuid)] == [("PCMA", "8000"), ("PCMA", "8000"), ("opus", "48000")]
    # the eavesdropper reads L16 at its own rate; read_codec says so, original_read_codec does not
    assert conn.api(f"uuid_getvar {sup.uuid} read_codec") == "L16"
    assert conn.api(f"uuid_getvar {sup.uuid} read_rate") == "48000"
    whisper, barge = sup.eavesdrop_mix[1], sup.eavesdrop_mix[2]
    assert (whisper["mode"], whisper["target_phone_dbfs"], whisper["partner_phone_dbfs"]) == ("2", -55.2, -70.7)
    assert (barge["mode"], barge["target_phone_dbfs"], barge["partner_phone_dbfs"]) == ("3", -55.8, -68.4)
    assert not any(m["audible"] for m in sup.eavesdrop_mix)


def test_eavesdrop_at_the_targets_rate_is_heard_in_whisper_and_barge(switch, conn):
    agent, caller, sup = supervise(switch, conn, "PCMA")
    assert sup.codec == ("PCMA", "8000")
    assert [m["audible"] for m in sup.eavesdrop_mix] == [False, True, True, False]
    whisper, barge = sup.eavesdrop_mix[1], sup.eavesdrop_mix[2]
    assert whisper["target_phone_dbfs"] == -13.3 and whisper["partner_phone_dbfs"] < -80   # agent only
    assert barge["target_phone_dbfs"] == barge["partner_phone_dbfs"] == -13.3              # both
    sup.hangup()
    wait_for(lambda: "MEDIA_BUG_STOP" in switch.channels[agent].events)


def test_vanilla_opus_caller_bridged_to_a_g711_phone_fails_488(switch):
    """FREESWITCH.md "Codecs when bridging": the B leg is offered only the caller's codec."""
    phone(switch, "1001", codecs.DESK_PHONE)
    caller = switch.place_call("7000", "13800000031")                 # offers OPUS first
    wait_for(lambda: caller.parked)
    assert caller.codec == ("opus", "48000")
    caller.queue_message({"app": "bridge", "arg": "user/1001"})
    wait_for(lambda: caller.variables.get("originate_disposition") == "INCOMPATIBLE_DESTINATION")
    assert caller.bridged_to is None and caller.alive
    g711 = switch.place_call("7000", "13800000032", codecs=("PCMA",))  # a G.711 trunk caller
    wait_for(lambda: g711.parked)
    g711.queue_message({"app": "bridge", "arg": "user/1001"})
    wait_for(lambda: g711.bridged_to is not None)
    assert switch.channels[g711.bridged_to].codec == ("PCMA", "8000")


def test_a_phone_with_nothing_in_common_refuses_and_an_offer_picks_the_first_it_has(switch):
    phone(switch, "1001", codecs.DESK_PHONE)
    assert switch.api("originate {absolute_codec_string=OPUS}user/1001 &park()") == "-ERR INCOMPATIBLE_DESTINATION\n"
    out = switch.api("originate {origination_uuid=leg-pcmu,absolute_codec_string=G722\\,PCMU}user/1001 &park()")
    assert out == "+OK leg-pcmu\n" and switch.channels["leg-pcmu"].codec == ("PCMU", "8000")
    phone(switch, "1002", codecs.SOFTPHONE)
    switch.api("originate {origination_uuid=leg-soft}user/1002 &park()")      # vanilla prefs: OPUS
    assert switch.channels["leg-soft"].codec == ("opus", "48000")


@pytest.fixture
def our_switch(tmp_path, switch):
    settings = default_settings(base_dir=tmp_path, env={"HOTLINE_ESL_PASSWORD": "x"})
    render(settings, tmp_path / "fs")
    switch.load_codec_config(tmp_path / "fs")
    return switch


def test_our_rendered_configuration_transcodes_and_pins_every_phone_leg(our_switch):
    sw = our_switch
    assert sw.codecs.inbound_prefs("external") == ("PCMA", "PCMU", "OPUS")
    assert sw.codecs.outbound_prefs("internal") == ("PCMA", "PCMU")
    assert sw.codecs.directory_absolute == ("PCMA", "PCMU")
    phone(sw, "1001", codecs.DESK_PHONE)
    phone(sw, "2001", codecs.SOFTPHONE)
    caller = sw.place_call("7000", "13800000033")                    # OPUS caller ...
    wait_for(lambda: caller.parked)
    assert caller.codec == ("opus", "48000")
    caller.queue_message({"app": "bridge", "arg": "user/1001"})       # ... reaches a G.711 phone
    wait_for(lambda: caller.bridged_to is not None)
    agent = sw.channels[caller.bridged_to]
    assert agent.codec == ("PCMA", "8000")
    # the directory's dial-string wins over the originate's variables (switch_ivr_originate.c), so a
    # supervisor's OPUS-capable phone is still on PCMA: no rate mismatch whatever the engine asks
    sw.api(f"originate {{origination_uuid=sup-leg,absolute_codec_string=OPUS}}user/2001 &eavesdrop({agent.uuid})")
    sup = sw.channels["sup-leg"]
    assert sup.codec == ("PCMA", "8000")
    wait_for(lambda: sup.eavesdrop_mix)
    assert sup.eavesdrop_mix[0]["rate"] == sup.eavesdrop_mix[0]["target_rate"] == "8000"


def test_dial_string_codecs_reads_the_variable_block():
    ds = "{^^:sip_invite_domain=${dialed_domain}:absolute_codec_string=PCMA,PCMU}${sofia_contact(*/1@d)}"
    assert codecs.dial_string_codecs(ds) == ("PCMA", "PCMU")
    assert codecs.dial_string_codecs("{presence_id=${dialed_user}@${dialed_domain}}${sofia_contact(x)}") is None
    assert codecs.parse("PCMA,opus@48000h@20i,H264") == ("PCMA", "OPUS")
