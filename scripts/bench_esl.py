"""ESL benchmark: events a second parsed and dispatched by our InboundConnection, on one core.

(a) replay: a separate process plays the switch — auth, then the real `text/event-plain` messages
    captured in tests/fixtures/esl (our copy), repeated to --events, written as fast as the socket takes
    them. The measuring process only runs our client: parse, route, dispatch to one handler.
(b) simulator: a separate process runs the simulator and keeps originating calls (each call emits
    ~40 events); the client subscribes `event plain ALL`. This is bounded by how fast the
    simulator produces events, and says so.
Printed: events/s, time to the first event of the burst, peak RSS and CPU of the client process.
Every wait is bounded: a missing fixture, a server that does not start, or a stream that stops
short ends the run with a message and exit code 1, never a hang.
"""
import argparse
import os
import resource
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SIM_DIALPLAN = os.path.join(HERE, "..", "tests", "sim_dialplan")
STALL_S = 15.0          # no new event for this long (or the server went away): the run is broken
SOCKET_S = 60.0         # the servers' waits for the client


class BenchError(Exception):
    """Something the benchmark needs is missing or broke; the message says what."""


def fixture_events():
    from engine.esl.protocol import Parser
    from engine.sim.transcript import default_fixture_dir, records
    out = []
    try:
        fixture_dir = default_fixture_dir()
        names = sorted(os.listdir(fixture_dir))
    except OSError as exc:
        raise BenchError(f"cannot read the ESL transcripts: {exc} (tests/fixtures/esl in the "
                         f"repository, or HOTLINE_ESL_FIXTURES)") from None
    for name in names:
        if not name.endswith(".txt") or "json-events" in name:
            continue
        parser = Parser()
        for r in records(os.path.join(fixture_dir, name), conn="events-plain", direction="S->C"):
            for msg in parser.feed(r.data):
                if msg.content_type == "text/event-plain":
                    out.append(msg)
    if not out:
        raise BenchError(f"no text/event-plain events in the transcripts of {fixture_dir}")
    from engine.esl.protocol import encode_message
    return [encode_message({"Content-Length": str(len(m.body)), "Content-Type": "text/event-plain"},
                           m.body) for m in out]


# --- the switch side of (a), in its own process ---------------------------------------------------

