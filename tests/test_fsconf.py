"""The FreeSWITCH configuration we ship agrees with the engine's settings and is valid XML."""
import os
import re
import stat
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from engine import cli
from engine.fsconf.render import FsConfigError, render
from engine.settings import default_settings, load_settings
from engine.sim.dialplan import Dialplan

ENV = {"HOTLINE_TEST_ESL_PW": "esl-s3cret<&\"'", "HOTLINE_TEST_TRUNK_PW": "trunk-pw",
       "HOTLINE_TEST_SIP_1001": "sip'<pw>&1", "HOTLINE_TEST_SIP_1002": "pw1002"}
WEIRD_DID = "+86.10*(12345)|9?"

SETTINGS = f"""
trunk:
  dids: ["12345", "{WEIRD_DID.replace('"', '')}"]
  proxy: 192.0.2.10:5060
  register: true
  username: hotline
  password_env: HOTLINE_TEST_TRUNK_PW
  cidrs: [192.0.2.0/24, 198.51.100.7/32]
esl:
  host: 10.1.2.3
  port: 18021
  password_env: HOTLINE_TEST_ESL_PW
outbound:
  listen_host: 0.0.0.0
  listen_port: 18084
  advertise_host: 10.1.2.4
paths: {{var_dir: var}}
files: {{agents: agents.yaml}}
switch:
  max_sessions: 1600
  sessions_per_second: 120
"""

AGENTS = """
agents:
  - {extension: "1001", name: "王芳 ${sofia_contact(x)}", password_env: HOTLINE_TEST_SIP_1001, skills: [tax]}
  - {extension: "1002", name: "Li", password_env: HOTLINE_TEST_SIP_1002, role: supervisor}
  - {extension: "1003", a1_hash: "0123456789abcdef0123456789abcdef"}
"""


@pytest.fixture
def rendered(tmp_path):
    (tmp_path / "hotline.yaml").write_text(SETTINGS, encoding="utf-8")
    (tmp_path / "agents.yaml").write_text(AGENTS, encoding="utf-8")
    settings = load_settings(tmp_path / "hotline.yaml", env=ENV)
    out = tmp_path / "fs"
    paths = render(settings, out, env=ENV)
    return settings, out, paths


def parse(path):
    return ET.parse(path).getroot()


def params(root, xpath):
    return {p.get("name"): p.get("value") for p in root.iterfind(xpath)}


def test_every_rendered_file_is_xml_and_included_by_freeswitch_xml(rendered):
    _, out, paths = rendered
    names = {p.relative_to(out).as_posix() for p in paths}
    assert {"freeswitch.xml", "vars.xml", "autoload_configs/event_socket.conf.xml",
            "autoload_configs/switch.conf.xml", "autoload_configs/modules.conf.xml",
            "autoload_configs/sofia.conf.xml", "autoload_configs/acl.conf.xml",
            "dialplan/public.xml", "dialplan/agents.xml", "directory/default.xml"} <= names
    for p in paths:
        parse(p)                                         # raises on any malformed file
    includes = [e.get("data") for e in parse(out / "freeswitch.xml").iter("X-PRE-PROCESS")
                if e.get("cmd") == "include"]
    for name in names - {"freeswitch.xml"}:
        assert any(Path(name).match(pattern) for pattern in includes), f"{name} is never included"
    # Each dialplan file stands alone: <include><context name=...> (the simulator reads them so).
    for p in (out / "dialplan").glob("*.xml"):
        root = parse(p)
        assert root.tag == "include" and [c.tag for c in root] == ["context"]


