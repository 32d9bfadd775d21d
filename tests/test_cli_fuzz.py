"""Every `hotline` command, walked from the parser tree (engine.cli.build_parser), asked for --help
and given bad arguments: unknown flags, missing values, bad numbers / dates / ids, files that do
not exist, an API nobody answers, an empty directory without settings. Each must end with exit 2
(usage) or 1 (failure), a message and no traceback, create nothing in the current directory, and
let no injected text start a line of its output. Run in-process (one interpreter start would cost
more than all the cases), each under a time bound.

And: an option spelled the same in two commands means the same thing there, with the same metavar
and help (engine/infra/clitext.py OPTIONS)."""
import argparse
import os

import gevent
import pytest

from engine import cli
from engine.infra.clitext import OPTIONS
from tests.enginefix import free_port

INJECTED = "INJECTED-LINE"
BAD_TEXT = f"x\n{INJECTED}\x1b[2J"          # a value that tries to start a line and clear the screen
MISSING = "/nonexistent/hotline-fuzz"
# commands that start something that runs until stopped when their arguments are good: only
# parser-level cases for them
LONG_RUNNING = {("demo",)}
# commands that need nothing and succeed anywhere
NEEDS_NOTHING = {("privacy", "keygen"), ("ivr", "schema")}
# commands whose job is to create the directory they are given: an unknown name is no mistake, so
# only parser-level cases and a name that would start a line of its own (must be refused)
CREATES = {("init",)}
# Commands of other packages found to traceback (or exit 0) on a case: (command, case) -> why.
# Each is an xfail(strict=True): fixing the command makes the test fail until the mark goes.
KNOWN = {}


def leaves(parser, prefix=()):
    """(command words, parser) for every command that runs something."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
        return
    for action in subs:
        for name, sub in action.choices.items():
            yield from leaves(sub, prefix + (name,))


PARSER = cli.build_parser()
COMMANDS = dict(leaves(PARSER))


def _takes_value(action):
    return action.option_strings and action.nargs not in (0, "?") and not isinstance(
        action, (argparse._HelpAction, argparse._VersionAction))


def _value_for(action, tmp):
    """A plausible value for a required argument: the case under test breaks something else."""
    if action.choices:
        return str(next(iter(action.choices)))
    name = (action.dest or "").lower()
    if name in ("out", "output", "workdir", "misses_dir"):
        return str(tmp / "out")
    if name in ("paths", "path", "botfile", "flows", "file", "files", "scenario"):
        return MISSING
    return "no-such-id"


def minimal_argv(words, parser, tmp, positional=None):
    """The command with its required positionals and options filled in."""
    argv = list(words)
    for action in parser._actions:
        if action.option_strings:
            continue
        if action.nargs in ("?", "*"):
            continue
        argv.append(positional if positional is not None else _value_for(action, tmp))
    for action in parser._actions:
        if action.option_strings and action.required:
            argv += [action.option_strings[-1], _value_for(action, tmp)]
    return argv


def cases():
    out = []
    for words, parser in COMMANDS.items():
        out.append((words, "help"))
        out.append((words, "unknown-flag"))
        for action in parser._actions:
            if _takes_value(action):
                flag = action.option_strings[-1]
                out.append((words, f"missing-value:{flag}"))
                if action.type is not None or action.choices:
                    out.append((words, f"bad-value:{flag}"))
        if words in CREATES:
            out.append((words, "bad-ids"))
        if words in LONG_RUNNING or words in NEEDS_NOTHING or words in CREATES:
            continue
        out.append((words, "empty-dir"))
        out.append((words, "bad-ids"))
        flags = {s for a in parser._actions for s in a.option_strings}
        if "--config" in flags:
            out.append((words, "missing-config"))
        if "--api" in flags:
            out.append((words, "unreachable-api"))
        for flag in ("--date", "--since", "--at", "--tz"):
            if flag in flags:
                out.append((words, f"bad-time:{flag}"))
    return out


def _param(words, case):
    marks = []
    why = KNOWN.get(f"{' '.join(words)}|{case}")
    if why:
        marks.append(pytest.mark.xfail(strict=True, reason=why))
    return pytest.param(words, case, id=f"{' '.join(words)}|{case}", marks=marks)


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    """An empty current directory, no settings, no client file, no hotline variables."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))    # a bug's traceback file goes there
    for name in list(os.environ):
        if name.startswith("HOTLINE_") or name == "XDG_CONFIG_HOME":
            monkeypatch.delenv(name)
    return cwd


