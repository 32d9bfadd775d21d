"""`hotline cdr list|show`: read CDRs from the engine's database (and say what the spool holds)."""
import csv
import datetime
import json
import os
import sys

from engine.cdr.models import CDR_FIELDS
from engine.cdr.store import DB_ERRORS
from engine.infra.clitext import SecretsNotNeeded, cell, iso, table

DEFAULT_CONFIG = os.environ.get("HOTLINE_CONFIG", "etc/hotline.yaml")
TABLE_COLUMNS = ("start_time", "uuid", "caller_number", "destination", "duration", "billsec",
                 "hangup_cause", "hangup_side", "queue", "agent")


def register(subparsers):
    parser = subparsers.add_parser("cdr", help="call detail records", description=__doc__)
    sub = parser.add_subparsers(dest="cdr_command", metavar="ACTION", required=True)
    lst = sub.add_parser("list", help="CDRs of calls started since a time, oldest first")
    lst.add_argument("--config", default=DEFAULT_CONFIG, help="settings file (default %(default)s)")
    lst.add_argument("--since", help="ISO time, e.g. 2026-11-22 or 2026-11-22T08:00:00+08:00 (naive = UTC)")
    lst.add_argument("--limit", type=int, help="at most this many")
    lst.add_argument("--provisional", action="store_true",
                     help="also calls still going (or cut by a crash and not yet completed): their "
                          "provisional CDRs, tagged provisional")
    fmt = lst.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON array with every field")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row and every field")
    lst.set_defaults(func=cmd_list)
    show = sub.add_parser("show", help="every field of one call's CDR")
    show.add_argument("uuid")
    show.add_argument("--config", default=DEFAULT_CONFIG, help="settings file (default %(default)s)")
    show.add_argument("--reveal", action="store_true",
                      help="callers' ID and card numbers in clear (needs HOTLINE_PII_KEY and --reason; audited)")
    show.add_argument("--reason", help="why the clear form is needed (recorded in the audit)")
    show.set_defaults(func=cmd_show)


def _open_store(args):
    from engine.cdr.store import CdrStore
    from engine.settings import SettingsError, load_settings
    try:
        settings = load_settings(args.config, env=SecretsNotNeeded(os.environ))
    except SettingsError as exc:
        print(f"hotline cdr: {exc}", file=sys.stderr)
        return None
    db = settings.database
    # Reading only: the CLI does not replay the spool (that is the engine's drainer's job).
    store = CdrStore(db.url, settings.paths.cdr_spool, retries=db.retries, busy_timeout=db.busy_timeout)
    store.open(drain=False)
    if store.db_down:
        print(f"hotline cdr: cannot open the CDR database {db.url} (see the error above)", file=sys.stderr)
        return None
    return store


def cmd_list(args):
    since = None
    if args.since:
        try:
            since = datetime.datetime.fromisoformat(args.since.replace("Z", "+00:00"))
        except ValueError:
            print(f"hotline cdr list: --since {args.since!r} is not an ISO date/time "
                  "(e.g. 2026-11-22 or 2026-11-22T08:00:00+08:00)", file=sys.stderr)
            return 2
    store = _open_store(args)
    if store is None:
        return 1
    try:
        rows = store.list(since=since, limit=args.limit, provisional=args.provisional)
        pending = store.pending()
    except DB_ERRORS as exc:
        print(f"hotline cdr list: reading the CDR database failed: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.json:
        json.dump([iso(r) for r in rows], sys.stdout, ensure_ascii=False, indent=1)
        print()
    elif args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(CDR_FIELDS) + ["created_at", "updated_at"])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _cell(v) for k, v in iso(r).items()})
    else:
        _print_table(rows)
    if pending:
        print(f"hotline cdr: {pending} CDR(s) wait in the spool {store.spool_dir} for the database",
              file=sys.stderr)
    return 0


def cmd_show(args):
    store = _open_store(args)
    if store is None:
        return 1
    try:
        row = _revealed(store, args) if args.reveal else store.get(args.uuid)
    except DB_ERRORS as exc:
        print(f"hotline cdr show: reading the CDR database failed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:              # no reason, no key, a wrong key, no audit possible
        from engine import privacy
        from engine.privacy.access import AccessRefused
        if not isinstance(exc, (AccessRefused, privacy.PrivacyError)):
            raise
        print(f"hotline cdr show: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if row is None:
        print(f"hotline cdr show: no CDR for call {args.uuid!r}", file=sys.stderr)
        return 1
    from engine import privacy
    if isinstance(row.get("extra"), dict):          # the sealed copy means nothing on a screen
        row = {**row, "extra": {k: v for k, v in row["extra"].items() if k != privacy.SEALED_KEY}}
    width = max(map(len, row))
    for key, value in iso(row).items():
        # Text with control characters is shown JSON-quoted: a caller name cannot fake lines.
        printable = isinstance(value, str) and value.isprintable()
        text = value if printable else json.dumps(value, ensure_ascii=False)
        print(f"{key:<{width}}  {text}")
    return 0


def _revealed(store, args):
    import getpass

    from engine.privacy.access import reveal_cdr
    return reveal_cdr(store, args.uuid, f"cli:{getpass.getuser()}", args.reason, via="cli")


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value


def _print_table(rows):
    if not rows:
        print("no CDRs")
        return
    # repr() for caller text: a hostile caller name must not be able to draw on the terminal.
    headers = ["start (UTC)" if c == "start_time" else c for c in TABLE_COLUMNS]
    print(table(headers, [[cell(r[c], limit=40) for c in TABLE_COLUMNS] for r in rows]))
