"""`hotline cdr list|show`: read CDRs from the engine's database (and say what the spool holds).

Times are read and shown in the hotline's time zone (setting `timezone`); --json gives ISO 8601
with the offset. Both commands only read: they never create the database, a table or the spool.
"""
import csv
import datetime
import json
import sys

from engine.cdr.models import CDR_FIELDS, MODELS
from engine.infra import clitext
from engine.infra.clitext import Refused, cell, table

TABLE_COLUMNS = ("start_time", "uuid", "caller_number", "destination", "duration", "billsec",
                 "hangup_cause", "hangup_side", "queue", "agent")
TIME_KEYS = ("start_time", "answer_time", "end_time", "created_at", "updated_at")


def register(subparsers):
    parser = subparsers.add_parser("cdr", help="call detail records", description=__doc__)
    sub = parser.add_subparsers(dest="cdr_command", metavar="ACTION", required=True)
    lst = sub.add_parser("list", help="CDRs of calls started in a time range, oldest first")
    clitext.add_config(lst)
    clitext.add_time_range(lst)
    lst.add_argument("--caller", metavar="NUMBER", help="caller numbers containing NUMBER")
    lst.add_argument("--agent", metavar="AGENT", help="calls this agent took")
    lst.add_argument("--queue", metavar="QUEUE", help="calls that reached this queue")
    lst.add_argument("--did", metavar="DID", help="calls to this dialled number")
    lst.add_argument("--cause", metavar="CAUSE", help="hangup cause, e.g. NORMAL_CLEARING (any case)")
    clitext.add_limit(lst)
    lst.add_argument("--provisional", action="store_true",
                     help="also calls still going (or cut by a crash and not yet completed): their "
                          "provisional CDRs, tagged provisional")
    fmt = lst.add_mutually_exclusive_group()
    clitext.add_json(fmt)
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row and every field")
    lst.set_defaults(func=cmd_list)
    show = sub.add_parser("show", help="every field of one call's CDR")
    show.add_argument("uuid")
    clitext.add_config(show)
    clitext.add_json(show, "one JSON object with every field")
    show.add_argument("--reveal", action="store_true",
                      help="callers' ID and card numbers in clear (needs HOTLINE_PII_KEY and --reason; audited)")
    show.add_argument("--reason", help="why the clear form is needed (recorded in the audit)")
    show.set_defaults(func=cmd_show)


def _refusing(name, work):
    """work() -> exit code; Refused and database trouble are one line on stderr."""
    from engine.cdr.store import DB_ERRORS
    try:
        return work()
    except Refused as exc:
        print(f"hotline cdr {name}: {exc}", file=sys.stderr)
        return exc.code
    except DB_ERRORS as exc:
        print(f"hotline cdr {name}: reading the CDR database failed: {_db_problem(exc)}", file=sys.stderr)
        return 1


def _db_problem(exc):
    from engine.cdr.reading import missing_table
    return "it has no CDR table yet (has the engine run?)" if missing_table(exc) else str(exc)


def _open(settings):
    """The CDR database, read-only. Refused when it is not there."""
    from engine.cdr.reading import NoDatabase, open_readonly
    try:
        return open_readonly(settings.database.url, MODELS)
    except NoDatabase as exc:
        raise Refused(str(exc)) from None


def _open_store(args):
    """A CdrStore on the engine's database for other commands' readers (`hotline privacy audit`),
    or None after saying why; a database that is not there is said, not created."""
    from engine.cdr.store import CdrStore
    try:
        settings = clitext.settings_for_reading(args.config)
        _open(settings).close()
    except Refused as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return None
    db = settings.database
    # Reading only: the CLI does not replay the spool (that is the engine's drainer's job).
    store = CdrStore(db.url, settings.paths.cdr_spool, retries=db.retries, busy_timeout=db.busy_timeout)
    store.open(drain=False)
    if store.db_down:
        print(f"hotline: cannot open the CDR database {db.url} (see the error above)", file=sys.stderr)
        return None
    return store


def _pending(settings):
    """CDRs waiting in the spool (read only; replaying them is the engine's drainer's job)."""
    from engine.cdr.store import CdrStore
    store = CdrStore(settings.database.url, settings.paths.cdr_spool)
    return store.pending(), store.spool_dir


