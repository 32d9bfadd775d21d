"""`hotline tickets ...`: work orders from the CDR outbox and from agents.

    hotline tickets list [--state S] [--json]      show ID [--json]
    hotline tickets create --call UUID --category C --summary S [--department D]
    hotline tickets assign ID --department D [--to PERSON]
    hotline tickets start ID | resolve ID [--note N] | close ID | withdraw ID --note N
    hotline tickets consume [--follow]             the CDR outbox -> tickets (once, or keep going)
    hotline tickets sla [--follow]                 reminders and escalations due now

ID is the ticket's id or its number (T20261123-0001). Categories, SLAs and departments come from
tickets.yaml next to the settings file (--tickets F to choose another).
"""
import getpass
import json
import os
import sys
from pathlib import Path

from engine.infra.clitext import SecretsNotNeeded, cell, iso, quoted, table

DEFAULT_CONFIG = os.environ.get("HOTLINE_CONFIG", "etc/hotline.yaml")
TABLE_COLUMNS = ("number", "state", "kind", "category", "department", "assignee", "due_at", "caller_number",
                 "summary")


def register(subparsers):
    parser = subparsers.add_parser("tickets", help="work orders (tickets)", description=__doc__,
                                   formatter_class=_raw())
    sub = parser.add_subparsers(dest="tickets_command", metavar="ACTION", required=True)

    def action(name, func, help_text, ticket=True):
        p = sub.add_parser(name, help=help_text)
        if ticket:
            p.add_argument("ticket", metavar="ID", help="ticket id or number (T20261123-0001)")
        p.add_argument("--config", default=DEFAULT_CONFIG, help="settings file (default %(default)s)")
        p.add_argument("--tickets", help="ticket categories file (default: tickets.yaml beside the settings file)")
        p.add_argument("--by", default=_user(), help="who does this, for the history (default %(default)s)")
        p.set_defaults(func=func)
        return p

    lst = action("list", cmd_list, "tickets, oldest first", ticket=False)
    lst.add_argument("--state", help="only tickets in this state")
    lst.add_argument("--limit", type=int)
    lst.add_argument("--json", action="store_true", help="one JSON array with every field")
    show = action("show", cmd_show, "every field of a ticket and its history")
    show.add_argument("--json", action="store_true")
    create = action("create", cmd_create, "file a ticket for a call (an agent's, e.g. during wrap-up)",
                    ticket=False)
    create.add_argument("--call", required=True, metavar="UUID", help="the call's uuid (links the CDR)")
    create.add_argument("--category", required=True)
    create.add_argument("--summary", required=True)
    create.add_argument("--department")
    assign = action("assign", cmd_assign, "assign to a department (and a person)")
    assign.add_argument("--department", required=True)
    assign.add_argument("--to", metavar="PERSON")
    assign.add_argument("--note", default="")
    action("start", _move("in_progress"), "the assignee starts work").add_argument("--note", default="")
    action("resolve", _move("resolved"), "work done").add_argument("--note", default="")
    action("close", _move("closed"), "closed after a resolution").add_argument("--note", default="")
    action("withdraw", _move("withdrawn"), "withdraw an open ticket (a note says why)").add_argument(
        "--note", required=True)
    consume = action("consume", cmd_consume, "make tickets from the CDR outbox", ticket=False)
    consume.add_argument("--follow", action="store_true", help="keep consuming until interrupted")
    consume.add_argument("--interval", type=float, default=2.0, help="seconds between polls with --follow")
    sla = action("sla", cmd_sla, "send the reminders and escalations due now", ticket=False)
    sla.add_argument("--follow", action="store_true", help="keep checking until interrupted")
    sla.add_argument("--interval", type=float, default=60.0, help="seconds between checks with --follow")


def _raw():
    import argparse
    return argparse.RawDescriptionHelpFormatter


def _user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _open(args):
    """(TicketStore, None) or (None, exit code) after saying what is wrong."""
    from engine.settings import SettingsError, load_settings
    from engine.tickets.config import load_config
    from engine.tickets.store import TicketStore
    try:
        settings = load_settings(args.config, env=SecretsNotNeeded(os.environ))
        path = Path(args.tickets) if args.tickets else Path(args.config).resolve().parent / "tickets.yaml"
        config = load_config(path if (args.tickets or path.exists()) else None)
    except SettingsError as exc:
        print(f"hotline tickets: {exc}", file=sys.stderr)
        return None, 2
    try:
        return TicketStore(settings.database.url, config).open(), None
    except Exception as exc:        # noqa: BLE001 - any driver trouble: say it, exit 1
        print(f"hotline tickets: cannot open the database {settings.database.url}: {exc}", file=sys.stderr)
        return None, 1


