"""Web console load: agents' desks and wallboards on live updates while the simulator keeps the
engine busy with concurrent calls.

`hotline run` is its own process; this process runs the simulator, the agents' phones, the callers
and the browsers' stand-ins: one logged-in session per desk and per wallboard, each holding
GET /events (SSE) as the pages do. The engine runs the same call load twice, first with no client
(the baseline), then with the clients connected, and we report:
- state change to client: an agent's transition (its `since`, written by the engine's Lua script
  in Redis) to the moment a client parsed the agent event carrying that state, p50/p99, for the
  agent's own desk and for the wallboards;
- offered to screen pop: the desk's ringing event, then GET /api/desk/state showing that call;
- the engine's CPU (seconds a second of load, from /proc) and RSS in each phase;
- this process's own CPU and loop lag: its clients stamp events late if its loop is busy, and that
  would not be the engine's latency.
Exit 1 unless desk, wallboard and screen pop p99 are each under 500 ms (the target).

Measured on a shared 2-core machine (defaults: 300 desks, 10 wallboards, 300 concurrent calls):
state change -> desk p50 72-89 ms, p99 150-312 ms; wallboard p99 151-314 ms; screen pop p99
190-476 ms (three runs, load 1.6-3.5); engine CPU +16-20 % of a core, RSS +28 MiB for the streams
(+187 MiB with the 310 logins' argon2id hashing); this process 27 % of a core, loop lag p99
7-16 ms. Before the pump sent only what changed (each pass sent all 300 calls again, as their talk
time ticked, and read all 310 agents twice), and before the engine froze its start-up objects out
of the garbage collector's sight (a full collection stalled the hub 100-270 ms): desk p99
516-697 ms, CPU +64 % of a core.
    scripts/bench_web [--agents 300] [--wallboards 10] [--calls 300] [--seconds 60]
"""
import argparse
import json
import os
import random
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from gevent import monkey

monkey.patch_all()

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gevent  # noqa: E402
import gevent.lock  # noqa: E402
import gevent.pool  # noqa: E402
from ruamel.yaml import YAML  # noqa: E402

from benchlib import percentile, start_engine  # noqa: E402
from engine.acd.store import AcdStore  # noqa: E402
from engine.control.client import Client  # noqa: E402
from engine.infra.localredis import LocalRedis  # noqa: E402
from engine.infra.netutil import free_port  # noqa: E402

PASSWORD = "bench-web-password"
RETRY_S = 2.0              # EventSource's reconnect delay (engine.web.live sends retry: 2000)


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Phone:
    """An agent's desk phone: answers after 0.3-1 s, talks `talk` seconds, hangs up."""

    def __init__(self, rng, talk):
        self.rng, self.talk = rng, talk

    def on_ring(self, channel):
        if channel.wait_hangup(timeout=self.rng.uniform(0.3, 1.0)):
            return
        channel.answer()
        if not channel.wait_hangup(timeout=self.rng.uniform(*self.talk)):
            channel.hangup("NORMAL_CLEARING")


