"""Supervisors' commands: live tables and actions through the engine's control API.

    hotline agents [--watch S]                     hotline agents login|logout|ready ID
    hotline agents break REASON ID                 hotline agents extend ID SECONDS
    hotline agents report [--date D] [--tz Z]      (a day's time in states, calls, misses: from the audit log)
    hotline queues [--watch S]                     hotline calls [--watch S]
    hotline call hold|unhold|complete|cancel|survey REF
    hotline call transfer|consult|three-way REF TARGET
    hotline call record start|stop|pause|resume REF
    hotline monitor|whisper|barge TARGET --from SUPERVISOR

REF is a caller's call uuid or the agent id on the call; TARGET is agent:<id>, queue:<name> or
external:<number> (a bare id / queue name / number works too). The token comes from $HOTLINE_TOKEN
(or --token), the address from the settings file's control section (or --api).
"""
import json
import os
import sys
import time

from engine.infra.clitext import SecretsNotNeeded, table
from engine.control.client import ApiError, Client

AGENT_ACTIONS = ("login", "logout", "ready", "break", "extend", "report")
CALL_ACTIONS = ("hold", "unhold", "transfer", "consult", "complete", "cancel", "three-way", "survey", "record")
RECORD_ACTIONS = ("start", "stop", "pause", "resume")
NEEDS_TARGET = ("transfer", "consult", "three-way")


def register(sub):
    p = sub.add_parser("agents", help="agents' states (live); log in/out, ready, break, extend wrap-up")
    p.add_argument("action", nargs="?", choices=AGENT_ACTIONS)
    p.add_argument("args", nargs="*", help="ID (break: REASON ID; extend: ID SECONDS)")
    p.add_argument("--date", help="report: the day, YYYY-MM-DD (default today)")
    p.add_argument("--tz", default="Asia/Shanghai", help="report: the site's time zone (default %(default)s)")
    p.add_argument("--db", help="report: database URL (default: the settings file's database.url)")
    _common(p, watch=True)
    p.set_defaults(func=_cmd_agents)

    p = sub.add_parser("queues", help="queues (live): waiting, longest wait, service level, abandon rate")
    _common(p, watch=True)
    p.set_defaults(func=_cmd_queues)

    p = sub.add_parser("calls", help="calls in queues and in conversation on the engine (live)")
    _common(p, watch=True)
    p.set_defaults(func=_cmd_calls)

    p = sub.add_parser("call", help="in-call features: hold, transfer, consult, complete, cancel, three-way")
    p.add_argument("action", choices=CALL_ACTIONS)
    p.add_argument("ref", help="the caller's call uuid or the agent id on the call")
    p.add_argument("target", nargs="?", help="agent:<id> | queue:<name> | external:<number>")
    _common(p)
    p.set_defaults(func=_cmd_call)

    for mode, text in (("monitor", "listen to an agent's call"),
                       ("whisper", "speak to the agent only"),
                       ("barge", "join the call: caller and agent hear you")):
        p = sub.add_parser(mode, help=f"supervisor: {text}")
        p.add_argument("target", help="agent id or call uuid")
        p.add_argument("--from", dest="supervisor", required=True,
                       help="the supervisor's id or extension (the phone that rings)")
        _common(p)
        p.set_defaults(func=_cmd_supervise, mode=mode)


def _common(p, watch=False):
    p.add_argument("--config", default="etc/hotline.yaml", help="settings file (default %(default)s)")
    p.add_argument("--api", help="control API base URL (default: from the settings file)")
    p.add_argument("--token", help="bearer token (default: $HOTLINE_TOKEN)")
    p.add_argument("--json", action="store_true", help="print JSON")
    if watch:
        p.add_argument("--watch", type=float, nargs="?", const=2.0, metavar="SECONDS",
                       help="refresh every SECONDS (default 2) until Ctrl-C")


def client(args):
    url = args.api
    if not url:
        from engine.settings import SettingsError, load_settings
        try:
            s = load_settings(args.config, env=SecretsNotNeeded(os.environ)).control
        except (SettingsError, OSError) as exc:
            raise ApiError(0, f"{exc} (or give --api URL)")
        host = "127.0.0.1" if s.listen_host in ("0.0.0.0", "::", "") else s.listen_host
        url = f"http://{host}:{s.listen_port}"
    return Client(url, token=args.token)


def _run(args, fetch, draw):
    try:
        api = client(args)
        while True:
            data = fetch(api)
            if args.json:
                print(json.dumps(data, ensure_ascii=False, indent=1))
            else:
                if getattr(args, "watch", None):
                    sys.stdout.write("\x1b[H\x1b[2J" + time.strftime("%H:%M:%S") + "\n")
                print(draw(data))
            if not getattr(args, "watch", None):
                return 0
            sys.stdout.flush()
            time.sleep(max(0.5, args.watch))
    except ApiError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 1 if exc.status else 2