def _run(args, work):
    """Open the store, run work(store) -> exit code; refusals and database trouble are one clear
    line on stderr, never a traceback."""
    import peewee
    from engine.tickets.store import TicketError
    store, code = _open(args)
    if store is None:
        return code
    try:
        return work(store)
    except TicketError as exc:
        print(f"hotline tickets {args.tickets_command}: {exc}", file=sys.stderr)
        return 1
    except peewee.DatabaseError as exc:
        print(f"hotline tickets {args.tickets_command}: database error: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()


def cmd_list(args):
    def work(store):
        rows = store.list(state=args.state, limit=args.limit)
        if args.json:
            json.dump([iso(r) for r in rows], sys.stdout, ensure_ascii=False, indent=1)
            print()
        else:
            _print_table(rows)
        return 0
    return _run(args, work)


def cmd_show(args):
    def work(store):
        ticket, history = store.get(args.ticket), store.history(args.ticket)
        if args.json:
            json.dump({**iso(ticket), "history": [iso(h) for h in history]}, sys.stdout,
                      ensure_ascii=False, indent=1)
            print()
            return 0
        width = max(map(len, ticket))
        for key, value in iso(ticket).items():
            print(f"{key:<{width}}  {quoted(value)}")
        print("history:")
        for h in history:
            move = h["to_state"] if h["from_state"] in (None, h["to_state"]) else f"{h['from_state']} -> {h['to_state']}"
            print(f"  {h['at']:%Y-%m-%d %H:%M:%S}  {quoted(h['who'])}  {h['action']}  {move}"
                  + (f"  {quoted(h['note'])}" if h["note"] else ""))
        return 0
    return _run(args, work)


def cmd_create(args):
    def work(store):
        t = store.create(kind="agent", category=args.category, summary=args.summary, call_uuid=args.call,
                         department=args.department, who=args.by)
        print(f"{t['number']}  id {t['id']}  {t['state']}  due {t['due_at']:%Y-%m-%d %H:%M} UTC")
        return 0
    return _run(args, work)


def cmd_assign(args):
    def work(store):
        t = store.assign(args.ticket, args.department, args.to, who=args.by, note=args.note)
        print(f"{t['number']}  {t['state']}  {t['department']}  {t['assignee'] or '-'}")
        return 0
    return _run(args, work)


def _move(state):
    def cmd(args):
        def work(store):
            t = store.transition(args.ticket, state, who=args.by, note=args.note)
            print(f"{t['number']}  {t['state']}")
            return 0
        return _run(args, work)
    return cmd


def cmd_consume(args):
    def work(store):
        import gevent
        from engine.tickets.consumer import Consumer
        consumer = Consumer(None, args.interval, store=store)
        while True:
            for t in consumer.drain():
                print(f"{t['number']}  {t['kind']}  call {t['call_uuid']}", flush=True)
            if not args.follow:
                print(f"{consumer.created} ticket(s) from {consumer.acked} outbox entr{'y' if consumer.acked == 1 else 'ies'}")
                return 0
            gevent.sleep(args.interval)
    return _run(args, work)


def cmd_sla(args):
    def work(store):
        import gevent
        from engine.tickets.sla import SlaChecker
        checker = SlaChecker(store)
        while True:
            for action, t in checker.check_once():
                print(f"{t['number']}  {action}  due {t['due_at']:%Y-%m-%d %H:%M} UTC  "
                      f"{t['department'] or '-'}  {t['assignee'] or '-'}", flush=True)
            if not args.follow:
                return 0
            gevent.sleep(args.interval)
    return _run(args, work)


def _print_table(rows):
    if not rows:
        print("no tickets")
        return
    headers = ["due (UTC)" if c == "due_at" else c for c in TABLE_COLUMNS]
    print(table(headers, [[cell(r[c], limit=30, time_format="%Y-%m-%d %H:%M") for c in TABLE_COLUMNS]
                                  for r in rows]))
