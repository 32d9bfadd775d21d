"""hotline bot chat|misses|lint: try a bot by typing, review what it could not answer, check files.

`chat` reads lines from stdin: text is what the caller says, `#123` keys DTMF (`#123#` ends with
the pound key), an empty line is silence; it prints what the bot says and its decisions, and stops
at the bot's exit (human / done / error) or at end of input.
"""
import json
import os
import pathlib
import sys

from engine.infra.clitext import escaped


def register(subparsers):
    from engine.infra.clitext import add_option
    bot = subparsers.add_parser("bot", help="voice bots: chat with one by typing, misses, lint")
    sub = bot.add_subparsers(dest="bot_command", metavar="ACTION", required=True)
    p = sub.add_parser("chat", help="talk to a bot by typing: text, #digits for keys, empty line = silence")
    p.add_argument("botfile", metavar="BOTFILE", help="the bot's YAML file")
    p.add_argument("--explain", action="store_true", help="show the closest entries and scores for each text")
    p.add_argument("--transcript", action="store_true", help="print the transcript as JSON at the end")
    p.add_argument("--misses-dir", metavar="DIR", help="log unanswered questions here (default: not logged)")
    p.set_defaults(func=cmd_chat)
    p = sub.add_parser("misses", help="questions bots could not answer, grouped by similarity, biggest groups first")
    p.add_argument("--dir", metavar="DIR", help="default <var_dir>/bot_misses from --config")
    add_option(p, "--config")
    p.add_argument("--bot", metavar="NAME", help="only this bot's misses (its name)")
    p.add_argument("--similarity", type=_fraction, default=0.5, metavar="0-1",
                   help="how alike questions of one group are (default %(default)s)")
    p.add_argument("--top", type=_count, default=0, metavar="N", help="show only the N biggest groups")
    add_option(p, "--json")
    p.set_defaults(func=cmd_misses)
    p = sub.add_parser("lint", help="check bot files; prints file:line:column: problem, exit 1 on problems")
    p.add_argument("paths", nargs="+", metavar="PATH", help="bot files or directories of them")
    add_option(p, "--json")
    p.set_defaults(func=cmd_lint)


def _fraction(text):
    import argparse
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"between 0 and 1, not {text}")
    return value


def _count(text):
    import argparse
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"a whole number 0 or more, not {text!r}")
    return int(text)


def _bot_files(paths):
    out = []
    for path in map(pathlib.Path, paths):
        out.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    return out


def cmd_lint(args):
    from engine.infra.clitext import CliError
    from .botfile import check_bot, self_check
    problems, warnings = [], []
    files = _bot_files(args.paths)
    if not files:
        raise CliError(f"no bot files (*.yaml) in {', '.join(args.paths)}")
    for path in files:
        bot, found = check_bot(path)
        problems.extend(found)
        if bot is not None:
            warnings.extend(self_check(bot))
    if args.json:
        print(json.dumps({"problems": [str(p) for p in problems], "warnings": [str(w) for w in warnings]},
                         ensure_ascii=False, indent=1))
        return 1 if problems else 0
    for line in problems + warnings:
        print(escaped(line))            # a file name with a newline must not fake a line
    if not problems:
        print("ok" if not warnings else f"ok ({len(warnings)} warning(s))")
    return 1 if problems else 0


def cmd_chat(args):
    from .botfile import check_bot
    from .dialogue import Dialogue
    bot, problems = check_bot(args.botfile)
    if problems:
        for line in problems:
            print(escaped(line), file=sys.stderr)
        return 1
    dialogue = Dialogue(bot, misses_dir=args.misses_dir, call_uuid="chat")
    prompt = sys.stdin.isatty()
    turn = dialogue.start()
    _show(turn)
    while not turn.exit:
        if prompt:
            print("you> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            print("(end of input)")
            break
        line = line.rstrip("\n").strip()
        if line.startswith("#") and len(line) > 1:
            keys = line[1:]
            bad = [k for k in keys if k not in "0123456789*#"]
            if bad:
                print(f"(not keys: {''.join(bad)!r}; keys are 0-9 * #)")
                continue
            turn = dialogue.on_dtmf(keys)
        elif not line:
            turn = dialogue.on_silence()
        else:
            if args.explain:
                _explain(bot, line)
            turn = dialogue.on_text(line, None)
        _show(turn)
    if args.transcript:
        print(json.dumps(turn.transcript, ensure_ascii=False, indent=1))
    return 0


def _show(turn):
    for text in turn.say:
        print(f"bot: {text}")
    listen = "free-form" if turn.listen is None else "grammar " + "/".join(turn.listen)
    decision = f"exit={turn.exit}" if turn.exit else f"listen={listen}"
    flags = "" if turn.interruptible else " not-interruptible"
    print(f"  [{turn.reason}] {decision} intent={turn.intent or '-'} "
          f"slots={json.dumps(turn.slots, ensure_ascii=False)}{flags}")


def _explain(bot, text):
    terms = bot.tokenizer.terms(text)
    ranked = bot.matcher.rank(text)[:5]
    print(f"  words: {' '.join(terms) or '(none)'}")
    for (kind, ident), score in ranked:
        print(f"  {score:.2f} {kind}:{ident} {bot.entry_text((kind, ident))}")


def _misses_dir(args):
    if args.dir:
        return pathlib.Path(args.dir)
    from engine.infra.clitext import SecretsNotNeeded, default_config
    from engine.settings import default_settings, load_settings
    config = args.config or default_config()
    if args.config or os.path.exists(config):       # a file named on purpose must be there
        settings = load_settings(config, env=SecretsNotNeeded(os.environ))
    else:
        settings = default_settings()
    return pathlib.Path(settings.paths.var_dir) / "bot_misses"


def cmd_misses(args):
    from . import misses
    from engine.infra.clitext import CliError
    directory = _misses_dir(args)                  # SettingsError: file:line:col message
    if not directory.is_dir():
        raise CliError(f"no misses directory {directory} (nothing logged yet?)")
    records, problems = misses.read(directory, args.bot)
    for problem in problems:
        print(f"bot misses: skipped {problem}", file=sys.stderr)
    groups = misses.group(records, args.similarity)
    if args.top:
        groups = groups[:args.top]
    if args.json:
        print(json.dumps(groups, ensure_ascii=False, indent=1))
        return 0
    if not groups:
        print(f"no misses in {directory}")
        return 0
    print(f"{len(records)} unanswered question(s) in {len(groups)} group(s), {directory}")
    for g in groups:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(g["kinds"].items()))
        print(f"{g['count']:5d}  {g['text']}   ({kinds}; {', '.join(g['bots'])})")
        for example in g["examples"][:3]:
            print(f"       - {example}")
        if len(g["examples"]) > 3:
            print(f"       ... {len(g['examples']) - 3} more wording(s)")
    return 0