def _cmd_agents(args):
    if args.action == "report":
        return _agents_report(args)
    if not args.action:
        return _run(args, lambda api: api.get("/v1/agents"), lambda d: agents_table(d["agents"]))
    need = {"break": 2, "extend": 2}.get(args.action, 1)
    if len(args.args) != need:
        usage = {"break": "REASON ID", "extend": "ID SECONDS"}.get(args.action, "ID")
        print(f"hotline agents {args.action} {usage}", file=sys.stderr)
        return 2
    agent_id = args.args[-1] if args.action == "break" else args.args[0]
    body = {}
    if args.action == "break":
        body["reason"] = args.args[0]
    if args.action == "extend":
        try:
            body["seconds"] = float(args.args[1])
        except ValueError:
            print(f"hotline: SECONDS must be a number, not {args.args[1]!r}", file=sys.stderr)
            return 2
    return _run(args, lambda api: api.post(f"/v1/agents/{agent_id}/{args.action}", body),
                lambda d: f"agent {d['agent']}: {d['state']}" + (f" ({d['reason']})" if d.get("reason") else "")
                + (f", then {d['pending']}" if d.get("pending") else ""))


def _agents_report(args):
    import datetime
    import zoneinfo
    from engine.acd.agentreport import agent_figures
    from engine.settings import SettingsError, load_settings
    try:
        tz = zoneinfo.ZoneInfo(args.tz)
        day = (datetime.date.fromisoformat(args.date) if args.date
               else datetime.datetime.now(tz).date())
        db_url = args.db or load_settings(args.config, env=SecretsNotNeeded(os.environ)).database.url
    except (ValueError, zoneinfo.ZoneInfoNotFoundError, SettingsError, OSError) as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    figures = agent_figures(db_url, day, args.tz)
    if args.json:
        print(json.dumps({"date": day.isoformat(), "agents": figures}, ensure_ascii=False, indent=1))
        return 0
    print(f"agents on {day.isoformat()} ({args.tz})")
    print(table(["AGENT", "LOGGED IN", "AVAILABLE", "TALK", "WRAP-UP", "BREAK", "ANSWERED", "MISSED",
                 "OCCUPANCY%", "BREAKS"],
                [[agent, _duration(f["logged_in"]), _duration(f["seconds"]["available"]),
                  _duration(f["seconds"]["in_call"]), _duration(f["seconds"]["wrap_up"]),
                  _duration(f["seconds"]["on_break"]), f["answered"], f["missed"], _pct(f["occupancy"]),
                  ", ".join(f"{k} {_duration(v)}" for k, v in f["breaks"].items())]
                 for agent, f in figures.items()]))
    return 0


def _cmd_queues(args):
    return _run(args, lambda api: api.get("/v1/queues"), lambda d: queues_table(d["queues"]))


def _cmd_calls(args):
    return _run(args, lambda api: api.get("/v1/calls"), lambda d: calls_table(d["calls"]))


def _cmd_call(args):
    if args.action in NEEDS_TARGET and not args.target:
        print(f"hotline call {args.action} REF TARGET (agent:<id>, queue:<name>, external:<number>)",
              file=sys.stderr)
        return 2
    ref, body = args.ref, ({"target": args.target} if args.target else {})
    if args.action == "record":
        # hotline call record ACTION REF
        if args.ref not in RECORD_ACTIONS or not args.target:
            print("hotline call record start|stop|pause|resume REF", file=sys.stderr)
            return 2
        ref, body = args.target, {"action": args.ref}
    return _run(args, lambda api: api.post(f"/v1/calls/{ref}/{args.action}", body),
                lambda d: ", ".join(f"{k}: {v}" for k, v in d.items()))


def _cmd_supervise(args):
    body = {"target": args.target, "supervisor": args.supervisor, "mode": args.mode}
    return _run(args, lambda api: api.post("/v1/supervise", body),
                lambda d: f"{d['mode']}: supervisor {d['supervisor']} on call {d['call']} (leg {d['leg']})")


# --- tables -------------------------------------------------------------------------------------

def agents_table(rows):
    by_state = {}
    for r in rows:
        by_state[r["state"]] = by_state.get(r["state"], 0) + 1
    lines = table(["AGENT", "NAME", "EXT", "STATE", "REASON", "IN STATE", "CALLS", "TALK", "QUEUE"],
                  [[r["id"], r["name"], r["extension"], r["state"], r["reason"] or r.get("pending") or "",
                    _duration(r["seconds_in_state"]), r["calls"], _duration(r["talk_seconds"]),
                    r["queue"] or ""] for r in rows])
    summary = "  ".join(f"{k}: {v}" for k, v in sorted(by_state.items()))
    return lines + ("\n" + summary if summary else "")


def queues_table(rows):
    return table(["QUEUE", "WAITING", "LONGEST", "AVAIL", "BUSY", "WRAP", "BREAK", "OFFERED", "ANSWERED",
                  "ABANDONED", "SL%", "ABANDON%"],
                 [[r["name"], r["waiting"], _duration(r["longest_wait"]), r["agents"]["available"],
                   r["agents"]["reserved"] + r["agents"]["ringing"] + r["agents"]["in_call"],
                   r["agents"]["wrap_up"], r["agents"]["on_break"], r["offered"], r["answered"],
                   r["abandoned"], _pct(r["service_level"]), _pct(r["abandon_rate"])] for r in rows])


def calls_table(rows):
    return table(["CALL", "CALLER", "QUEUE", "STATE", "AGENT", "FOR", "WITH"],
                 [[r["call"], r["caller"], r["queue"], r["state"], r["agent"] or ",".join(r["agents_offered"]),
                   _duration(r["seconds"]),
                   ", ".join(f"{p['role']}:{p['target']}" for p in r["parties"])] for r in rows])


def _duration(seconds):
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds % 3600 // 60:02d}"


def _pct(value):
    return "" if value is None else f"{value:.1f}"
