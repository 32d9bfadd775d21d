"""`hotline campaigns ...` and `hotline callbacks ...`: follow-up campaigns and callback jobs.

    hotline campaigns create NAME --mode robot|preview|progressive|predictive [--queue Q] [--flow F]
                             [--priority 1-9] [--max-attempts N] [--abandon-target 0.03]
    hotline campaigns load NAME FILE.csv|FILE.xlsx [--partial]
    hotline campaigns load NAME --query tickets-closed|survey|unreachable-callbacks [--date D]
                             [--category C] [--scores 4,5] [--partial]
    hotline campaigns start|pause|resume|stop NAME
    hotline campaigns list [--json] | show NAME [--contacts] [--json]
    hotline campaigns report NAME [--json] [--export FILE.csv|FILE.xlsx] [--watch SECONDS]
    hotline callbacks list [--state open|pending|done|failed|...] [--json]
    hotline callbacks add NUMBER [--queue Q] [--note N] [--deadline-hours H] [--auto]
    hotline callbacks add --ticket ID          a ticket marked for call-back
    hotline callbacks take ID --agent A        through the engine's control API: it rings the
                                               agent first (409: not available), then dials
    hotline callbacks skip ID --agent A | done ID --agent A [--disposition D] [--note N]

They read and write the database of the settings file (like `hotline tickets`); `take` asks the
engine (`--api`, token from $HOTLINE_TOKEN), which rings the agent and dials the customer.
"""
import datetime
import getpass
import json
import os
import sys
import time

from engine.infra.clitext import (SecretsNotNeeded, add_day, add_option, cell, clock_for, default_config, iso,
                                  need_database, table, watch_seconds)


def register(subparsers):
    _register_campaigns(subparsers)
    _register_callbacks(subparsers)


def _common(p):
    add_option(p, "--config", default=default_config())
    p.add_argument("--by", default=_user(), help="who does this (default %(default)s)")


def _register_campaigns(subparsers):
    parser = subparsers.add_parser("campaigns", help="follow-up (回访) campaigns", description=__doc__,
                                   formatter_class=_raw())
    sub = parser.add_subparsers(dest="campaigns_command", metavar="ACTION", required=True)
    p = sub.add_parser("create", help="a new campaign (draft)")
    p.add_argument("name")
    p.add_argument("--mode", required=True, choices=("robot", "preview", "progressive", "predictive"))
    p.add_argument("--queue", help="the queue whose agents call (agent modes)")
    p.add_argument("--flow", help="the IVR flow a robot campaign plays (ivr_flows/followup.yaml)")
    p.add_argument("--priority", type=int, default=5, help="1 first ... 9 last (default 5)")
    p.add_argument("--max-attempts", type=int, default=3)
    p.add_argument("--abandon-target", type=float, default=0.03, help="predictive: at most this share "
                   "of answered calls without an agent (default 0.03)")
    p.add_argument("--note", default="")
    _common(p)
    p.set_defaults(func=cmd_create)
    p = sub.add_parser("load", help="contacts from a CSV/XLSX file or a query over our data")
    p.add_argument("name")
    p.add_argument("file", nargs="?")
    p.add_argument("--query", choices=("tickets-closed", "survey", "unreachable-callbacks"))
    add_day(p)                                    # the queries' day; default yesterday here
    p.add_argument("--category", help="tickets-closed: only this category")
    p.add_argument("--scores", default="4,5",
                   help="survey: these scores (1 非常满意 ... 5 非常不满意; default 4,5)")
    p.add_argument("--partial", action="store_true", help="with bad rows, load the good ones (default: none)")
    add_option(p, "--json")
    _common(p)
    p.set_defaults(func=cmd_load)
    for action in ("start", "pause", "resume", "stop"):
        p = sub.add_parser(action, help=f"{action} a campaign")
        p.add_argument("name")
        _common(p)
        p.set_defaults(func=cmd_control, action=action)
    p = sub.add_parser("list", help="campaigns with their contacts by state")
    add_option(p, "--json")
    add_option(p, "--watch", type=watch_seconds, nargs="?", const=2.0)
    _common(p)
    p.set_defaults(func=cmd_list, reads_only=True)
    p = sub.add_parser("show", help="one campaign (and its contacts)")
    p.add_argument("name")
    p.add_argument("--contacts", action="store_true")
    add_option(p, "--json")
    _common(p)
    p.set_defaults(func=cmd_show, reads_only=True)
    p = sub.add_parser("report", help="the campaign's figures; --export the per-contact results")
    p.add_argument("name")
    add_option(p, "--json")
    p.add_argument("--export", metavar="FILE", help=".csv or .xlsx")
    add_option(p, "--tz")
    add_option(p, "--watch", type=watch_seconds, nargs="?", const=2.0)
    _common(p)
    p.set_defaults(func=cmd_report, reads_only=True)


