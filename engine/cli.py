"""The `hotline` command line.

Each feature package owns its sub-commands in a module with `register(subparsers)`; this file only
lists those modules, so adding a command never touches another feature's code.
"""
import argparse
import importlib
import sys

# Modules that contribute sub-commands, in the order `hotline --help` shows them.
COMMAND_MODULES = [
    "engine.daemon",
    "engine.demo",
    "engine.sim.cli",
    "engine.cdr.cli",
    "engine.fsconf.render",
    "engine.ivr.cli",
    "engine.control.cli",
    "engine.media.reccli",
    "engine.bot.cli",
    "engine.tickets.cli",
    "engine.cdr.report",
    "engine.privacy.cli",
    "engine.install.cli",
    "engine.outbound.cli",
    "engine.web.cli",
    "engine.outbound.jobcli",
]


def build_parser():
    parser = argparse.ArgumentParser(prog="hotline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


# Errors a command raises for a reason the user can act on: `hotline: error: ...`, exit 1 (or the
# error's own `status`). Named by module so `hotline --help` does not import every feature.
KNOWN_ERRORS = [
    ("engine.infra.clitext", "CliError"),
    ("engine.settings", "SettingsError"),         # also the agents', queues' and tickets' files
    ("engine.control.client", "ApiError"),
    ("engine.sim.scenario", "ScenarioError"),
    ("engine.ivr.loader", "FlowError"),
    ("engine.bot.botfile", "BotError"),
    ("engine.media.archive", "RecordingError"),
    ("engine.tickets.store", "TicketError"),
    ("engine.privacy", "PrivacyError"),
    ("engine.fsconf.render", "FsConfigError"),
    ("engine.cdr.xmlcdr", "XmlCdrError"),
    ("engine.infra.localredis", "RedisStartError"),
    ("peewee", "DatabaseError"),                   # a database that is missing, locked or refuses
    ("redis", "RedisError"),
]


def _known_errors():
    found = [OSError]
    for module, name in KNOWN_ERRORS:
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def error(message, status=1):
    """Print `hotline: error: <message>` (every line of it so prefixed, control characters escaped:
    nothing from outside starts a line) and return the exit status."""
    from engine.infra.clitext import escaped
    for line in str(message).splitlines() or [""]:
        print(f"hotline: error: {escaped(line)}", file=sys.stderr)
    return status


def _os_error_text(exc):
    # "[Errno 2] No such file or directory: 'x'" -> "x: No such file or directory"
    if isinstance(exc, OSError) and exc.strerror:
        where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
        return f"{where}: {exc.strerror}" if where else exc.strerror
    return str(exc) or type(exc).__name__


def _bug(exc):
    """An exception nobody expected: one line that says it is a bug and where its traceback is.
    HOTLINE_DEBUG=1 prints the traceback itself."""
    import os
    import tempfile
    import time
    import traceback
    trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if os.environ.get("HOTLINE_DEBUG") == "1":
        sys.stderr.write(trace)
        return 1
    where = "(not written)"
    try:
        fd, where = tempfile.mkstemp(prefix=time.strftime("hotline-error-%Y%m%d-%H%M%S-"), suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"hotline {' '.join(sys.argv[1:])}\n{trace}")
    except OSError:
        pass
    return error(f"internal error (a bug, please report it): {type(exc).__name__}: {exc}; "
                 f"traceback in {where} (HOTLINE_DEBUG=1 prints it here)")


def main(argv=None):
    # Every command runs on gevent (the daemon, the simulator, the demo); patch before any
    # feature module imports socket, ssl, threading or subprocess.
    from gevent import monkey
    monkey.patch_all()
    parser = build_parser()
    args = parser.parse_args(argv)          # --help and usage errors: SystemExit(0 / 2), as argparse does
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `hotline cdr list | head`: the reader left; stop quietly like other Unix tools.
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as exc:
        if not isinstance(exc, _known_errors()):
            return _bug(exc)
        status = getattr(exc, "status", 1)
        return error(_os_error_text(exc) if isinstance(exc, OSError) else str(exc), 2 if status == 2 else 1)


if __name__ == "__main__":
    sys.exit(main())
