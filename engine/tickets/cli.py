"""`hotline tickets ...`: work orders from the CDR outbox and from agents.

    hotline tickets list [--state S] [--json]      show ID [--json]
    hotline tickets create --call UUID --category C --summary S [--department D]
    hotline tickets assign ID --department D [--to PERSON]
    hotline tickets start ID | resolve ID [--note N] | close ID | withdraw ID --note N
    hotline tickets consume [--follow]             the CDR outbox -> tickets (once, or keep going)
    hotline tickets sla [--follow]                 reminders and escalations due now

ID is the ticket's id or its number (T20261123-0001). Categories, SLAs and departments come from
tickets.yaml next to the settings file (--tickets F to choose another). Times are shown in the
hotline's time zone (setting `timezone`); list and show only read (they never create the database).
"""
import getpass
import json
import os
import sys
from pathlib import Path

from engine.infra import clitext
from engine.infra.clitext import SecretsNotNeeded, cell, quoted, table

TABLE_COLUMNS = ("number", "state", "kind", "category", "department", "assignee", "due_at", "caller_number",
                 "summary")


def register(subparsers):
    parser = subparsers.add_parser("tickets", help="work orders (tickets)", description=__doc__,
                                   formatter_class=_raw())
    sub = parser.add_subparsers(dest="tickets_command", metavar="ACTION", required=True)

    def action(name, func, help_text, ticket=True,
               json_help="one JSON object: the ticket with every field"):
        p = sub.add_parser(name, help=help_text)
        if ticket:
            p.add_argument("ticket", metavar="ID", help="ticket id or number (T20261123-0001)")
        clitext.add_config(p)
        p.add_argument("--tickets", help="ticket categories file (default: tickets.yaml beside the settings file)")
        p.add_argument("--by", default=_user(), help="who does this, for the history (default %(default)s)")
        clitext.add_json(p, json_help)
        p.set_defaults(func=func)
        return p

    lst = action("list", cmd_list, "tickets, oldest first", ticket=False,
                 json_help="one JSON array with every field")
    lst.add_argument("--state", help="only tickets in this state")
    clitext.add_limit(lst)
    action("show", cmd_show, "every field of a ticket and its history",
           json_help="one JSON object with every field and the history")
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
    lines = "one JSON object a line for each ticket made"
    consume = action("consume", cmd_consume, "make tickets from the CDR outbox", ticket=False, json_help=lines)
    consume.add_argument("--follow", action="store_true", help="keep consuming until interrupted")
    consume.add_argument("--interval", type=float, default=2.0, help="seconds between polls with --follow")
    sla = action("sla", cmd_sla, "send the reminders and escalations due now", ticket=False,
                 json_help="one JSON object a line for each reminder or escalation: the action and the ticket")
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


def _open(args, read_only=False):
    """(TicketStore, clock, None) or (None, None, exit code) after saying what is wrong.
    read_only: list and show, which never create the database or its tables."""
    from engine.cdr.reading import NoDatabase, ticket_store
    from engine.infra.clock import for_settings
    from engine.settings import SettingsError, load_settings
    from engine.tickets.config import TicketConfigError, load_config
    from engine.tickets.store import TicketStore
    try:
        settings = load_settings(args.config, env=SecretsNotNeeded(os.environ))
        path = Path(args.tickets) if args.tickets else Path(args.config).resolve().parent / "tickets.yaml"
        config = load_config(path if (args.tickets or path.exists()) else None)
    except (SettingsError, TicketConfigError) as exc:
        print(f"hotline tickets: {exc}", file=sys.stderr)
        return None, None, 2
    clock = for_settings(settings)
    try:
        if read_only:
            return ticket_store(settings.database.url, config), clock, None
        return TicketStore(settings.database.url, config).open(), clock, None
    except NoDatabase as exc:
        print(f"hotline tickets: {exc}", file=sys.stderr)
        return None, None, 1
    except Exception as exc:        # noqa: BLE001 - any driver trouble: say it, exit 1
        print(f"hotline tickets: cannot open the database {settings.database.url}: {exc}", file=sys.stderr)
        return None, None, 1


def _run(args, work, read_only=False):
    """Open the store, run work(store, clock) -> exit code; refusals and database trouble are one
    clear line on stderr, never a traceback."""
    import peewee
    from engine.cdr.reading import missing_table
    from engine.tickets.store import TicketError
    store, clock, code = _open(args, read_only)
    if store is None:
        return code
    try:
        return work(store, clock)
    except TicketError as exc:
        print(f"hotline tickets {args.tickets_command}: {exc}", file=sys.stderr)
        return 1
    except peewee.DatabaseError as exc:
        problem = ("the database has no ticket tables yet (has the engine run?)" if missing_table(exc)
                   else f"database error: {exc}")
        print(f"hotline tickets {args.tickets_command}: {problem}", file=sys.stderr)
        return 1
    finally:
        store.close()


