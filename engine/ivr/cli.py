"""hotline ivr lint|schema|graph|walk|reload|override.

`reload` first checks the flows, agents and queues files itself and stops (exit 1, the problems
listed) when any is broken. With a control-API token ($HOTLINE_TOKEN or --token) it then asks the
engine to reload and reports the engine's answer; without one it sends SIGHUP to the engine
holding <var_dir>/hotline.pid (never to a pid that is not our engine: engine.infra.pidfile).
"""
import json
import os
import pathlib
import re
import signal
import sys

from engine import assets

SCHEMA_PATH = assets.path("ivr_flows") / "schema.json"


def register(subparsers):
    ivr = subparsers.add_parser("ivr", help="YAML IVR flows: lint, graph, walk, reload, overrides")
    sub = ivr.add_subparsers(dest="ivr_command", required=True)
    p = sub.add_parser("lint", help="check flow files: every problem as file:line:column: error|warning: "
                       "message; exit 1 on errors (and on warnings with --strict)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--strict", action="store_true", help="warnings fail the lint too")
    from engine.infra.clitext import add_option, default_config
    add_option(p, "--json")            # one object: problems, counts, files
    p.add_argument("--prompt-seconds", type=float, default=20.0, metavar="N",
                   help="warn about prompts longer than N seconds (default 20)")
    p.add_argument("--menu-levels", type=int, default=5, metavar="N",
                   help="warn about menus deeper than N levels (default 5)")
    add_option(p, "--config", default=None)   # its agents and queues files, for the queue checks
    p.add_argument("--agents", help="agents file (instead of the config's)")
    p.add_argument("--queues", help="queues file (instead of the config's)")
    p.set_defaults(func=cmd_lint)
    p = sub.add_parser("schema", help="print the JSON Schema for editors (generated from the node types)")
    p.add_argument("-o", "--output", help=f"write it to this file instead (the shipped one: {SCHEMA_PATH})")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    p.set_defaults(func=cmd_schema)
    p = sub.add_parser("graph", help="draw a flow with graphviz (a flow with errors is refused)")
    p.add_argument("file")
    p.add_argument("-o", "--output", required=True,
                   help="the file to write; its suffix is the format: " + ", ".join(GRAPH_FORMATS))
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
    add_option(p, "--config", default=default_config())
    p.add_argument("--var-dir", help="instead of the config's paths.var_dir")
    add_option(p, "--token")      # without one (and no $HOTLINE_TOKEN): SIGHUP
    p.set_defaults(func=cmd_reload)
    p = sub.add_parser("override", help="manual schedule overrides: closed now, emergency message")
    p.add_argument("action", choices=["set", "clear", "list"])
    p.add_argument("flow", nargs="?", help="flow name, or '*' for all flows (set and clear need one)")
    p.add_argument("--mode", choices=["closed", "emergency", "open"], default="closed",
                   help="closed now, an emergency message, or open now whatever the clock says")
    p.add_argument("--message", default="")
    add_option(p, "--config", default=default_config())
    p.add_argument("--var-dir", help="instead of the config's paths.var_dir")
    p.set_defaults(func=cmd_override)


def _printable_paths(paths, command):
    from engine.infra.clitext import UsageError, escaped
    for path in paths:
        if not str(path).isprintable():    # it would start a line of its own in every message
            raise UsageError(f"ivr {command}: {escaped(path)}: a path with control characters")


def cmd_lint(args):
    from .lint import LintOptions, lint_flows, summary
    _printable_paths(args.paths, "lint")
    acd, acd_problems = _lint_acd(args)
    options = LintOptions(prompt_seconds=args.prompt_seconds, menu_levels=args.menu_levels, acd=acd)
    _, problems, files = lint_flows(args.paths, options)
    problems = acd_problems + problems
    errors = [p for p in problems if p.severity == "error"]
    if args.json:
        print(json.dumps({"ok": not errors and not (args.strict and problems), "files": [str(f) for f in files],
                          "errors": len(errors), "warnings": len(problems) - len(errors),
                          "problems": [dict(file=p.file, line=p.line, col=p.col, severity=p.severity,
                                            message=p.message) for p in problems]}, ensure_ascii=False, indent=1))
    else:
        for problem in problems:
            print(problem.lint_text())
        print(summary(problems, files))
    return 1 if errors or (args.strict and problems) else 0


