"""Load benchmark of the engine: `hotline run` in its own process, the simulator and callers here.

Callers arrive at --rate a second for --seconds; the engine answers each and plays its welcome
prompt (longer than the call); each caller hangs up after --hold seconds, so about rate x hold
calls are up at once. Measured:
- concurrent calls held (peak of engine-controlled channels in the simulator);
- new calls a second actually placed and answered;
- latency from CHANNEL_ANSWER to the engine's next command (the CHANNEL_EXECUTE that follows it
  on the same channel), p50/p99;
- engine CPU seconds per call and peak RSS, from /proc/<pid>.
"""
import argparse
import os
import signal
import tempfile
import time
import wave
from pathlib import Path

from gevent import monkey

monkey.patch_all()

import gevent  # noqa: E402

from benchlib import percentile, start_engine  # noqa: E402
from engine.cdr.store import CdrStore  # noqa: E402
from engine.fsconf.render import render  # noqa: E402
from engine.infra.netutil import free_port  # noqa: E402
from engine.settings import load_settings  # noqa: E402
from engine.sim.switch import Switch  # noqa: E402

CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def peak_rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def write_silence(path, seconds, rate=8000):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))


def write_menu_flow(flows, long_prompt, short_prompt):
    """One menu whose prompt outlasts the caller; key 1 plays a short prompt and hangs up."""
    flows.mkdir(parents=True, exist_ok=True)
    (flows / "bench.yaml").write_text(f"""\
name: bench
entry: {{"12345": main}}
prompts:
  menu: {{file: {long_prompt}}}
  done: {{file: {short_prompt}}}
nodes:
  main:
    type: menu
    prompt: menu
    timeout: 120
    max_retries: 0
    children: {{"1": done, invalid: done, timeout: done}}
  done:
    type: play
    prompt: done
    children: {{next: bye}}
  bye:
    type: hangup
""")


