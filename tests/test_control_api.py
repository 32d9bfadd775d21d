"""The control API and the supervisors' CLI against a running engine (simulator + real Redis)."""
import json

import pytest

from engine.cli import main
from engine.control.client import ApiError, Client
from tests.acdfix import AcdRig, agent, queue, wait_for
from tests.enginefix import free_port

TOKENS = {"TOK_SUP": "sup-secret-1", "TOK_1001": "agent-secret-1001", "TOK_ADMIN": "admin-secret"}


@pytest.fixture
def rig(tmp_path, redis_server, redis_prefix):
    port = free_port()
    control = {"listen_port": port, "tokens": [
        {"name": "ops", "role": "supervisor", "token_env": "TOK_SUP"},
        {"name": "desk1001", "role": "agent", "agent": "1001", "token_env": "TOK_1001"},
        {"name": "root", "role": "admin", "token_env": "TOK_ADMIN"}]}
    r = AcdRig(tmp_path, redis_server.url, redis_prefix,
               [agent("1001"), agent("1002", wrapup_seconds=5), agent("2001", role="supervisor")],
               [queue("general", music="local_stream://moh", service_level_seconds=20)],
               env=TOKENS, control=control)
    r.url = f"http://127.0.0.1:{port}"
    yield r
    r.stop()


def api(rig, token="TOK_SUP"):
    return Client(rig.url, token=TOKENS.get(token, token))


def cli(rig, capsys, *argv, token="TOK_SUP"):
    code = main([*argv, "--api", rig.url, "--token", TOKENS[token]])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_tokens_and_roles_are_enforced(rig):
    with pytest.raises(ApiError) as e:
        api(rig, token="").get("/v1/agents")
    assert e.value.status == 401
    with pytest.raises(ApiError) as e:
        api(rig, token="guess").get("/v1/agents")
    assert e.value.status == 401
    with pytest.raises(ApiError) as e:
        api(rig, "TOK_1001").post("/v1/agents/1002/login")          # not their own agent
    assert e.value.status == 403
    with pytest.raises(ApiError) as e:
        api(rig, "TOK_1001").get("/v1/calls")                       # supervisors only
    assert e.value.status == 403
    assert api(rig, "TOK_1001").post("/v1/agents/1001/login")["state"] == "available"
    mine = api(rig, "TOK_1001").get("/v1/agents")["agents"]
    assert [a["id"] for a in mine] == ["1001"]
    with pytest.raises(ApiError) as e:
        api(rig).post("/v1/reload")                                  # admin only
    assert e.value.status == 403
    assert api(rig, "TOK_ADMIN").post("/v1/reload") == {"reloaded": True, "problems": []}


def test_bad_requests_get_clear_errors(rig):
    with pytest.raises(ApiError) as e:
        api(rig).post("/v1/agents/9999/login")
    assert e.value.status == 404 and "9999" in str(e.value)
    with pytest.raises(ApiError) as e:
        api(rig).post("/v1/agents/1001/break", {"reason": "nap"})
    assert e.value.status == 409 and "unknown break reason" in str(e.value)
    with pytest.raises(ApiError) as e:
        api(rig).post("/v1/agents/1001/extend", {"seconds": "lots"})
    assert e.value.status == 400
    with pytest.raises(ApiError) as e:
        api(rig).post("/v1/calls/1001/hold")
    assert e.value.status == 404 and "no conversation" in str(e.value)
    with pytest.raises(ApiError) as e:
        api(rig).post("/v1/calls/1001/dance")
    assert e.value.status == 404
    with pytest.raises(ApiError) as e:
        api(rig).get("/v1/nothing")
    assert e.value.status == 404
    with pytest.raises(ApiError) as e:
        Client("http://127.0.0.1:1", token="x", timeout=1).get("/v1/agents")
    assert e.value.status == 0 and "cannot reach" in str(e.value)


