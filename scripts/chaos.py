"""Chaos runs (issue 17 §7): each failure the engine must survive, injected under load.

Per scenario: a fresh `hotline run` (its own process, its own Redis on loopback, its own SQLite
CDR database), the simulator and the callers and agents' desk phones in this process. Callers
arrive at --rate a second for --seconds (every caller queues; agents answer after a moment, talk
1-3 s, wrap up 0.3 s); halfway through, the fault:
  crash           kill -9 of the engine process and an immediate restart (Restart=always)
  switch-restart  the simulator dies (Switch.crash: sockets cut, no hangup events, no XML CDR)
                  and a fresh one listens on the same port
  redis-restart   Redis stops and starts again with its data (saved just before)
  redis-wipe      Redis restarts empty; the agents log in again, as they would
  disk-full       every CDR database write and spool append fails (SQLITE_FULL, ENOSPC) for
                  --disk-seconds (scripts/chaos_engine.py: no small filesystem to fill without root)
Then, every caller gone, we wait (bounded) for the CDRs to be complete and count, per scenario:
  placed      calls placed
  cdrs        completed CDRs of those calls (provisional ones are not counted)
  missing     placed calls without a completed CDR                        (zero is right)
  dup         CDR rows beyond one per call                                 (zero is right)
  double      an agent rung while another leg of theirs was up (desk phones) (zero is right)
  stray       Redis keys left without a TTL and without an owner, or queue entries left (zero)
  recover     seconds from the fault's end to the first call placed after it bridged to an agent
Exit code 1 if any of the zero columns is not zero.
"""
import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gevent import monkey

monkey.patch_all()

import gevent  # noqa: E402
from ruamel.yaml import YAML  # noqa: E402

from benchlib import REPO  # noqa: E402
from engine.acd.store import AcdStore  # noqa: E402
from engine.control.client import ApiError, Client  # noqa: E402
from engine.cdr.store import CdrStore, is_provisional  # noqa: E402
from engine.fsconf.render import render  # noqa: E402
from engine.infra.localredis import LocalRedis  # noqa: E402
from engine.infra.netutil import free_port  # noqa: E402
from engine.settings import load_settings  # noqa: E402
from engine.sim.switch import Switch  # noqa: E402

SCENARIOS = ("crash", "switch-restart", "redis-restart", "redis-wipe", "disk-full")
PASSWORD = "chaos-secret"
TOKEN = "chaos-supervisor-token"
SETTLE_BOUND = 90.0     # after the load: callers gone, CDRs complete (watchdog passes every 5 s)


def write_yaml(path, data):
    with open(path, "w", encoding="utf-8") as f:
        YAML().dump(data, f)


class DeskPhone:
    """An agent's phone on whichever switch rings it: answers after a moment, talks, hangs up;
    counts a ring while another live leg of theirs is up (a leg on a crashed switch is dead)."""

    def __init__(self, rng, dead_switches):
        self.rng, self.dead = rng, dead_switches
        self.legs = []
        self.double = 0
        self.doubles = []            # (this leg, the legs already up) of each double booking

    def on_ring(self, channel):
        self.legs = [(sw, leg) for sw, leg in self.legs if leg.alive and sw not in self.dead]
        self.double += len(self.legs)
        if self.legs:
            self.doubles.append({"leg": channel.uuid, "at": time.strftime("%H:%M:%S"), "up": [
                {"leg": leg.uuid, "answered": leg.answered, "bridged_to": leg.bridged_to} for _, leg in self.legs]})
        self.legs.append((channel.switch, channel))
        if channel.wait_hangup(timeout=self.rng.uniform(0.1, 0.4)):
            return
        channel.answer()
        if not channel.wait_hangup(timeout=self.rng.uniform(1.0, 3.0)):
            channel.hangup("NORMAL_CLEARING")


def keys_without_owner(store):
    """Keys that would live for ever: no TTL, and not an agent's own state or a live queue
    (as tests/test_acd_crash.py judges them), plus queue entries left once every call ended."""
    out = []
    for key in store.r.scan_iter(f"{store.p}*"):
        name = key[len(store.p):]
        if name.startswith("qe:"):
            out.append(name)
            continue
        if name.startswith(("agent:", "q:")) and ":time" not in name or name in ("avail", "epoch"):
            continue
        if store.r.ttl(key) < 0:
            out.append(name)
    return out


