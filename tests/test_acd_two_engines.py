"""Two engines beside two switches sharing one Redis (the way past one machine): kill -9 of one
`hotline run` while its agents talk and ring and a caller waits on it. The survivor, which cannot
ask the dead engine's switch about its legs, removes the dead engine's queue entry once its
heartbeat is gone, keeps its agents booked for `redis.dead_engine_grace` (their calls may go on
on that switch), then releases them and serves its own callers with them."""
import signal
import time

from engine.acd.agents import AgentBoard
from engine.acd.config import load_acd
from engine.acd.service import WATCHDOG_EVERY
from engine.acd.store import AcdStore
from tests.acdfix import agent, queue, wait_for, write_yaml
from tests.enginefix import EngineProcess
from tests.test_acd_crash import phone

GRACE = 5.0       # redis.dead_engine_grace for this test (30 s by default)
LONG = 90.0       # generous bound: heartbeat expiry (15 s) + grace + watchdog passes, under load


def engine(tmp_path, name, redis_server, redis_prefix, grace=GRACE):
    d = tmp_path / name
    d.mkdir()
    return EngineProcess(d, files=f"agents: {tmp_path / 'agents.yaml'}, queues: {tmp_path / 'queues.yaml'}, ",
                         extra=f"redis: {{url: '{redis_server.url}', prefix: '{redis_prefix}', "
                               f"dead_engine_grace: {grace}}}\n")


def test_kill9_of_one_engine_the_other_releases_its_agents_and_callers(tmp_path, redis_server, redis_prefix):
    write_yaml(tmp_path / "agents.yaml", {"agents": [agent("1001"), agent("1002")]})
    write_yaml(tmp_path / "queues.yaml", {"queues": [queue("general", ring_timeout=60, wrapup_seconds=0)]})
    survivor = engine(tmp_path, "a", redis_server, redis_prefix)
    victim = engine(tmp_path, "b", redis_server, redis_prefix)
    store = AcdStore(redis_server.url, prefix=redis_prefix)
    board = AgentBoard(store, load_acd(tmp_path / "agents.yaml", tmp_path / "queues.yaml"))
    try:
        # the agents' phones answer on both switches; the calls come in on the victim's switch
        talker = [phone(ep, "1002", "answer") for ep in (victim, survivor)]
        ringer = [phone(victim, "1001", "no_answer"), phone(survivor, "1001", "answer")]
        board.login("1002")
        talking = victim.switch.place_call("12345", "13800000001", "talking")
        assert wait_for(lambda: store.agent("1002")["state"] == "in_call", timeout=20)
        board.login("1001")
        victim.switch.place_call("12345", "13800000002", "ringing")
        assert wait_for(lambda: store.agent("1001")["state"] == "ringing" and ringer[0].rings == 1, timeout=20)
        waiting = victim.switch.place_call("12345", "13800000003", "waiting")
        assert wait_for(lambda: waiting.uuid in store.waiting("general"), timeout=20)
        dead = store.agent("1001")["engine"]
        assert store.agent("1002")["engine"] == dead and dead in store.engines()
        legs = {a: store.agent(a)["leg"] for a in ("1001", "1002")}

        victim.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        victim.proc.wait(timeout=10)
        # a caller on the survivor's switch waits for one of the dead engine's agents
        own = survivor.switch.place_call("12345", "13800000004", "own")

        # the waiting caller's place in line and both entry hashes (one pass removes them in turn)
        gone = lambda: waiting.uuid not in store.waiting("general") and not store.r.exists(  # noqa: E731
            store.k_entry(waiting.uuid), store.k_entry(talking.uuid))
        assert wait_for(gone, timeout=LONG)
        entry_gone = time.monotonic() - killed
        released = lambda: all(store.agent(a).get("leg") != legs[a] for a in legs)  # noqa: E731
        assert wait_for(released, timeout=LONG)
        agents_free = time.monotonic() - killed
        log = survivor.log.read_text()
        # the survivor did not take its switch's "no such leg" for the truth about the other switch
        for a in ("1001", "1002"):
            held = log.index(f"agent {a} was ")
            assert "the leg is not on this switch" in log[held:held + 300]
            assert held < log.index(f"agent {a}: released after")
        # ... and the released agents serve the survivor's own caller
        assert wait_for(lambda: own.bridged_to is not None, timeout=LONG)
        assert talker[1].rings + ringer[1].rings == 1
        print(f"\nqueue entry of the dead engine removed after {entry_gone:.1f} s; "
              f"its agents released after {agents_free:.1f} s (grace {GRACE:.0f} s)")
    finally:
        victim.stop()
        survivor.stop()


def test_within_the_grace_the_dead_engines_successor_adopts_its_live_legs(tmp_path, redis_server, redis_prefix):
    """What the grace is for: the engine restarted beside the dead one's switch asks that switch,
    finds the talk going on and adopts it; the other engine never frees the talking agent."""
    write_yaml(tmp_path / "agents.yaml", {"agents": [agent("1002")]})
    write_yaml(tmp_path / "queues.yaml", {"queues": [queue("general", wrapup_seconds=0)]})
    survivor = engine(tmp_path, "a", redis_server, redis_prefix, grace=LONG * 2)
    victim = engine(tmp_path, "b", redis_server, redis_prefix, grace=LONG * 2)
    store = AcdStore(redis_server.url, prefix=redis_prefix)
    board = AgentBoard(store, load_acd(tmp_path / "agents.yaml", tmp_path / "queues.yaml"))
    try:
        talker = [phone(ep, "1002", "answer") for ep in (victim, survivor)]
        board.login("1002")
        talking = victim.switch.place_call("12345", "13800000001", "talking")
        assert wait_for(lambda: store.agent("1002")["state"] == "in_call", timeout=20)
        dead = store.agent("1002")["engine"]

        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(timeout=10)
        assert wait_for(lambda: "agent 1002 was in_call" in survivor.log.read_text(), timeout=LONG)
        victim.start()                                          # Restart=always, beside its switch
        adopted = lambda: store.agent("1002")["engine"] not in ("", dead)  # noqa: E731
        assert wait_for(adopted, timeout=LONG)
        assert "repaired 1002 (adopted)" in victim.log.read_text()
        own = survivor.switch.place_call("12345", "13800000004", "own")
        assert wait_for(lambda: own.uuid in store.waiting("general"), timeout=20)
        # the survivor's next two watchdog passes (the window it would act in) leave the adopted
        # agent alone: still in the call, and its caller is not offered to them
        window = 2 * WATCHDOG_EVERY + 2
        assert wait_for(lambda: store.agent("1002")["state"] != "in_call" or talker[1].rings, timeout=window) is False
        assert "agent 1002: released" not in survivor.log.read_text()
        assert talker[0].rings == 1 and talker[1].rings == 0
        # the talk ends on the dead engine's switch: its successor wraps up, the agent serves the
        # survivor's caller
        talking.hangup()
        assert wait_for(lambda: own.bridged_to is not None, timeout=LONG)
        assert talker[1].rings == 1
    finally:
        victim.stop()
        survivor.stop()
