"""`hotline demo --serve`: the engine, the simulator and a trickle of simulated callers kept
running until Ctrl-C, so a person can watch the web console: the agent's desk and the wallboard.

Same set-up as `hotline demo` (engine.demo: a private Redis, the rendered FreeSWITCH configuration
loaded into the simulator, `hotline run` as its own process reaching the simulator over TCP); then
web accounts for an agent and a supervisor (through the control API, as an admin would), two
agents logged in, and a caller every few seconds: some press 0 for a person, some stay in the
menus, one in ten has a hostile caller name. Agents' phones answer and stay; callers hang up after
20-60 s, so there is time to hold, transfer or consult from the desk.
"""
import os
import random
import signal
import subprocess
import sys
import time

import gevent
import gevent.event

from engine.demo import DEMO_TOKEN_ENV, PHONES, _schedule_line, _wait_file, fresh_workdir, stop_engine, write_settings
from engine.infra.netutil import free_port

AGENT_LOGIN = ("1001", "desk-1001-demo")
SUPERVISOR_LOGIN = ("9001", "board-9001-demo")
NAMES = ["张伟", "李娜", "王芳", "刘洋", "陈静", "杨磊", "赵敏", "黄勇", "周杰", "吴霞"]
HOSTILE = "<script>alert('来电')</script>"
# what a trickle caller keys: (delay s, digits) steps; 0 = a person, 1 then 0 = social insurance -> pension
PATHS = [[(1.0, "0")], [(1.5, "1"), (2.0, "0")], [(1.0, "0")], [(2.0, "2"), (2.0, "0")]]


def serve(args):
    from engine.control.client import ApiError, Client
    from engine.fsconf.render import render
    from engine.infra.localredis import LocalRedis, RedisStartError
    from engine.settings import load_settings
    from engine.sim.endpoints import AgentPhone
    from engine.sim.scenario import AgentSpec
    from engine.sim.switch import Switch

    workdir = fresh_workdir(args.workdir)
    if workdir is None:
        return 2
    password = f"demo-{random.getrandbits(48):x}"
    token = f"demo-{random.getrandbits(64):x}"
    env = {**os.environ, "HOTLINE_DEMO_ESL_PASSWORD": password, DEMO_TOKEN_ENV: token,
           **{f"HOTLINE_SIP_PW_{ext}": f"sip-{random.getrandbits(48):x}" for ext, _, _ in PHONES}}
    esl_port, outbound_port = free_port(), free_port()
    web_port = args.port or free_port()
    try:
        redis = LocalRedis(workdir).start()
    except RedisStartError as exc:
        print(f"hotline demo: {exc}", file=sys.stderr)
        return 1
    stop = gevent.event.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        gevent.signal_handler(sig, stop.set)
    try:
        settings_path = write_settings(workdir, esl_port, outbound_port, redis.url, web_port)
        settings = load_settings(settings_path, env=env)
        render(settings, workdir / "freeswitch", env=env)
        switch = Switch(dialplan_dirs=[workdir / "freeswitch" / "dialplan"], password=password,
                        conf_dir=workdir / "freeswitch")
        switch.load_codec_config(workdir / "freeswitch")
        switch.start("127.0.0.1", esl_port)
        for ext, answer_after, _ in PHONES:
            # the phones answer and stay: the caller (or the person at the desk) ends the call
            switch.register(ext, AgentPhone(None, AgentSpec(extension=ext, behaviour="answer",
                                                            answer_after=answer_after, hangup_after=None)))
        engine = subprocess.Popen([sys.executable, "-m", "engine", "run", "--config", str(settings_path)],
                                  env=env, cwd=str(workdir))
        try:
            if not _wait_file(settings.paths.var_dir / "hotline.pid", engine, timeout=60):
                print("hotline demo: the engine did not start; see", workdir / "engine.log", file=sys.stderr)
                return 1
            base = f"http://127.0.0.1:{web_port}"
            api = Client(base, token=token)
            try:
                for (account, secret), role in ((AGENT_LOGIN, "agent"), (SUPERVISOR_LOGIN, "supervisor")):
                    api.post("/v1/users", {"id": account, "role": role, "password": secret,
                                           **({"agent": account} if role == "agent" else {})})
                for ext in ("1002", "1003"):
                    api.post(f"/v1/agents/{ext}/login")
            except ApiError as exc:
                print(f"hotline demo: setting up the console failed: {exc}", file=sys.stderr)
                return 1
            _schedule_line(settings)
            print(f"""
hotline demo --serve: the engine runs on the simulator with a trickle of callers.

  web console   {base}/
  agent's desk  {base}/desk        log in as {AGENT_LOGIN[0]} / {AGENT_LOGIN[1]}  (then 签入: calls come to you)
  wallboard     {base}/wallboard   log in as {SUPERVISOR_LOGIN[0]} / {SUPERVISOR_LOGIN[1]}
  big screen    {base}/wallboard/big
  metrics       {base}/metrics
  engine log    {workdir / 'engine.log'}

Agents 1002 and 1003 are logged in already. Ctrl-C stops everything.
""", flush=True)
            trickle = gevent.spawn(_trickle, switch, stop)
            while not stop.is_set():
                if engine.poll() is not None:
                    print(f"hotline demo: the engine exited ({engine.returncode}); see {workdir / 'engine.log'}",
                          file=sys.stderr)
                    break
                stop.wait(1.0)
            trickle.kill()
            print("\nhotline demo: stopping the engine (SIGTERM)", flush=True)
        finally:
            stop_engine(engine)
            switch.stop()
    finally:
        redis.stop()
    return 0


def _trickle(switch, stop, every=(4.0, 9.0)):
    n = 0
    while not stop.is_set():
        n += 1
        number = f"13{random.randint(0, 9)}{random.randint(10000000, 99999999)}"
        name = HOSTILE if n % 10 == 3 else random.choice(NAMES)
        gevent.spawn(_caller, switch, number, name, random.choice(PATHS), random.uniform(20, 60))
        stop.wait(random.uniform(*every))


def _caller(switch, number, name, keys, stay):
    ch = switch.place_call("12345", number, name)
    started = time.monotonic()
    for delay, digits in keys:
        if ch.wait_hangup(timeout=delay):
            return
        ch.press(digits)
    if not ch.wait_hangup(timeout=max(1.0, stay - (time.monotonic() - started))):
        ch.hangup("NORMAL_CLEARING")