def run(argv, capsys):
    with gevent.Timeout(60, AssertionError(f"hotline {' '.join(argv)!r} still runs after 60 s")):
        try:
            code = cli.main(argv)
        except SystemExit as exc:           # argparse: --help, usage errors
            code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def build(words, case, tmp):
    parser = COMMANDS[words]
    kind, _, flag = case.partition(":")
    base = minimal_argv(words, parser, tmp)
    if kind == "help":
        return [*words, "--help"]
    if kind == "unknown-flag":
        return [*base, "--no-such-flag"]
    if kind == "missing-value":
        return [*words, flag]
    if kind == "bad-value":
        return [*base, flag, BAD_TEXT]
    if kind == "empty-dir":
        return base
    if kind == "bad-ids":
        return minimal_argv(words, parser, tmp, positional=BAD_TEXT) + _api_args(parser)
    if kind == "missing-config":
        return [*base, "--config", MISSING + ".yaml"]
    if kind == "unreachable-api":
        return [*base, *_api_args(parser)]
    if kind == "bad-time":
        return [*base, flag, {"--tz": "Mars/Olympus_Mons"}.get(flag, "tomorrow")]
    raise AssertionError(case)


def _api_args(parser):
    flags = {s for a in parser._actions for s in a.option_strings}
    if "--api" not in flags:
        return []
    return ["--api", f"http://127.0.0.1:{free_port()}", "--token", "fuzz-token"]


@pytest.mark.parametrize("words,case", [_param(w, c) for w, c in cases()])
def test_every_command_fails_cleanly(words, case, empty_cwd, tmp_path, capsys):
    argv = build(words, case, tmp_path)
    code, out, err = run(argv, capsys)
    text = out + err
    assert "Traceback" not in text, text
    assert "internal error" not in text, text
    if case == "help":
        assert code == 0 and "usage:" in out
    else:
        assert code in (1, 2), f"exit {code} for {argv!r}: {text[-500:]}"
        assert text.strip(), f"no message for {argv!r}"      # lint tools report on stdout
    assert not any(line.startswith(INJECTED) for line in text.splitlines()), text
    assert "\x1b[2J" not in err
    assert sorted(os.listdir(empty_cwd)) == [], f"{argv!r} created {os.listdir(empty_cwd)} in the cwd"


def test_the_walk_reaches_every_command():
    names = {" ".join(w) for w in COMMANDS}
    for expected in ("run", "sim", "agents", "queues", "calls", "call", "monitor", "whisper", "barge",
                     "bot chat", "bot misses", "bot lint", "privacy audit", "fs-config render"):
        assert expected in names
    assert len(cases()) > 5 * len(COMMANDS)


# --- one wording per option -----------------------------------------------------------------------

# Options of commands in files other packages own that say it differently today (their metavar or
# help text is not clitext.OPTIONS'): xfail(strict=True), so moving them onto
# clitext.add_option makes the test fail until their line goes from this list.
OWNERS = {"run": "engine/daemon.py", "cdr": "engine/cdr/cli.py", "ivr": "engine/ivr/cli.py",
          "recordings": "engine/media/reccli.py", "tickets": "engine/tickets/cli.py",
          "report": "engine/cdr/report.py"}
WORDING_KNOWN = set()


def wording_cases():
    out = []
    for words, parser in COMMANDS.items():
        for action in parser._actions:
            for flag in action.option_strings:
                if flag in OPTIONS:
                    key = (" ".join(words), flag)
                    marks = []
                    if " ".join(key) in WORDING_KNOWN:
                        why = f"{OWNERS[words[0]]}: {flag} is not on clitext.add_option yet"
                        marks.append(pytest.mark.xfail(strict=True, reason=why))
                    out.append(pytest.param(words, flag, id=" ".join(key), marks=marks))
    return out


@pytest.mark.parametrize("words,flag", wording_cases())
def test_the_same_option_has_the_same_metavar_and_help_everywhere(words, flag):
    action = next(a for a in COMMANDS[words]._actions if flag in a.option_strings)
    metavar, text = OPTIONS[flag]
    assert (action.metavar, action.help) == (metavar, text), \
        f"hotline {' '.join(words)} {flag}: use engine.infra.clitext.add_option"