class Session:
    """One browser: a cookie from POST /login, then GET /events read line by line."""

    def __init__(self, port, account, kind):
        self.port, self.account, self.kind = port, account, kind
        self.cookie = None
        self.events = 0

    def _http(self, method, path, body=None, headers=None):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        data = json.dumps(body).encode() if body is not None else b""
        head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", "Accept: application/json"]
        if self.cookie:
            head.append(f"Cookie: {self.cookie}")
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        return sock

    def _response(self, sock):
        raw = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
        sock.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        for line in head.decode("latin-1").split("\r\n"):
            if line.lower().startswith("set-cookie:") and "hotline_session=" in line:
                self.cookie = line.split(":", 1)[1].split(";", 1)[0].strip()
        status = int(head.split(b" ", 2)[1])
        if b"chunked" in head.lower():
            body = _unchunk(body)
        return status, body

    def login(self):
        status, body = self._response(self._http("GET", "/v1/session"))
        csrf = json.loads(body)["csrf_token"]
        status, body = self._response(self._http("POST", "/login", {"id": self.account, "password": PASSWORD},
                                                 {"X-CSRFToken": csrf}))
        if status != 200:
            raise RuntimeError(f"login {self.account}: {status} {body[:200]!r}")

    def stream(self, on_agent, opening):
        """Hold /events as EventSource does: reconnect after RETRY_S when it ends. `opening` (a
        semaphore) paces connections until their first bytes: the server answers 503 to more than
        its per-address cap of requests in flight, and a stream leaves that cap once it runs."""
        while True:
            try:
                with opening:
                    sock = self._http("GET", "/events", headers={"Accept": "text/event-stream"})
                    sock.settimeout(None)
                    first = sock.recv(65536)
                if first.startswith(b"HTTP/1.1 200"):
                    self.up = True
                    self._read(sock, first, on_agent)
                    self.up = False
                else:
                    self.refused += 1
                sock.close()
            except OSError:
                self.refused += 1
            gevent.sleep(RETRY_S)

    refused = 0
    up = False

    def _read(self, sock, buf, on_agent):
        """Every event of a read is stamped with the time the read returned (what a browser's
        EventSource sees), before any of them is looked at."""
        name = None
        while True:
            chunk = sock.recv(65536)
            received = time.time()
            if not chunk:
                return
            buf += chunk
            rows = []
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                line = line.rstrip(b"\r")
                if line.startswith(b"event:"):
                    name = line[6:].strip().decode()
                elif line.startswith(b"data:") and name == "agent":
                    self.events += 1
                    rows.append(json.loads(line[5:]))
                elif not line:
                    name = None
            if rows:
                on_agent(self, received, rows)

    def get(self, path):
        return self._response(self._http("GET", path))


def _unchunk(body):
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        n = int(size.split(b";")[0] or b"0", 16)
        if n == 0:
            break
        out += rest[:n]
        body = rest[n + 2:]
    return out