def _lint_acd(args):
    """(AcdConfig or None, [Problem]) from --agents/--queues or the config's files, when there."""
    from engine.acd.config import load_acd
    from engine.settings import SettingsError
    agents, queues, config = args.agents, args.queues, args.config or "etc/hotline.yaml"
    if not (agents and queues) and os.path.exists(config):
        from engine.infra.clitext import SecretsNotNeeded
        from engine.settings import load_settings
        try:
            files = load_settings(config, env=SecretsNotNeeded(os.environ)).files
            agents, queues = agents or files.agents, queues or files.queues
        except SettingsError as exc:
            if args.config:            # asked for: its problems are this lint's
                return None, _problems_of(exc, config)
            print(f"ivr lint: queue checks skipped: {config} has problems (see them with --config {config})", file=sys.stderr)
    if not (agents and queues and os.path.isfile(agents) and os.path.isfile(queues)):
        return None, []
    try:
        return load_acd(agents, queues), []
    except SettingsError as exc:
        return None, _problems_of(exc, queues)


def _problems_of(exc, path):
    """SettingsError lines (file:line:col: problem) as lint errors."""
    from .loader import Problem
    out = []
    for line in str(exc).splitlines():
        where = re.match(r"^(.*?):(\d+):(\d+): (.*)$", line)
        out.append(Problem(where[1], int(where[2]), int(where[3]), where[4]) if where else Problem(str(path), 1, 1, line))
    return out


def cmd_schema(args):
    from .schema import schema_text
    if not args.output:
        sys.stdout.write(schema_text())
        return 0
    out = pathlib.Path(args.output)
    if out.exists() and not args.force:
        print(f"ivr schema: {out} exists; add --force to overwrite it", file=sys.stderr)
        return 1
    out.write_text(schema_text(), encoding="utf-8")
    print(out)
    return 0


GRAPH_FORMATS = ("svg", "png", "pdf", "dot")


def cmd_graph(args):
    import shutil
    from .graph import write_graph
    from .loader import check_flows, sort_key
    fmt = pathlib.Path(args.output).suffix.lstrip(".").lower()
    if fmt not in GRAPH_FORMATS:
        print(f"ivr graph: cannot tell the format of {args.output}: name it .svg, .png, .pdf or .dot", file=sys.stderr)
        return 2
    if fmt != "dot" and not shutil.which("dot"):
        print("ivr graph: graphviz's dot is not installed (apt-get install graphviz); -o flow.dot needs none",
              file=sys.stderr)
        return 1
    # drawn alone, a flow's links into other flows are not checked (those flows are not drawn)
    problems = [str(p) for p in sorted(check_flows([args.file], partial=True).problems, key=sort_key)]
    if problems:
        print(f"ivr graph: {args.file} has problems, fix them first (hotline ivr lint):", file=sys.stderr)
        print("\n".join(problems), file=sys.stderr)
        return 1
    try:
        write_graph(args.file, args.output)
    except Exception as exc:
        print(f"ivr graph: {exc}", file=sys.stderr)
        return 1
    print(args.output)
    return 0


def cmd_walk(args):
    _printable_paths(args.paths, "walk")
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
    """--var-dir, else the settings file's: a settings file that is not there is a mistake (the
    overrides would land in a var/ under whatever directory the command ran in)."""
    if args.var_dir:
        return pathlib.Path(args.var_dir)
    from engine.infra.clitext import CliError, SecretsNotNeeded, escaped
    from engine.settings import load_settings
    if not os.path.exists(args.config):
        raise CliError(f"no settings file {escaped(args.config)} (give --config FILE or --var-dir DIR)")
    return pathlib.Path(load_settings(args.config, env=SecretsNotNeeded(os.environ)).paths.var_dir)


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
    from engine.infra.clitext import UsageError, escaped
    from .schedule import Overrides
    if args.action in ("set", "clear") and not args.flow:
        raise UsageError(f"ivr override {args.action} needs a flow name, or '*' for every flow")
    if args.flow and not args.flow.isprintable():
        raise UsageError(f"ivr override: flow name {escaped(args.flow)} has control characters")
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
