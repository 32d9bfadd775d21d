"""`hotline demo`: the real engine process against the embedded FreeSWITCH simulator.

The demo renders the FreeSWITCH configuration we ship, loads its dialplan into the simulator,
starts `hotline run` as a separate process (it talks to the simulator over TCP only, exactly as it
would to FreeSWITCH), then plays simulated callers through the hotline and prints what each one
hears and does. At the end it stops the engine with SIGTERM and reads back the CDRs it wrote.
"""
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import gevent

from engine import assets
from engine.infra.netutil import free_port

DEMO_HEADER = "# written by `hotline demo`"

# Who calls: (DID, caller number, caller name, keys pressed after answer as (delay s, digits),
# hang up after N s of the call or None to stay until the engine ends the call).
CALLERS = [
    ("12345", "13800138001", "张伟", [(2.0, "1")], None),
    ("12345", "13900139002", "李娜", [(1.0, "2"), (2.5, "1")], None),
    ("12333", "02188886666", "", [], None),
    ("12345", "13700137004", "王芳", [], 1.5),                 # abandons during the greeting
    ("12345", "x\nhangup", "' ; uuid_kill", [(1.0, "9#")], None),   # hostile caller ID
    ("12345", "18600186006", "赵磊", [(0.5, "0")], None),          # asks for a person
    ("12345", "13600136007", "刘洋", [(2.0, "1"), (2.0, "0")], None),   # social insurance -> pension queue
]

# The agents' desk phones in the simulator: (extension, seconds to answer, seconds before hanging up).
PHONES = [("1001", 1.0, 6.0), ("1002", 2.0, 8.0), ("1003", 1.5, 5.0), ("9001", 1.0, None)]
DEMO_TOKEN_ENV = "HOTLINE_DEMO_TOKEN"


def register(subparsers):
    p = subparsers.add_parser("demo", help="run the engine on the embedded simulator with simulated callers")
    p.add_argument("--calls", type=int, default=len(CALLERS), help="number of callers (default %(default)s)")
    p.add_argument("--workdir", default=str(Path("var") / "demo"),
                   help="where settings, logs and the CDR database go, emptied first "
                        "(default %(default)s, under the current directory)")
    p.add_argument("--max-call-seconds", type=float, default=25.0,
                   help="a caller still connected after this long hangs up (default %(default)s)")
    p.add_argument("--serve", action="store_true",
                   help="keep the engine, the simulator and a trickle of callers running until Ctrl-C, "
                        "and print the web console's URL and logins (engine.web.demo)")
    p.add_argument("--port", type=int, default=0,
                   help="with --serve: the web console's port (default: a free one)")
    p.set_defaults(func=run)


def write_settings(workdir, esl_port, outbound_port, redis_url="", control_port=8090):
    shutil.copy(assets.path("etc/agents.yaml"), workdir / "agents.yaml")
    shutil.copy(assets.path("etc/queues.yaml"), workdir / "queues.yaml")
    text = f"""{DEMO_HEADER}
trunk:
  dids: ["12345", "12333"]
esl:
  host: 127.0.0.1
  port: {esl_port}
  password_env: HOTLINE_DEMO_ESL_PASSWORD
outbound:
  listen_host: 127.0.0.1
  listen_port: {outbound_port}
paths:
  var_dir: {workdir / 'var'}
files:
  flows_dir: {assets.path('ivr_flows')}
  agents: {workdir / 'agents.yaml'}
  queues: {workdir / 'queues.yaml'}
redis:
  url: {redis_url}
control:
  listen_host: 127.0.0.1
  listen_port: {control_port}
  tokens:
    - {{name: demo, role: admin, token_env: {DEMO_TOKEN_ENV}}}
shutdown:
  grace_seconds: 5
log:
  file: {workdir / 'engine.log'}
"""
    path = workdir / "hotline.yaml"
    path.write_text(text)
    return path


