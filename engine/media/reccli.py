"""`hotline recordings list|show|export|listen|verify|reindex|purge|hold`: the recordings archive and its index.

Exit codes: 0 fine, 1 a problem found or an operation refused (verify: any mismatch, missing
file or archive file without an index row), 2 bad arguments.
"""
import datetime
import getpass
import json
import os
import sys
from pathlib import Path

from engine.infra.clitext import SecretsNotNeeded, iso, quoted, table
from engine.esl.commands import CommandError

DEFAULT_CONFIG = os.environ.get("HOTLINE_CONFIG", "etc/hotline.yaml")
TABLE_COLUMNS = ("recorded_at", "call_uuid", "state", "seconds", "channels", "format", "bytes", "legal_hold")


def register(subparsers):
    parser = subparsers.add_parser("recordings", help="call recordings archive", description=__doc__)
    sub = parser.add_subparsers(dest="recordings_command", metavar="ACTION", required=True)

    def action(name, help_text, func):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", default=DEFAULT_CONFIG, help="settings file (default %(default)s)")
        p.set_defaults(func=func)
        return p

    lst = action("list", "indexed recordings, oldest first", cmd_list)
    lst.add_argument("--date", help="only recordings of this UTC day (YYYY-MM-DD)")
    lst.add_argument("--state", choices=("archived", "suspect", "purged"))
    lst.add_argument("--json", action="store_true", help="one JSON array with every field")
    show = action("show", "every field of one call's recording, its CDR link and audit trail", cmd_show)
    show.add_argument("uuid")
    exp = action("export", "copy a recording out after checking its checksum (audited)", cmd_export)
    exp.add_argument("uuid")
    exp.add_argument("--out", required=True, help="file to write (must not exist)")
    exp.add_argument("--part", type=int, default=1, help="a later recording of the same call (default 1)")
    lis = action("listen", "write a recording to stdout for a player, e.g. `| ffplay -nodisp -` "
                           "(checked, audited)", cmd_listen)
    lis.add_argument("uuid")
    lis.add_argument("--part", type=int, default=1, help="a later recording of the same call (default 1)")
    lis.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
    action("verify", "recompute every checksum, find archive files the index does not know; exit 1 "
                     "on any mismatch, missing or unindexed file", cmd_verify)
    action("reindex", "index archive files the index does not know (after a database failure)",
           cmd_reindex)
    purge = action("purge", "remove recordings older than the retention period (audited)", cmd_purge)
    purge.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")
    hold = action("hold", "put a recording on legal hold (no purge) or --release it", cmd_hold)
    hold.add_argument("uuid")
    hold.add_argument("--release", action="store_true")
    hold.add_argument("--reason", help="recorded in the audit trail")


def _open(args, name):
    from engine.media.recordings import Archiver
    from engine.settings import SettingsError, load_settings
    try:
        settings = load_settings(args.config, env=SecretsNotNeeded(os.environ))
        return Archiver(settings).open()
    except (SettingsError, ValueError) as exc:
        print(f"hotline recordings {name}: {exc}", file=sys.stderr)
    except Exception as exc:        # noqa: BLE001 - the database driver's own errors
        print(f"hotline recordings {name}: cannot open the database: {exc}", file=sys.stderr)
    return None


def _actor():
    try:
        return getpass.getuser()
    except Exception:               # noqa: BLE001 - no user name in a container: say so
        return f"uid {os.getuid()}"


def _with_archive(args, name, work, refused=()):
    """Open the archive, run work(archiver) -> exit code, close it. `refused`: the errors that
    mean the operation was refused (unknown call, unsafe path...): one line on stderr, exit 1."""
    arch = _open(args, name)
    if arch is None:
        return 1
    try:
        return work(arch)
    except refused as exc:
        print(f"hotline recordings {name}: {exc.args[0] if isinstance(exc, KeyError) else exc}", file=sys.stderr)
        return 1
    finally:
        arch.close()


