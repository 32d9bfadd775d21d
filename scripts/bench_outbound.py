"""Outbound benchmarks (issue 15 §7).

pacing (in this process; engine/outbound/pacesim.py with the engine's own Pacer): a campaign of
--contacts on --agents agents, the population 60% answer (after 4-20 s of ringing), 20% no answer
(30 s), 10% busy, 10% invalid; talk 60-180 s, wrap-up 10 s; an answered customer with no free
agent is an abandon (nobody waits). Time-compressed: a fake clock in one-second steps, so a
working day of dialling runs in about a second. Printed per mode (progressive, predictive):
dials a second (of simulated time), agent occupancy (talk over logged-in time), abandon % of
answered calls, contacts finished an hour. Target: predictive abandon <= 3%.

agents (scripts/bench_outbound_agents.py, whose docstring says how and what is measured): the same
campaign dialled for real, `hotline run` in its own process, the simulator with --agents desk
phones and the population here, progressive then predictive (--modes), human timings compressed
20x (talk 3-9 s). Printed per mode: dials a second, agent occupancy, abandon % of answered calls
(the switch's and the engine's), contacts finished an hour (compressed, and /20), peaks, the
engine's CPU and RSS, anything left over. Exit 1 on any abandon in progressive, over 3% in
predictive, over-dialling, or the engine's record disagreeing with the switch.

robot (`hotline run` in its own process, the simulator here, a private Redis): a robot follow-up
campaign (ivr_flows/followup.yaml) of --contacts people who all answer and key their answers,
--channels calls at once. Printed: contacts finished and their rate, peak concurrent calls, the
engine's CPU seconds (user+system, /proc) per call and its peak RSS.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from gevent import monkey

monkey.patch_all()

import gevent  # noqa: E402

from benchlib import start_engine  # noqa: E402
from engine.infra.localredis import LocalRedis  # noqa: E402
from engine.infra.netutil import free_port  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def bench_pacing(args):
    from engine.outbound.pacer import Pacer
    from engine.outbound.pacesim import simulate
    print(f"pacing: {args.contacts} contacts, {args.agents} agents, 60/20/10/10 answer/no answer/busy/invalid, "
          "fake clock")
    print(f"{'mode':<12} {'dials':>6} {'sim h':>6} {'dials/s':>8} {'occupancy':>9} {'abandon %':>9} "
          f"{'done/h':>7} {'wall s':>6}")
    ok = True
    for mode in ("progressive", "predictive"):
        t = time.perf_counter()
        r = simulate(Pacer(mode, abandon_target=0.03), agents=args.agents, contacts=args.contacts, seed=args.seed)
        wall = time.perf_counter() - t
        print(f"{mode:<12} {r.dials:>6} {r.seconds / 3600:>6.2f} {r.dials / r.seconds:>8.2f} {r.occupancy:>9.3f} "
              f"{100 * r.abandon_rate:>9.2f} {r.finished_per_hour:>7.0f} {wall:>6.2f}")
        if mode == "predictive" and r.abandon_rate > 0.03:
            ok = False
            print("  FAIL: predictive abandon rate over 3%")
    return ok


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid, field="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_robot(args, redis, work):
    from engine.fsconf.render import render
    from engine.outbound import campaigns
    from engine.outbound.db import OutboundDb
    from engine.settings import load_settings
    from engine.sim.pstn import Behaviour, Population
    from engine.sim.switch import Switch
    password = "bench-secret"
    env = {**os.environ, "HOTLINE_BENCH_ESL_PASSWORD": password}
    esl_port, out_port, control_port = free_port(), free_port(), free_port()
    flows = work / "flows"
    flows.mkdir()
    shutil.copy(REPO / "ivr_flows" / "followup.yaml", flows / "followup.yaml")
    (work / "hotline.yaml").write_text(f"""\
trunk: {{dids: ["12345"]}}
esl: {{port: {esl_port}, password_env: HOTLINE_BENCH_ESL_PASSWORD}}
outbound: {{listen_port: {out_port}}}
paths: {{var_dir: {work / 'var'}}}
files: {{flows_dir: {flows}}}
redis: {{url: "{redis.url}", prefix: "bench-ob:"}}
control: {{listen_port: {control_port}}}
tts: {{edge_enabled: false}}
shutdown: {{grace_seconds: 1}}
log: {{file: {work / 'engine.log'}, level: {args.log_level}}}
outbound_calls:
  trunk_channels: 2000
  max_trunk_share: 0.5
  window: {{days: [mon, tue, wed, thu, fri, sat, sun], hours: ["00:00-24:00"], cn_calendar: false}}
  jobs: {{robot_channels: {args.channels}, tick_seconds: 0.2}}
