"""kill -9 of a real `hotline run` process with agents ringing and talking, and an immediate restart
(Restart=always): a running `bridge` goes on without its engine (FREESWITCH.md), so the restarted
engine must neither ring a busy agent again nor leave what the dead one wrote in Redis."""
import signal

from engine.acd.agents import AgentBoard
from engine.acd.config import load_acd
from engine.acd.store import AcdStore
from tests.acdfix import agent, queue, wait_for, write_yaml
from tests.enginefix import EngineProcess

LONG = 40.0       # bound on what needs one or two watchdog passes (every 5 s) under load


def crash_rig(tmp_path, redis_server, redis_prefix, queues):
    write_yaml(tmp_path / "agents.yaml", {"agents": [agent("1001"), agent("1002")]})
    write_yaml(tmp_path / "queues.yaml", {"queues": queues})
    ep = EngineProcess(tmp_path, files=f"agents: {tmp_path / 'agents.yaml'}, queues: {tmp_path / 'queues.yaml'}, ",
                       extra=f"redis: {{url: '{redis_server.url}', prefix: '{redis_prefix}'}}\n")
    store = AcdStore(redis_server.url, prefix=redis_prefix)
    board = AgentBoard(store, load_acd(ep.settings.files.agents, ep.settings.files.queues))
    return ep, store, board


def phone(ep, extension, behaviour):
    from engine.sim.endpoints import AgentPhone
    from engine.sim.scenario import AgentSpec
    p = AgentPhone(None, AgentSpec(extension=extension, behaviour=behaviour, answer_after=0.05))
    ep.switch.register(extension, p)
    return p


def keys_without_owner(store):
    """Keys that would live for ever: no TTL, and not an agent's own state or a live queue."""
    out = []
    for key in store.r.scan_iter(f"{store.p}*"):
        name = key[len(store.p):]
        if name.startswith(("agent:", "q:")) and ":time" not in name or name in ("avail", "epoch"):
            continue
        if store.r.ttl(key) < 0:
            out.append(name)
    return out


def test_kill9_while_ringing_the_restarted_engine_adopts_the_leg_and_records_it(
        tmp_path, redis_server, redis_prefix):
    ep, store, board = crash_rig(tmp_path, redis_server, redis_prefix,
                                 [queue("general", ring_timeout=60, record="all", wrapup_seconds=0.3)])
    try:
        talker, ringer = phone(ep, "1002", "answer"), phone(ep, "1001", "no_answer")
        board.login("1002")
        talking = ep.switch.place_call("12345", "13800000001", "talking")
        assert wait_for(lambda: store.agent("1002")["state"] == "in_call", timeout=15)
        board.login("1001")
        ringing = ep.switch.place_call("12345", "13800000002", "ringing")
        assert wait_for(lambda: store.agent("1001")["state"] == "ringing" and ringer.rings == 1, timeout=15)
        leg = store.agent("1001")["leg"]
        dead = store.agent("1001")["engine"]

        ep.proc.send_signal(signal.SIGKILL)
        ep.proc.wait(timeout=10)
        ep.start()                                              # Restart=always
        ep.switch.channels[leg].answer()                        # the agent picks up the orphaned leg
        assert wait_for(lambda: ringing.bridged_to == leg, timeout=5)
        waiting = ep.switch.place_call("12345", "13800000003", "waiting")

        # Double booking: the restarted engine must ask the switch before it frees 1001.
        adopted = lambda: all(f"repaired {a} (adopted)" in ep.log.read_text() for a in ("1001", "1002"))  # noqa
        assert wait_for(lambda: adopted() or ringer.rings > 1 or talker.rings > 1, timeout=LONG)
        assert ringer.rings == 1 and talker.rings == 1, "an agent on a live leg was rung again"
        assert store.agent("1001")["engine"] not in ("", dead)
        # the adopted leg was answered: the next pass sees it and 1001 is in the call
        assert wait_for(lambda: store.agent("1001")["state"] == "in_call", timeout=LONG)
        assert store.agent("1002")["state"] == "in_call"

        # The queue records everything: the switch started the recording at the bridge.
        recording = f"{ep.settings.paths.recordings}/{ringing.uuid}.wav"
        assert recording in ep.switch.channels[ringing.uuid].media

        # What the dead process wrote: the entries of its two callers are collected.
        gone = lambda: not store.r.exists(store.k_entry(talking.uuid), store.k_entry(ringing.uuid))  # noqa
        assert wait_for(gone, timeout=LONG)
        assert keys_without_owner(store) == []

        # The orphaned call ends: 1001 wraps up and then serves the waiting caller.
        ringing.hangup()
        assert wait_for(lambda: ringer.rings == 2, timeout=LONG)
        # ... and the restarted engine archived the recording the switch made
        archived = lambda: list(ep.settings.paths.archive.rglob(f"{ringing.uuid}.wav"))    # noqa: E731
        assert wait_for(archived, timeout=LONG)
        talking.hangup()
        assert wait_for(lambda: store.agent("1002")["state"] in ("wrap_up", "available"), timeout=LONG)
    finally:
        ep.stop()


def test_after_normal_calls_no_key_lives_without_a_ttl(tmp_path, redis_server, redis_prefix):
    """Served, abandoned and transferred calls leave only keys that expire (or an agent's own)."""
    from tests.acdfix import AcdRig
    rig = AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001")],
                 [queue("general", wrapup_seconds=0.1)])
    try:
        rig.login("1001", hangup_after=0.2)
        served = rig.call(number="13900000001")
        assert served.wait_hangup(timeout=15) or wait_for(lambda: rig.phones["1001"].answered == 1)
        assert rig.wait_state("1001", "available", timeout=10)
        rig.acd.board.take_break("1001", "meal")
        abandoned = rig.call(number="13900000002")
        assert wait_for(lambda: abandoned.uuid in rig.acd.waiters, timeout=10)
        assert rig.acd.store.r.ttl(rig.acd.store.k_entry(abandoned.uuid)) > 0      # waiting: expires too
        abandoned.hangup()
        assert wait_for(lambda: len(rig.cdrs()) == 2, timeout=10)
        assert wait_for(lambda: not list(rig.acd.store.r.scan_iter(rig.acd.store.k_entry("*"))), timeout=10)
        assert keys_without_owner(rig.acd.store) == []
    finally:
        rig.stop()
