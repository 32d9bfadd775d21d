"""hotline ivr lint|schema|graph|walk|reload|override.

`reload` first checks the flows, agents and queues files itself and stops (exit 1, the problems
listed) when any is broken. With a control-API token ($HOTLINE_TOKEN or --token) it then asks the
engine to reload and reports the engine's answer; without one it sends SIGHUP to the engine
holding <var_dir>/hotline.pid (never to a pid that is not our engine: engine.infra.pidfile).
"""
import json
import os
import pathlib
import signal
import sys

from engine import assets

SCHEMA_PATH = assets.path("ivr_flows") / "schema.json"


def register(subparsers):
    ivr = subparsers.add_parser("ivr", help="YAML IVR flows: lint, graph, walk, reload, overrides")
    sub = ivr.add_subparsers(dest="ivr_command", required=True)
    p = sub.add_parser("lint", help="check flow files; prints file:line:column: message, exit 1 on problems")
    p.add_argument("paths", nargs="+")
    p.set_defaults(func=cmd_lint)
    p = sub.add_parser("schema", help="write the JSON Schema for editors (generated from the node types)")
    p.add_argument("-o", "--output", default=str(SCHEMA_PATH))
    p.set_defaults(func=cmd_schema)
    p = sub.add_parser("graph", help="draw a flow with graphviz")
    p.add_argument("file")
    p.add_argument("-o", "--output", required=True, help="flow.svg, flow.png or flow.dot")
    p.set_defaults(func=cmd_graph)
    p = sub.add_parser("walk", help="print the path a caller takes, without a switch")
    p.add_argument("paths", nargs="+", help="flow files or directories (include shared flows)")
    p.add_argument("--did", required=True)
    p.add_argument("--at", metavar="TIME", help="when the caller calls: '2026-12-04 09:30', 09:30 (today), "
                   "-2h, or ISO with an offset; in the hotline's time zone (--config's `timezone`) "
                   "unless TIME has an offset; default now")
    from engine.infra.clitext import add_json, add_option, takes_durations_ago
    # --at is read in this file's `timezone` (when no --config is given and the default file does
    # not exist: Asia/Shanghai)
    add_option(p, "--config", default=None)
    takes_durations_ago(p)
    add_json(p, "one JSON object: the time, the path, what the caller heard and the outcome")
    p.add_argument("--keys", default="", help="comma-separated inputs, e.g. 1,2,1 ('' = no input)")
    p.set_defaults(func=cmd_walk)
    p = sub.add_parser("reload", help="check the files, then ask the running daemon to reload them")
    p.add_argument("--config", default="etc/hotline.yaml")
    p.add_argument("--var-dir", help="instead of the config's paths.var_dir")
    p.add_argument("--token", help="control-API token (default: $HOTLINE_TOKEN); without one, SIGHUP")
    p.set_defaults(func=cmd_reload)
    p = sub.add_parser("override", help="manual schedule overrides: closed now, emergency message")
    p.add_argument("action", choices=["set", "clear", "list"])
    p.add_argument("flow", nargs="?", default="*", help="flow name, or * for all flows")
    p.add_argument("--mode", choices=["closed", "emergency", "open"], default="closed",
                   help="closed now, an emergency message, or open now whatever the clock says")
    p.add_argument("--message", default="")
    p.add_argument("--config", default="etc/hotline.yaml")
    p.add_argument("--var-dir", help="instead of the config's paths.var_dir")
    p.set_defaults(func=cmd_override)


def cmd_lint(args):
    from .loader import load_flows
    _, problems = load_flows(args.paths, strict=False)
    for problem in problems:
        print(problem)
    if not problems:
        print("ok")
    return 1 if problems else 0


def cmd_schema(args):
    from .schema import schema_text
    pathlib.Path(args.output).write_text(schema_text(), encoding="utf-8")
    print(args.output)
    return 0


def cmd_graph(args):
    from .graph import write_graph
    try:
        write_graph(args.file, args.output)
    except Exception as exc:
        print(f"ivr graph: {exc}", file=sys.stderr)
        return 1
    print(args.output)
    return 0