class Watcher:
    """Prints the simulator's view of each demo call, one line per step."""

    SHOWN = {"CHANNEL_ANSWER", "PLAYBACK_START", "DTMF", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_BRIDGE"}

    def __init__(self, t0, prompt_texts=None):
        self.t0 = t0
        self.labels = {}          # channel uuid -> "call N"
        self.prompt_texts = prompt_texts or {}    # rendered prompt file -> its text

    def __call__(self, headers, body=None):
        h = dict(headers)
        name = h.get("Event-Name")
        label = self.labels.get(h.get("Unique-ID"))
        if label is None or name not in self.SHOWN:
            return
        what = {
            "CHANNEL_ANSWER": lambda: "answered by the engine",
            "PLAYBACK_START": lambda: "hears " + self.prompt_texts.get(
                h.get("Playback-File-Path", ""), _prompt_name(h.get("Playback-File-Path", ""))),
            "DTMF": lambda: "presses " + h.get("DTMF-Digit", "?"),
            "CHANNEL_BRIDGE": lambda: "connected to " + h.get("Other-Leg-Destination-Number", "?"),
            "CHANNEL_HANGUP_COMPLETE": lambda: "call ended: " + h.get("Hangup-Cause", "?")
            + f" after {h.get('variable_duration', '?')} s",
        }[name]()
        print(f"  {time.monotonic() - self.t0:6.1f}s  {label:8s} {what}", flush=True)


def _prompt_name(path):
    if path.startswith(("tone_stream://", "silence_stream://")):
        return path.split("//", 1)[0] + "//..."
    return os.path.basename(path)


def drive_caller(switch, watcher, n, spec, max_seconds):
    did, number, name, keys, hang_after = spec
    ch = switch.place_call(did, number, name)
    watcher.labels[ch.uuid] = f"call {n}"
    print(f"  {time.monotonic() - watcher.t0:6.1f}s  call {n:<3d}  {number!r} ({name!r}) dials {did}", flush=True)
    started = time.monotonic()
    for delay, digits in keys:
        if ch.wait_hangup(timeout=delay):
            return ch
        ch.press(digits)
    if hang_after is not None:
        remaining = hang_after - (time.monotonic() - started)
        if not ch.wait_hangup(timeout=max(0.0, remaining)):
            print(f"  {time.monotonic() - watcher.t0:6.1f}s  call {n:<3d}  hangs up (abandons)", flush=True)
            ch.hangup("NORMAL_CLEARING")
    if not ch.wait_hangup(timeout=max_seconds):
        ch.hangup("NORMAL_CLEARING")
        ch.wait_hangup(timeout=5)
    return ch


def _is_demo_dir(workdir):
    """An earlier demo's directory (its settings file says so): the one kind we may empty."""
    try:
        with open(workdir / "hotline.yaml", encoding="utf-8") as f:
            return f.readline().rstrip("\n") == DEMO_HEADER
    except OSError:
        return False


def stop_engine(proc):
    """SIGTERM to `hotline run` (it finishes its calls' CDRs), SIGKILL after 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def fresh_workdir(path):
    """The demo's working directory, emptied: only one an earlier demo wrote is emptied; None
    (after saying why) for a directory that holds anything else."""
    workdir = Path(path).resolve()
    if workdir.exists():
        if any(workdir.iterdir()) and not _is_demo_dir(workdir):
            print(f"hotline demo: {workdir} holds something else than an earlier demo; "
                  "not emptying it (choose another --workdir)", file=sys.stderr)
            return None
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    return workdir


def run(args):
    from engine.cdr.store import CdrStore
    from engine.control.cli import agents_table, queues_table
    from engine.control.client import Client
    from engine.fsconf.render import render
    from engine.infra.localredis import LocalRedis, RedisStartError
    from engine.sim.endpoints import AgentPhone
    from engine.sim.scenario import AgentSpec
    from engine.settings import load_settings
    from engine.sim.switch import Switch

    if getattr(args, "serve", False):
        from engine.web.demo import serve
        return serve(args)
    workdir = fresh_workdir(args.workdir)
    if workdir is None:
        return 2
    password = f"demo-{random.getrandbits(48):x}"
    token = f"demo-{random.getrandbits(64):x}"
    env = {**os.environ, "HOTLINE_DEMO_ESL_PASSWORD": password, DEMO_TOKEN_ENV: token,
           **{f"HOTLINE_SIP_PW_{ext}": f"sip-{random.getrandbits(48):x}" for ext, _, _ in PHONES}}
    esl_port, outbound_port, control_port = free_port(), free_port(), free_port()
    try:
        redis = LocalRedis(workdir).start()
    except RedisStartError as exc:
        print(f"hotline demo: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"hotline demo: Redis for agents and queues on {redis.url}")
        settings_path = write_settings(workdir, esl_port, outbound_port, redis.url, control_port)
        settings = load_settings(settings_path, env=env)
        render(settings, workdir / "freeswitch", env=env)
        print(f"hotline demo: FreeSWITCH configuration rendered to {workdir / 'freeswitch'}")

        switch = Switch(dialplan_dirs=[workdir / "freeswitch" / "dialplan"], password=password,
                        conf_dir=workdir / "freeswitch")
        switch.load_codec_config(workdir / "freeswitch")
        switch.start("127.0.0.1", esl_port)
        for ext, answer_after, hangup_after in PHONES:
            switch.register(ext, AgentPhone(None, AgentSpec(extension=ext, behaviour="answer",
                                                            answer_after=answer_after, hangup_after=hangup_after)))
        print(f"hotline demo: simulator listening on 127.0.0.1:{esl_port} (event socket)")
        engine = subprocess.Popen([sys.executable, "-m", "engine", "run", "--config", str(settings_path)],
                                  env=env)
        try:
            if not _wait_file(settings.paths.var_dir / "hotline.pid", engine, timeout=60):
                print("hotline demo: the engine did not start; see", workdir / "engine.log", file=sys.stderr)
                return 1
            print(f"hotline demo: engine pid {engine.pid} serving calls on 127.0.0.1:{outbound_port}; "
                  f"log {workdir / 'engine.log'}\n")
            api = Client(f"http://127.0.0.1:{control_port}", token=token)
            for ext, _, _ in PHONES[:3]:
                state = api.post(f"/v1/agents/{ext}/login")["state"]
                print(f"hotline demo: agent {ext} logged in through the control API: {state}")
            t0 = time.monotonic()
            watcher = Watcher(t0, _prompt_texts(settings))
            print(_schedule_line(settings))
            switch.subscribe(watcher)
            specs = [CALLERS[i % len(CALLERS)] for i in range(args.calls)]
            jobs = []
            for n, spec in enumerate(specs, 1):
                jobs.append(gevent.spawn(drive_caller, switch, watcher, n, spec, args.max_call_seconds))
                gevent.sleep(0.4)
            gevent.joinall(jobs)
            channels = [j.value for j in jobs if j.value is not None]
            print("\n$ hotline agents\n" + agents_table(api.get("/v1/agents")["agents"]))
            print("\n$ hotline queues\n" + queues_table(api.get("/v1/queues")["queues"]))
            print("\nhotline demo: stopping the engine (SIGTERM)")
        finally:
            stop_engine(engine)
            switch.stop()
    finally:
        redis.stop()           # also when the demo fails half-way

    store = CdrStore(settings.database.url, settings.paths.cdr_spool)
    store.open()
    cdrs = store.list()
    store.close()
    answered = sum(1 for c in cdrs if c.get("answer_time"))
    for c in cdrs:
        if c.get("queue"):
            print(f"  {c['caller_number'] or '?':>12}  queue {c['queue']:8s} agent {c.get('agent') or '-':5s} "
                  f"waited {c.get('wait_seconds') or 0:.1f} s, talked {c.get('talk_seconds') or 0:.1f} s, "
                  f"wrap-up {c.get('wrapup_seconds') or 0:.0f} s {' '.join(c.get('tags') or [])}")
    abandoned = sum(1 for c in cdrs if c.get("hangup_side") == "caller")
    print(f"\nsummary: {len(channels)} calls, {answered} answered, {abandoned} ended by the caller, "
          f"{len(cdrs)} CDRs written")
    print(f"  CDRs:   {settings.database.url}   (hotline cdr list --config {settings_path})")
    print(f"  log:    {workdir / 'engine.log'}")
    return 0 if len(cdrs) == len(channels) else 1


def _prompt_texts(settings):
    """Which text each rendered prompt file says (the engine rendered them; these are cache hits)."""
    try:
        from engine.ivr.loader import load_flows
        from engine.media.prompts import PromptRenderer
        flowset, problems = load_flows(settings.files.flows_dir, strict=False)
        renderer = PromptRenderer(settings.tts, settings.paths.prompt_cache)
        texts = {}
        for flow in flowset.flows.values():
            for prompt in flow.prompts.values():
                text = prompt.get("text") if isinstance(prompt, dict) else prompt
                if text and "{" not in str(text):
                    texts[str(renderer.render(str(text), fixed=True))] = f"「{text}」"
        return texts
    except Exception:            # the demo still runs, showing file names
        return {}


def _schedule_line(settings):
    """Say what the clock would choose; the demo opens the hotline anyway (an 'open' override, as an
    operator keeping staff on late would set), so callers meet agents at any hour."""
    import datetime
    import zoneinfo
    from engine.ivr.schedule import Overrides
    Overrides(str(settings.paths.var_dir / "ivr_overrides.json")).set("*", "open")
    now = datetime.datetime.now(zoneinfo.ZoneInfo("Asia/Shanghai"))
    return (f"hotline demo: it is {now:%a %H:%M} in Asia/Shanghai; the demo keeps the hotline open "
            f"whatever the clock (`hotline ivr override set '*' --mode open`)\n")


def _wait_file(path, process, timeout):
    """The engine writes its pid file once its sockets are up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if path.exists():
            return True
        gevent.sleep(0.05)
    return False
