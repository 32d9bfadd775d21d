"""`hotline recordings list|show|export|listen|verify|reindex|purge|hold`: the recordings archive and its index.

Exit codes: 0 fine, 1 a problem found or an operation refused (verify: any mismatch, missing
file or archive file without an index row), 2 bad arguments. Times are shown in the hotline's time
zone (setting `timezone`); list and show only read (they never create the database).
"""
import getpass
import json
import os
import sys
from pathlib import Path

from engine.infra import clitext
from engine.infra.clitext import SecretsNotNeeded, quoted, table
from engine.esl.commands import CommandError

TABLE_COLUMNS = ("recorded_at", "call_uuid", "state", "seconds", "channels", "format", "bytes", "legal_hold")


def register(subparsers):
    parser = subparsers.add_parser("recordings", help="call recordings archive", description=__doc__)
    sub = parser.add_subparsers(dest="recordings_command", metavar="ACTION", required=True)

    def action(name, help_text, func):
        p = sub.add_parser(name, help=help_text)
        clitext.add_config(p)
        p.set_defaults(func=func)
        return p

    lst = action("list", "indexed recordings, oldest first", cmd_list)
    clitext.add_day(lst, "only recordings made on DAY")
    lst.add_argument("--state", choices=("archived", "suspect", "purged"))
    clitext.add_limit(lst)
    clitext.add_json(lst)
    show = action("show", "every field of one call's recording, its CDR link and audit trail", cmd_show)
    show.add_argument("uuid")
    clitext.add_json(show, "one JSON object with every field, the CDR link and the audit trail")
    exp = action("export", "copy a recording out after checking its checksum (audited)", cmd_export)
    exp.add_argument("uuid")
    exp.add_argument("--out", required=True, help="file to write (must not exist)")
    exp.add_argument("--part", type=int, default=1, help="a later recording of the same call (default 1)")
    clitext.add_json(exp, "one JSON object: the call and the file written")
    lis = action("listen", "write a recording to stdout for a player, e.g. `| ffplay -nodisp -` "
                           "(checked, audited)", cmd_listen)
    lis.add_argument("uuid")
    lis.add_argument("--part", type=int, default=1, help="a later recording of the same call (default 1)")
    lis.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    verify = action("verify", "recompute every checksum, find archive files the index does not know; "
                              "exit 1 on any mismatch, missing or unindexed file", cmd_verify)
    clitext.add_json(verify, "one JSON object: the files by problem and the counts")
    reindex = action("reindex", "index archive files the index does not know (after a database failure)",
                     cmd_reindex)
    clitext.add_json(reindex, "one JSON array of the rows indexed")
    purge = action("purge", "remove recordings older than the retention period (audited)", cmd_purge)
    purge.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")
    clitext.add_json(purge, "one JSON object with what went (or would go)")
    hold = action("hold", "put a recording on legal hold (no purge) or --release it", cmd_hold)
    hold.add_argument("uuid")
    hold.add_argument("--release", action="store_true")
    hold.add_argument("--reason", help="recorded in the audit trail")
    clitext.add_json(hold, "one JSON object: the recording's row")


def _open(args, name, create=False):
    """(Archiver, Clock), or None after saying why. Only reindex (rebuilding a lost index) may
    start on a database that is not there; every other action needs the engine's."""
    from engine.cdr.reading import NoDatabase, open_readonly
    from engine.infra.clock import for_settings
    from engine.media.recordings import Archiver
    from engine.settings import SettingsError, load_settings
    try:
        settings = load_settings(args.config, env=SecretsNotNeeded(os.environ))
        if not create:
            open_readonly(settings.database.url).close()
        return Archiver(settings).open(), for_settings(settings)
    except NoDatabase as exc:
        print(f"hotline recordings {name}: {exc}", file=sys.stderr)
    except (SettingsError, ValueError) as exc:
        print(f"hotline recordings {name}: {exc}", file=sys.stderr)
    except Exception as exc:        # noqa: BLE001 - the database driver's own errors
        print(f"hotline recordings {name}: cannot open the database: {exc}", file=sys.stderr)
    return None


