"""Supervisors' commands: live tables and actions through the engine's control API.

    hotline agents [--watch S]                     hotline agents login|logout|ready ID
    hotline agents break REASON ID                 hotline agents extend ID SECONDS
    hotline agents report [--date D] [--tz Z]      (a day's time in states, calls, misses: from the audit log)
    hotline queues [--watch S]                     hotline calls [--watch S]
    hotline call hold|unhold|complete|cancel|survey|hangup REF
    hotline call transfer|consult|three-way REF TARGET
    hotline call record start|stop|pause|resume REF
    hotline monitor|whisper|barge TARGET --from SUPERVISOR

REF is a caller's call uuid or the agent id on the call; TARGET is agent:<id>, queue:<name> or
external:<number> (a bare id / queue name / number works too). The API's address and the token:
--api / --token, $HOTLINE_API_URL / $HOTLINE_TOKEN, a client file (~/.config/hotline/client.yaml),
or on the engine's machine its settings file (engine/control/client.py says which wins).
"""
import json
import sys
import time

from engine.infra.clitext import UsageError, add_option, cell, escaped, need_database, table, watch_seconds
from engine.control.client import Client, resolve

AGENT_ACTIONS = ("login", "logout", "ready", "break", "extend", "report")
CALL_ACTIONS = ("hold", "unhold", "transfer", "consult", "complete", "cancel", "three-way", "survey", "record",
                "hangup")
RECORD_ACTIONS = ("start", "stop", "pause", "resume")
NEEDS_TARGET = ("transfer", "consult", "three-way")
ID_LIMIT = 64               # an agent id, queue name or call uuid longer than this is a typo


def register(sub):
    p = sub.add_parser("agents", help="agents' states (live); log in/out, ready, break, extend wrap-up")
    p.add_argument("action", nargs="?", choices=AGENT_ACTIONS)
    p.add_argument("args", nargs="*", metavar="ARG", help="ID (break: REASON ID; extend: ID SECONDS)")
    add_option(p, "--date")
    add_option(p, "--tz")
    p.add_argument("--db", metavar="URL", help="report: database URL (default: the settings file's database.url)")
    _common(p, watch=True)
    p.set_defaults(func=_cmd_agents)

    p = sub.add_parser("queues", help="queues (live): waiting, longest wait, service level, abandon rate")
    _common(p, watch=True)
    p.set_defaults(func=_cmd_queues)

    p = sub.add_parser("calls", help="calls in queues and in conversation on the engine (live)")
    _common(p, watch=True)
    p.set_defaults(func=_cmd_calls)

    p = sub.add_parser("call", help="in-call features: hold, transfer, consult, complete, cancel, three-way, hangup")
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
        p.add_argument("--from", dest="supervisor", required=True, metavar="SUPERVISOR",
                       help="the supervisor's id or extension (the phone that rings)")
        _common(p)
        p.set_defaults(func=_cmd_supervise, mode=mode)


def _common(p, watch=False):
    add_option(p, "--config")
    add_option(p, "--api", type=_url)
    add_option(p, "--token")
    add_option(p, "--json")
    if watch:
        add_option(p, "--watch", type=watch_seconds, nargs="?", const=2.0)


def _url(text):
    import argparse
    from engine.control.client import ClientConfigError, check_url
    try:
        return check_url(text)
    except ClientConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ident(text, what):
    if not text or len(text) > ID_LIMIT or not text.isprintable() or "/" in text:
        raise UsageError(f"{what} {text[:ID_LIMIT]!r}: expected an id (at most {ID_LIMIT} characters, no '/')")
    return text


def client(args):
    url, token = resolve(args.api, args.token, args.config)
    return Client(url, token=token)


def _run(args, fetch, draw):
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
        time.sleep(args.watch)


def _cmd_agents(args):
    if args.action == "report":
        return _agents_report(args)
    if not args.action:
        if args.args:
            raise UsageError(f"hotline agents: an action first (one of {', '.join(AGENT_ACTIONS)}), "
                             f"then {' '.join(args.args)}")
        return _run(args, lambda api: api.get("/v1/agents"), lambda d: agents_table(d["agents"]))
    need = {"break": 2, "extend": 2}.get(args.action, 1)
    if len(args.args) != need:
        usage = {"break": "REASON ID", "extend": "ID SECONDS"}.get(args.action, "ID")
        raise UsageError(f"usage: hotline agents {args.action} {usage}")
    agent_id = _ident(args.args[-1] if args.action == "break" else args.args[0], "agent")
    body = {}
    if args.action == "break":
        body["reason"] = _ident(args.args[0], "break reason")
    if args.action == "extend":
        try:
            body["seconds"] = float(args.args[1])
        except ValueError:
            raise UsageError(f"SECONDS must be a number, not {args.args[1]!r}") from None
        if not 0 < body["seconds"] <= 3600:
            raise UsageError(f"SECONDS: between 1 and 3600, not {args.args[1]}")
    return _run(args, lambda api: api.post(f"/v1/agents/{agent_id}/{args.action}", body), agent_line)


def agent_line(d):
    """`agent 1001: in_call; logged out after the call (and its wrap-up)`"""
    text = f"agent {d['agent']}: {d['state']}" + (f" ({d['reason']})" if d.get("reason") else "")
    pending = d.get("pending")
    if pending:
        state, _, reason = pending.partition(":")
        then = {"logged_out": "logged out", "on_break": f"on break ({reason})" if reason else "on break",
                "available": "available"}.get(state, state)
        text += f"; {then} after the call (and its wrap-up)"
    return text