def test_public_dialplan_sends_every_did_to_the_engines_socket(rendered):
    settings, out, _ = rendered
    context = parse(out / "dialplan/public.xml").find("context")
    assert context.get("name") == "public"
    exts = context.findall("extension")
    assert len(exts) == len(settings.trunk.dids)
    target = f"{settings.outbound.advertise_host}:{settings.outbound.listen_port} async full"
    assert target == "10.1.2.4:18084 async full"
    for did, ext in zip(settings.trunk.dids, exts):
        cond = ext.find("condition")
        assert cond.get("field") == "destination_number"
        regex = re.compile(cond.get("expression"))
        assert regex.search(did)
        # Anchored and literal: no longer number, no metacharacter acting as one.
        for other in (did + "0", "0" + did, did.replace(".", "0"), did.replace("*", "")):
            if other != did:
                assert not regex.search(other), (did, other)
        actions = [(a.get("application"), a.get("data")) for a in cond.findall("action")]
        # then the fallback when no engine takes the call (issue 17 section 6)
        prompt = str((out / "sounds" / "hotline_unavailable.wav").resolve())
        assert actions[0] == ("socket", target)
        assert actions[1:] == [("set", "hotline_fallback=engine_down"), ("answer", None),
                               ("sleep", "500"), ("playback", prompt),
                               ("playback", "tone_stream://%(350,350,450);loops=3"),
                               ("hangup", "NORMAL_TEMPORARY_FAILURE")]
        assert Path(prompt).is_file()
    assert WEIRD_DID in settings.trunk.dids


def test_simulator_routes_a_did_call_to_the_engine_with_the_rendered_dialplan(rendered):
    settings, out, _ = rendered
    plan = Dialplan([str(out / "dialplan")])
    for did in settings.trunk.dids:
        ch = types.SimpleNamespace(context="public", destination_number=did, variables={},
                                   caller_id_number="13800138000", caller_id_name="x",
                                   orig_caller_id_number="13800138000", network_addr="192.0.2.10",
                                   uuid="u", source="mod_sofia", username="", name="sofia/external/x",
                                   set_var=lambda *a: None)
        assert plan.lookup(ch)[0] == ("socket", "10.1.2.4:18084 async full")
    ch.destination_number = "99999"
    assert plan.lookup(ch) is None


def test_handover_context_runs_the_public_socket_for_marked_legs_only(rendered):
    # a preview call's customer is handed to the socket with `uuid_transfer <customer>
    # hotline_handover XML hotline_handover` (engine/acd/bridged.py), whatever the public dialplan
    # does with the hotline's numbers
    settings, out, _ = rendered
    context = parse(out / "dialplan/handover.xml").find("context")
    assert context.get("name") == "hotline_handover"
    plan = Dialplan([str(out / "dialplan")])
    variables = {}
    ch = types.SimpleNamespace(context="hotline_handover", destination_number="hotline_handover",
                               variables=variables, caller_id_number="12345", caller_id_name="x",
                               orig_caller_id_number="12345", network_addr="", uuid="u", source="",
                               username="", name="sofia/external/13800138000@trunk",
                               set_var=lambda *a: None)
    assert plan.lookup(ch) is None                       # a leg the engine did not mark
    variables["hotline_purpose"] = "callback"
    assert plan.lookup(ch) is None
    variables["hotline_purpose"] = "handover"
    prompt = str((out / "sounds" / "hotline_unavailable.wav").resolve())
    # the same socket as the public dialplan's (no standby: the transfer waits in this engine)
    assert plan.lookup(ch) == [("socket", "10.1.2.4:18084 async full"), ("playback", prompt),
                               ("hangup", "NORMAL_TEMPORARY_FAILURE")]
    ch.destination_number = settings.trunk.dids[0]
    assert plan.lookup(ch) is None


def test_event_socket_matches_the_engines_esl_settings_and_is_private(rendered):
    settings, out, _ = rendered
    path = out / "autoload_configs/event_socket.conf.xml"
    p = params(parse(path), "settings/param")
    assert p["listen-ip"] == settings.esl.host == "10.1.2.3"
    assert p["listen-port"] == str(settings.esl.port) == "18021"
    assert p["password"] == settings.esl.password == ENV["HOTLINE_TEST_ESL_PW"]
    acl = parse(out / "autoload_configs/acl.conf.xml")
    lists = {lst.get("name"): [n.get("cidr") for n in lst] for lst in acl.iter("list")}
    assert p["apply-inbound-acl"] in lists and lists[p["apply-inbound-acl"]] == list(settings.switch.esl_acl)
    for secret in ("autoload_configs/event_socket.conf.xml", "autoload_configs/sofia.conf.xml",
                   "directory/default.xml"):
        assert stat.S_IMODE(os.stat(out / secret).st_mode) == 0o600, secret
    assert stat.S_IMODE(os.stat(out / "dialplan/public.xml").st_mode) == 0o644


