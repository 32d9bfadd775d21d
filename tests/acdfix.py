"""An engine with an ACD (agents, queues, a real Redis) on the simulator, and agents' phones."""
import time

import gevent
from ruamel.yaml import YAML

from engine.sim.endpoints import AgentPhone
from engine.sim.scenario import AgentSpec
from tests.enginefix import Rig


def write_yaml(path, data):
    with open(path, "w", encoding="utf-8") as f:
        YAML().dump(data, f)
    return path


def agent(id_, skills=None, **extra):
    return {"id": id_, "name": f"Agent {id_}", "extension": id_, "skills": skills or {"general": 5},
            "a1_hash": "0" * 32, **extra}


def queue(name, **extra):
    base = {"name": name, "ring_timeout": 1, "retry_delay": 0.05, "wrapup_seconds": 0.3, "survey": False,
            "record": "none", "announce": {"every_seconds": 5, "position": False, "expected_wait": False},
            "music": "silence_stream://-1"}
    base.update(extra)
    return base


class AcdRig(Rig):
    def __init__(self, tmp_path, redis_url, prefix, agents, queues, flows_dir=None, **kw):
        write_yaml(tmp_path / "agents.yaml", {"agents": agents})
        write_yaml(tmp_path / "queues.yaml", {"queues": queues})
        super().__init__(tmp_path, flows_dir=flows_dir,
                         files={"agents": str(tmp_path / "agents.yaml"), "queues": str(tmp_path / "queues.yaml")},
                         redis={"url": redis_url, "prefix": prefix}, **kw)
        self.acd = self.engine.acd
        self.phones = {}

    def phone(self, extension, behaviour="answer", answer_after=0.05, hangup_after=None, codecs=None):
        spec = AgentSpec(extension=extension, behaviour=behaviour, answer_after=answer_after,
                         hangup_after=hangup_after, **({"codecs": tuple(codecs)} if codecs else {}))
        phone = self.phones.get(extension)
        if phone is None:
            phone = self.phones[extension] = AgentPhone(None, spec)
            self.switch.register(extension, phone)
        phone.spec = spec
        return phone

    def login(self, *agent_ids, phones=True, **phone_kw):
        for a in agent_ids:
            if phones:
                self.phone(self.acd.config.agents[a].extension, **phone_kw)
            self.acd.board.login(a)

    def state(self, agent_id):
        return self.acd.store.agent(agent_id)["state"]

    def wait_state(self, agent_id, state, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state(agent_id) == state:
                return True
            gevent.sleep(0.01)
        return False

    def stop(self):
        try:
            self.acd.store.flush()
        finally:
            super().stop()


def wait_for(predicate, timeout=5.0, step=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        gevent.sleep(step)
    return bool(predicate())