def cmd_list(args):
    def work(store, clock):
        rows = store.list(state=args.state, limit=args.limit)
        if args.json:
            json.dump([clock.jsonable(r) for r in rows], sys.stdout, ensure_ascii=False, indent=1)
            print()
        else:
            _print_table(clock, rows)
        return 0
    return _run(args, work, read_only=True)


def cmd_show(args):
    def work(store, clock):
        ticket, history = store.get(args.ticket), store.history(args.ticket)
        if args.json:
            json.dump(clock.jsonable({**ticket, "history": history}), sys.stdout, ensure_ascii=False, indent=1)
            print()
            return 0
        labels = {k: k.replace("_", " ") + (f" ({clock.name})" if k.endswith("_at") else "")
                  for k in ticket}
        width = max(map(len, labels.values())) + 1
        for key, value in ticket.items():
            text = clock.text(value) if hasattr(value, "strftime") else quoted(value if value != "" else None)
            print(f"{labels[key] + ':':<{width}} {text}")
        print(f"history ({clock.name}):")
        for h in history:
            move = h["to_state"] if h["from_state"] in (None, h["to_state"]) else f"{h['from_state']} -> {h['to_state']}"
            print(f"  {clock.text(h['at'])}  {quoted(h['who'])}  {h['action']}  {move}"
                  + (f"  {quoted(h['note'])}" if h["note"] else ""))
        return 0
    return _run(args, work, read_only=True)


def cmd_create(args):
    def work(store, clock):
        t = store.create(kind="agent", category=args.category, summary=args.summary, call_uuid=args.call,
                         department=args.department, who=args.by)
        if args.json:
            return _print_json(clock, t)
        print(f"{t['number']}  id {t['id']}  {t['state']}  due {_due(clock, t)}")
        return 0
    return _run(args, work)


def _print_json(clock, ticket):
    print(json.dumps(clock.jsonable(ticket), ensure_ascii=False, indent=1))
    return 0


def _due(clock, ticket):
    return f"{clock.text(ticket['due_at'], '%Y-%m-%d %H:%M')} ({clock.name})" if ticket["due_at"] else "-"


def cmd_assign(args):
    def work(store, clock):
        t = store.assign(args.ticket, args.department, args.to, who=args.by, note=args.note)
        if args.json:
            return _print_json(clock, t)
        print(f"{t['number']}  {t['state']}  {t['department']}  {t['assignee'] or '-'}")
        return 0
    return _run(args, work)


def _move(state):
    def cmd(args):
        def work(store, clock):
            t = store.transition(args.ticket, state, who=args.by, note=args.note)
            if args.json:
                return _print_json(clock, t)
            print(f"{t['number']}  {t['state']}")
            return 0
        return _run(args, work)
    return cmd


def cmd_consume(args):
    def work(store, clock):
        import gevent
        from engine.tickets.consumer import Consumer
        consumer = Consumer(None, args.interval, store=store)
        while True:
            for t in consumer.drain():
                if args.json:
                    print(json.dumps(clock.jsonable(t), ensure_ascii=False), flush=True)
                else:
                    print(f"{t['number']}  {t['kind']}  call {t['call_uuid']}", flush=True)
            if not args.follow:
                if args.json:
                    return 0
                print(f"{consumer.created} ticket(s) from {consumer.acked} outbox entr{'y' if consumer.acked == 1 else 'ies'}")
                return 0
            gevent.sleep(args.interval)
    return _run(args, work)


def cmd_sla(args):
    def work(store, clock):
        import gevent
        from engine.tickets.sla import SlaChecker
        checker = SlaChecker(store)
        while True:
            for action, t in checker.check_once():
                if args.json:
                    print(json.dumps(clock.jsonable({"action": action, "ticket": t}), ensure_ascii=False), flush=True)
                    continue
                print(f"{t['number']}  {action}  due {_due(clock, t)}  "
                      f"{t['department'] or '-'}  {t['assignee'] or '-'}", flush=True)
            if not args.follow:
                return 0
            gevent.sleep(args.interval)
    return _run(args, work)


def _print_table(clock, rows):
    if not rows:
        print("no tickets")
        return
    headers = [f"due ({clock.name})" if c == "due_at" else c for c in TABLE_COLUMNS]
    print(table(headers, [[cell(clock.local(r[c]) if c == "due_at" else r[c], limit=30,
                                time_format="%Y-%m-%d %H:%M") for c in TABLE_COLUMNS] for r in rows]))
