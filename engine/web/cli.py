"""`hotline users`: accounts of the web console (agents, supervisors, admins log in with them).

    hotline users passwd ID [--role agent|supervisor|admin] [--agent AGENT]   set (or create) a password
    hotline users list                                                        accounts and roles
    hotline users disable|enable ID                                           a disabled account cannot log in
The password is read from the terminal twice (or one line on stdin when it is not a terminal).
Changes are audited (table web_account_audit) as cli:<os user>.
"""
import datetime
import getpass
import json
import os
import sys

from engine.infra.clitext import add_option, clock_for, default_config, table



def register(subparsers):
    parser = subparsers.add_parser("users", help="web console accounts: passwords, roles", description=__doc__)
    sub = parser.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    p = sub.add_parser("passwd", help="set an account's password (creates it with --role)")
    p.add_argument("id")
    p.add_argument("--role", choices=("agent", "supervisor", "admin"),
                   help="for a new account (default: from the agents file, else required)")
    p.add_argument("--agent", help="the agent an agent account acts for (default: its id)")
    p.set_defaults(func=cmd_passwd)
    p = sub.add_parser("list", help="accounts")
    p.set_defaults(func=cmd_list)
    for action in ("disable", "enable"):
        p = sub.add_parser(action, help=f"{action} an account")
        p.add_argument("id")
        p.set_defaults(func=cmd_disable, disable=action == "disable")
    for p in sub.choices.values():
        add_option(p, "--config", default=default_config())
    add_option(sub.choices["list"], "--json")


def _accounts(args, create=False):
    """The accounts in the engine's database. Reading (list, disable, enable) never creates the
    database; `passwd` may (the first account is often set before the engine's first start)."""
    from engine.cdr.cli import _open_store
    from engine.web.accounts import Accounts
    if not create:
        store = _open_store(args)
        return None if store is None else Accounts(store)
    from engine.cdr.store import CdrStore
    from engine.infra import clitext
    try:
        settings = clitext.settings_for_reading(args.config)
    except clitext.Refused as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return None
    db = settings.database
    store = CdrStore(db.url, settings.paths.cdr_spool, retries=db.retries, busy_timeout=db.busy_timeout)
    store.open(drain=False)
    if store.db_down:
        print(f"hotline: cannot open the database {db.url} (see the error above)", file=sys.stderr)
        return None
    return Accounts(store)


def _actor():
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli:?"


def _read_password():
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def _role_from_agents(args, account_id):
    from engine.acd.config import load_acd
    from engine.infra.clitext import SecretsNotNeeded
    from engine.settings import load_settings
    try:
        settings = load_settings(args.config, env=SecretsNotNeeded(os.environ))
        config = load_acd(settings.files.agents, settings.files.queues)
    except Exception:
        return None
    agent = config.agents.get(account_id)
    return None if agent is None else ("supervisor" if agent.role == "supervisor" else "agent")


def cmd_passwd(args):
    from engine.web.accounts import AccountError
    accounts = _accounts(args, create=True)
    if accounts is None:
        return 1
    try:
        role = args.role
        if role is None and accounts.get(args.id) is None:
            role = _role_from_agents(args, args.id)
            if role is None:
                print(f"hotline users: {args.id} is not in the agents file: give --role", file=sys.stderr)
                return 2
        password = _read_password()
        account, created = accounts.set_password(args.id, password, _actor(), role=role, agent=args.agent)
        _end_sessions(args, args.id)
    except (AccountError, ValueError) as exc:
        print(f"hotline users: {exc}", file=sys.stderr)
        return 1
    finally:
        accounts.store.close()
    print(f"{account['id']}: {'created' if created else 'password set'} ({account['role']})")
    return 0


def _end_sessions(args, account_id):
    """A new password ends the account's sessions (Redis); best effort from the CLI."""
    try:
        from engine.infra.clitext import SecretsNotNeeded
        from engine.infra.redisconn import redis_client
        from engine.settings import load_settings
        from engine.web.sessions import Sessions
        s = load_settings(args.config, env=SecretsNotNeeded(os.environ))
        r = redis_client(s.redis.url, s.redis.sentinels, s.redis.master_name, s.redis.sentinel_password or None,
                         decode_responses=True, socket_connect_timeout=2, socket_timeout=5)
        Sessions(r, s.redis.prefix, 0, 0, clock=None).end_all(account_id)
    except Exception as exc:
        print(f"hotline users: sessions of {account_id} not ended ({exc}); they end when they expire",
              file=sys.stderr)


def cmd_list(args):
    accounts = _accounts(args)
    if accounts is None:
        return 1
    try:
        rows = accounts.list()
    finally:
        accounts.store.close()
    the_clock = clock_for(args.config)
    for r in rows:          # "...Z" (UTC) from the accounts -> the hotline's zone
        for key in ("created_at", "changed_at"):
            r[key] = datetime.datetime.fromisoformat(r[key].replace("Z", "+00:00"))
    if args.json:
        print(json.dumps(the_clock.jsonable(rows), ensure_ascii=False, indent=1))
        return 0
    print(table(["id", "role", "agent", "disabled", f"changed ({the_clock.name})"],
                [[r["id"], r["role"], r["agent"] or "", "yes" if r["disabled"] else "",
                  the_clock.text(r["changed_at"])] for r in rows]) if rows else "no accounts")
    return 0


def cmd_disable(args):
    from engine.web.accounts import AccountError
    accounts = _accounts(args)
    if accounts is None:
        return 1
    try:
        accounts.set_disabled(args.id, args.disable, _actor())
        if args.disable:
            _end_sessions(args, args.id)
    except AccountError as exc:
        print(f"hotline users: {exc}", file=sys.stderr)
        return 1
    finally:
        accounts.store.close()
    print(f"{args.id}: {'disabled' if args.disable else 'enabled'}")
    return 0
