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
    "engine.outbound.cli",
    "engine.outbound.jobcli",
]


def build_parser():
    parser = argparse.ArgumentParser(prog="hotline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None):
    # Every command runs on gevent (the daemon, the simulator, the demo); patch before any
    # feature module imports socket, ssl, threading or subprocess.
    from gevent import monkey
    monkey.patch_all()
    parser = build_parser()
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
