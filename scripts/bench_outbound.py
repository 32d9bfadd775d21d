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

robot (`hotline run` in its own process, the simulator in this one, a private Redis): a robot
follow-up campaign (ivr_flows/followup.yaml) of --contacts people who all answer after 1 s of
ringing and key their answers (PERSON_KEYS), --channels calls at once; a call lasts about 14 s
(the prompts play in real time). The engine starts 49 dials a second (max_trunk_share 0.5 of the 99
sessions the default switch.sessions_per_second 100 admits), so 200 legs are up after 4 s. Printed: contacts
finished, contacts a second, peak concurrent legs up at the switch, the engine's CPU (user+system
of it and its children, /proc) per call and share of a core, its RSS at the start, the end and
the peak and its growth a call after the first --channels calls, this process's CPU (the
simulator and the polling), and the attempts: their results, contacts dialled more than once and
contacts left open (exit 1 unless every contact finished, each dialled once). --timeline adds
legs, contacts, CPU and RSS every 2 s. The simulator is not the bottleneck at 200 calls (about as
much CPU as the engine, ~15% of a core each); what made contacts miss was keys pressed before the
engine's session could hear them (see PERSON_KEYS).
"""
import argparse
import collections
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
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")    # utime stime cutime cstime


def rss_mib(pid, field="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


# What each contact keys, in seconds after answering: 1 (start) during the greeting, then 1
# (resolved), 2 (satisfied) and # (no comment) typed ahead of each question, as a regular does.
# Not sooner: a key pressed before the engine's socket session has subscribed to the leg's events
# reaches nobody (the switch sends a listener only the events after its `myevents`), and with 200
# legs answering in the same second (before the engine bounded its dials a second) that setup took
# up to 1.2 s on a busy machine: keys at 0.5-0.8 s lost the 1 of 78 of 400 contacts (not_confirmed,
# retried an hour later).
PERSON_KEYS = ((2.0, "1"), (3.0, "1"), (4.0, "2"), (5.0, "#"))

Sample = collections.namedtuple("Sample", "t legs finished claimed engine_cpu own_cpu load rss")


def own_cpu_seconds():
    t = os.times()
    return t.user + t.system


def load1():
    return float(Path("/proc/loadavg").read_text().split()[0])


def print_timeline(samples, every=2.0):
    """Every `every` s: legs up at the switch, contacts finished and claimed, the share of a core
    the engine and this process (simulator, polling) used since the line before, the engine's RSS."""
    print(f"{'s':>6} {'legs':>5} {'finished':>8} {'claimed':>7} {'engine %':>8} {'sim %':>6} {'load':>5} "
          f"{'RSS MiB':>7}")
    last = None
    for s in samples:
        if last is not None and s.t - last.t < every and s is not samples[-1]:
            continue
        dt = s.t - (last.t if last else 0.0)
        e = 100 * (s.engine_cpu - (last.engine_cpu if last else 0.0)) / dt
        o = 100 * (s.own_cpu - (last.own_cpu if last else 0.0)) / dt
        print(f"{s.t:>6.1f} {s.legs:>5} {s.finished:>8} {s.claimed:>7} {e:>8.0f} {o:>6.0f} {s.load:>5.2f} "
              f"{s.rss:>7.0f}")
        last = s


def rss_growth(samples, first):
    """(RSS when the first `first` calls had finished, KiB more a call after them, how many calls)
    or None when too few calls followed: what a long campaign costs in memory, the working set of
    a full load of calls aside."""
    start = next((s for s in samples if s.finished >= first), None)
    end = samples[-1] if samples else None
    if start is None or end.finished - start.finished < first:
        return None
    calls = end.finished - start.finished
    return start.rss, 1024 * (end.rss - start.rss) / calls, calls


def report_attempts(db, counts, contacts):
    """Every contact finished once: the attempts' results, contacts dialled more than once, and
    contacts left open (pending or claimed). True when none is left open or dialled twice."""
    A = db.m.Attempt
    tries = db.run(lambda: list(A.select(A.contact_id, A.result).dicts()))
    per_contact = collections.Counter(t["contact_id"] for t in tries)
    twice = sum(1 for n in per_contact.values() if n > 1)
    left = counts["pending"] + counts["claimed"]
    results = collections.Counter(t["result"] or "in progress" for t in tries)
    print(f"attempts: {len(tries)} for {len(per_contact)} contacts ({dict(results)}); "
          f"dialled more than once: {twice}; left open: {left} (pending {counts['pending']}, "
          f"claimed {counts['claimed']}); never dialled: {contacts - len(per_contact)}")
    return twice == 0 and left == 0


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
    switch.load_limits(work / "fs")   # the rendered switch.conf.xml's sessions a second, as the real switch
    pop = switch.population = Population()
    pop.add("139*", Behaviour("person", ring=1.0, dtmf=PERSON_KEYS))
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
        own0 = own_cpu_seconds()
        t0 = time.monotonic()
        campaigns.control(db, "bench", "start")
        samples = []
        deadline = t0 + args.max_seconds
        while time.monotonic() < deadline:
            gevent.sleep(0.5)
            legs = sum(1 for c in list(switch.channels.values()) if c.name.startswith("sofia/external/") and c.alive)
            counts = campaigns.show(db, "bench")["contacts"]
            samples.append(Sample(time.monotonic() - t0, legs, counts["done"] + counts["failed"],
                                  counts["claimed"], cpu_seconds(engine.pid) - cpu0, own_cpu_seconds() - own0,
                                  load1(), rss_mib(engine.pid)))
            if samples[-1].finished >= args.contacts:
                break
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(engine.pid) - cpu0
        own = own_cpu_seconds() - own0
        done = samples[-1].finished if samples else 0
        peak = max((s.legs for s in samples), default=0)
        counts = campaigns.show(db, "bench")["contacts"]
        if args.timeline:
            print_timeline(samples)
        print(f"robot: {args.contacts} contacts, {args.channels} channels: {counts['done']} done, "
              f"{counts['failed']} failed in {elapsed:.1f} s ({done / elapsed:.1f} contacts/s), "
              f"peak {peak} concurrent legs")
        print(f"engine: {cpu:.1f} CPU s ({1000 * cpu / max(1, done):.0f} ms a call, "
              f"{100 * cpu / elapsed:.0f}% of a core), RSS {rss0:.0f} -> {rss_mib(engine.pid):.0f} MiB, "
              f"peak {rss_mib(engine.pid, 'VmHWM'):.0f} MiB; simulator and polling (this process): {own:.1f} CPU s")
        growth = rss_growth(samples, args.channels)
        if growth is not None:
            print(f"RSS after the first {args.channels} calls: {growth[0]:.0f} MiB, then {growth[1]:+.0f} KiB a call "
                  f"over {growth[2]} calls")
        ok = report_attempts(db, counts, args.contacts)
        return ok and done >= args.contacts
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
    ap.add_argument("--timeline", action="store_true", help="robot: legs, contacts and CPU every 2 s")
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
