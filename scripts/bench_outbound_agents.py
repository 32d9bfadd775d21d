"""Outbound benchmark `agents` (issue 15 §7): an agent campaign dialled for real on the simulator.

`hotline run` in its own process, the simulator, the agents' desk phones and the population
behind the trunk gateway in this process, a private Redis. --agents agents (default 50) log in
and are ready; a campaign of --contacts contacts (default 5,000) runs in mode progressive, then
a fresh one in mode predictive (abandon target 3%), each to its end (one pass: max_attempts 1, so
every contact is dialled exactly once).

Population (seeded, per number; engine/sim/pstn.py behaviours): 60% person (rings, answers,
stays until we hang up), 20% no_answer (rings until originate_timeout), 5% busy (486 at once),
5% busy_ringing (rings, then 486), 10% unallocated (the carrier's early-media announcement, then
404). Agents' desk phones answer an offered call after 0.05-0.15 s and end the conversation
after the talk time; the queue's wrap-up follows.

Time compression, factor COMPRESSION (20): every human timing is divided by it: talk 60-180 s ->
3-9 s, customer ringing 4-20 s -> 0.2-1 s, wrap-up 10 s -> 0.5 s, the wait for an agent before an
answered customer counts as abandoned (outbound_calls.jobs.agent_wait_seconds, 2 s, the usual
regulatory figure) -> 0.1 s, the scheduler's tick 1 s -> 0.1 s. One timing is not compressed as
far: originate_timeout cannot go under 5 s (the settings' minimum), so a no-answer rings 5 s
instead of 30/20 = 1.5 s (those dials hold their place in flight ~3x longer than in a compressed
day). Everything goes through settings and switch behaviours the real FreeSWITCH honours: the
same originate, socket, queue and bridge bytes over ESL; no engine shortcut. The engine's own
latencies (answer -> socket -> queue -> agent offer, a few ms) are not compressed: relative to the
compressed timings they weigh 20x more than in a real day.

Measured from outside the engine: dials = customer legs the switch placed to the gateway;
answered / abandoned from the switch (a customer leg answered and never bridged to an agent is an
abandon) and, beside it, the engine's own record (engine/outbound/report.py abandon_pct);
occupancy = agents' talk time on their desk phones (answer to hang-up) over their logged-in time
(agents x the campaign's duration); contacts finished (done, failed, skipped) an hour of the
compressed run, and that figure divided by the factor: what the same agents would finish an hour
at real talk times. The division is fair only because every timing that paces the campaign was
compressed by the same factor, except the no-answer ring and the engine's latencies, which make
the compressed run slower, so the scaled figure is a lower bound. Over-dialling is watched all
along: answered customers waiting for an agent against agents free or being offered.

Exit 1 if predictive abandons more than 3% of answered calls, progressive abandons any, a contact
is dialled twice or left unfinished, or anything is left up afterwards.
"""
import os
import random
import shutil
import time

import gevent

from benchlib import cpu_seconds, rss_mib, start_engine
from engine.infra.netutil import free_port

COMPRESSION = 20
TALK = (60 / COMPRESSION, 180 / COMPRESSION)
RING = (4 / COMPRESSION, 20 / COMPRESSION)
WRAPUP = 10 / COMPRESSION
AGENT_WAIT = 2 / COMPRESSION
TICK = 1 / COMPRESSION * 2              # 0.1 s
ORIGINATE_TIMEOUT = 5                   # the settings' minimum (30 s / 20 would be 1.5 s)
AGENT_ANSWER = (0.05, 0.15)
POPULATION = (("person", 0.60), ("no_answer", 0.20), ("busy", 0.05), ("busy_ringing", 0.05),
              ("unallocated", 0.10))
PREFIX = "bench-oba:"


