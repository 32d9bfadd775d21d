"""`hotline sim`: the FreeSWITCH simulator on its own, for running the engine (or any ESL client) against.

    hotline sim --listen 127.0.0.1:8021 --password P [--dialplan DIR | --config F] [--scenario F|demo]

The dialplan is the one we ship: rendered from the engine's settings file (`--config`, default
etc/hotline.yaml), or any directory of rendered dialplan XML (`--dialplan`). With `--scenario`,
the callers and agent phones of that file start once an ESL client has logged in (the engine),
and each call's outcome is printed as it ends.
"""
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import gevent


def register(subparsers):
    p = subparsers.add_parser("sim", help="run the FreeSWITCH simulator alone")
    p.add_argument("--listen", default="127.0.0.1:8021", help="event socket address (default %(default)s)")
    p.add_argument("--password", default=None,
                   help="event socket password (default: $HOTLINE_ESL_PASSWORD, else ClueCon)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dialplan", help="directory of rendered FreeSWITCH dialplan XML files")
    src.add_argument("--config", default="etc/hotline.yaml",
                     help="engine settings to render our dialplan from (default %(default)s)")
    p.add_argument("--scenario", help="YAML file of simulated callers and agent phones, or the name of "
                                      f"one shipped with hotline ({', '.join(shipped_scenarios())})")
    p.add_argument("--wait-client", type=float, default=60.0,
                   help="seconds a scenario waits for an ESL client to log in before starting anyway")
    p.set_defaults(func=run)


def shipped_scenarios():
    from importlib import resources
    return sorted(p.name[:-5] for p in (resources.files("engine.sim") / "scenarios").iterdir()
                  if p.name.endswith(".yaml"))


def scenario_path(name):
    """A scenario file's path; a bare name that is no file names one shipped with the package."""
    from importlib import resources
    if os.path.exists(name) or os.sep in name or name not in shipped_scenarios():
        return name
    return str(resources.files("engine.sim") / "scenarios" / f"{name}.yaml")


def _dialplan_dir(args, password):
    if args.dialplan:
        return Path(args.dialplan).resolve()
    from engine.fsconf.render import render
    from engine.settings import load_settings
    settings = load_settings(args.config, env={**os.environ, "HOTLINE_ESL_PASSWORD": password})
    out = Path(tempfile.mkdtemp(prefix="hotline-sim-"))
    render(settings, out)
    return out / "dialplan"


def run(args):
    from engine.settings import SettingsError
    from engine.sim.scenario import ScenarioError, load_scenario
    from engine.sim.switch import Switch

    password = args.password or os.environ.get("HOTLINE_ESL_PASSWORD") or "ClueCon"
    host, _, port = args.listen.rpartition(":")
    try:
        scenario = load_scenario(scenario_path(args.scenario)) if args.scenario else None
        dialplan = _dialplan_dir(args, password)
    except (ScenarioError, SettingsError, OSError) as exc:
        print(f"hotline sim: {exc}", file=sys.stderr)
        return 2
    # the rendered tree's modules.conf.xml / local_stream.conf.xml, next to its dialplan/
    conf_dir = dialplan.parent if (dialplan.parent / "autoload_configs").is_dir() else None
    switch = Switch(dialplan_dirs=[dialplan], password=password, conf_dir=conf_dir)
    if not args.dialplan:
        switch.load_codec_config(dialplan.parent)     # our profiles' and directory's codecs
    try:
        switch.start(host or "127.0.0.1", int(port))
    except (OSError, ValueError) as exc:
        print(f"hotline sim: cannot listen on {args.listen}: {exc}", file=sys.stderr)
        return 2
    print(f"hotline sim: FreeSWITCH simulator on {host}:{port} (event socket), dialplan {dialplan}", flush=True)
    stop = gevent.event.Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    if scenario is not None:
        gevent.spawn(_run_scenario, switch, scenario, args.wait_client, stop)
    stop.wait()
    switch.stop()
    print("hotline sim: stopped")
    return 0


def _run_scenario(switch, scenario, wait_client, stop):
    from engine.sim.endpoints import ScenarioRunner
    deadline = time.monotonic() + wait_client
    while not switch.listeners and time.monotonic() < deadline:
        gevent.sleep(0.1)
    print(f"hotline sim: scenario starts: {sum(c.count for c in scenario.callers)} callers, "
          f"{len(scenario.agents)} agent phones", flush=True)

    def report(r):
        state = "abandoned" if r.abandoned else ("answered" if r.answered else "not answered")
        print(f"  {r.number!r} -> {r.did}: {state}, pressed {r.pressed or '-'}, ended by {r.hung_up_by} "
              f"({r.cause}) after {r.seconds:.1f} s", flush=True)
    runner = ScenarioRunner(switch, scenario, on_result=report).start()
    results = runner.wait()
    answered = sum(r.answered for r in results)
    print(f"hotline sim: scenario done: {len(results)} calls, {answered} answered, "
          f"{sum(r.abandoned for r in results)} abandoned", flush=True)