def _register_callbacks(subparsers):
    parser = subparsers.add_parser("callbacks", help="callback jobs (promises to call back)", description=__doc__,
                                   formatter_class=_raw())
    sub = parser.add_subparsers(dest="callbacks_command", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="callback jobs, oldest due first")
    p.add_argument("--state", default="open", help="open (default), pending, claimed, done, failed, cancelled, all")
    add_option(p, "--json")
    add_option(p, "--watch", type=watch_seconds, nargs="?", const=2.0)
    _common(p)
    p.set_defaults(func=cmd_cb_list, reads_only=True)
    p = sub.add_parser("add", help="a manual callback request, or one for a ticket (--ticket)")
    p.add_argument("number", nargs="?")
    p.add_argument("--ticket", help="ticket id or number marked for call-back")
    p.add_argument("--queue")
    p.add_argument("--note", default="")
    p.add_argument("--deadline-hours", type=float)
    p.add_argument("--auto", action="store_true", help="dialled by the engine, then queued (default: preview)")
    _common(p)
    p.set_defaults(func=cmd_cb_add)
    p = sub.add_parser("take", help="an agent takes a job: the engine rings the agent, then the customer")
    p.add_argument("job", type=int)
    p.add_argument("--agent", required=True)
    add_option(p, "--config", default=default_config())
    add_option(p, "--api")
    add_option(p, "--token")
    add_option(p, "--json")
    p.set_defaults(func=cmd_cb_take)
    p = sub.add_parser("skip", help="not for this agent: offered to the others")
    p.add_argument("job", type=int)
    p.add_argument("--agent", required=True)
    _common(p)
    p.set_defaults(func=cmd_cb_skip)
    p = sub.add_parser("done", help="close a job by hand")
    p.add_argument("job", type=int)
    p.add_argument("--agent", required=True)
    p.add_argument("--disposition", default="done")
    p.add_argument("--note", default="")
    _common(p)
    p.set_defaults(func=cmd_cb_done)


def _raw():
    import argparse
    return argparse.RawDescriptionHelpFormatter


def _user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


# --- plumbing ---------------------------------------------------------------------------------------

def _settings(args):
    from engine.settings import load_settings
    return load_settings(args.config, env=SecretsNotNeeded(os.environ))