""")
    settings = load_settings(work / "hotline.yaml", env=env)
    render(settings, work / "fs")
    switch = Switch(dialplan_dirs=[work / "fs" / "dialplan"], password=password)
    switch.max_sessions = 10000
    switch.sessions_per_second = 1000
    pop = switch.population = Population()
    pop.add("139*", Behaviour("person", ring=1.0, dtmf=((0.5, "1"), (0.6, "1"), (0.7, "2"), (0.8, "#"))))
    switch.start("127.0.0.1", esl_port)
    engine = start_engine(work, env, settings.paths.var_dir / "hotline.pid")
    try:
        db = OutboundDb(settings.database.url).open()
        campaigns.create(db, "bench", "robot", flow=str(flows / "followup.yaml"))
        campaigns.add_contacts(db, "bench", [{"number": f"139{i:08d}", "fields": {"summary": "路灯不亮",
                                                                                  "ticket_date": "2026-11-20"}}
                                             for i in range(args.contacts)])
        gevent.sleep(3.0)               # the engine renders its prompts
        cpu0, rss0 = cpu_seconds(engine.pid), rss_mib(engine.pid)
        t0 = time.monotonic()
        campaigns.control(db, "bench", "start")
        peak, done = 0, 0
        deadline = t0 + args.max_seconds
        while time.monotonic() < deadline:
            gevent.sleep(0.5)
            peak = max(peak, sum(1 for c in switch.channels.values() if "external" in getattr(c, "name", "")
                                 and not getattr(c, "hungup", False)))
            counts = campaigns.show(db, "bench")["contacts"]
            done = counts["done"] + counts["failed"]
            if done >= args.contacts:
                break
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(engine.pid) - cpu0
        counts = campaigns.show(db, "bench")["contacts"]
        print(f"robot: {args.contacts} contacts, {args.channels} channels: {counts['done']} done, "
              f"{counts['failed']} failed in {elapsed:.1f} s ({done / elapsed:.1f} contacts/s), "
              f"peak {peak} concurrent legs")
        print(f"engine: {cpu:.1f} CPU s ({1000 * cpu / max(1, done):.0f} ms a call, "
              f"{100 * cpu / elapsed:.0f}% of a core), RSS {rss0:.0f} -> {rss_mib(engine.pid):.0f} MiB, "
              f"peak {rss_mib(engine.pid, 'VmHWM'):.0f} MiB")
        return done >= args.contacts
    finally:
        engine.terminate()
        engine.wait(10)
        switch.stop()


def run_agents(args):
    from bench_outbound_agents import bench_agents      # an agent campaign on the simulator
    work = Path(tempfile.mkdtemp(prefix="hotline-bench-outbound-agents-"))
    redis = LocalRedis(work).start()
    try:
        return bench_agents(args, redis, work)
    finally:
        redis.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", nargs="?", choices=("pacing", "agents", "robot", "all"), default="all")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--contacts", type=int, default=None, help="default 5000 (pacing, agents), 400 (robot)")
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--channels", type=int, default=200, help="robot calls at once")
    ap.add_argument("--max-seconds", type=float, default=1200, help="bound on one run (robot, one agent campaign)")
    ap.add_argument("--modes", default="both", choices=("progressive", "predictive", "both"),
                    help="agents: which campaign modes")
    ap.add_argument("--keep", action="store_true", help="agents: keep the work dir")
    ap.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = ap.parse_args()
    ok = True
    if args.what in ("pacing", "all"):
        ok &= bench_pacing(argparse.Namespace(**{**vars(args), "contacts": args.contacts or 5000}))
    if args.what in ("agents", "all"):
        ok &= run_agents(argparse.Namespace(**{**vars(args), "contacts": args.contacts or 5000}))
    if args.what in ("robot", "all"):
        work = Path(tempfile.mkdtemp(prefix="hotline-bench-outbound-"))
        redis = LocalRedis(work).start()
        try:
            ok &= bench_robot(argparse.Namespace(**{**vars(args), "contacts": args.contacts or 400}), redis, work)
        finally:
            redis.stop()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