class DeskPhone:
    """An agent's phone: answers after AGENT_ANSWER, talks TALK, hangs up; keeps its talk time and
    counts a ring while another of its legs is up (a double booking)."""

    def __init__(self, rng):
        self.rng = rng
        self.legs = []
        self.double = 0
        self.talk = 0.0
        self.calls = 0

    def on_ring(self, channel):
        self.legs = [leg for leg in self.legs if leg.alive]
        self.double += len(self.legs)
        self.legs.append(channel)
        if channel.wait_hangup(timeout=self.rng.uniform(*AGENT_ANSWER)):
            return
        channel.answer()
        self.calls += 1
        t0 = time.monotonic()
        channel.wait_hangup(timeout=self.rng.uniform(*TALK)) or channel.hangup("NORMAL_CLEARING")
        self.talk += time.monotonic() - t0


def population(rng, numbers):
    from engine.sim.pstn import Population
    return Population.drawn(numbers, POPULATION, rng, ring=RING)


def write_config(work, args, redis_url):
    from ruamel.yaml import YAML
    esl_port, out_port, control_port = free_port(), free_port(), free_port()
    agents = [{"id": f"{7000 + i}", "name": f"A{i}", "extension": f"{7000 + i}", "skills": {"sales": 5},
               "a1_hash": "0" * 32} for i in range(args.agents)]
    queues = [{"name": "sales", "skills": {"sales": 1}, "strategy": "longest-idle", "ring_timeout": 15,
               "retry_delay": 0.2, "wrapup_seconds": WRAPUP, "max_length": 1000, "survey": False,
               "record": "none", "announce": {"every_seconds": 30, "position": False, "expected_wait": False},
               "music": "silence_stream://-1"}]
    for name, data in (("agents.yaml", {"agents": agents}), ("queues.yaml", {"queues": queues})):
        with open(work / name, "w", encoding="utf-8") as f:
            YAML().dump(data, f)
    (work / "hotline.yaml").write_text(f"""\
trunk: {{dids: ["12345"], proxy: "127.0.0.1:5099"}}
esl: {{port: {esl_port}, password_env: HOTLINE_BENCH_ESL_PASSWORD}}
outbound: {{listen_port: {out_port}}}
paths: {{var_dir: {work / 'var'}}}
files: {{flows_dir: {work / 'no-flows'}, agents: {work / 'agents.yaml'}, queues: {work / 'queues.yaml'}}}
redis: {{url: "{redis_url}", prefix: "{PREFIX}"}}
control: {{listen_port: {control_port}}}
tts: {{edge_enabled: false}}
shutdown: {{grace_seconds: 1}}
log: {{file: {work / 'engine.log'}, level: {args.log_level}}}
outbound_calls:
  originate_timeout: {ORIGINATE_TIMEOUT}
  trunk_channels: 2000
  max_trunk_share: 0.5
  max_agent_share: 1.0
  window: {{days: [mon, tue, wed, thu, fri, sat, sun], hours: ["00:00-24:00"], cn_calendar: false}}
  jobs: {{tick_seconds: {TICK}, agent_wait_seconds: {AGENT_WAIT}}}
""")
    return agents


class Watch:
    """Samples the switch and the agents' states while a campaign runs."""

    def __init__(self, switch, store, agent_ids, pop, numbers):
        self.switch, self.store, self.agent_ids = switch, store, agent_ids
        self.pop, self.numbers = pop, numbers
        self.samples = 0
        self.busy_share = 0.0
        self.overdial = 0           # samples with more answered customers waiting than agents to take them
        self.peak_waiting = 0
        self.peak_legs = 0

    def customer_legs(self):
        for number in self.numbers:
            phone = self.pop.phones.get(number)
            if phone is not None:
                yield from phone.calls

    def sample(self):
        legs = [c for c in self.customer_legs() if c.alive]
        waiting = sum(1 for c in legs if c.answered and "CHANNEL_BRIDGE" not in c.events)
        states = self.store.agents(self.agent_ids)
        taking = sum(1 for d in states.values() if d.get("state") in ("available", "reserved", "ringing"))
        talking = sum(1 for d in states.values() if d.get("state") == "in_call")
        self.samples += 1
        self.busy_share += talking / max(1, len(self.agent_ids))
        self.peak_waiting = max(self.peak_waiting, waiting)
        self.peak_legs = max(self.peak_legs, len(legs))
        return waiting, taking

    def run(self, progressive):
        while True:
            waiting, taking = self.sample()
            if progressive and waiting > taking:
                self.overdial += 1
            gevent.sleep(0.25)


