"""Provisional CDRs (issue 17 point 1): a row at queue join, agent answer and transfer, so that a
`hotline run` killed with -9 mid-conversation still leaves a CDR with the IVR path, queue, wait
and agent; the switch's XML CDR completes that row (end, cause, billing) instead of replacing it."""
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import gevent
import pytest

from engine.acd.agents import AgentBoard
from engine.acd.config import load_acd
from engine.acd.store import AcdStore
from engine.cdr.store import PROVISIONAL, CdrStore
from engine.infra.netutil import free_port
from engine.settings import load_settings
from engine.sim.endpoints import AgentPhone
from engine.sim.scenario import AgentSpec
from tests.acdfix import agent, queue, wait_for, write_yaml
from tests.enginefix import PASSWORD, switch_for
from tests.test_cdr import make_store, record

PROMPT_CACHE = Path(tempfile.gettempdir()) / "hotline-test-prompts"
FLOW = """\
name: "t"
entry:
  "12345": start
fallback: bye
nodes:
  start: {type: set, tags: ["ivr:t"], children: {next: to_agent}}
  to_agent: {type: queue, queue: general}
  bye: {type: hangup}
"""


# --- the store's rules for provisional rows ----------------------------------------------------

def provisional(uuid, **fields):
    rec = {"uuid": uuid, "caller_number": "13800138000", "destination": "12345", "queue": "general",
           "tags": ["ivr:t", PROVISIONAL], **fields}
    return rec


def test_a_provisional_row_makes_no_outbox_entry_and_never_overwrites_the_final_one(tmp_path):
    s = make_store(tmp_path).open()
    try:
        assert s.write(provisional("p1", wait_seconds=None))
        assert s.outbox_take("tickets") == []            # no callback ticket for a call still waiting
        assert s.write(record("p1", queue="general", agent="1001", tags=["ivr:t"]))
        assert [e["cdr_uuid"] for e in s.outbox_take("tickets")] == ["p1"]
        assert s.write(provisional("p1"))                 # a late snapshot from the agent answer
        row = s.get("p1")
        assert row["tags"] == ["ivr:t"] and row["agent"] == "1001" and row["hangup_cause"] == "NORMAL_CLEARING"
        assert len(s.outbox_take("tickets")) == 1
        assert s.write(provisional("p3"))
        assert [r["uuid"] for r in s.list()] == ["p1"]          # calls still going: only on request
        assert sorted(r["uuid"] for r in s.list(provisional=True)) == ["p1", "p3"]
    finally:
        s.close()


def test_a_spooled_final_row_replaces_a_newer_provisional_one(tmp_path):
    s = make_store(tmp_path).open()
    try:
        s.db_down = True
        assert not s.write(record("p2", agent="1001", tags=[]))   # final, spooled first
        s.db_down = False
        assert s.write(provisional("p2", agent="1001"))          # then a provisional one committed
        assert s.drain() == (1, 0)
        assert PROVISIONAL not in s.get("p2")["tags"] and s.get("p2")["hangup_cause"] == "NORMAL_CLEARING"
    finally:
        s.close()


# --- kill -9 of a real engine mid-conversation --------------------------------------------------

class AcdEngineProcess:
    """`hotline run` with an IVR flow, an agent and a queue (real Redis) against the simulator."""

    def __init__(self, tmp_path, redis_url, prefix):
        esl_port, out_port = free_port(), free_port()
        flows = tmp_path / "flows"
        flows.mkdir()
        (flows / "t.yaml").write_text(FLOW)
        write_yaml(tmp_path / "agents.yaml", {"agents": [agent("1001")]})
        write_yaml(tmp_path / "queues.yaml", {"queues": [queue("general", ring_timeout=5)]})
        self.config = tmp_path / "hotline.yaml"
        self.config.write_text(
            f'trunk: {{dids: ["12345"]}}\nesl: {{port: {esl_port}}}\noutbound: {{listen_port: {out_port}}}\n'
            f"paths: {{var_dir: {tmp_path / 'var'}, prompt_cache: {PROMPT_CACHE}}}\n"
            f"files: {{flows_dir: {flows}, agents: {tmp_path / 'agents.yaml'}, "
            f"queues: {tmp_path / 'queues.yaml'}}}\n"
            f'redis: {{url: "{redis_url}", prefix: "{prefix}"}}\n'
            f"control: {{listen_port: {free_port()}}}\n"
            f"tts: {{edge_enabled: false}}\nlog: {{file: {tmp_path / 'engine.log'}}}\n")
        self.env = {**os.environ, "HOTLINE_ESL_PASSWORD": PASSWORD}
        self.settings = load_settings(self.config, env=self.env)
        self.switch = switch_for(self.settings, tmp_path / "fs", esl_port)
        self.phone = AgentPhone(None, AgentSpec(extension="1001", behaviour="answer", answer_after=0.05))
        self.switch.register("1001", self.phone)
        self.proc = subprocess.Popen([sys.executable, "-m", "engine", "run", "--config", str(self.config)],
                                     env=self.env)
        pid_file = self.settings.paths.var_dir / "hotline.pid"
        with gevent.Timeout(60, AssertionError("the engine process did not start")):
            while not pid_file.exists():
                assert self.proc.poll() is None, "the engine process exited at start"
                gevent.sleep(0.05)
        config = load_acd(tmp_path / "agents.yaml", tmp_path / "queues.yaml")
        self.acd_store = AcdStore(redis_url, prefix=prefix)
        AgentBoard(self.acd_store, config, engine_id="test").login("1001")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.switch.stop()
        self.acd_store.flush()


