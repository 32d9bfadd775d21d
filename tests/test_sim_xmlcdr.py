"""The simulator's mod_xml_cdr files against the real switch's (fixture 11 and its .files/).

Fixture 11's scenario replayed on the simulator: a caller leg C originated by API to the DID 7002, its
inbound leg I runs the socket app, the "engine" answers and bridges I to 1004 with the engine's
variables; a third leg T is originated by API with hotline_call/hotline_role (as a consult) and
killed; then C is killed. The real switch wrote a_T, a_C and a_I, not the agent's B leg.
"""
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

from gevent.event import AsyncResult

from engine.esl.connection import InboundConnection
from engine.esl.outbound import OutboundServer
from tests.simfix import switch, wait_for  # noqa: F401  (fixture)

FILES = Path(__file__).parent / "fixtures" / "esl" / "11-xml-cdr-legs.files"
REAL = {"I": "9669622a-9119-45ad-9629-f8c364d95b22", "C": "5a526d21-79bd-4c66-bf19-04966c98e425",
        "T": "395225e5-e74b-4652-8b51-630f0558f9f4", "B": "0842595f-4478-4188-8512-2588ce3ac3a1"}
# Variables of the real files the simulator does not write: SDP and SIP dialog details, the bridge's
# bookkeeping on the caller's leg, and the vanilla directory's user variables. The engine reads none.
NOT_MODELLED = {
    "switch_r_sdp", "switch_m_sdp", "ep_codec_string", "sip_cseq", "sip_to_tag", "sip_to_port",
    "sip_contact_port", "sip_full_via", "sip_recover_contact", "sip_recover_via", "sip_invite_domain",
    "presence_id", "bridge_channel", "bridge_hangup_cause", "last_bridge_role", "last_sent_callee_id_name",
    "last_sent_callee_id_number", "originate_causes", "originated_legs", "dialed_user", "dialed_domain",
    "progress_stamp",       # the agent's ringing marks the answered caller leg in progress; not simulated
    # the vanilla directory's user variables of extension 1003
    "accountcode", "callgroup", "default_areacode", "default_gateway", "effective_caller_id_name",
    "effective_caller_id_number", "outbound_caller_id_name", "outbound_caller_id_number", "record_stereo",
    "toll_allow", "transfer_fallback_extension", "user_context"}


class Phone:
    """A desk phone that answers at once."""

    def on_ring(self, channel):
        channel.answer()


def _tree(path):
    return ET.parse(path).getroot()


def _paths(node, prefix=""):
    """Element paths of a CDR, leaving out the variables' own names (compared apart)."""
    here = f"{prefix}/{node.tag}"
    out = {here}
    if node.tag == "variables":
        return out
    for child in node:
        out |= _paths(child, here)
    return out


def _variables(root):
    return {v.tag: unquote(v.text or "") for v in root.find("variables")}


def _original_profile(root):
    return root.findall("callflow")[-1].find("caller_profile")