def cmd_walk(args):
    from engine.infra.clock import TimeInputError
    from .loader import FlowError
    from .walk import walk
    try:
        clock = _walk_clock(args.config)
        at = clock.parse(args.at, "--at") if args.at else clock.now()
    except (TimeInputError, ValueError) as exc:       # a bad --at, settings or zone
        print(f"hotline ivr walk: {exc}", file=sys.stderr)
        return 2
    keys = args.keys.split(",") if args.keys else []
    try:
        result, call = walk(args.paths, args.did, keys, at)
    except FlowError as exc:
        print(exc, file=sys.stderr)
        return 1
    heard = result.pop("heard", [])
    if args.json:
        print(json.dumps({"at": clock.iso(at), "timezone": clock.name, "schedule_timezone": call.schedule_zone,
                          "path": call.path, "heard": heard, "result": result}, ensure_ascii=False, indent=1))
        return 0
    print(f"at {clock.text(at)} ({clock.name})" + _flow_time(call, at, clock))
    for entry in call.path:
        print(f"{entry['node']:<32} {entry['type']:<10} -> {entry['branch']}"
              + (f"  keys {entry['digits']}" if entry["digits"] else ""))
    for text in heard:
        print(f"  heard: {text}")
    print(json.dumps(result, ensure_ascii=False))
    return 0


def _walk_clock(config):
    """The hotline's clock from --config (an explicit file must load), else from the default
    settings file when there is one, else Asia/Shanghai."""
    from engine.infra import clitext
    from engine.infra.clock import Clock, for_settings
    path = config or clitext.DEFAULT_CONFIG
    if config is None and not os.path.exists(path):
        return Clock()
    try:
        return for_settings(clitext.settings_for_reading(path))
    except clitext.Refused as exc:
        raise ValueError(str(exc)) from None


def _flow_time(call, at, clock):
    """The same moment in the entry flow's schedule zone, when that zone is another one."""
    from engine.infra.clock import Clock
    if not call.schedule_zone or call.schedule_zone == clock.name:
        return ""
    try:
        flow_clock = Clock(call.schedule_zone)
    except ValueError:
        return ""
    return f" = {flow_clock.text(at)} in the flow's schedule zone ({flow_clock.name})"


def _var_dir(args):
    if args.var_dir:
        return pathlib.Path(args.var_dir)
    from engine.settings import default_settings, load_settings
    settings = load_settings(args.config) if os.path.exists(args.config) else default_settings()
    return pathlib.Path(settings.paths.var_dir)


def cmd_reload(args):
    from engine.infra import pidfile
    from engine.infra.configcheck import check_files
    settings = None
    try:
        if os.path.exists(args.config):
            from engine.infra.clitext import SecretsNotNeeded
            from engine.settings import load_settings
            settings = load_settings(args.config, env=SecretsNotNeeded(os.environ))
        var_dir = (pathlib.Path(args.var_dir) if args.var_dir
                   else pathlib.Path(settings.paths.var_dir) if settings else _var_dir(args))
    except Exception as exc:      # SettingsError: file:line:col message
        print(f"ivr reload: {exc}", file=sys.stderr)
        return 2
    if settings is not None:
        f = settings.files
        problems = check_files(f.flows_dir, f.agents, f.queues)
        if problems:
            print("ivr reload: not reloaded, the files have problems:", file=sys.stderr)
            print("\n".join(problems), file=sys.stderr)
            return 1
    pid_file = var_dir / "hotline.pid"
    try:
        pid = pidfile.running_engine(pid_file)
    except pidfile.NoEngine as exc:
        print(f"ivr reload: {exc}", file=sys.stderr)
        return 1
    token = args.token if args.token is not None else os.environ.get("HOTLINE_TOKEN", "")
    if token and settings is not None:
        return _reload_by_api(settings, token)
    os.kill(pid, signal.SIGHUP)
    print(f"files checked; SIGHUP sent to engine {pid}; its log shows the result "
          "(with $HOTLINE_TOKEN the engine's answer is shown here)")
    return 0


def _reload_by_api(settings, token):
    from engine.control.client import ApiError, Client
    s = settings.control
    host = "127.0.0.1" if s.listen_host in ("0.0.0.0", "::", "") else s.listen_host
    try:
        answer = Client(f"http://{host}:{s.listen_port}", token=token, timeout=60).post("/v1/reload")
    except ApiError as exc:
        print(f"ivr reload: {exc}", file=sys.stderr)
        return 1
    if not answer.get("reloaded"):
        print("ivr reload: the engine refused the reload and keeps the running version:", file=sys.stderr)
        print("\n".join(answer.get("problems") or []), file=sys.stderr)
        return 1
    print("reloaded")
    return 0


def cmd_override(args):
    from .schedule import Overrides
    try:
        overrides = Overrides(str(_var_dir(args) / "ivr_overrides.json"))
    except Exception as exc:      # SettingsError: file:line:col message
        print(f"ivr override: {exc}", file=sys.stderr)
        return 2
    if args.action == "set":
        overrides.set(args.flow, args.mode, args.message)
    elif args.action == "clear" and not overrides.clear(args.flow):
        print(f"no override for {args.flow}", file=sys.stderr)
        return 1
    for flow, override in sorted(overrides.current().items()):
        print(f"{flow}\t{override['mode']}\t{override.get('message', '')}")
    return 0