def test_switch_limits_equal_settings(rendered):
    settings, out, _ = rendered
    p = params(parse(out / "autoload_configs/switch.conf.xml"), "settings/param")
    assert int(p["max-sessions"]) == settings.switch.max_sessions == 1600
    assert int(p["sessions-per-second"]) == settings.switch.sessions_per_second == 120
    assert int(p["max-sessions"]) >= 1000 and int(p["sessions-per-second"]) > 30


def test_sofia_profiles_trunk_gateway_acl_and_codecs(rendered):
    settings, out, _ = rendered
    root = parse(out / "autoload_configs/sofia.conf.xml")
    profiles = {p.get("name"): p for p in root.iter("profile")}
    assert set(profiles) == {"external", "internal"}
    ext = params(profiles["external"], "settings/param")
    assert ext["context"] == "public" and ext["auth-calls"] == "false"
    assert ext["apply-inbound-acl"] == "hotline_trunk"
    gw = profiles["external"].find("gateways/gateway")
    assert gw.get("name") == settings.trunk.gateway
    gwp = params(gw, "param")
    assert gwp["proxy"] == "192.0.2.10:5060" and gwp["password"] == "trunk-pw" and gwp["register"] == "true"
    internal = params(profiles["internal"], "settings/param")
    assert internal["context"] == "agents" and internal["auth-calls"] == "true"
    # Transcoding stays on and each side prefers its own codecs (the vars carry the lists).
    assert ext["disable-transcoding"] == internal["disable-transcoding"] == "false"
    assert ext["inbound-codec-prefs"] == "$${trunk_codecs}"
    assert internal["outbound-codec-prefs"] == "$${phone_codecs}"
    sets = dict(e.get("data").split("=", 1) for e in parse(out / "vars.xml").iter("X-PRE-PROCESS"))
    assert sets["trunk_codecs"] == "PCMA,PCMU,OPUS" and sets["phone_codecs"] == "PCMA,PCMU"
    acl = parse(out / "autoload_configs/acl.conf.xml")
    trunk_list = next(lst for lst in acl.iter("list") if lst.get("name") == "hotline_trunk")
    assert [n.get("cidr") for n in trunk_list] == list(settings.trunk.cidrs)
    modules = [m.get("module") for m in parse(out / "autoload_configs/modules.conf.xml").iter("load")]
    for needed in ("mod_event_socket", "mod_sofia", "mod_dptools", "mod_dialplan_xml", "mod_opus",
                   "mod_conference", "mod_sndfile", "mod_tone_stream", "mod_commands"):
        assert needed in modules
    assert len(modules) == len(set(modules))


def test_directory_users_from_the_agents_file(rendered):
    _, out, _ = rendered
    root = parse(out / "directory/default.xml")
    users = {u.get("id"): u for u in root.iter("user")}
    assert set(users) == {"1001", "1002", "1003"}
    assert params(users["1001"], "params/param") == {"password": ENV["HOTLINE_TEST_SIP_1001"]}
    assert params(users["1003"], "params/param") == {"a1-hash": "0123456789abcdef0123456789abcdef"}
    var = {v.get("name"): v.get("value") for v in users["1001"].iter("variable")}
    assert var["effective_caller_id_name"] == "王芳 sofia_contact(x)"     # no ${ left to expand
    assert var["user_context"] == "agents" and var["hotline_role"] == "agent"
    assert {v.get("name"): v.get("value") for v in users["1002"].iter("variable")}["hotline_role"] == "supervisor"
    dial = params(root, "domain/params/param")["dial-string"]
    assert "absolute_codec_string=PCMA,PCMU" in dial
    contexts = {parse(p).find("context").get("name") for p in (out / "dialplan").glob("*.xml")}
    assert "agents" in contexts


def test_no_agents_file_renders_an_empty_directory(tmp_path):
    (tmp_path / "hotline.yaml").write_text(SETTINGS, encoding="utf-8")
    settings = load_settings(tmp_path / "hotline.yaml", env=ENV)
    render(settings, tmp_path / "fs", env=ENV)
    assert list(parse(tmp_path / "fs/directory/default.xml").iter("user")) == []


