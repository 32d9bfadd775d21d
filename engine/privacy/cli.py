"""`hotline privacy keygen|audit`: the key that seals callers' personal data, and who saw it."""
import json
import os
import sys

from engine.infra.clitext import add_option, clock_for, table


def register(subparsers):
    parser = subparsers.add_parser("privacy", help="callers' personal data: key, access audit",
                                   description=__doc__)
    sub = parser.add_subparsers(dest="privacy_command", metavar="ACTION", required=True)
    key = sub.add_parser("keygen", help="print a new key for HOTLINE_PII_KEY (keep it out of files)")
    key.set_defaults(func=cmd_keygen)
    audit = sub.add_parser("audit", help="who saw callers' personal data in clear, when and why")
    audit.add_argument("--call", metavar="UUID", help="one call's uuid")
    add_option(audit, "--config")
    add_option(audit, "--json")
    audit.set_defaults(func=cmd_audit)


def cmd_keygen(args):
    from engine import privacy
    print(privacy.new_key())
    print("hotline privacy: set it as HOTLINE_PII_KEY for the engine and for whoever may reveal; "
          "a lost key loses the clear copies for good", file=sys.stderr)
    return 0


def _open_store(config):
    """The CDR database, read only (the spool is the engine's to replay); CliError if it is not
    there or does not answer."""
    from engine.cdr.store import CdrStore
    from engine.infra.clitext import CliError, SecretsNotNeeded, default_config, need_database
    from engine.settings import load_settings
    settings = load_settings(config or default_config(), env=SecretsNotNeeded(os.environ))
    db = settings.database
    need_database(db.url)
    store = CdrStore(db.url, settings.paths.cdr_spool, retries=db.retries, busy_timeout=db.busy_timeout)
    store.open(drain=False)
    if store.db_down:
        store.close()
        raise CliError(f"cannot open the CDR database {db.url} (see the error above)")
    return store


def cmd_audit(args):
    from engine.privacy.access import audit_rows
    from engine.infra import clock
    store = _open_store(args.config)
    the_clock = clock_for(args.config)
    try:
        rows = audit_rows(store, call_uuid=args.call)
    finally:
        store.close()
    if args.json:
        json.dump([the_clock.jsonable(r) for r in rows], sys.stdout, ensure_ascii=False, indent=1)
        print()
    elif not rows:
        print("no access to personal data recorded")
    else:
        print(table([f"at ({the_clock.name})", "actor", "via", "call", "fields", "reason"],
                    [[the_clock.text(clock.utc(r["at"])), repr(r["actor"]), r["via"], r["call_uuid"],
                      ",".join(r["fields"] or []), repr(r["reason"])] for r in rows]))
    return 0
