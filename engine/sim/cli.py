"""`hotline sim`: the FreeSWITCH simulator on its own, for running the engine (or any ESL client) against.

    hotline sim --listen 127.0.0.1:8021 --password P [--dialplan DIR | --config F] [--scenario F|demo]

The dialplan is the one we ship: rendered from the engine's settings file (`--config`, default
etc/hotline.yaml), or any directory of rendered dialplan XML (`--dialplan`). With `--scenario`,
the callers and agent phones of that file start once an ESL client has logged in (the engine),
and each call's outcome is printed as it ends.
"""
import os
import signal
import tempfile
import time
from pathlib import Path

import gevent


SIM_SIP_PASSWORD = "simulated-phone"     # the simulator's phones never authenticate


def register(subparsers):
    import argparse

    from engine.infra.clitext import add_option, default_config

    def address(text):
        host, _, port = text.rpartition(":")
        if not port.isdigit() or not 0 <= int(port) <= 65535:
            raise argparse.ArgumentTypeError(f"{text!r}: expected HOST:PORT, e.g. 127.0.0.1:8021")
        return host or "127.0.0.1", int(port)

    def seconds(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not 0 <= value <= 86400:
            raise argparse.ArgumentTypeError("between 0 and 86400 seconds")
        return value

    p = subparsers.add_parser("sim", help="run the FreeSWITCH simulator alone")
    p.add_argument("--listen", default="127.0.0.1:8021", type=address, metavar="HOST:PORT",
                   help="event socket address (default 127.0.0.1:8021)")
    p.add_argument("--password", default=None, metavar="PASSWORD",
                   help="event socket password (default: $HOTLINE_ESL_PASSWORD, else ClueCon)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dialplan", metavar="DIR", help="directory of rendered FreeSWITCH dialplan XML files")
    add_option(src, "--config", default=default_config())
    p.add_argument("--scenario", metavar="FILE", help="YAML file of simulated callers and agent phones, or the name of "
                                      f"one shipped with hotline ({', '.join(shipped_scenarios())})")
    p.add_argument("--wait-client", type=seconds, default=60.0, metavar="SECONDS",
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


class _SimEnv(dict):
    """The environment for rendering our configuration for the simulator: its phones do not
    authenticate, so an agent's unset SIP password variable is no reason to refuse."""

    def get(self, key, default=None):
        value = super().get(key)
        return value if value else SIM_SIP_PASSWORD


def _dialplan_dir(args, password):
    if args.dialplan:
        return Path(args.dialplan).resolve()
    from engine.fsconf.render import render
    from engine.settings import load_settings
    settings = load_settings(args.config, env={**os.environ, "HOTLINE_ESL_PASSWORD": password})
    out = Path(tempfile.mkdtemp(prefix="hotline-sim-"))
    render(settings, out, env=_SimEnv(os.environ))
    return out / "dialplan"


def run(args):
    from engine.infra.clitext import CliError
    from engine.sim.scenario import load_scenario
    from engine.sim.switch import Switch

    password = args.password or os.environ.get("HOTLINE_ESL_PASSWORD") or "ClueCon"
    host, port = args.listen
    if args.dialplan and not Path(args.dialplan).is_dir():
        raise CliError(f"--dialplan {args.dialplan}: no such directory")
    scenario = load_scenario(scenario_path(args.scenario)) if args.scenario else None   # ScenarioError: file:line
    dialplan = _dialplan_dir(args, password)                               # SettingsError: file:line
    # the rendered tree's modules.conf.xml / local_stream.conf.xml, next to its dialplan/
    conf_dir = dialplan.parent if (dialplan.parent / "autoload_configs").is_dir() else None
    switch = Switch(dialplan_dirs=[dialplan], password=password, conf_dir=conf_dir)
    if not args.dialplan:
        switch.load_codec_config(dialplan.parent)     # our profiles' and directory's codecs
    try:
        switch.start(host, port)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    stop = gevent.event.Event()
    # before the line that says we are up: whoever waits for it may stop us at once
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    print(f"hotline sim: FreeSWITCH simulator on {host}:{port} (event socket), dialplan {dialplan}", flush=True)
    if scenario is not None:
        gevent.spawn(_run_scenario, switch, scenario, args.wait_client, stop)
    stop.wait()
    switch.stop()
    if not args.dialplan:
        import shutil
        shutil.rmtree(dialplan.parent, ignore_errors=True)      # the configuration rendered for us
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