def test_supervisor_cli_session(rig, capsys):
    assert cli(rig, capsys, "agents", "login", "1001")[0] == 0
    code, out, _ = cli(rig, capsys, "agents", "break", "meal", "1001")
    assert code == 0 and "on_break (meal)" in out
    code, out, _ = cli(rig, capsys, "agents", "ready", "1001")
    assert code == 0 and "available" in out
    rig.phone("1001")
    caller = rig.call("13800000007")
    assert wait_for(lambda: rig.state("1001") == "in_call")
    code, out, _ = cli(rig, capsys, "agents")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("1001"))
    assert "in_call" in row and "general" in row
    assert "in_call: 1" in out and "logged_out: 2" in out
    code, out, _ = cli(rig, capsys, "calls", "--json")
    calls = json.loads(out)["calls"]
    assert calls[0]["call"] == caller.uuid and calls[0]["state"] == "talking" and calls[0]["agent"] == "1001"
    code, out, _ = cli(rig, capsys, "call", "hold", "1001")
    assert code == 0 and "held: True" in out
    assert json.loads(cli(rig, capsys, "calls", "--json")[1])["calls"][0]["state"] == "held"
    assert cli(rig, capsys, "call", "unhold", caller.uuid)[0] == 0
    code, _, err = cli(rig, capsys, "call", "transfer", "1001")
    assert code == 2 and "TARGET" in err
    code, _, err = cli(rig, capsys, "call", "transfer", "1001", "agent:1002")
    assert code == 1 and "logged_out" in err                       # refused, call untouched
    rig.phone("2001")
    code, out, _ = cli(rig, capsys, "whisper", "1001", "--from", "2001")
    assert code == 0 and "whisper: supervisor 2001" in out
    code, out, _ = cli(rig, capsys, "queues")
    row = next(line for line in out.splitlines() if line.startswith("general"))
    assert row.split()[1:3] == ["0", "0:00"]                          # nobody waiting now
    data = json.loads(cli(rig, capsys, "queues", "--json")[1])["queues"][0]
    assert data["offered"] == 1 and data["answered"] == 1 and data["service_level"] == 100.0
    assert data["agents"]["in_call"] == 1
    rig.acd.audit.flush()
    actors = {(e["action"], e["actor"]) for e in rig.acd.audit.events(agent="1001")}
    assert ("hold", "supervisor:ops") in actors and ("whisper", "supervisor:ops") in actors
    caller.hangup()
    assert rig.wait_state("1001", "wrap_up") or rig.state("1001") == "available"


def test_agent_token_controls_only_its_own_call(rig, capsys):
    rig.login("1001", "1002")
    first = rig.call("13800000001")
    second = rig.call("13800000002")
    assert wait_for(lambda: rig.state("1001") == "in_call" and rig.state("1002") == "in_call")
    assert cli(rig, capsys, "call", "hold", "1001", token="TOK_1001")[0] == 0
    code, _, err = cli(rig, capsys, "call", "hold", "1002", token="TOK_1001")
    assert code == 1 and "only for agent 1001" in err
    first.hangup()
    second.hangup()


def test_wrap_up_extend_and_early_end_from_the_cli(rig, capsys):
    rig.login("1002", hangup_after=0.1)                # agent 1002 has a 5 s wrap-up of its own
    rig.call()
    assert rig.wait_state("1002", "wrap_up")
    code, out, _ = cli(rig, capsys, "agents", "extend", "1002", "30")
    assert code == 0 and "wrap_up" in out
    left = json.loads(cli(rig, capsys, "agents", "--json")[1])["agents"][1]["wrapup_left"]
    assert 30 < left <= 35
    assert cli(rig, capsys, "agents", "ready", "1002")[0] == 0
    assert rig.state("1002") == "available"


def test_a_request_for_a_call_on_another_engine_is_relayed_to_it(tmp_path, redis_server, redis_prefix):
    agents = [agent("1001"), agent("2001", role="supervisor")]
    queues = [queue("general", music="local_stream://moh")]
    rigs = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            control = {"listen_port": free_port(), "tokens": [
                {"name": "ops", "role": "supervisor", "token_env": "TOK_SUP"}]}
            r = AcdRig(tmp_path / name, redis_server.url, redis_prefix, agents, queues, env=TOKENS, control=control)
            r.url = f"http://127.0.0.1:{control['listen_port']}"
            rigs.append(r)
        a, b = rigs
        b.phone("1001")                                   # the agent's phone is on switch B
        b.acd.board.login("1001")
        caller = b.call()
        assert wait_for(lambda: b.state("1001") == "in_call")
        agent_leg = b.acd.store.agent("1001")["leg"]
        answer = api(a).post("/v1/calls/1001/hold")       # asked of engine A
        assert answer["engine"] == b.acd.engine_id and answer["held"] is True
        room = lambda: b.switch.conferences.rooms.get(f"hl-{caller.uuid}")   # noqa: E731
        assert wait_for(lambda: room() and [m.ch.uuid for m in room().members] == [agent_leg])   # held there
        listed = api(a).get("/v1/calls")                 # the whole site from either engine
        assert [(c["call"], c["engine"]) for c in listed["calls"]] == [(caller.uuid, b.acd.engine_id)]
        assert listed["engines_not_answering"] == []
        b.phone("2001")
        whisper = api(a).post("/v1/supervise", {"target": caller.uuid, "supervisor": "2001", "mode": "whisper"})
        assert whisper["engine"] == b.acd.engine_id
        assert wait_for(lambda: getattr(b.switch.channels.get(whisper["leg"]), "eavesdrop_modes", None) == ["2"])
        with pytest.raises(ApiError) as e:
            api(a).post("/v1/calls/1001/transfer", {"target": "agent:2001"})   # refused over there
        assert e.value.status == 409 and "logged_out" in str(e.value)
        b.acd.audit.flush()
        assert ("hold", "supervisor:ops (relayed)") in {(x["action"], x["actor"]) for x in b.acd.audit.events(agent="1001")}
        caller.hangup()
    finally:
        for r in rigs:
            r.stop()