def cmd_list(args):
    from engine.infra.clock import for_settings

    def work():
        settings = clitext.settings_for_reading(args.config)
        clock = for_settings(settings)
        since, until = (_time(clock, args.since, "--since"), _time(clock, args.until, "--until"))
        if since and until and until <= since:
            raise Refused(f"--until {args.until!r} is not after --since {args.since!r}", 2)
        from engine.cdr.reading import select_cdrs
        db = _open(settings)
        try:
            rows = [with_event_times(r) for r in select_cdrs(
                since=since, until=until, caller=args.caller, agent=args.agent, queue=args.queue,
                did=args.did, cause=args.cause, provisional=args.provisional, limit=args.limit)]
        finally:
            db.close()
        if args.json:
            json.dump([clock.jsonable(r) for r in rows], sys.stdout, ensure_ascii=False, indent=1)
            print()
        elif args.csv:
            writer = csv.DictWriter(sys.stdout, fieldnames=list(CDR_FIELDS) + ["created_at", "updated_at"])
            writer.writeheader()
            for r in rows:
                writer.writerow({k: _csv_cell(v) for k, v in clock.jsonable(r).items()})
        else:
            _print_table(clock, rows)
        pending, spool = _pending(settings)
        if pending:
            print(f"hotline cdr: {pending} CDR(s) wait in the spool {spool} for the database",
                  file=sys.stderr)
        return 0
    return _refusing("list", work)


def _time(clock, text, what):
    from engine.infra.clock import TimeInputError
    if text is None:
        return None
    try:
        return clock.parse(text, what)
    except TimeInputError as exc:
        raise Refused(str(exc), 2) from None


def cmd_show(args):
    from engine.infra.clock import for_settings

    def work():
        settings = clitext.settings_for_reading(args.config)
        clock = for_settings(settings)
        row = _revealed(settings, args) if args.reveal else _stored(settings, args.uuid)
        if row is None:
            raise Refused(f"no CDR for call {args.uuid!r}")
        from engine import privacy
        if isinstance(row.get("extra"), dict):          # the sealed copy means nothing on a screen
            row = {**row, "extra": {k: v for k, v in row["extra"].items() if k != privacy.SEALED_KEY}}
        row = with_event_times(row)
        if args.json:
            print(json.dumps(clock.jsonable(row), ensure_ascii=False, indent=1))
        else:
            print(block(clock, row))
        return 0
    return _refusing("show", work)


def block(clock, row):
    """A CDR as `label: value` lines: times in the hotline's zone, lists and mappings as JSON, and
    text with control characters JSON-quoted (a caller name cannot fake lines)."""
    labels = {k: k.replace("_", " ") for k in row}
    labels.update({k: f"{k.replace('_', ' ')} ({clock.name})" for k in TIME_KEYS if k in row})
    width = max(map(len, labels.values())) + 1
    lines = []
    for key, value in row.items():
        if isinstance(value, (list, dict)):
            text = json.dumps(clock.jsonable(value), ensure_ascii=False) if value else "-"
        elif key in TIME_KEYS:
            text = clock.text(value)
        else:
            text = clitext.quoted(value if value != "" else None)
        lines.append(f"{labels[key] + ':':<{width}} {text}")
    return "\n".join(lines)


def _stored(settings, uuid):
    from engine.cdr.reading import get_cdr
    db = _open(settings)
    try:
        return get_cdr(uuid)
    finally:
        db.close()


def _revealed(settings, args):
    """The clear form writes an audit row: the store opens for writing, but only a database that
    is there (revealing never starts with an empty one)."""
    import getpass

    from engine import privacy
    from engine.cdr.store import CdrStore
    from engine.privacy.access import AccessRefused, reveal_cdr
    _open(settings).close()
    db = settings.database
    store = CdrStore(db.url, settings.paths.cdr_spool, retries=db.retries, busy_timeout=db.busy_timeout)
    store.open(drain=False)
    try:
        return reveal_cdr(store, args.uuid, f"cli:{getpass.getuser()}", args.reason, via="cli")
    except (AccessRefused, privacy.PrivacyError) as exc:    # no reason, no key, a wrong key, no audit
        raise Refused(str(exc)) from None
    finally:
        store.close()


def with_event_times(row):
    """The row with the moments in extra's event lists (transfers, parties, supervisors: the ACD
    records their "at" as epoch seconds) as datetimes, so output shows them as times, not floats."""
    extra = row.get("extra")
    if not isinstance(extra, dict):
        return row

    def moment(item):
        at = item.get("at") if isinstance(item, dict) else None
        if isinstance(at, (int, float)) and not isinstance(at, bool) and 0 < at < 4e9:
            return {**item, "at": datetime.datetime.fromtimestamp(at, datetime.timezone.utc)}
        return item
    return {**row, "extra": {k: [moment(i) for i in v] if isinstance(v, list) else v
                             for k, v in extra.items()}}


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value


def _print_table(clock, rows):
    if not rows:
        print("no CDRs")
        return
    # control characters escaped in caller text: a hostile caller name must not draw on the terminal
    headers = [f"start ({clock.name})" if c == "start_time" else c for c in TABLE_COLUMNS]
    print(table(headers, [[cell(clock.local(r[c]) if c == "start_time" else r[c], limit=40)
                           for c in TABLE_COLUMNS] for r in rows]))