@pytest.mark.parametrize("change, agents, message", [
    ('dids: ["12345"]', None, None),
    ('dids: ["123\\n45"]', None, "trunk.dids[0]"),
    ('dids: ["12${x}"]', None, "trunk.dids[0]"),
    ("max_sessions: 1600", None, None),
    ("max_sessions: 9000", None, "RTP ports"),
    ("host: fs1.example.org", None, "esl.host"),
    (None, [{"extension": "1001", "password_env": "HOTLINE_TEST_NOT_SET"}], "HOTLINE_TEST_NOT_SET"),
    (None, [{"extension": "10a1", "password_env": "HOTLINE_TEST_SIP_1001"}], "agents[0].extension"),
    (None, [{"extension": "1001"}], "password_env"),
    (None, [{"extension": "1001", "a1_hash": "x"}, ], "a1_hash"),
])
def test_bad_values_stop_rendering_with_a_message_that_names_them(tmp_path, change, agents, message):
    text = SETTINGS
    if change:
        key = change.split(":")[0]
        text = re.sub(rf"^(\s*){key}:.*$", lambda m: m.group(1) + change, text, count=1, flags=re.M)
    (tmp_path / "hotline.yaml").write_text(text, encoding="utf-8")
    settings = load_settings(tmp_path / "hotline.yaml", env=ENV)
    if message is None:
        render(settings, tmp_path / "fs", agents=agents or [], env=ENV)
        return
    with pytest.raises(FsConfigError) as exc:
        render(settings, tmp_path / "fs", agents=agents or [], env=ENV)
    assert message in str(exc.value)
    assert not (tmp_path / "fs").exists() or not any((tmp_path / "fs").iterdir())


def test_cli_render(tmp_path, capsys, monkeypatch):
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    (tmp_path / "hotline.yaml").write_text(SETTINGS, encoding="utf-8")
    (tmp_path / "agents.yaml").write_text(AGENTS, encoding="utf-8")
    rc = cli.main(["fs-config", "render", "--out", str(tmp_path / "out"), "--config", str(tmp_path / "hotline.yaml")])
    assert rc == 0
    assert (tmp_path / "out/dialplan/public.xml").exists()
    assert str(tmp_path / "out/freeswitch.xml") in capsys.readouterr().out
    monkeypatch.delenv("HOTLINE_TEST_SIP_1002")
    rc = cli.main(["fs-config", "render", "--out", str(tmp_path / "out2"), "--config", str(tmp_path / "hotline.yaml")])
    assert rc == 1 and "HOTLINE_TEST_SIP_1002" in capsys.readouterr().err


def test_the_default_queue_music_is_rendered_and_plays_on_the_simulator(tmp_path):
    # issue 14: modules.conf.xml lacked mod_local_stream and there was no local_stream.conf.xml,
    # so the queues' default music (local_stream://moh) failed on a switch with our configuration
    from engine.acd.config import Queue
    from engine.sim.switch import Switch
    settings = default_settings(base_dir=tmp_path, env={"HOTLINE_ESL_PASSWORD": "x"},
                                paths={"var_dir": str(tmp_path / "var")})
    render(settings, tmp_path / "fs")
    music = Queue(name="q").music
    streams = parse(tmp_path / "fs" / "autoload_configs" / "local_stream.conf.xml")
    moh = next(d for d in streams.iter("directory") if d.get("name") == music.split("://")[1])
    assert moh.get("path") == str(settings.switch.music_dir)
    settings.switch.music_dir.mkdir(parents=True)            # the engine makes it at start-up
    sw = Switch([tmp_path / "fs" / "dialplan"], conf_dir=tmp_path / "fs")
    assert "mod_local_stream" in sw.modules
    assert sw.media_duration(music) is None                  # plays until stopped, no FILE NOT FOUND


def test_fs_config_refuses_phone_codecs_of_mixed_rates(tmp_path):
    settings = default_settings(base_dir=tmp_path, env={"HOTLINE_ESL_PASSWORD": "x"},
                                switch={"phone_codecs": ["OPUS", "PCMA"]})
    with pytest.raises(FsConfigError, match=r"phone_codecs: OPUS 48000 Hz, PCMA 8000 Hz mix sample rates"):
        render(settings, tmp_path / "fs")
    ok = default_settings(base_dir=tmp_path, env={"HOTLINE_ESL_PASSWORD": "x"},
                          switch={"phone_codecs": ["PCMU", "PCMA"]})
    render(ok, tmp_path / "fs")
