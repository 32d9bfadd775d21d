"""The simulator is as strict as the switch about what it needs: modules, contexts, music streams,
directories (issue 14 point 5; FREESWITCH.md, fixture 07, mod_commands.c)."""
import wave

from engine.esl import commands
from engine.fsconf.render import render
from engine.settings import default_settings
from engine.sim.switch import Switch
from tests.simfix import DIALPLAN, parked_caller, wait_for


def _complete(conn, uuid_, app, mark=0):
    return [e for e in conn.seen[mark:] if e.uuid == uuid_ and e.name == "CHANNEL_EXECUTE_COMPLETE"
            and e.get("Application") == app]


def test_module_exists_answers_as_mod_commands_does(switch, conn):
    # the fixtures' switch: vanilla modules.conf.xml
    assert conn.api("module_exists mod_conference") == "true"
    assert conn.api("module_exists mod_local_stream") == "true"
    assert conn.api("module_exists mod_no_such_thing") == "false"


def test_module_exists_follows_the_rendered_modules_conf(tmp_path):
    settings = default_settings(base_dir=tmp_path, env={"HOTLINE_ESL_PASSWORD": "x"},
                                paths={"var_dir": str(tmp_path / "var")})
    render(settings, tmp_path / "fs")
    modules = tmp_path / "fs" / "autoload_configs" / "modules.conf.xml"
    modules.write_text(modules.read_text().replace('<load module="mod_conference"/>', ""))
    sw = Switch([tmp_path / "fs" / "dialplan"], conf_dir=tmp_path / "fs")
    assert sw.api("module_exists mod_conference") == "false"
    assert sw.api("module_exists mod_sofia") == "true"
    assert sw.api("module_exists mod_lua") == "false"          # vanilla has it, we do not load it


def test_xml_locate_finds_a_dialplan_context_or_nothing(switch, conn):
    found = conn.api("xml_locate dialplan context name public")
    assert found.startswith('<context name="public">') and "<extension" in found
    assert conn.api("xml_locate dialplan context name hotline_conference") == "can't find anything\n"
    assert conn.api("xml_locate dialplan context", check=False) == "-ERR bad args\n"


def test_uuid_transfer_into_a_missing_context_hangs_the_leg_up(switch, conn, caplog):
    _, b = parked_caller(switch, conn, 1)
    mark = len(conn.seen)
    assert conn.api(f"uuid_transfer {b} conf_x XML hotline_conference") == "+OK\n"
    wait_for(lambda: any(e.name == "CHANNEL_HANGUP" and e.uuid == b for e in conn.seen[mark:]))
    hangup = next(e for e in conn.seen[mark:] if e.name == "CHANNEL_HANGUP" and e.uuid == b)
    assert hangup.get("Hangup-Cause") == "NO_ROUTE_DESTINATION"
    assert "Context hotline_conference not found" in caplog.text


def test_playback_of_a_missing_stream_or_file_completes_at_once_with_file_not_found(switch, conn, tmp_path):
    _, b = parked_caller(switch, conn, 1)
    for source in ("local_stream://moh", str(tmp_path / "no-such-dir" / "x.wav")):
        mark = len(conn.seen)
        conn.sendmsg(commands.execute("playback", source, target_uuid=b))
        wait_for(lambda: _complete(conn, b, "playback", mark))
        assert _complete(conn, b, "playback", mark)[0].get("Application-Response") == "FILE NOT FOUND"


def test_a_configured_local_stream_plays_until_broken(tmp_path):
    (tmp_path / "music").mkdir()
    conf = tmp_path / "autoload_configs"
    conf.mkdir()
    (conf / "local_stream.conf.xml").write_text(
        f'<configuration name="local_stream.conf"><directory name="moh" path="{tmp_path / "music"}"/>'
        '</configuration>')
    sw = Switch([DIALPLAN], conf_dir=tmp_path)
    assert sw.media_duration("local_stream://moh") is None          # plays until stopped
    (tmp_path / "music").rmdir()                                    # "Can't open directory": unknown
    import pytest
    from engine.sim.media import MediaError
    with pytest.raises(MediaError):
        sw.media_duration("local_stream://moh")


def test_record_into_a_missing_directory_hangs_up_destination_out_of_order(switch, conn, tmp_path):
    _, b = parked_caller(switch, conn, 1)
    mark = len(conn.seen)
    path = tmp_path / "voicemail" / "box1" / "msg.wav"
    conn.sendmsg(commands.execute("record", f"{path} 5", target_uuid=b))
    wait_for(lambda: any(e.name == "CHANNEL_HANGUP" and e.uuid == b for e in conn.seen[mark:]))
    hangup = next(e for e in conn.seen[mark:] if e.name == "CHANNEL_HANGUP" and e.uuid == b)
    assert hangup.get("Hangup-Cause") == "DESTINATION_OUT_OF_ORDER"
    assert not path.parent.exists()                                 # the switch made no directory
    assert not any(e.name == "RECORD_START" and e.uuid == b for e in conn.seen[mark:])


def test_the_recorder_honours_record_sample_rate(switch, conn, tmp_path):
    _, b = parked_caller(switch, conn, 1)          # the leg negotiated OPUS 48000
    conn.api(f"uuid_setvar {b} record_sample_rate 8000")
    path = tmp_path / "rec.wav"
    assert conn.api(f"uuid_record {b} start {path}") == "+OK Success\n"
    assert conn.api(f"uuid_record {b} stop {path}") == "+OK Success\n"
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == 8000