def read_cdr(settings, uuid):
    store = CdrStore(settings.database.url, tmp_spool(settings))
    store.open(drain=False)
    try:
        return store.get(uuid)
    finally:
        store.close()


def tmp_spool(settings):
    return Path(str(settings.paths.cdr_spool) + "-reader")      # never the engine's own spool


def test_a_call_killed_mid_conversation_keeps_agent_queue_wait_and_ivr_path(
        tmp_path, redis_server, redis_prefix):
    ep = AcdEngineProcess(tmp_path, redis_server.url, redis_prefix)
    try:
        caller = ep.switch.place_call("12345", "13800138000", "Caller")
        # the agent answered: the provisional CDR names them (written off the call's greenlet)
        assert wait_for(lambda: (read_cdr(ep.settings, caller.uuid) or {}).get("agent") == "1001",
                        timeout=30)
        mid = read_cdr(ep.settings, caller.uuid)
        assert PROVISIONAL in mid["tags"] and mid["end_time"] is None and mid["hangup_cause"] is None
        # which switch carried it (if that switch dies too, engine.cdr.orphans finishes the row)
        assert mid["extra"]["switch_core_uuid"] == ep.switch.core_uuid
        ep.proc.send_signal(signal.SIGKILL)                 # the engine dies mid-conversation
        ep.proc.wait(timeout=10)
        # on a real switch the bridge goes on without the engine: the caller hangs up later
        assert "CHANNEL_HANGUP" not in caller.events
        caller.hangup()
        assert caller.wait_hangup(timeout=10)
        xml = Path(ep.settings.switch.cdr_dir) / f"a_{caller.uuid}.cdr.xml"
        assert wait_for(xml.exists, timeout=10)
        # the next start imports the switch's file; here the import itself, as the engine runs it
        from engine.cdr.xmlcdr import import_dir
        store = CdrStore(ep.settings.database.url, tmp_spool(ep.settings)).open(drain=False)
        try:
            assert import_dir(store, str(ep.settings.switch.cdr_dir), {"12345"}) == 1
            cdr = store.get(caller.uuid)
            assert [e["cdr_uuid"] for e in store.outbox_take("tickets")] == [caller.uuid]
        finally:
            store.close()
        assert cdr["agent"] == "1001" and cdr["queue"] == "general"
        assert cdr["wait_seconds"] is not None and cdr["wait_seconds"] >= 0
        assert [step["node"] for step in cdr["ivr_path"]] == ["t:start"]
        assert "ivr:t" in cdr["tags"] and "from_switch_cdr" in cdr["tags"] and PROVISIONAL not in cdr["tags"]
        assert cdr["hangup_cause"] and cdr["end_time"] and cdr["billsec"] is not None
        assert cdr["talk_seconds"] is not None
    finally:
        ep.stop()


def test_cdr_list_shows_calls_in_progress_only_when_asked(tmp_path, capsys):
    import json

    from tests.clifix import run_cli, write_config
    cfg, settings = write_config(tmp_path)
    s = CdrStore(settings.database.url, settings.paths.cdr_spool).open()
    s.write(record("ended"))
    s.write(provisional("going", agent="1001"))
    s.close()
    rc, out, _ = run_cli(capsys, "cdr", "list", "--config", str(cfg), "--json")
    assert rc == 0 and [r["uuid"] for r in json.loads(out)] == ["ended"]
    rc, out, _ = run_cli(capsys, "cdr", "list", "--config", str(cfg), "--json", "--provisional")
    assert rc == 0 and sorted(r["uuid"] for r in json.loads(out)) == ["ended", "going"]
