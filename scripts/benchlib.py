"""What the benchmarks share (scripts/bench_*.py import it from this directory)."""
import subprocess
import sys
from pathlib import Path

import gevent

REPO = Path(__file__).resolve().parent.parent


def percentile(values, p):
    """The p-th percentile by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def start_engine(work, env, pid_file):
    """`hotline run --config <work>/hotline.yaml` as a child process; returns it once it wrote its
    pid file (it is serving), or exits naming the engine log if it died first."""
    engine = subprocess.Popen([sys.executable, "-m", "engine", "run", "--config", str(work / "hotline.yaml")],
                              env=env, cwd=str(REPO))
    while not pid_file.exists():
        if engine.poll() is not None:
            sys.exit(f"engine did not start; see {work / 'engine.log'}")
        gevent.sleep(0.05)
    return engine


def cpu_seconds(pid):
    """CPU seconds (user + system) a process has used, from /proc."""
    import os
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid, field="VmRSS"):
    """A process's resident set (or VmHWM: its peak) in MiB, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0
