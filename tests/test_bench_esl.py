"""scripts/bench_esl keeps working from the repository alone (tests/fixtures/esl), and stops with a
clear message, never a hang, when what it needs is missing (its speed is its own business)."""
import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(*args, env=None, timeout=120):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HOTLINE_ESL_FIXTURES"))}
    return subprocess.run([str(REPO / "scripts/bench_esl"), *args], cwd=REPO, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def test_replay_and_simulator_parts_report_their_rates():
    out = run("--events", "3000", "--sim-seconds", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    n = re.search(r"\(a\) replay of (\d+) captured plain events, repeated to 3,000:", out.stdout)
    assert n and int(n.group(1)) > 0, out.stdout
    assert re.search(r"[0-9,]+ events/s parsed and dispatched", out.stdout)
    assert re.search(r"\(b\) simulator producing calls for 1 s: [0-9,]+ events", out.stdout)


def test_missing_or_empty_transcripts_are_a_clear_error(tmp_path):
    out = run(env={"HOTLINE_ESL_FIXTURES": str(tmp_path)}, timeout=30)
    assert out.returncode == 1
    assert f"no text/event-plain events in the transcripts of {tmp_path}" in out.stderr
    out = run(env={"HOTLINE_ESL_FIXTURES": str(tmp_path / "gone")}, timeout=30)
    assert out.returncode == 1 and "cannot read the ESL transcripts" in out.stderr and "gone" in out.stderr