def _reading(args, name, work):
    """work(clock) -> exit code with the recording tables (and Cdr) bound read-only; problems are
    one line on stderr (exit 2 for bad input, 1 otherwise)."""
    import peewee

    from engine.cdr.models import Cdr
    from engine.cdr.reading import NoDatabase, missing_table, open_readonly
    from engine.infra.clock import TimeInputError, for_settings
    from engine.media.recordings import RECORDING_MODELS
    try:
        settings = clitext.settings_for_reading(args.config)
        db = open_readonly(settings.database.url, RECORDING_MODELS + [Cdr])
        try:
            return work(for_settings(settings))
        finally:
            db.close()
    except clitext.Refused as exc:
        problem, code = str(exc), exc.code
    except TimeInputError as exc:
        problem, code = str(exc), 2
    except NoDatabase as exc:
        problem, code = str(exc), 1
    except peewee.DatabaseError as exc:
        problem = "the database has no recordings index yet (has the engine run?)" if missing_table(exc) else \
            f"reading the database failed: {exc}"
        code = 1
    print(f"hotline recordings {name}: {problem}", file=sys.stderr)
    return code


def _actor():
    try:
        return getpass.getuser()
    except Exception:               # noqa: BLE001 - no user name in a container: say so
        return f"uid {os.getuid()}"