def test_fixture_11_on_the_simulator_writes_the_same_files_with_the_same_layout(switch, tmp_path):  # noqa: F811
    switch.xml_cdr_dir = str(tmp_path)
    switch.register("1004", Phone())
    switch.register("1003", Phone())
    bridged = AsyncResult()

    def engine(session):
        session.handshake()
        session.execute("answer", timeout=5)
        i = session.uuid
        dial = (f"{{hangup_after_bridge=false,hotline_call={i}}}"
                f"[origination_uuid={REAL['B']},hotline_agent=1004]user/1004@127.0.0.1")
        bridged.set(i)
        session.execute("bridge", dial, timeout=30)

    server = OutboundServer("127.0.0.1", 0, engine).start()
    switch.global_vars["engine_socket"] = f"127.0.0.1:{server.address[1]}"
    conn = InboundConnection(*switch.address, "ClueCon", reconnect=False)
    conn.start(timeout=5)
    try:
        c = REAL["C"]
        assert conn.api(f"originate {{origination_uuid={c},origination_caller_id_number=15550000111,"
                        f"origination_caller_id_name='ESL Fixture s11',sip_h_X-Fixture-Tag=s11}}"
                        f"sofia/internal/7002@127.0.0.1:5080 &park()").startswith("+OK")
        i = bridged.get(timeout=10)
        wait_for(lambda: REAL["B"] in switch.channels and switch.channels[i].bridged_to == REAL["B"])
        t = REAL["T"]
        assert conn.api(f"originate {{origination_uuid={t},hotline_call={i},hotline_role=consult,"
                        f"hotline_agent=1003}}user/1003@127.0.0.1 &park()").startswith("+OK")
        assert conn.api(f"uuid_kill {t} NORMAL_CLEARING").startswith("+OK")
        assert conn.api(f"uuid_kill {c} NORMAL_CLEARING").startswith("+OK")
        wait_for(lambda: not switch.channels, timeout=10)
    finally:
        conn.stop()
        server.stop()
    ours_by_leg = {"I": i, "C": REAL["C"], "T": REAL["T"]}     # the simulator chose I's uuid
    written = sorted(p.name for p in tmp_path.iterdir())
    # the files the real switch wrote, named the same way: a_ prefix, none for the agent's B leg (is_b)
    assert len(list(FILES.glob("a_*.cdr.xml"))) == 3
    assert written == sorted(f"a_{u}.cdr.xml" for u in ours_by_leg.values())
    for leg, uuid_ in ours_by_leg.items():
        real, ours = _tree(FILES / f"a_{REAL[leg]}.cdr.xml"), _tree(tmp_path / f"a_{uuid_}.cdr.xml")
        assert _paths(real) <= _paths(ours), (leg, _paths(real) - _paths(ours))
        rv, ov = _variables(real), _variables(ours)
        missing = {n for n in rv if n not in ov and n not in NOT_MODELLED}
        assert not missing, (leg, missing)
        # what tells a trunk leg from the others, exactly as the real switch has it
        for name in ("direction", "sofia_profile_name", "hotline_role", "hotline_agent", "current_application"):
            assert ov.get(name) == rv.get(name), (leg, name, ov.get(name), rv.get(name))
        for name in ("uuid", "call_uuid", "hotline_call"):      # the same legs, the same way round
            assert (ov.get(name) == uuid_) == (rv.get(name) == REAL[leg]), (leg, name)
            assert (name in ov) == (name in rv), (leg, name)
        assert ours.findtext("channel_data/direction") == real.findtext("channel_data/direction")
        for field in ("context", "destination_number", "source"):
            # a user/ leg's destination is the phone's registered contact user (baresip's 1003-0x...)
            theirs = _original_profile(real).findtext(field).split("-0x")[0]
            assert _original_profile(ours).findtext(field) == theirs, (leg, field)
        assert _original_profile(ours).findtext("uuid") == uuid_
        assert [a.get("app_name") for a in ours.find("app_log")] == \
            [a.get("app_name") for a in real.find("app_log")], leg
    # the engine's {} variables of the bridge are the B leg's, never the caller's (real a_I)
    assert "hotline_call" not in _variables(_tree(tmp_path / f"a_{i}.cdr.xml"))


def test_a_leg_bridged_by_uuid_bridge_gets_no_file_as_the_second_leg(switch, tmp_path):  # noqa: F811
    """switch_ivr_uuid_bridge gives the second leg an originator caller profile: no file for it."""
    switch.xml_cdr_dir = str(tmp_path)
    switch.register("1003", Phone())
    switch.register("1004", Phone())
    conn = InboundConnection(*switch.address, "ClueCon", reconnect=False)
    conn.start(timeout=5)
    try:
        a, b = "11111111-0000-4000-8000-000000000001", "11111111-0000-4000-8000-000000000002"
        for leg, ext in ((a, "1003"), (b, "1004")):
            assert conn.api(f"originate {{origination_uuid={leg}}}user/{ext}@127.0.0.1 &park()").startswith("+OK")
        assert conn.api(f"uuid_bridge {a} {b}").startswith("+OK")
        wait_for(lambda: switch.channels[a].bridged_to == b)
        conn.api(f"uuid_kill {a}")
        wait_for(lambda: not switch.channels, timeout=10)
    finally:
        conn.stop()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"a_{a}.cdr.xml"]
