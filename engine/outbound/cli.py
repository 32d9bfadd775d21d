"""`hotline lists ...`: the inbound blacklist, do-not-call (DNC) and dial-block lists.

    hotline lists show blacklist|dnc|block [--json]          entries with their hit counts
    hotline lists add blacklist 13800138000 --reason R [--action message|queue] [--expires 2027-01-01]
    hotline lists add dnc 13800138000 [--campaign C]          (no --campaign: every campaign)
    hotline lists add block 0755*                             a trailing * makes a prefix entry
    hotline lists remove blacklist|dnc|block NUMBER [--campaign C]
    hotline lists import blacklist|dnc|block FILE.csv         all rows or none; bad rows as FILE:LINE
    hotline lists export blacklist|dnc|block [--out FILE.csv]
    hotline lists check NUMBER [--campaign C]                 what each list says of a number

CSV columns: number,reason,expires,extra (extra: the blacklist action, or the DNC campaign).
The engine reads the lists again every outbound_calls.lists_reload_seconds (30 s by default).
"""
import csv
import getpass
import json
import os
import sys

from engine.infra.clitext import SecretsNotNeeded, cell, iso, table

DEFAULT_CONFIG = os.environ.get("HOTLINE_CONFIG", "etc/hotline.yaml")
KINDS = ("blacklist", "dnc", "block")


def register(subparsers):
    import argparse
    parser = subparsers.add_parser("lists", help="blacklist, do-not-call and dial-block lists",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="lists_command", metavar="ACTION", required=True)

    def action(name, func, help_text, number=False):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("kind", choices=KINDS)
        if number:
            p.add_argument("number", help="a number, or digits then * for a prefix (0755*)")
        p.add_argument("--config", default=DEFAULT_CONFIG, help="settings file (default %(default)s)")
        p.add_argument("--json", action="store_true", help="JSON output")
        p.set_defaults(func=func)
        return p

    action("show", cmd_show, "the entries of a list, with hits")
    add = action("add", cmd_add, "add an entry (or change it)", number=True)
    add.add_argument("--reason", default="")
    add.add_argument("--action", choices=("message", "queue"), help="blacklist: message then hang up (default), "
                     "or the low-priority queue")
    add.add_argument("--campaign", default="", help="dnc: only for this campaign")
    add.add_argument("--expires", help="YYYY-MM-DD: the entry stops applying then")
    add.add_argument("--by", default=_user(), help="who adds it (default %(default)s)")
    rm = action("remove", cmd_remove, "remove an entry", number=True)
    rm.add_argument("--campaign", default="")
    imp = action("import", cmd_import, "add every row of a CSV file (or none)")
    imp.add_argument("file")
    imp.add_argument("--by", default=_user())
    exp = action("export", cmd_export, "write a list as CSV")
    exp.add_argument("--out", help="file (default: standard output)")
    chk = sub.add_parser("check", help="what the lists and the dial-block settings say of a number")
    chk.add_argument("number")
    chk.add_argument("--campaign", default="")
    chk.add_argument("--config", default=DEFAULT_CONFIG, help="settings file (default %(default)s)")
    chk.add_argument("--json", action="store_true", help="JSON output")
    chk.set_defaults(func=cmd_check, lists_command="check")


def _user():
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def _run(args, work):
    """Open the lists, run work(lists, settings) -> exit code; refusals and database trouble are one clear
    line (or one line per bad row) on stderr, never a traceback."""
    import peewee
    from engine.outbound.lists import ListError, NumberLists
    from engine.settings import SettingsError, load_settings
    name = f"hotline lists {args.lists_command}"
    try:
        settings = load_settings(args.config, env=SecretsNotNeeded(os.environ))
    except SettingsError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    try:
        lists = NumberLists(settings.database.url).open()
    except Exception as exc:        # noqa: BLE001 - any driver trouble: say it, exit 1
        print(f"{name}: cannot open the database: {exc}", file=sys.stderr)
        return 1
    try:
        return work(lists, settings)
    except ListError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except peewee.DatabaseError as exc:
        print(f"{name}: database error: {exc}", file=sys.stderr)
        return 1
    finally:
        lists.close()


def _say(args, data, text):
    if args.json:
        json.dump(data, sys.stdout, ensure_ascii=False, indent=1, default=str)
        print()
    else:
        print(text)


