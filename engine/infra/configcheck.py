"""Checking reloadable files in a separate, bounded process before the engine swaps them in.

A reload must never freeze the engine: parsing and checking a file someone sent us (a flow with a
schema walk per node, bot files with their FAQ and word lists) is CPU and memory the hub cannot
give while it carries every live call. `check_reload(settings)` runs `python -m engine.infra.configcheck`
with a CPU-time and address-space limit and waits for it cooperatively; only when it finds no
problem does the engine load the files itself (engine.infra.yamlpos bounds that load too).

    python -m engine.infra.configcheck --flows DIR --agents A --queues Q [--settings F]
prints {"problems": [...]} as JSON.
"""
import argparse
import json
import os
import sys

CHECK_SECONDS = 30                  # wall clock and CPU: the shipped flows check in ~1 s
CHECK_MEMORY = 1024 * 1024 * 1024   # address space: the shipped flows check in ~150 MB resident


def run_limited(argv, seconds=CHECK_SECONDS, memory=CHECK_MEMORY):
    """(returncode, stdout, problem) of `argv` run under the limits; problem is None when it ran to
    the end, else what stopped it. Waits without blocking the hub (gevent.subprocess)."""
    from gevent import subprocess as gsub

    def limits():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (int(seconds) + 1, int(seconds) + 1))

    proc = gsub.Popen(argv, stdout=gsub.PIPE, stderr=gsub.PIPE, preexec_fn=limits,
                      env={**os.environ, "PYTHONHASHSEED": "0"})
    try:
        out, err = proc.communicate(timeout=seconds)
    except gsub.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return proc.returncode, "", f"checking took longer than {seconds:g} s"
    if proc.returncode != 0:
        text = err.decode("utf-8", "replace")
        tail = text.strip().splitlines()[-1:] or [""]
        if "MemoryError" in text:
            return proc.returncode, "", f"checking needed more than {memory // 2**20} MB"
        if proc.returncode in (-24, -9):      # SIGXCPU at the soft CPU limit, SIGKILL at the hard one
            return proc.returncode, "", f"checking took longer than {seconds:g} s of CPU"
        return proc.returncode, "", f"checker failed ({proc.returncode}): {tail[0][:300]}"
    return 0, out.decode("utf-8", "replace"), None


def check_reload(settings, seconds=CHECK_SECONDS, memory=CHECK_MEMORY):
    """Problems (file:line:col: ...) in the reloadable files of `settings`, checked off the hub."""
    files = settings.files
    argv = [sys.executable, "-m", "engine.infra.configcheck", "--flows", str(files.flows_dir),
            "--agents", str(files.agents), "--queues", str(files.queues)]
    if settings.source:
        argv += ["--settings", str(settings.source)]
    _, out, problem = run_limited(argv, seconds, memory)
    if problem:
        return [f"reload refused: {problem}"]
    try:
        return list(json.loads(out)["problems"])
    except (ValueError, KeyError, TypeError):
        return [f"reload refused: the checker answered {out[:200]!r}"]


def check_files(flows=None, agents=None, queues=None, settings=None):
    """Problems in the given files (the same checks the engine's reload makes)."""
    from pathlib import Path
    problems = []
    if settings:
        from engine.infra.clitext import SecretsNotNeeded
        from engine.settings import SettingsError, load_settings
        try:
            load_settings(settings, env=SecretsNotNeeded(os.environ))
        except SettingsError as exc:
            problems.append(str(exc))
    if flows and Path(flows).is_dir() and any(Path(flows).glob("*.yaml")):
        from engine.ivr.loader import load_flows
        problems += load_flows(flows, strict=False)[1]
    if agents and queues and Path(agents).is_file() and Path(queues).is_file():
        from engine.acd.config import load_acd
        from engine.settings import SettingsError
        try:
            load_acd(agents, queues)
        except SettingsError as exc:
            problems.append(str(exc))
    return problems


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m engine.infra.configcheck")
    for name in ("flows", "agents", "queues", "settings"):
        p.add_argument(f"--{name}")
    args = p.parse_args(argv)
    print(json.dumps({"problems": check_files(args.flows, args.agents, args.queues, args.settings)},
                     ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