def write_config(work, args, redis_url, esl_port, out_port, web_port):
    yaml = YAML()
    agents = [{"id": f"{6000 + i}", "name": f"坐席{i}", "extension": f"{6000 + i}",
               "skills": {"general": 5}, "a1_hash": "0" * 32} for i in range(args.agents)]
    agents += [{"id": f"{9000 + i}", "name": f"班长{i}", "extension": f"{9000 + i}", "role": "supervisor",
                "skills": {"none": 1}, "a1_hash": "0" * 32} for i in range(args.wallboards)]
    with open(work / "agents.yaml", "w") as f:
        yaml.dump({"agents": agents}, f)
    with open(work / "queues.yaml", "w") as f:
        yaml.dump({"queues": [{"name": "general", "skills": {"general": 1}, "ring_timeout": 15, "retry_delay": 0.5,
                               "wrapup_seconds": args.wrapup, "max_length": 2000, "survey": False, "record": "none",
                               "overflow": {"after_seconds": 600, "action": "hangup"},
                               "announce": {"every_seconds": 60, "position": False, "expected_wait": False},
                               "music": "silence_stream://-1"}]}, f)
    (work / "hotline.yaml").write_text(f"""\
trunk: {{dids: ["12345"]}}
esl: {{port: {esl_port}, password_env: HOTLINE_BENCH_ESL_PASSWORD}}
outbound: {{listen_port: {out_port}}}
paths: {{var_dir: {work / 'var'}}}
files: {{flows_dir: {work / 'no-flows'}, agents: {work / 'agents.yaml'}, queues: {work / 'queues.yaml'}}}
redis: {{url: "{redis_url}", prefix: "bench-web:"}}
control:
  listen_port: {web_port}
  tokens: [{{name: bench, role: admin, token_env: HOTLINE_BENCH_TOKEN}}]
tts: {{edge_enabled: false}}
shutdown: {{grace_seconds: 1}}
log: {{file: {work / 'engine.log'}, level: WARNING}}
""")
    return [a["id"] for a in agents]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--agents", type=int, default=300)
    p.add_argument("--wallboards", type=int, default=10)
    p.add_argument("--calls", type=int, default=300, help="concurrent calls to hold (default %(default)s)")
    p.add_argument("--seconds", type=float, default=60, help="each phase's measured time")
    p.add_argument("--talk", type=float, nargs=2, default=(20.0, 40.0))
    p.add_argument("--wrapup", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=16)
    args = p.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="bench-web-"))
    redis = LocalRedis(work).start()
    from engine.fsconf.render import render
    from engine.settings import load_settings
    from engine.sim.switch import Switch
    token = f"bench-{rng.getrandbits(64):x}"
    env = {**os.environ, "HOTLINE_BENCH_ESL_PASSWORD": "bench-secret", "HOTLINE_BENCH_TOKEN": token}
    esl_port, out_port, web_port = free_port(), free_port(), free_port()
    ids = write_config(work, args, redis.url, esl_port, out_port, web_port)
    settings = load_settings(work / "hotline.yaml", env=env)
    render(settings, work / "fs")
    switch = Switch(dialplan_dirs=[work / "fs" / "dialplan"], password="bench-secret")
    switch.load_limits(work / "fs")   # the rendered switch.conf.xml's sessions a second, as the real switch
    switch.max_sessions = 10000
    switch.start("127.0.0.1", esl_port)
    desks = ids[:args.agents]
    for ext in desks:
        switch.register(ext, Phone(random.Random(rng.random()), args.talk))
    engine = start_engine(work, env, settings.paths.var_dir / "hotline.pid")
    store = AcdStore(redis.url, prefix="bench-web:")
    try:
        api = Client(f"http://127.0.0.1:{web_port}", token=token)
        for a in desks:
            api.post(f"/v1/agents/{a}/login")
        up = set()
        talk_mean = sum(args.talk) / 2 + 1.0
        rate = args.calls / talk_mean

        def caller(i):
            ch = switch.place_call("12345", f"139{i:08d}", f"bench {i}")
            up.add(ch.uuid)
            ch.wait_hangup(timeout=args.talk[1] + 120)
            if ch.alive:
                ch.hangup("NORMAL_CLEARING")
            up.discard(ch.uuid)

        def load(stop_at):
            n = 0
            while time.monotonic() < stop_at:
                if len(up) < args.calls:
                    n += 1
                    gevent.spawn(caller, rng.getrandbits(30))
                gevent.sleep(1.0 / max(rate * 3, 1))
            return n

        def phase(name, seconds):
            ramp_end = time.monotonic() + talk_mean        # reach the concurrency first
            load_until = ramp_end + seconds
            loader = gevent.spawn(load, load_until)
            while time.monotonic() < ramp_end:
                gevent.sleep(0.5)
            cpu0, t0 = cpu_seconds(engine.pid), time.monotonic()
            held = []
            while time.monotonic() < load_until:
                held.append(len(up))
                gevent.sleep(1.0)
            cpu = (cpu_seconds(engine.pid) - cpu0) / (time.monotonic() - t0)
            loader.join()
            out = {"cpu": cpu, "rss": rss_mib(engine.pid), "calls": sum(held) / max(len(held), 1)}
            print(f"{name}: {out['calls']:.0f} concurrent calls on average, engine CPU {cpu * 100:.0f} % "
                  f"of a core, RSS {out['rss']:.0f} MiB", flush=True)
            return out

        base = phase("without clients", args.seconds)
        # accounts (as an admin would make them) and logged-in sessions
        for a in ids:
            api.post("/v1/users", {"id": a, "role": "agent" if a in desks else "supervisor", "password": PASSWORD,
                                   **({"agent": a} if a in desks else {})})
        sessions = [Session(web_port, a, "desk") for a in desks] + \
                   [Session(web_port, a, "wallboard") for a in ids[args.agents:]]
        for i, sess in enumerate(sessions[args.agents:]):
            sess.index = i
        pool = gevent.pool.Pool(16)                     # under the server's per-address cap
        pool.map(lambda s: s.login(), sessions)
        rss_logins = rss_mib(engine.pid)
        print(f"{len(ids)} accounts made and logged in (argon2id hashes): engine RSS {rss_logins:.0f} MiB",
              flush=True)
        lat = {"desk": [], "wallboard": []}
        t_open = time.monotonic()
        skipped = [0]

        pops = []
        n_board = max(args.wallboards, 1)

        def on_agent(session, received, rows):
            """Read back the transition's `since` for a sample: every desk event, and each agent's
            events on one wallboard only (agent number mod wallboards), in one Redis round trip."""
            if session.kind == "wallboard":
                rows = [r for r in rows if int(r["id"]) % n_board == session.index]
            if not rows:
                return
            pipe = store.r.pipeline(transaction=False)
            for r in rows:
                pipe.hmget(store.k_agent(r["id"]), "state", "since", "call")
            for r, (state, since, call) in zip(rows, pipe.execute()):
                if state != r["state"] or since is None:
                    skipped[0] += 1           # it moved on already: no clean sample
                    continue
                lat[session.kind].append(received - float(since))
                if session.kind == "desk" and r["state"] == "ringing" and call:
                    gevent.spawn(screen_pop, session, float(since), call)

        def screen_pop(session, since, call):
            """What the desk page does on its agent's event: GET /api/desk/state, until the pop is
            the offered call's."""
            status, body = session.get("/api/desk/state")
            if status == 200:
                doc = json.loads(body)
                if (doc.get("pop") or {}).get("call") == call:
                    pops.append(time.time() - since)

        lags = []

        def loop_lag():
            """This process's own lag: its clients stamp what they read late if its loop is busy
            (it also runs the simulator), and that would not be the engine's latency."""
            while True:
                t = time.monotonic()
                gevent.sleep(0.01)
                lags.append((time.monotonic() - t - 0.01) * 1000)

        lagger = gevent.spawn(loop_lag)
        opening = gevent.lock.BoundedSemaphore(16)
        streams = [gevent.spawn(s.stream, on_agent, opening) for s in sessions]
        while sum(1 for s in sessions if s.up) < len(sessions) and time.monotonic() - t_open < 60:
            gevent.sleep(0.5)
        gevent.sleep(1.0)                   # their snapshots read
        print(f"{sum(1 for s in sessions if s.up)} of {len(sessions)} streams up after "
              f"{time.monotonic() - t_open:.1f} s ({sum(s.refused for s in sessions)} refused and retried)", flush=True)
        for k in lat:
            lat[k].clear()                    # the snapshots' rows are not changes
        pops.clear()
        lags.clear()
        me0, w0 = os.times(), time.monotonic()
        loaded = phase(f"with {args.agents} desks and {args.wallboards} wallboards", args.seconds)
        for kind, values in lat.items():
            ms = [v * 1000 for v in values]
            print(f"state change -> {kind:9s}: {len(ms)} events, p50 {percentile(ms, 50):.0f} ms, "
                  f"p99 {percentile(ms, 99):.0f} ms, max {max(ms) if ms else float('nan'):.0f} ms")
        ms = [v * 1000 for v in pops]
        print(f"offered -> screen pop on the desk (event, then GET /api/desk/state): {len(ms)} calls, "
              f"p50 {percentile(ms, 50):.0f} ms, p99 {percentile(ms, 99):.0f} ms")
        me1 = os.times()
        mine = (me1.user + me1.system - me0.user - me0.system) / (time.monotonic() - w0)
        print(f"(samples skipped: agent moved on before the read-back: {skipped[0]}; this process, which runs "
              f"the simulator and every client, used {100 * mine:.0f} % of a core, its loop's lag p99 "
              f"{percentile(lags, 99):.0f} ms, max {max(lags, default=0):.0f} ms)")
        print(f"engine's extra for the clients: CPU {100 * (loaded['cpu'] - base['cpu']):+.0f} % of a core, "
              f"RSS {loaded['rss'] - base['rss']:+.0f} MiB ({rss_logins - base['rss']:+.0f} MiB of it came with the "
              f"logins, {loaded['rss'] - rss_logins:+.0f} MiB with the streams)")
        print(f"streams refused or ended and reopened during the run: {sum(s.refused for s in sessions)}")
        for g in (*streams, lagger):
            g.kill(block=False)
        p99s = [percentile([v * 1000 for v in values], 99) for values in (lat["desk"], lat["wallboard"], pops)]
        return 0 if all(p < 500 for p in p99s) else 1            # the target: p99 < 500 ms, each
    finally:
        engine.send_signal(signal.SIGTERM)
        try:
            engine.wait(30)
        except Exception:
            engine.kill()
        switch.stop()
        redis.stop()
        print(f"(work dir {work}; engine log {work / 'engine.log'})")


if __name__ == "__main__":
    sys.exit(main())
