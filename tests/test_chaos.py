"""scripts/chaos keeps working (issue 17 §7): tiny runs of two scenarios, their rows parsed; every
column that must be zero is zero, every call placed has its CDR, and the service recovered."""
import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^(?P<name>[a-z-]+) +(?P<placed>\d+) +(?P<cdrs>\d+) +(?P<missing>\d+) +(?P<dup>\d+) +"
                 r"(?P<double>\d+) +(?P<stray>\d+) +(?P<recover>[0-9.]+ s|never)$")


def run(*args, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run([str(REPO / "scripts/chaos"), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def rows(text):
    return {m["name"]: m.groupdict() for m in map(ROW.match, text.splitlines()) if m}


def test_engine_kill9_and_switch_restart_lose_no_cdr_and_double_book_nobody():
    out = run("--scenarios", "crash,switch-restart", "--seconds", "4", "--rate", "2")
    table = rows(out.stdout)
    assert set(table) == {"crash", "switch-restart"}, out.stdout + out.stderr
    for name, r in table.items():
        assert int(r["placed"]) >= 8, (name, r)
        assert r["cdrs"] == r["placed"], (name, r)
        assert (r["missing"], r["dup"], r["double"], r["stray"]) == ("0", "0", "0", "0"), (name, r)
        assert r["recover"] != "never", (name, r)
    assert out.returncode == 0 and "all zeros where zero is right" in out.stdout, out.stdout


def test_a_scenario_it_does_not_know_is_refused_by_name():
    out = run("--scenarios", "crash,meteor", timeout=60)
    assert out.returncode == 2
    assert "unknown scenario(s) meteor" in out.stderr
