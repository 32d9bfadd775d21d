"""The command builder: hostile values can never add a command, header, argument or variable."""
import pytest

from engine.esl import commands as c
from engine.esl.commands import CommandError
from engine.esl.protocol import Parser

HOSTILE = ["x\nhangup", "a},b{c", "' ; uuid_kill", "^^:a:b", "${system(rm -rf /)}", "x\r\n\r\nexit",
           "$${x}", "[a=b]", "a,origination_uuid=evil", "李四\x00", "A" * 10240]


@pytest.mark.parametrize("value", HOSTILE)
def test_safe_text_is_inert(value):
    text = c.safe_text(value)
    assert len(text) <= 128
    for bad in "\n\r{}[],'^$:;\x00":
        assert bad not in text


def test_safe_text_keeps_chinese_names():
    assert c.safe_text("王小明 (社保)") == "王小明 (社保)"


@pytest.mark.parametrize("value", HOSTILE)
def test_identifiers_refuse_hostile_values(value):
    for build in (c.uuid, c.varname, c.cause, c.digits, c.number):
        with pytest.raises(CommandError):
            build(value)
    if value != "a,origination_uuid=evil":   # commas are legal in tone_stream:// specs
        with pytest.raises(CommandError):
            c.media_path(value)


@pytest.mark.parametrize("value", HOSTILE)
def test_originate_variables_stay_one_variable_each(value):
    cmd = c.originate(c.endpoint_user("1001"), {"origination_caller_id_name": value,
                                               "origination_caller_id_number": c.safe_number(value) or "0"})
    assert "\n" not in cmd and "\r" not in cmd
    var_block = cmd[cmd.index("{") + 1:cmd.index("}")]
    names = [part.split("=", 1)[0] for part in var_block.split(",")]
    assert names == ["origination_caller_id_name", "origination_caller_id_number"]
    assert cmd.endswith("user/1001 &park()")


@pytest.mark.parametrize("value", HOSTILE)
def test_sendmsg_argument_cannot_add_headers(value):
    try:
        msg = c.execute("playback", value, event_uuid="11111111-2222-3333-4444-555555555555")
    except CommandError:
        return  # a NUL byte is refused outright
    data = msg.encode()
    parsed = Parser(commands=True).feed(data)
    assert len(parsed) == 1
    assert parsed[0].line == "sendmsg"
    headers = parsed[0].headers
    assert set(headers) == {"call-command", "execute-app-name", "event-lock", "Event-UUID",
                            "content-type", "Content-Length"}
    assert parsed[0].body.decode() == value


def test_api_builders():
    u = "948dc4a2-7630-4c01-becd-a18204b2fe19"
    assert c.uuid_kill(u) == f"uuid_kill {u} NORMAL_CLEARING"
    assert c.uuid_break(u) == f"uuid_break {u}"          # `all` flushes queued executes (fixture 07)
    assert c.uuid_break(u, everything=True) == f"uuid_break {u} all"
    assert c.uuid_fileman(u, "pause") == f"uuid_fileman {u} pause"
    assert c.uuid_fileman(u, "stop") == f"uuid_fileman {u} stop"
    with pytest.raises(CommandError):
        c.uuid_fileman(u, "resume")           # no such verb on the switch: pause toggles
    with pytest.raises(CommandError):
        c.uuid_fileman(u, "seek:+1000; uuid_kill")
    assert c.uuid_record(u, "start", "/var/rec/a.wav") == f"uuid_record {u} start /var/rec/a.wav"
    assert c.uuid_setvar(u, "hotline_flow", "x\n${y}") == f"uuid_setvar {u} hotline_flow x y"
    assert c.uuid_broadcast(u, "tone_stream://%(500,500,480,620);loops=2") == \
        f"uuid_broadcast {u} tone_stream://%(500,500,480,620);loops=2 aleg"
    assert c.endpoint_sofia("internal", "7000@127.0.0.1:5080") == "sofia/internal/7000@127.0.0.1:5080"
    with pytest.raises(CommandError):
        c.uuid_record(u, "start", "/var/rec/../../etc/passwd")
    with pytest.raises(CommandError):
        c.endpoint_gateway("trunk", "110; uuid_kill")
    assert c.originate(c.endpoint_gateway("trunk", "12345"), app="bridge", app_arg="user/1001") == \
        "originate sofia/gateway/trunk/12345 &bridge(user/1001)"


def test_hangup_message():
    assert c.hangup("USER_BUSY").encode() == b"sendmsg\ncall-command: hangup\nhangup-cause: USER_BUSY\n\n"
    with pytest.raises(CommandError):
        c.hangup("NORMAL\nx")