def _run(args, work, claims=False):
    """Open the database (and Redis for claims), run work(db[, claims]) -> exit code; refusals and
    database trouble are one clear line on stderr."""
    import peewee
    from engine.outbound.campaigns import OutboundError
    from engine.outbound.contacts import ContactFileError
    from engine.outbound.db import OutboundDb
    from engine.settings import SettingsError
    group = "campaigns" if getattr(args, "campaigns_command", None) else "callbacks"
    name = f"hotline {group} {getattr(args, group + '_command', '')}"
    try:
        settings = _settings(args)
    except SettingsError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "reads_only", False):
        need_database(settings.database.url)       # a command that only reads creates no database
    try:
        db = OutboundDb(settings.database.url).open()
    except Exception as exc:        # noqa: BLE001 - any driver trouble: say it
        print(f"{name}: cannot open the database {settings.database.url}: {exc}", file=sys.stderr)
        return 1
    try:
        if claims:
            from engine.infra.redisconn import redis_client
            from engine.outbound.claims import Claims
            r = settings.redis
            client = redis_client(r.url, r.sentinels, r.master_name, r.sentinel_password, socket_connect_timeout=2)
            return work(db, Claims(db, client, r.prefix, f"cli:{args.by}"))
        return work(db)
    except (OutboundError, ContactFileError, ValueError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except peewee.DatabaseError as exc:
        print(f"{name}: database error: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()


def _dump(data):
    def plain(v):
        if isinstance(v, (datetime.date, datetime.datetime)):
            return v.isoformat()
        raise TypeError(type(v).__name__)
    json.dump(data, sys.stdout, ensure_ascii=False, indent=1, default=plain)
    print()


def _watch(args, draw):
    while True:
        if args.watch:
            sys.stdout.write("\x1b[H\x1b[2J" + time.strftime("%H:%M:%S") + "\n")
        code = draw()
        if not args.watch or code:
            return code
        sys.stdout.flush()
        time.sleep(max(0.5, args.watch))


# --- campaigns ------------------------------------------------------------------------------------

def cmd_create(args):
    from engine.outbound import campaigns

    def work(db):
        c = campaigns.create(db, args.name, args.mode, queue=args.queue, flow=args.flow, priority=args.priority,
                             max_attempts=args.max_attempts, abandon_target=args.abandon_target, note=args.note,
                             who=args.by)
        print(f"campaign {c['name']} (id {c['id']}): {c['mode']}, {c['state']}")
        return 0
    return _run(args, work)


def cmd_load(args):
    from engine.outbound import campaigns, queries

    def work(db):
        if bool(args.file) == bool(args.query):
            raise ValueError("give a FILE or --query, one of them")
        if args.file:
            out = campaigns.load(db, args.name, args.file, partial=args.partial)
        else:
            the_clock = clock_for(args.config)
            day = (the_clock.parse_day(args.date, "--date") if args.date
                   else the_clock.today() - datetime.timedelta(days=1))
            if args.query == "tickets-closed":
                rows, errors = queries.tickets_closed(db, day, args.category)
            elif args.query == "survey":
                scores = tuple(int(s) for s in args.scores.split(",") if s.strip())
                rows, errors = queries.survey_scores(db, day, scores)
            else:
                rows, errors = queries.unreachable_callbacks(db)
            out = campaigns.add_contacts(db, args.name, rows, errors, partial=args.partial)
        if args.json:
            _dump(out)
        else:
            for line in out["errors"]:
                print(line, file=sys.stderr)
            print(f"{out['loaded']} contact(s) loaded ({out['loaded_rows']}), {out['skipped_existing']} "
                  f"already there, {len(out['errors'])} bad row(s)")
        return 1 if out["errors"] and out["loaded_rows"] == "none" else 0
    return _run(args, work)


def cmd_control(args):
    from engine.outbound import campaigns

    def work(db):
        c = campaigns.control(db, args.name, args.action, who=args.by)
        print(f"campaign {c['name']}: {c['state']}")
        return 0
    return _run(args, work)


LIST_COLUMNS = ("id", "name", "mode", "state", "priority", "queue", "total", "pending", "claimed", "done", "failed")


def cmd_list(args):
    from engine.outbound import campaigns

    def work(db):
        def draw():
            rows = campaigns.list_campaigns(db)
            if args.json:
                _dump(rows)
                return 0
            if not rows:
                print("no campaigns")
                return 0
            print(table(LIST_COLUMNS, [[cell(r.get(c, r["contacts"].get(c))) for c in LIST_COLUMNS] for r in rows]))
            return 0
        return _watch(args, draw)
    return _run(args, work)


def cmd_show(args):
    from engine.outbound import campaigns

    def work(db):
        c = campaigns.show(db, args.name)
        contacts = campaigns.contacts(db, args.name) if args.contacts else None
        if args.json:
            _dump({**c, **({"contact_list": contacts} if contacts is not None else {})})
            return 0
        for key, value in iso(c).items():
            print(f"{key:<16} {cell(value)}")
        if contacts is not None:
            cols = ("number", "name", "state", "attempts", "last_result", "agent", "answers", "source")
            print(table(cols, [[cell(r[k], limit=30) for k in cols] for r in contacts]))
        return 0
    return _run(args, work)


def cmd_report(args):
    from engine.outbound import report

    def work(db):
        if args.export:
            n = report.export(db, args.name, args.export)
            print(f"{n} contact(s) written to {args.export}")

        def draw():
            r = report.campaign_report(db, args.name, tz=args.tz or clock_for(args.config).name)
            if args.json:
                _dump(r)
                return 0
            print(f"campaign {r['campaign']} ({r['mode']}, {r['state']}): {r['contacts']} contacts, "
                  f"reached {r['reached']} ({r['reached_pct']}%), completed {r['completed']} ({r['completed_pct']}%)")
            print(f"dials {r['dials']}, attempts per contact {r['attempts_per_contact']}, "
                  f"abandon {r['abandon_pct']}% of answered; not dialled: agent missed {r['agent_missed']}, "
                  f"refused {r['refused']}")
            print("results: " + ", ".join(f"{k} {v}" for k, v in sorted(r["results"].items())))
            for key, counts in r["answers"].items():
                print(f"answers {key}: " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
            s = r["satisfaction"]
            print(f"satisfaction: {s['rated']} rated, mean {s['mean'] if s['mean'] is not None else '-'}")
            if r["by_day"]:
                cols = ("dials", "answered", "abandoned", "completed", "agent_missed")
                print(table(("day", "dials", "answered", "abandoned", "completed", "agent missed"),
                            [[d, *(v[c] for c in cols)] for d, v in r["by_day"].items()]))
            if r["by_agent"]:
                print(table(("agent", "calls", "missed", "completed", "talk s"),
                            [[a, v["calls"], v["missed"], v["completed"], round(v["talk_seconds"])]
                             for a, v in r["by_agent"].items()]))
            return 0
        return _watch(args, draw)
    return _run(args, work)


# --- callbacks ------------------------------------------------------------------------------------

JOB_COLUMNS = ("id", "state", "reason", "number", "queue", "due_at", "deadline_at", "attempts", "last_result",
               "agent", "note")


def cmd_cb_list(args):
    from engine.outbound import jobs

    def work(db):
        def draw():
            rows = jobs.list_jobs(db, state=None if args.state == "all" else args.state)
            if args.json:
                _dump(rows)
                return 0
            if not rows:
                print("no callback jobs")
                return 0
            print(table(JOB_COLUMNS, [[cell(r[c], limit=30, time_format="%m-%d %H:%M") for c in JOB_COLUMNS]
                                      for r in rows]))
            return 0
        return _watch(args, draw)
    return _run(args, work)


def cmd_cb_add(args):
    from engine.outbound import jobs

    def work(db):
        if args.ticket:
            from engine.tickets.store import TicketStore
            store = TicketStore(_settings(args).database.url).open()
            try:
                job = jobs.from_ticket(db, store, args.ticket, who=args.by, queue=args.queue,
                                       deadline_hours=args.deadline_hours)
            finally:
                store.close()
        else:
            if not args.number:
                raise ValueError("give a NUMBER or --ticket")
            kw = {"deadline_hours": args.deadline_hours} if args.deadline_hours else {}
            job = jobs.create_job(db, args.number, "manual", queue=args.queue, note=args.note, who=args.by,
                                  mode="auto" if args.auto else "preview", **kw)
        print(f"callback job {job['id']}: {job['number']} ({job['reason']}, {job['mode']}), "
              f"deadline {cell(job['deadline_at'])} UTC")
        return 0
    return _run(args, work)


def cmd_cb_skip(args):
    from engine.outbound import jobs

    def work(db):
        job = jobs.skip(db, args.job, args.agent)
        print(f"callback job {job['id']}: skipped by {args.agent}")
        return 0
    return _run(args, work)


def cmd_cb_done(args):
    from engine.outbound import jobs

    def work(db, claims):
        job = jobs.done(db, claims, args.job, args.agent, disposition=args.disposition, note=args.note)
        print(f"callback job {job['id']}: {job['state']} ({job['last_result']})")
        return 0
    return _run(args, work, claims=True)


def cmd_cb_take(args):
    from engine.control.cli import client
    from engine.control.client import ApiError
    try:      # the API's address and token as every supervisor's command finds them (--api, client file)
        out = client(args).post(f"/v1/callbacks/{args.job}/take", {"agent": args.agent})
    except ApiError as exc:
        print(f"hotline callbacks take: {exc}", file=sys.stderr)
        return 1
    if args.json:
        _dump(out)
    else:
        job = out.get("job") or {}
        print(f"callback job {job.get('id')}: taken by {args.agent}; ringing {args.agent}'s phone, then "
              f"{job.get('number')} is dialled and bridged")
    return 0