def cmd_list(args):
    day = None
    if args.date:
        try:
            day = datetime.date.fromisoformat(args.date)
        except ValueError:
            print(f"hotline recordings list: --date {args.date!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
            return 2

    def work(arch):
        rows = arch.list(day=day, state=args.state)
        if args.json:
            json.dump([iso(r) for r in rows], sys.stdout, ensure_ascii=False, indent=1)
            print()
        elif not rows:
            print("no recordings")
        else:
            print(table(TABLE_COLUMNS, [[quoted(r[c]) for c in TABLE_COLUMNS] for r in rows]))
        return 0
    return _with_archive(args, "list", work)


def cmd_show(args):
    from engine.cdr.models import Cdr

    def work(arch):
        row = arch.get(args.uuid)
        if row is None:
            print(f"hotline recordings show: no recording indexed for call {args.uuid!r}", file=sys.stderr)
            return 1
        trail = arch.audit_trail(args.uuid)
        try:
            with arch.db.bind_ctx([Cdr]):
                cdr = Cdr.get_or_none(Cdr.uuid == args.uuid)
        except Exception:           # noqa: BLE001 - no CDR table yet: no link to show
            cdr = None
        row = iso(row)
        row["cdr"] = (f"{cdr.start_time:%Y-%m-%d %H:%M:%S} {cdr.caller_number!r} -> {cdr.destination!r}, "
                      f"queue {cdr.queue!r}, agent {cdr.agent!r}" if cdr else "(no CDR with this call uuid)")
        width = max(map(len, row))
        for key, value in row.items():
            print(f"{key:<{width}}  {quoted(value)}")
        for a in trail:
            print(f"audit  {a['at']:%Y-%m-%d %H:%M:%S}  {a['action']:<8} by {a['actor']}  "
                  f"{json.dumps(a['detail'], ensure_ascii=False)}")
        return 0
    return _with_archive(args, "show", work)


def cmd_export(args):
    def work(arch):
        out = arch.export(args.uuid, Path(args.out), actor=_actor(), part=args.part)
        print(f"exported {out}")
        return 0
    return _with_archive(args, "export", work, refused=(KeyError, ValueError, OSError, CommandError))


def cmd_listen(args):
    def work(arch):
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
    def work(arch):
        report = arch.verify()
        problems = 0
        for label, keys in (("MISMATCH", ("mismatch", "index_mismatch")),
                            ("MISSING", ("missing", "index_missing")),
                            ("NOINDEX", ("not_indexed",)), ("UNINDEXED", ("unindexed",))):
            for path in sorted({p for k in keys for p in report[k]}):
                print(f"{label:<9} {path}")
                problems += label != "UNINDEXED"
        print(f"{len(report['ok'])} recording(s) verified, {problems} problem(s), "
              f"{len(report['unindexed'])} file(s) without a checksum")
        return 1 if problems else 0
    return _with_archive(args, "verify", work)


def cmd_reindex(args):
    def work(arch):
        rows = arch.reindex()
        for row in rows:
            print(f"indexed {row['call_uuid']}  {row['path']}")
        print(f"{len(rows)} recording(s) indexed")
        return 0
    return _with_archive(args, "reindex", work)


def cmd_purge(args):
    def work(arch):
        gone = arch.purge(dry_run=args.dry_run, actor=_actor())
        verb = "would purge" if args.dry_run else "purged"
        for g in gone:
            print(f"{verb} {g['call_uuid']}  {g['day']}  {g['path']}")
        print(f"{len(gone)} recording(s) {verb} (retention {arch.config.retention_months} months; "
              "legal holds kept)")
        return 0
    return _with_archive(args, "purge", work)


def cmd_hold(args):
    def work(arch):
        row = arch.hold(args.uuid, release=args.release, actor=_actor(), reason=args.reason)
        print(f"{row['call_uuid']}: legal hold {'on' if row['legal_hold'] else 'released'}")
        return 0
    return _with_archive(args, "hold", work, refused=(KeyError, ValueError, CommandError))
