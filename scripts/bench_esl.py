"""ESL benchmark: events a second parsed and dispatched by our InboundConnection, on one core.

(a) replay: a separate process plays the switch — auth, then the real `text/event-plain` messages
    captured in tests/fixtures/esl (our copy), repeated to --events, written as fast as the socket takes
    them. The measuring process only runs our client: parse, route, dispatch to one handler.
(b) simulator: a separate process runs the simulator and keeps originating calls (each call emits
    ~40 events); the client subscribes `event plain ALL`. This is bounded by how fast the
    simulator produces events, and says so.
Printed: events/s, time to the first event of the burst, peak RSS and CPU of the client process.
"""
import argparse
import os
import resource
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def fixture_events():
    from engine.esl.protocol import Parser
    from engine.sim.transcript import default_fixture_dir, records
    out = []
    fixture_dir = default_fixture_dir()
    for name in sorted(os.listdir(fixture_dir)):
        if not name.endswith(".txt") or "json-events" in name:
            continue
        parser = Parser()
        for r in records(os.path.join(fixture_dir, name), conn="events-plain", direction="S->C"):
            for msg in parser.feed(r.data):
                if msg.content_type == "text/event-plain":
                    out.append(msg)
    from engine.esl.protocol import encode_message
    return [encode_message({"Content-Length": str(len(m.body)), "Content-Type": "text/event-plain"},
                           m.body) for m in out]


# --- the switch side of (a), in its own process ---------------------------------------------------

def serve_replay(count, port_file):
    blobs = fixture_events()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    with open(port_file, "w") as f:
        f.write(str(srv.getsockname()[1]))
    conn, _ = srv.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.sendall(b"Content-Type: auth/request\n\n")
    buf = b""
    replies = [b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n",
               b"Content-Type: command/reply\nReply-Text: +OK event listener enabled plain\n\n"]
    while replies:
        buf += conn.recv(4096)
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
    sw = Switch(dialplan_dirs=[os.path.join(HERE, "..", "tests", "sim_dialplan")], password="ClueCon")
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
    while not (os.path.exists(port_file) and open(port_file).read()):
        if time.monotonic() > deadline or proc.poll() is not None:
            sys.exit("bench server did not start")
        time.sleep(0.02)
    port = int(open(port_file).read())
    os.unlink(port_file)
    return proc, port


def measure(port, expected, idle_stop):
    import gevent
    from gevent.event import Event as Flag
    from engine.esl.connection import InboundConnection
    stats = {"n": 0, "first": None, "last": None}
    done = Flag()

    def on_event(event):
        now = time.perf_counter()
        if stats["first"] is None:
            stats["first"] = now
        stats["n"] += 1
        stats["last"] = now
        event.get("Unique-ID")                       # what a handler reads at least
        if expected and stats["n"] >= expected:
            done.set()
    conn = InboundConnection("127.0.0.1", port, "ClueCon", events=("ALL",), reconnect=False)
    conn.on("*", on_event)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    conn.start(wait=True, timeout=10)
    if expected:
        done.wait(300)
    else:
        last_n = -1
        while True:                                  # until the simulator stops producing
            gevent.sleep(idle_stop)
            if stats["n"] == last_n and stats["n"] > 0:
                break
            last_n = stats["n"]
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
    n_fixture = len(fixture_events())
    proc, port = start_server(["--serve-replay", str(args.events)])
    r = measure(port, args.events, None)
    proc.wait(10)
    print(f"(a) replay of {n_fixture} captured plain events, repeated to {r['events']:,}:")
    print(f"    {r['rate']:,.0f} events/s parsed and dispatched; first event after {r['first_ms']:.1f} ms; "
          f"client CPU {r['cpu']:.2f} s; peak RSS {r['rss_mib']:.0f} MiB")
    proc, port = start_server(["--serve-sim", str(args.sim_seconds)])
    r = measure(port, None, 1.0)
    proc.wait(30)
    print(f"(b) simulator producing calls for {args.sim_seconds:g} s: {r['events']:,} events, "
          f"{r['rate']:,.0f} events/s received and dispatched (the simulator's output is the limit: "
          f"client CPU {r['cpu']:.2f} s for {r['span']:.1f} s)")


if __name__ == "__main__":
    main()