class Meter:
    """Watches the simulator's events: answer -> next execute latency, concurrency."""

    def __init__(self):
        self.dtmf_at = {}
        self.dtmf_latencies = []
        self.break_pending = {}
        self.break_latencies = []
        self.answered_at = {}
        self.latencies = []
        self.answered = 0
        self.peak = 0
        self.up = set()

    def __call__(self, headers, body=None):
        h = headers if isinstance(headers, dict) else dict(headers)
        name, uuid = h.get("Event-Name"), h.get("Unique-ID")
        if name == "CHANNEL_ANSWER":
            self.answered_at[uuid] = time.perf_counter()
            self.answered += 1
            self.up.add(uuid)
            self.peak = max(self.peak, len(self.up))
        elif name == "DTMF" and h.get("Call-Direction") == "inbound":
            self.dtmf_at.setdefault(uuid, time.perf_counter())
            self.break_pending.setdefault(uuid, time.perf_counter())
        elif name == "API" and h.get("API-Command") == "uuid_break":
            target = (h.get("API-Command-Argument") or "").split(" ")[0]
            if target in self.break_pending:
                self.break_latencies.append(time.perf_counter() - self.break_pending.pop(target))
        elif name == "CHANNEL_EXECUTE" and uuid in self.dtmf_at:
            self.dtmf_latencies.append(time.perf_counter() - self.dtmf_at.pop(uuid))
        elif name == "CHANNEL_EXECUTE" and uuid in self.answered_at:
            if h.get("Application") != "answer":
                self.latencies.append(time.perf_counter() - self.answered_at.pop(uuid))
        elif name == "CHANNEL_HANGUP":
            self.up.discard(uuid)
            self.answered_at.pop(uuid, None)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=20.0, help="new calls a second")
    ap.add_argument("--seconds", type=float, default=60.0, help="how long calls keep arriving")
    ap.add_argument("--hold", type=float, default=25.0, help="seconds each caller stays")
    ap.add_argument("--ivr", action="store_true",
                    help="callers sit in an IVR menu and press 1 at a random moment: measures "
                         "DTMF -> the engine's next command instead of the welcome prompt")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
    password = "bench-secret"
    env = {**os.environ, "HOTLINE_BENCH_ESL_PASSWORD": password}
    esl_port, out_port = free_port(), free_port()
    write_silence(work / "long.wav", args.hold + 60)
    write_silence(work / "short.wav", 0.5)
    flows_line = f"{{flows_dir: {work / 'no-flows'}, welcome_prompt: {work / 'long.wav'}}}"
    if args.ivr:
        write_menu_flow(work / "flows", work / "long.wav", work / "short.wav")
        flows_line = f"{{flows_dir: {work / 'flows'}}}"
    (work / "hotline.yaml").write_text(f"""\
trunk: {{dids: ["12345"]}}
esl: {{port: {esl_port}, password_env: HOTLINE_BENCH_ESL_PASSWORD}}
outbound: {{listen_port: {out_port}}}
paths: {{var_dir: {work / 'var'}}}
files: {flows_line}
shutdown: {{grace_seconds: 1}}
log: {{file: {work / 'engine.log'}, level: WARNING}}
""")
    settings = load_settings(work / "hotline.yaml", env=env)
    render(settings, work / "fs")
    switch = Switch(dialplan_dirs=[work / "fs" / "dialplan"], password=password)
    switch.load_limits(work / "fs")   # the rendered switch.conf.xml's sessions a second, as the real switch
    switch.max_sessions = 5000
    switch.start("127.0.0.1", esl_port)
    engine = start_engine(work, env, settings.paths.var_dir / "hotline.pid")
    meter = Meter()
    switch.subscribe(meter)
    cpu0 = cpu_seconds(engine.pid)

    channels = []

    def caller(n):
        ch = switch.place_call("12345", f"139{n:08d}", f"bench {n}")
        channels.append(ch)
        if args.ivr:
            import random
            if ch.wait_hangup(timeout=random.uniform(0.3, 0.9) * args.hold):
                return
            ch.press("1")
        if not ch.wait_hangup(timeout=args.hold):
            ch.hangup("NORMAL_CLEARING")

    print(f"bench_calls: {args.rate:g} calls/s for {args.seconds:g} s, {args.hold:g} s each "
          f"(expect ~{args.rate * args.hold:.0f} up at once)", flush=True)
    t0 = time.perf_counter()
    jobs, n = [], 0
    while time.perf_counter() - t0 < args.seconds:
        due = int((time.perf_counter() - t0) * args.rate) + 1
        while n < due:
            n += 1
            jobs.append(gevent.spawn(caller, n))
        gevent.sleep(0.01)
    placed_for = time.perf_counter() - t0
    gevent.joinall(jobs, timeout=args.hold + 30)
    gevent.sleep(1.0)
    cpu = cpu_seconds(engine.pid) - cpu0
    rss = peak_rss_mib(engine.pid)
    engine.send_signal(signal.SIGTERM)
    engine.wait(60)
    switch.stop()
    store = CdrStore(settings.database.url, settings.paths.cdr_spool)
    store.open(drain=False)
    cdrs = len(store.list())
    store.close()

    lat = [x * 1000 for x in meter.latencies]
    print(f"calls placed:              {n} in {placed_for:.1f} s = {n / placed_for:.1f} new calls/s")
    print(f"calls answered by engine:  {meter.answered}")
    print(f"concurrent calls held:     {meter.peak} (peak)")
    print(f"answer -> next command:    p50 {percentile(lat, 50):.2f} ms, p99 {percentile(lat, 99):.2f} ms "
          f"(n={len(lat)})")
    if args.ivr:
        b = [x * 1000 for x in meter.break_latencies]
        print(f"DTMF -> engine's command:  p50 {percentile(b, 50):.2f} ms, p99 {percentile(b, 99):.2f} ms "
              f"(n={len(b)}; uuid_break of the menu prompt)")
        d = [x * 1000 for x in meter.dtmf_latencies]
        print(f"DTMF -> next command:      p50 {percentile(d, 50):.2f} ms, p99 {percentile(d, 99):.2f} ms "
              f"(n={len(d)}; the caller's key breaks the menu prompt, the menu decides, the next "
              f"prompt starts)")
    print(f"engine CPU:                {cpu:.1f} s total, {cpu / max(n, 1) * 1000:.1f} ms per call")
    print(f"engine peak RSS:           {rss:.0f} MiB")
    print(f"CDRs written:              {cdrs} of {n}")
    print(f"(work dir {work})")


if __name__ == "__main__":
    main()