def run_campaign(args, mode, db, switch, store, agent_ids, phones, engine, rng, offset):
    from engine.outbound import campaigns, report
    numbers = [f"139{offset + i:08d}" for i in range(args.contacts)]
    pop, kinds = population(rng, numbers)
    switch.population = pop
    name = f"bench-{mode}"
    campaigns.create(db, name, mode, queue="sales", max_attempts=1, abandon_target=0.03)
    campaigns.add_contacts(db, name, [{"number": n} for n in numbers])
    talk0 = {p: (phones[p].talk, phones[p].calls) for p in phones}
    cpu0 = cpu_seconds(engine.pid)
    watch = Watch(switch, store, agent_ids, pop, numbers)
    t0 = time.monotonic()
    campaigns.control(db, name, "start")
    watcher = gevent.spawn(watch.run, mode == "progressive")
    deadline = t0 + args.max_seconds
    next_note = t0 + 60
    finished = 0
    while time.monotonic() < deadline:
        gevent.sleep(0.5)
        counts = campaigns.show(db, name)["contacts"]
        finished = counts["done"] + counts["failed"] + counts["skipped"]
        if time.monotonic() >= next_note:
            next_note += 60
            print(f"  {mode}: {time.monotonic() - t0:4.0f} s, {finished} finished, {counts['claimed']} claimed, "
                  f"load {os.getloadavg()[0]:.2f}", flush=True)
        if finished >= args.contacts and campaigns.get(db, name)["state"] == "finished":
            break
    elapsed = time.monotonic() - t0
    watcher.kill()
    cpu = cpu_seconds(engine.pid) - cpu0
    gevent.sleep(WRAPUP + 1.0)                       # the last wrap-ups
    legs = list(watch.customer_legs())
    dials = len(legs)
    per_number = {n: len(pop.phones[n].calls) if n in pop.phones else 0 for n in numbers}
    answered = [c for c in legs if c.answered]
    abandoned = [c for c in answered if "CHANNEL_BRIDGE" not in c.events]
    talk = sum(phones[p].talk - talk0[p][0] for p in phones)
    conversations = sum(phones[p].calls - talk0[p][1] for p in phones)
    r = report.campaign_report(db, name)
    counts = campaigns.show(db, name)["contacts"]
    finished = counts["done"] + counts["failed"] + counts["skipped"]
    states = store.agents(agent_ids)
    left = {"customer legs up": sum(1 for c in legs if c.alive), "channels": len(switch.channels),
            "agents not available": sum(1 for d in states.values() if d.get("state") != "available"),
            "contacts unfinished": args.contacts - finished,
            "numbers dialled twice": sum(1 for v in per_number.values() if v > 1),
            "numbers never dialled": sum(1 for v in per_number.values() if v == 0)}
    abandon_pct = 100.0 * len(abandoned) / max(1, len(answered))
    occupancy = talk / (len(agent_ids) * elapsed)
    per_hour = finished * 3600 / elapsed
    expected = {k: sum(1 for v in kinds.values() if v == k) for k, _ in POPULATION}
    print(f"{mode}: {args.contacts} contacts ({expected['person']} person, {expected['no_answer']} no answer, "
          f"{expected['busy'] + expected['busy_ringing']} busy, {expected['unallocated']} invalid), "
          f"{len(agent_ids)} agents, {elapsed:.0f} s")
    print(f"  dials {dials} ({dials / elapsed:.2f}/s), answered {len(answered)}, to an agent {conversations}, "
          f"abandoned {len(abandoned)} = {abandon_pct:.2f}% of answered (engine's report: "
          f"{r['abandon_pct']:.1f}%), results {dict(sorted(r['results'].items()))}")
    print(f"  agent occupancy {occupancy:.3f} (talk {talk:.0f} s over {len(agent_ids)} x {elapsed:.0f} s); "
          f"agents in_call on average {watch.busy_share / max(1, watch.samples):.3f} (Redis samples)")
    print(f"  contacts finished {finished}: {per_hour:.0f}/h compressed, {per_hour / COMPRESSION:.0f}/h "
          f"at real talk times (/{COMPRESSION}, a lower bound)")
    print(f"  peak customer legs up {watch.peak_legs}, peak answered customers waiting {watch.peak_waiting}"
          + (f", samples with more waiting than agents to take them {watch.overdial}" if mode == "progressive"
             else ""))
    print(f"  engine {cpu:.1f} CPU s ({100 * cpu / elapsed:.0f}% of a core, {1000 * cpu / max(1, dials):.1f} ms "
          f"a dial), RSS {rss_mib(engine.pid):.0f} MiB; left afterwards {left}", flush=True)
    ok = not any(left.values())
    bridged = len(answered) - len(abandoned)
    if r["results"].get("answered", 0) != bridged:
        print(f"  FAIL: the engine wrote {r['results'].get('answered', 0)} contacts answered, the switch bridged "
              f"{bridged} customers to agents")
        ok = False
    if mode == "predictive" and (abandon_pct > 3.0 or r["abandon_pct"] > 3.0):
        print("  FAIL: predictive abandon rate over 3%")
        ok = False
    if mode == "progressive" and (abandoned or r["abandon_pct"] > 0 or watch.overdial):
        print("  FAIL: progressive abandoned or over-dialled")
        ok = False
    if not ok and any(left.values()):
        print(f"  FAIL: left afterwards {left}")
    return ok