class Scenario:
    def __init__(self, name, args, work):
        self.name, self.args, self.work = name, args, work
        self.rng = random.Random(args.seed)
        work.mkdir(parents=True)
        self.redis = LocalRedis(work / "redis-data")
        (work / "redis-data").mkdir()
        self.redis.start()
        self.esl_port = free_port()
        n_agents = max(4, int(args.rate * 3.5) + 2)       # ~3.5 s busy a call: never all busy
        self.agents = [{"id": f"{6000 + i}", "name": f"A{i}", "extension": f"{6000 + i}",
                        "skills": {"general": 5}, "a1_hash": "0" * 32} for i in range(n_agents)]
        write_yaml(work / "agents.yaml", {"agents": self.agents})
        write_yaml(work / "queues.yaml", {"queues": [{
            "name": "general", "skills": {"general": 1}, "strategy": "longest-idle", "ring_timeout": 5,
            "retry_delay": 0.5, "wrapup_seconds": 0.3, "max_length": 1000, "survey": False, "record": "none",
            "overflow": {"after_seconds": 600, "action": "hangup"},
            "announce": {"every_seconds": 30, "position": False, "expected_wait": False},
            "music": "silence_stream://-1"}]})
        self.prefix = "chaos:"
        self.disk_flag = work / "disk-full"
        self.control_port = free_port()
        (work / "hotline.yaml").write_text(f"""\
trunk: {{dids: ["12345"]}}
esl: {{port: {self.esl_port}, password_env: HOTLINE_CHAOS_ESL_PASSWORD, reconnect_max_delay: 0.5}}
outbound: {{listen_port: {free_port()}}}
paths: {{var_dir: {work / 'var'}}}
files: {{flows_dir: {work / 'no-flows'}, agents: {work / 'agents.yaml'}, queues: {work / 'queues.yaml'}}}
redis: {{url: "{self.redis.url}", prefix: "{self.prefix}"}}
control: {{listen_port: {self.control_port}, tokens: [{{name: chaos, role: supervisor, token_env: HOTLINE_CHAOS_TOKEN}}]}}
database: {{spool_drain_interval: 0.5}}
tts: {{edge_enabled: false}}
shutdown: {{grace_seconds: 1}}
log: {{file: {work / 'engine.log'}, level: {args.log_level}}}
""")
        self.env = {**os.environ, "HOTLINE_CHAOS_ESL_PASSWORD": PASSWORD, "HOTLINE_CHAOS_TOKEN": TOKEN,
                    "HOTLINE_CHAOS_DISK_FULL": str(self.disk_flag)}
        self.settings = load_settings(work / "hotline.yaml", env=self.env)
        render(self.settings, work / "fs")
        self.dead = set()
        self.phones = {a["extension"]: DeskPhone(random.Random(self.rng.random()), self.dead)
                       for a in self.agents}
        self.switch = None
        self.start_switch()
        self.store = AcdStore(self.redis.url, prefix=self.prefix)
        self.engine = None
        self.start_engine()
        self.api = Client(f"http://127.0.0.1:{self.control_port}", token=TOKEN)
        self.login_all()
        self.placed = []             # (uuid, placed at)
        self.served = {}             # uuid -> bridged at
        self.up = set()

    # --- the parts -------------------------------------------------------------------------
    def start_switch(self):
        self.switch = Switch(dialplan_dirs=[self.work / "fs" / "dialplan"], password=PASSWORD,
                             conf_dir=self.work / "fs")
        self.switch.load_codec_config(self.work / "fs")
        self.switch.xml_cdr_dir = str(self.settings.switch.cdr_dir)
        self.switch.max_sessions = 10000
        self.switch.start("127.0.0.1", self.esl_port)
        for ext, phone in self.phones.items():
            self.switch.register(ext, phone)

    def start_engine(self):
        pid_file = self.settings.paths.var_dir / "hotline.pid"
        if pid_file.exists():
            pid_file.unlink()                   # a killed process leaves its own behind
        self.engine = subprocess.Popen([sys.executable, str(REPO / "scripts" / "chaos_engine.py"), "run",
                                        "--config", str(self.work / "hotline.yaml")], env=self.env, cwd=str(REPO))
        deadline = time.monotonic() + 30
        while not pid_file.exists():
            if self.engine.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"engine did not start; see {self.work / 'engine.log'}")
            gevent.sleep(0.05)

    def login_all(self):
        """Every agent logs in through the engine's control API, as their desk does (the engine
        knows which of them are on a call); one already logged in is refused, and stays as is."""
        for a in self.agents:
            try:
                self.api.post(f"/v1/agents/{a['id']}/login")
            except ApiError as e:
                if e.status != 409:
                    raise

    # --- the load ---------------------------------------------------------------------------
    def caller(self, i):
        switch = self.switch
        ch = switch.place_call("12345", f"139{i:08d}", f"chaos {i}")
        self.placed.append((ch.uuid, time.monotonic()))
        self.up.add(ch.uuid)
        deadline = time.monotonic() + 60           # patience, and the bound on this caller
        try:
            while ch.alive and switch not in self.dead and time.monotonic() < deadline:
                if ch.bridged_to and ch.uuid not in self.served:
                    self.served[ch.uuid] = time.monotonic()
                ch.wait_hangup(timeout=0.05)
            if ch.alive and switch not in self.dead:
                ch.hangup("NORMAL_CLEARING")
        finally:
            self.up.discard(ch.uuid)

    def inject(self):
        """The fault; returns when it is over (the moment recovery is measured from)."""
        name = self.name
        if name == "crash":
            self.engine.send_signal(signal.SIGKILL)
            self.engine.wait(10)
            self.start_engine()
        elif name == "switch-restart":
            self.dead.add(self.switch)
            self.switch.crash()
            self.start_switch()
        elif name == "redis-restart":
            self.store.r.save()
            self.redis.stop()
            gevent.sleep(1.0)
            self.redis.start()
        elif name == "redis-wipe":
            self.redis.stop()
            for f in (self.work / "redis-data").glob("*.rdb"):
                f.unlink()
            gevent.sleep(1.0)
            self.redis.start()
            self.login_all()                   # the agents log in again, as after any Redis loss
        elif name == "disk-full":
            self.disk_flag.write_text("full\n")
            gevent.sleep(self.args.disk_seconds)
            self.disk_flag.unlink()
        return time.monotonic()

    def run(self):
        args = self.args
        jobs, n = [], 0
        t0 = time.monotonic()
        fault_at, fault_end = args.seconds / 2, None
        injector = None
        while time.monotonic() - t0 < args.seconds:
            due = int((time.monotonic() - t0) * args.rate) + 1
            while n < due:
                n += 1
                jobs.append(gevent.spawn(self.caller, n))
            if injector is None and time.monotonic() - t0 >= fault_at:
                injector = gevent.spawn(self.inject)
            gevent.sleep(0.02)
        if injector is None:
            injector = gevent.spawn(self.inject)
        fault_end = injector.get(timeout=60)
        gevent.joinall(jobs, timeout=70)
        # calls placed after the fault, first one bridged
        after = [self.served[u] - fault_end for u, at in self.placed if at >= fault_end and u in self.served]
        if not after:          # the load ended before the fault did: one more call proves recovery
            gevent.spawn(self.caller, n + 1).join(timeout=70)
            after = [self.served[u] - fault_end for u, at in self.placed if at >= fault_end and u in self.served]
        recover = min(after) if after else None
        return self.count(recover)

    # --- the counting -----------------------------------------------------------------------
    def cdr_rows(self):
        cdrs = CdrStore(self.settings.database.url, self.settings.paths.cdr_spool)
        cdrs.open(drain=False)
        try:
            return cdrs.list(provisional=True)
        finally:
            cdrs.close()

    def count(self, recover):
        placed = {u for u, _ in self.placed}
        deadline = time.monotonic() + SETTLE_BOUND
        while True:
            rows = self.cdr_rows()
            done = {r["uuid"] for r in rows if not is_provisional(r)}
            stray = keys_without_owner(self.store)
            if (placed <= done and not stray) or time.monotonic() > deadline:
                break
            gevent.sleep(1.0)
        uuids = [r["uuid"] for r in rows]
        double = sum(p.double for p in self.phones.values())
        return {"scenario": self.name, "placed": len(placed), "cdrs": len(placed & done),
                "missing": len(placed - done), "dup": len(uuids) - len(set(uuids)), "double": double,
                "stray": len(stray), "recover": recover,
                "detail": {"missing": sorted(placed - done)[:5], "stray": stray[:5],
                           "provisional": [r["uuid"] for r in rows if is_provisional(r)][:5],
                           "double": {ext: p.doubles for ext, p in self.phones.items() if p.doubles}}}

    def stop(self):
        if self.engine and self.engine.poll() is None:
            self.engine.send_signal(signal.SIGTERM)
            try:
                self.engine.wait(20)
            except subprocess.TimeoutExpired:
                self.engine.kill()
                self.engine.wait(5)
        self.switch.stop()
        self.redis.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    ap.add_argument("--seconds", type=float, default=40.0, help="seconds of load per scenario (fault halfway)")
    ap.add_argument("--rate", type=float, default=5.0, help="new calls a second (at most 10)")
    ap.add_argument("--disk-seconds", type=float, default=5.0, help="how long the disk stays full")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                    help="the engine's log level (engine.log in each scenario's work dir)")
    args = ap.parse_args()
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in names if s not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if not 0 < args.rate <= 10:
        ap.error("--rate must be above 0 and at most 10 calls a second")
    if not 2 <= args.seconds <= 600:
        ap.error("--seconds must be between 2 and 600")
    root = Path(tempfile.mkdtemp(prefix="hotline-chaos-"))
    print(f"chaos: {args.rate:g} calls/s for {args.seconds:g} s per scenario, fault halfway; work dir {root}",
          flush=True)
    header = f"{'scenario':<15}{'placed':>7}{'cdrs':>6}{'missing':>8}{'dup':>5}{'double':>7}{'stray':>6}{'recover':>9}"
    results = []
    for name in names:
        sc = Scenario(name, args, root / name)
        try:
            results.append(sc.run())
        finally:
            sc.stop()
        r = results[-1]
        print(f"  {name} done: {r['placed']} calls; details {r['detail']}", flush=True)
    print(header)
    bad = False
    for r in results:
        rec = f"{r['recover']:.2f} s" if r["recover"] is not None else "never"
        print(f"{r['scenario']:<15}{r['placed']:>7}{r['cdrs']:>6}{r['missing']:>8}{r['dup']:>5}{r['double']:>7}"
              f"{r['stray']:>6}{rec:>9}")
        bad |= bool(r["missing"] or r["dup"] or r["double"] or r["stray"] or r["recover"] is None)
    print("all zeros where zero is right" if not bad else "NON-ZERO where zero is right (see the details above)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