def _agents_report(args):
    from engine.acd.agentreport import agent_figures
    if args.args:
        raise UsageError(f"hotline agents report takes no ID ({' '.join(args.args)}): it reports every agent")
    from engine.infra import clock
    # --db and --tz together need no settings file; otherwise it gives the database and the zone
    settings = None if (args.db and args.tz) else _reading_settings(args.config, optional=bool(args.db))
    try:
        the_clock = clock.Clock(args.tz) if args.tz else clock.for_settings(settings)
    except ValueError as exc:
        raise UsageError(f"--tz: {exc}") from None
    try:
        day = the_clock.parse_day(args.date, "--date") if args.date else the_clock.today()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    args.tz = the_clock.name
    db_url = args.db or settings.database.url
    need_database(db_url)
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


def _reading_settings(config, optional=False):
    """The settings file's database and time zone (secrets not needed). `optional`: with --db
    given, a settings file that is not there means the default time zone, as before."""
    import os
    from engine.infra.clitext import SecretsNotNeeded, default_config
    from engine.settings import load_settings
    path = config or default_config()
    if optional and not os.path.exists(path):
        return None
    return load_settings(path, env=SecretsNotNeeded(os.environ))


def _cmd_queues(args):
    return _run(args, lambda api: api.get("/v1/queues"), lambda d: queues_table(d["queues"]))


def _cmd_calls(args):
    return _run(args, lambda api: api.get("/v1/calls"), lambda d: calls_table(d["calls"]))


def _cmd_call(args):
    if args.action in NEEDS_TARGET and not args.target:
        raise UsageError(f"usage: hotline call {args.action} REF TARGET (agent:<id>, queue:<name>, external:<number>)")
    ref, body = args.ref, ({"target": args.target} if args.target else {})
    if args.action == "record":
        # hotline call record ACTION REF
        if args.ref not in RECORD_ACTIONS or not args.target:
            raise UsageError("usage: hotline call record start|stop|pause|resume REF")
        ref, body = args.target, {"action": args.ref}
    elif args.target and args.action not in NEEDS_TARGET:
        raise UsageError(f"hotline call {args.action} takes only REF, not {args.target!r}")
    ref = _ident(ref, "call or agent")
    return _run(args, lambda api: api.post(f"/v1/calls/{ref}/{args.action}", body),
                lambda d: escaped(", ".join(f"{k}: {v}" for k, v in d.items())))


def _cmd_supervise(args):
    body = {"target": _ident(args.target, "agent or call"), "supervisor": _ident(args.supervisor, "supervisor"),
            "mode": args.mode}
    return _run(args, lambda api: api.post("/v1/supervise", body),
                lambda d: f"{d['mode']}: supervisor {d['supervisor']} on call {d['call']} (leg {d['leg']})")


# --- tables -------------------------------------------------------------------------------------

def agents_table(rows):
    by_state = {}
    for r in rows:
        by_state[r["state"]] = by_state.get(r["state"], 0) + 1
    lines = table(["AGENT", "NAME", "EXT", "STATE", "REASON", "IN STATE", "NOW", "CALLS", "TALK", "QUEUE"],
                  [[cell(r["id"]), cell(r["name"]), cell(r["extension"]), r["state"],
                    cell(r["reason"] or _then(r.get("pending")) or ""),
                    _duration(r["seconds_in_state"]), _now(r), r["calls"],
                    _duration((r["talk_seconds"] or 0) + (r.get("talk_now") or 0)),
                    cell(r["queue"] or "")] for r in rows])
    summary = "  ".join(f"{k}: {v}" for k, v in sorted(by_state.items()))
    return lines + ("\n" + summary if summary else "")


def _now(row):
    """What runs now: the conversation's talk time, or the wrap-up time left."""
    if row.get("talk_now") is not None:
        return "talk " + _duration(row["talk_now"])
    if row.get("wrapup_left") is not None:
        return "wrap-up " + _duration(row["wrapup_left"]) + " left"
    return ""


def _then(pending):
    return f"then {pending}" if pending else ""


def queues_table(rows):
    return table(["QUEUE", "WAITING", "LONGEST", "AVAIL", "BUSY", "WRAP", "BREAK", "OFFERED", "ANSWERED",
                  "ABANDONED", "SL%", "ABANDON%"],
                 [[cell(r["name"]), r["waiting"], _duration(r["longest_wait"]), r["agents"]["available"],
                   r["agents"]["reserved"] + r["agents"]["ringing"] + r["agents"]["in_call"],
                   r["agents"]["wrap_up"], r["agents"]["on_break"], r["offered"], r["answered"],
                   r["abandoned"], _pct(r["service_level"]), _pct(r["abandon_rate"])] for r in rows])


def calls_table(rows):
    return table(["CALL", "CALLER", "QUEUE", "STATE", "AGENT", "WAITED", "TALK", "WITH"],
                 [[r["call"], cell(r["caller"]), cell(r["queue"]), r["state"],
                   cell(r["agent"] or ",".join(r["agents_offered"])),
                   _duration(r.get("wait_seconds")), _duration(r.get("talk_seconds")),
                   cell(", ".join(f"{p['role']}:{p['target']}" for p in r["parties"]))] for r in rows])


def _duration(seconds):
    if seconds is None:
        return ""
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds % 3600 // 60:02d}"


def _pct(value):
    return "" if value is None else f"{value:.1f}"