def serve_replay(count, port_file):
    blobs = fixture_events()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(SOCKET_S)                # the client connects at once, or has gone
    with open(port_file, "w") as f:
        f.write(str(srv.getsockname()[1]))
    conn, _ = srv.accept()
    conn.settimeout(SOCKET_S)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.sendall(b"Content-Type: auth/request\n\n")
    buf = b""
    replies = [b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n",
               b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n"]
    while replies:
        chunk = conn.recv(4096)
        if not chunk:
            raise BenchError("the client went before subscribing")
        buf += chunk
        while b"\n\n" in buf and replies:
            _, buf = buf.split(b"\n\n", 1)
            conn.sendall(replies.pop(0))
    batch, sent = [], 0
    while sent < count:
        batch.append(blobs[sent % len(blobs)])
        sent += 1
        if len(batch) == 500:
            conn.sendall(b"".join(batch))
            batch = []
    if batch:
        conn.sendall(b"".join(batch))
    conn.recv(100)          # until the client goes
    conn.close()


def serve_sim(port_file, seconds):
    from gevent import monkey
    monkey.patch_all()
    import gevent
    from engine.sim.switch import Switch
    sw = Switch(dialplan_dirs=[SIM_DIALPLAN], password="ClueCon")
    sw.max_sessions = 100000
    _, port = sw.start("127.0.0.1", 0)[:2]
    with open(port_file, "w") as f:
        f.write(str(port))
    gevent.sleep(1.0)                       # let the client subscribe
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        sw.api(f"originate {{origination_caller_id_number=1555{n:07d}}}sofia/internal/7000@127.0.0.1:5080 &park()")
        for ch in list(sw.channels.values()):
            if ch.direction == "outbound" and ch.answered:
                ch.hangup("NORMAL_CLEARING")
        gevent.sleep(0.005)
    gevent.sleep(2)
    sw.stop()


# --- the measuring side ---------------------------------------------------------------------------

def start_server(args):
    port_file = f"/tmp/bench_esl_port.{os.getpid()}.{time.monotonic_ns()}"
    proc = subprocess.Popen([sys.executable, __file__, *args, "--port-file", port_file])
    deadline = time.monotonic() + 30
    try:
        while not (os.path.exists(port_file) and open(port_file).read()):
            if proc.poll() is not None:
                raise BenchError(f"the bench server ({args[0]}) exited with {proc.returncode} before "
                                 f"listening (its error is above)")
            if time.monotonic() > deadline:
                raise BenchError(f"the bench server ({args[0]}) did not listen within 30 s")
            time.sleep(0.02)
        port = int(open(port_file).read())
    except BaseException:
        end_server(proc, 0)
        raise
    finally:
        if os.path.exists(port_file):
            os.unlink(port_file)
    return proc, port


def end_server(proc, timeout):
    """Wait up to `timeout` for a server to end by itself, then kill it."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure(port, expected, idle_stop, first_within):
    """Count events until `expected` (or, with None, until none came for `idle_stop` seconds).
    Raises BenchError when the stream stops short: the server went away, nothing came within
    `first_within` seconds, or no new event for STALL_S."""
    import gevent
    from engine.esl.connection import InboundConnection
    from engine.esl.errors import ConnectionLost
    stats = {"n": 0, "first": None, "last": None}
    lost = []

    def on_event(event):
        now = time.perf_counter()
        if stats["first"] is None:
            stats["first"] = now
        stats["n"] += 1
        stats["last"] = now
        event.get("Unique-ID")                       # what a handler reads at least
    conn = InboundConnection("127.0.0.1", port, "ClueCon", events=("ALL",), reconnect=False)
    conn.on("*", on_event)
    conn.lost_hooks.append(lambda c, reason: lost.append(reason))
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    try:
        conn.start(wait=True, timeout=10)
    except ConnectionLost as exc:
        raise BenchError(str(exc)) from None
    try:
        last_n, idle_since = 0, time.perf_counter()
        while not (expected and stats["n"] >= expected):
            gevent.sleep(min(idle_stop, 0.2) if idle_stop else 0.2)
            now = time.perf_counter()
            if stats["n"] != last_n:
                last_n, idle_since = stats["n"], now
                continue
            if not expected and stats["n"] and (lost or now - idle_since >= idle_stop):
                break                                # the simulator stopped producing (or ended)
            if lost:
                raise BenchError(f"the server went away after {stats['n']:,} events"
                                 f"{f' of {expected:,}' if expected else ''}: {lost[0]}")
            if not stats["n"] and now - t0 > first_within:
                raise BenchError(f"no event within {first_within:g} s")
            if stats["n"] and now - idle_since > STALL_S:
                raise BenchError(f"no new event for {STALL_S:g} s after {stats['n']:,}")
    finally:
        cpu = time.process_time() - cpu0
        conn.stop()
    span = (stats["last"] or t0) - (stats["first"] or t0)
    return {"events": stats["n"], "span": span, "rate": stats["n"] / span if span else 0.0,
            "first_ms": ((stats["first"] or t0) - t0) * 1000, "cpu": cpu,
            "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=200_000, help="events in the replay burst")
    ap.add_argument("--sim-seconds", type=float, default=10.0)
    ap.add_argument("--serve-replay", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--serve-sim", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--port-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_replay:
        return serve_replay(args.serve_replay, args.port_file)
    if args.serve_sim:
        return serve_sim(args.port_file, args.serve_sim)

    from gevent import monkey
    monkey.patch_all()
    try:
        run(args)
    except BenchError as exc:
        sys.exit(f"bench_esl: {exc}")


def run(args):
    n_fixture = len(fixture_events())
    if not os.path.isdir(SIM_DIALPLAN):
        raise BenchError(f"the simulator's dialplan {os.path.normpath(SIM_DIALPLAN)} is missing")
    proc, port = start_server(["--serve-replay", str(args.events)])
    try:
        r = measure(port, args.events, None, first_within=10)
    finally:
        end_server(proc, 10)
    print(f"(a) replay of {n_fixture} captured plain events, repeated to {r['events']:,}:")
    print(f"    {r['rate']:,.0f} events/s parsed and dispatched; first event after {r['first_ms']:.1f} ms; "
          f"client CPU {r['cpu']:.2f} s; peak RSS {r['rss_mib']:.0f} MiB")
    proc, port = start_server(["--serve-sim", str(args.sim_seconds)])
    try:
        r = measure(port, None, 1.0, first_within=15)   # the simulator waits 1 s for our subscription
    finally:
        end_server(proc, 30)
    print(f"(b) simulator producing calls for {args.sim_seconds:g} s: {r['events']:,} events, "
          f"{r['rate']:,.0f} events/s received and dispatched (the simulator's output is the limit: "
          f"client CPU {r['cpu']:.2f} s for {r['span']:.1f} s)")


if __name__ == "__main__":
    main()