def _public(entry):
    return iso({k: v for k, v in entry.items() if k not in ("expires_at", "digits")})


def cmd_show(args):
    def work(lists, settings):
        rows = lists.entries(args.kind)
        if args.json:
            _say(args, [_public(r) for r in rows], "")
            return 0
        extra = "action" if args.kind == "blacklist" else "campaign"
        print(table(("number", extra, "reason", "expires", "hits", "last hit", "added by"),
                    [(cell(r["number"]), cell(r[extra] or ("" if args.kind != "dnc" else "(all)")),
                      cell(r["reason"], 40), cell(r["expires"]), r["hits"], cell(r["last_hit"]),
                      cell(r["added_by"])) for r in rows]))
        print(f"{len(rows)} entr{'y' if len(rows) == 1 else 'ies'}")
        if args.kind == "block":
            block = settings.outbound_calls.dial_block
            print("and from the settings (outbound_calls.dial_block): "
                  f"prefixes {', '.join(block.prefixes) or '-'}; exact {', '.join(block.exact) or '-'}; "
                  f"allowed for transfers {', '.join(block.transfer_allow) or '-'}")
        return 0
    return _run(args, work)


def cmd_add(args):
    def work(lists, settings):
        entry = lists.add(args.kind, args.number, reason=args.reason, added_by=args.by,
                          action=args.action, campaign=args.campaign, expires=args.expires)
        _say(args, _public(entry), f"{args.kind}: {entry['number']} added")
        return 0
    return _run(args, work)


def cmd_remove(args):
    def work(lists, settings):
        if not lists.remove(args.kind, args.number, campaign=args.campaign):
            print(f"hotline lists remove: {args.number} is not on the {args.kind} list", file=sys.stderr)
            return 1
        _say(args, {"removed": args.number}, f"{args.kind}: {args.number} removed")
        return 0
    return _run(args, work)


def cmd_import(args):
    def work(lists, settings):
        count = lists.import_file(args.kind, args.file, added_by=args.by)
        _say(args, {"imported": count}, f"{args.kind}: {count} entries imported from {args.file}")
        return 0
    return _run(args, work)


def cmd_export(args):
    def work(lists, settings):
        rows = lists.export_rows(args.kind)
        if args.out:
            with open(args.out, "w", encoding="utf-8", newline="") as f:
                csv.writer(f).writerows(rows)
            print(f"{args.kind}: {len(rows) - 1} entries written to {args.out}", file=sys.stderr)
        else:
            csv.writer(sys.stdout).writerows(rows)
        return 0
    return _run(args, work)


def cmd_check(args):
    from engine.outbound.dialblock import DialBlock
    from engine.outbound.numbers import InvalidNumber, normalise

    def work(lists, settings):
        lists.reload()
        try:
            national = normalise(args.number, settings.outbound_calls.area_code).national
        except InvalidNumber as exc:
            national, invalid = None, str(exc)
        else:
            invalid = None
        block = DialBlock(settings.outbound_calls.dial_block, lists)
        hit = lists.blacklist_entry(args.number)
        found = {
            "number": national, "invalid": invalid,
            "blacklist": {"entry": hit["number"], "action": hit["action"], "reason": hit["reason"]} if hit else None,
            "dnc": lists.is_dnc(args.number, args.campaign) if national else False,
            "blocked_outbound": block.refuses(national or args.number, "outbound"),
            "blocked_transfer": block.refuses(national or args.number, "transfer"),
        }
        listed = "no"
        if hit:
            listed = f"{hit['number']} -> {hit['action']}" + (f" ({hit['reason']})" if hit["reason"] else "")
        campaign = f" (campaign {args.campaign})" if args.campaign else ""
        text = "\n".join([
            f"number:            {national or '-'}" + (f"  (invalid: {invalid})" if invalid else ""),
            f"inbound blacklist: {listed}",
            f"do-not-call:       {'yes' if found['dnc'] else 'no'}{campaign}",
            f"dial out:          {found['blocked_outbound'] or 'allowed'}",
            f"transfer to:       {found['blocked_transfer'] or 'allowed'}"])
        _say(args, found, text)
        return 0
    return _run(args, work)