def _with_archive(args, name, work, refused=(), create=False):
    """Open the archive, run work(archiver, clock) -> exit code, close it. `refused`: the errors
    that mean the operation was refused (unknown call, unsafe path...): one line on stderr, exit 1."""
    opened = _open(args, name, create)
    if opened is None:
        return 1
    arch, clock = opened
    try:
        return work(arch, clock)
    except refused as exc:
        print(f"hotline recordings {name}: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 1
    finally:
        arch.close()


def cmd_list(args):
    from engine.media.recordings import Recording, _row_dict

    def work(clock):
        query = Recording.select().order_by(Recording.recorded_at, Recording.id)
        if args.date:
            start, end = clock.day_bounds(clock.parse_day(args.date, "--date"))
            query = query.where((Recording.recorded_at >= start) & (Recording.recorded_at < end))
        if args.state:
            query = query.where(Recording.state == args.state)
        if args.limit:
            query = query.limit(args.limit)
        rows = [_row_dict(r) for r in query]
        if args.json:
            json.dump([clock.jsonable(r) for r in rows], sys.stdout, ensure_ascii=False, indent=1)
            print()
        elif not rows:
            print("no recordings")
        else:
            headers = [f"recorded ({clock.name})" if c == "recorded_at" else c for c in TABLE_COLUMNS]
            print(table(headers, [[quoted(clock.local(r[c]) if c == "recorded_at" else r[c])
                                   for c in TABLE_COLUMNS] for r in rows]))
        return 0
    return _reading(args, "list", work)


def cmd_show(args):
    from engine.cdr.models import Cdr
    from engine.cdr.rows import as_dict
    from engine.media.recordings import Recording, RecordingAudit, _row_dict

    def work(clock):
        rec = Recording.get_or_none(Recording.call_uuid == args.uuid)
        if rec is None:
            raise clitext.Refused(f"no recording indexed for call {args.uuid!r}")
        row = _row_dict(rec)
        trail = [{"at": a.at, "action": a.action, "actor": a.actor, "detail": a.detail}
                 for a in RecordingAudit.select().where(RecordingAudit.call_uuid == args.uuid)
                 .order_by(RecordingAudit.id)]
        try:
            found = Cdr.get_or_none(Cdr.uuid == args.uuid)
            cdr = as_dict(found) if found else None
        except Exception:           # noqa: BLE001 - no CDR table: no link to show
            cdr = None
        if args.json:
            link = {k: cdr[k] for k in CDR_LINK} if cdr else None
            print(json.dumps(clock.jsonable({**row, "cdr": link, "audit": trail}), ensure_ascii=False, indent=1))
            return 0
        print(_block(clock, row, cdr, trail))
        return 0
    return _reading(args, "show", work)


CDR_LINK = ("start_time", "caller_number", "destination", "queue", "agent")


def _block(clock, row, cdr, trail):
    """label: value lines; times in the hotline's zone; text from outside JSON-quoted when it holds
    control characters (a caller number cannot fake lines)."""
    lines = []
    labels = [(k.replace("_", " "), v) for k, v in row.items()]
    if cdr:
        link = (f"{clock.text(cdr['start_time'])} {quoted(cdr['caller_number'])} -> {quoted(cdr['destination'])}, "
                f"queue {quoted(cdr['queue'])}, agent {quoted(cdr['agent'])}")
    else:
        link = "(no CDR with this call uuid)"
    labels.append(("cdr", link))
    width = max(len(k) for k, _ in labels) + 1
    for key, value in labels:
        if hasattr(value, "strftime"):
            text = clock.text(value)
        elif isinstance(value, (list, dict)):
            text = json.dumps(clock.jsonable(value), ensure_ascii=False) if value else "-"
        else:
            text = value if key == "cdr" else quoted(value)
        lines.append(f"{key + ':':<{width}} {text}")
    lines.append(f"audit ({clock.name}):" if trail else "audit: -")
    for a in trail:
        lines.append(f"  {clock.text(a['at'])}  {a['action']:<8} by {quoted(a['actor'])}  "
                     f"{json.dumps(clock.jsonable(a['detail']), ensure_ascii=False)}")
    return "\n".join(lines)


def cmd_export(args):
    def work(arch, clock):
        out = arch.export(args.uuid, Path(args.out), actor=_actor(), part=args.part)
        if args.json:
            _json({"call_uuid": args.uuid, "part": args.part, "path": str(out)})
        else:
            print(f"exported {out}")
        return 0
    return _with_archive(args, "export", work, refused=(KeyError, ValueError, OSError, CommandError))


def cmd_listen(args):
    def work(arch, clock):
        if sys.stdout.isatty():
            print("hotline recordings listen: stdout is a terminal; pipe it into a player "
                  "(| ffplay -nodisp -autoexit -)", file=sys.stderr)
            return 2
        data = arch.listen(args.uuid, actor=_actor(), part=args.part, reason=args.reason)
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    return _with_archive(args, "listen", work, refused=(KeyError, ValueError, OSError, CommandError))


def cmd_verify(args):
    def work(arch, clock):
        report = arch.verify()
        found = {label.lower(): sorted({str(p) for k in keys for p in report[k]})
                 for label, keys in VERIFY_LABELS}
        problems = sum(len(v) for k, v in found.items() if k != "unindexed")
        if args.json:
            _json({"verified": len(report["ok"]), "problems": problems, **found})
            return 1 if problems else 0
        for label, _ in VERIFY_LABELS:
            for path in found[label.lower()]:
                print(f"{label:<9} {path}")
        print(f"{len(report['ok'])} recording(s) verified, {problems} problem(s), "
              f"{len(report['unindexed'])} file(s) without a checksum")
        return 1 if problems else 0
    return _with_archive(args, "verify", work)


VERIFY_LABELS = (("MISMATCH", ("mismatch", "index_mismatch")), ("MISSING", ("missing", "index_missing")),
                 ("NOINDEX", ("not_indexed",)), ("UNINDEXED", ("unindexed",)))


def _json(value):
    print(json.dumps(value, ensure_ascii=False, indent=1, default=str))


def cmd_reindex(args):
    def work(arch, clock):
        rows = arch.reindex()
        if args.json:
            _json([clock.jsonable(r) for r in rows])
            return 0
        for row in rows:
            print(f"indexed {row['call_uuid']}  {row['path']}")
        print(f"{len(rows)} recording(s) indexed")
        return 0
    return _with_archive(args, "reindex", work, create=True)


def cmd_purge(args):
    def work(arch, clock):
        gone = arch.purge(dry_run=args.dry_run, actor=_actor())
        if args.json:
            _json({"dry_run": args.dry_run, "retention_months": arch.config.retention_months,
                   "recordings": clock.jsonable(gone)})
            return 0
        verb = "would purge" if args.dry_run else "purged"
        for g in gone:
            print(f"{verb} {g['call_uuid']}  {g['day']}  {g['path']}")
        print(f"{len(gone)} recording(s) {verb} (retention {arch.config.retention_months} months; "
              "legal holds kept)")
        return 0
    return _with_archive(args, "purge", work)


def cmd_hold(args):
    def work(arch, clock):
        row = arch.hold(args.uuid, release=args.release, actor=_actor(), reason=args.reason)
        if args.json:
            _json(clock.jsonable(row))
            return 0
        print(f"{row['call_uuid']}: legal hold {'on' if row['legal_hold'] else 'released'}")
        return 0
    return _with_archive(args, "hold", work, refused=(KeyError, ValueError, CommandError))