def test_the_cli_finds_the_api_from_a_settings_file_without_the_engines_secrets(rig, tmp_path, capsys,
                                                                                 monkeypatch):
    from pathlib import Path
    text = (Path(__file__).parent.parent / "etc" / "hotline.yaml").read_text(encoding="utf-8")
    head, _, tail = text.partition("control:")
    tail = tail.replace("listen_port: 8090", f"listen_port: {rig.url.rsplit(':', 1)[1]}", 1)
    config = tmp_path / "hotline.yaml"
    config.write_text(head + "control:" + tail, encoding="utf-8")
    monkeypatch.delenv("HOTLINE_ESL_PASSWORD", raising=False)     # the CLI never needs it
    code = main(["agents", "--config", str(config), "--token", TOKENS["TOK_SUP"]])
    assert code == 0 and "1001" in capsys.readouterr().out


def test_logout_during_a_call_happens_after_the_call_and_its_wrap_up(rig, capsys):
    rig.login("1001")
    caller = rig.call("13800000011")
    assert wait_for(lambda: rig.state("1001") == "in_call")
    code, out, err = cli(rig, capsys, "agents", "logout", "1001")
    assert code == 0 and "agent 1001: in_call; logged out after the call (and its wrap-up)" in out, err
    row = json.loads(cli(rig, capsys, "agents", "--json")[1])["agents"][0]
    assert row["state"] == "in_call" and row["pending"] == "logged_out" and row["talk_now"] >= 0
    table_row = next(line for line in cli(rig, capsys, "agents")[1].splitlines() if line.startswith("1001"))
    assert "talk 0:0" in table_row and "then logged_out" in table_row       # running talk, what comes next
    calls = cli(rig, capsys, "calls")[1]
    assert "TALK" in calls.splitlines()[0] and caller.uuid in calls
    caller.hangup()
    assert rig.wait_state("1001", "logged_out")
    rig.acd.audit.flush()
    moves = [e["to_state"] for e in rig.acd.audit.events(agent="1001") if e["action"] == "state"][::-1]
    assert moves[-3:] == ["in_call", "wrap_up", "logged_out"]               # the wrap-up was kept
    assert rig.acd.store.agent("1001").get("pending") is None


def test_the_agents_table_shows_the_wrap_up_time_left(rig, capsys):
    rig.login("1002", hangup_after=0.1)                # agent 1002 has a 5 s wrap-up of its own
    rig.call()
    assert rig.wait_state("1002", "wrap_up")
    row = next(line for line in cli(rig, capsys, "agents")[1].splitlines() if line.startswith("1002"))
    assert "wrap_up" in row and "wrap-up 0:0" in row and " left" in row


def test_monitor_refuses_a_supervisor_whose_phone_is_on_a_call(rig, capsys):
    from engine.esl import commands
    rig.login("1001")
    caller = rig.call("13800000012")
    assert wait_for(lambda: rig.state("1001") == "in_call")
    rig.phone("2001")
    busy = "5a0c6f1e-0000-4000-8000-000000002001"
    reply = rig.acd.esl.api(commands.originate(commands.endpoint_user("2001", rig.acd.domain),
                                               {"origination_uuid": busy}, app="park"))
    assert reply.startswith("+OK"), reply
    code, out, err = cli(rig, capsys, "monitor", "1001", "--from", "2001")
    assert code == 1 and "supervisor 2001's phone (2001) is on a call" in err and busy in err
    assert not rig.acd.supervisions                                     # nothing was dialled
    rig.acd.esl.api(commands.uuid_kill(busy))
    assert wait_for(lambda: busy not in rig.switch.channels)
    code, out, err = cli(rig, capsys, "monitor", "1001", "--from", "2001")
    assert code == 0 and "monitor: supervisor 2001" in out, err
    caller.hangup()