def bench_agents(args, redis, work):
    from engine.acd.agents import AgentBoard
    from engine.acd.config import load_acd
    from engine.acd.store import AcdStore
    from engine.fsconf.render import render
    from engine.outbound.db import OutboundDb
    from engine.settings import load_settings
    from engine.sim.switch import Switch

    rng = random.Random(args.seed)
    password = "bench-secret"
    env = {**os.environ, "HOTLINE_BENCH_ESL_PASSWORD": password}
    agents = write_config(work, args, redis.url)
    settings = load_settings(work / "hotline.yaml", env=env)
    render(settings, work / "fs")
    switch = Switch(dialplan_dirs=[work / "fs" / "dialplan"], password=password, conf_dir=work / "fs")
    switch.load_codec_config(work / "fs")
    switch.max_sessions = 10000
    switch.start("127.0.0.1", settings.esl.port)
    phones = {}
    for a in agents:
        phones[a["extension"]] = DeskPhone(random.Random(rng.random()))
        switch.register(a["extension"], phones[a["extension"]])
    store = AcdStore(redis.url, prefix=PREFIX)
    store.flush()
    print(f"agents: {args.contacts} contacts a campaign, {args.agents} agents, population "
          f"{'/'.join(f'{int(100 * s)}% {k}' for k, s in POPULATION)}; time compressed {COMPRESSION}x: "
          f"talk {TALK[0]:g}-{TALK[1]:g} s, ring {RING[0]:g}-{RING[1]:g} s, wrap-up {WRAPUP:g} s, "
          f"agent wait {AGENT_WAIT:g} s, no-answer {ORIGINATE_TIMEOUT} s; load {os.getloadavg()[0]:.2f}",
          flush=True)
    engine = start_engine(work, env, settings.paths.var_dir / "hotline.pid")
    ok = True
    try:
        gevent.sleep(1.0)
        board = AgentBoard(store, load_acd(work / "agents.yaml", work / "queues.yaml"), engine_id="bench")
        agent_ids = [a["id"] for a in agents]
        for a in agent_ids:
            board.login(a)                  # logged in and ready, as the desk's login does
        db = OutboundDb(settings.database.url).open()
        modes = [m for m in ("progressive", "predictive") if args.modes in (m, "both")]
        for i, mode in enumerate(modes):
            ok &= run_campaign(args, mode, db, switch, store, agent_ids, phones, engine, rng,
                               offset=i * args.contacts)
        doubles = sum(p.double for p in phones.values())
        if doubles:
            print(f"FAIL: {doubles} agents rung while on a call")
            ok = False
        print(f"engine peak RSS {rss_mib(engine.pid, 'VmHWM'):.0f} MiB; load {open('/proc/loadavg').read().strip()}")
    finally:
        engine.terminate()
        engine.wait(30)
        switch.stop()
    if ok and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"(work dir {work}; engine log {work / 'engine.log'})")
    return ok
