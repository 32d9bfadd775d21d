"""See scripts/bench_ivr. Runs the real loader and IvrRuntime; the calls are in-process fakes, so
the latency is the engine's decision time plus gevent scheduling, not the ESL round trip."""
from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import pathlib  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
from gevent.event import AsyncResult  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from engine.ivr.loader import load_flows  # noqa: E402
from engine.ivr.runtime import IvrRuntime  # noqa: E402
from engine.ivr.walk import ScriptedCall, TextRenderer  # noqa: E402


def big_flow(n_nodes):
    """A tree of menus (fan-out 9, depth-limited) whose leaves hang up."""
    lines = ["name: big", "entry: {'100': n0}", "max_depth: 50", "prompts: {p: '请按键', bye: '再见'}", "nodes:"]
    menus = (n_nodes - 1) // 10
    for i in range(menus):
        kids = {str(k): (f"n{i * 9 + k}" if i * 9 + k < menus else f"leaf{i}_{k}") for k in range(1, 10)}
        children = ", ".join(f"'{k}': {v}" for k, v in kids.items())
        lines.append(f"  n{i}: {{type: menu, prompt: p, children: {{{children}, timeout: bye{i}}}}}")
        for v in kids.values():
            if v.startswith("leaf"):
                lines.append(f"  {v}: {{type: hangup, prompt: bye}}")
        lines.append(f"  bye{i}: {{type: hangup}}")
    return "\n".join(lines) + "\n"


def bench_load(n_nodes):
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "big.yaml"
        path.write_text(big_flow(n_nodes), encoding="utf-8")
        started = time.perf_counter()
        flowset, problems = load_flows([path], strict=False)
        elapsed = time.perf_counter() - started
        assert not problems, problems[:5]
        return len(flowset.flows["big"].nodes), elapsed


LOOP = """\
name: loop
entry: {'200': m0}
prompts: {p: '请按键'}
nodes:
  m0: {type: menu, prompt: p, children: {'1': m1, '2': bye, timeout: bye}}
  m1: {type: menu, prompt: p, children: {'1': m2, '2': bye, timeout: bye}}
  m2: {type: menu, prompt: p, children: {'1': m0, '2': bye, timeout: bye}}
  bye: {type: hangup}
"""


class LiveCall(ScriptedCall):
    """Waits for key presses like a real call; records when the next command is issued."""

    def __init__(self, n, latencies):
        super().__init__("200", [], uuid=f"bench-{n}")
        self.latencies, self.pressed_at, self.pending = latencies, None, None

    def play(self, sources, interruptible=True):
        if self.pressed_at is not None:
            self.latencies.append(time.perf_counter() - self.pressed_at)
            self.pressed_at = None
        return ""

    def get_digits(self, max_digits, timeout, inter_digit_timeout, terminators="#"):
        self.pending = AsyncResult()
        return self.pending.get()

    def press(self, key):
        pending, self.pending = self.pending, None
        if pending is not None:
            self.pressed_at = time.perf_counter()
            pending.set(key)


def bench_latency(callers, presses):
    with tempfile.TemporaryDirectory() as tmp:
        pathlib.Path(tmp, "loop.yaml").write_text(LOOP, encoding="utf-8")
        runtime = IvrRuntime(tmp, TextRenderer(), max_transitions=10 ** 6)
        assert runtime.reload() == []
        latencies = []
        calls = [LiveCall(n, latencies) for n in range(callers)]
        workers = [gevent.spawn(runtime.run, call) for call in calls]
        gevent.sleep(0.05)
        for _ in range(presses):
            call = random.choice(calls)
            call.press("1")
            gevent.sleep(0.0005 if random.random() < 0.2 else 0)   # bursts of presses
        gevent.sleep(0.05)
        for call in calls:
            call.press("2")
        gevent.joinall(workers, timeout=10)
        return sorted(latencies)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--callers", type=int, default=300)
    parser.add_argument("--presses", type=int, default=20000)
    args = parser.parse_args()
    nodes, elapsed = bench_load(args.nodes)
    print(f"load+lint: {nodes} nodes in {elapsed * 1000:.0f} ms (target < 1000 ms)")
    lat = bench_latency(args.callers, args.presses)
    pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000   # noqa: E731
    print(f"decision latency, {args.callers} callers in menus, {len(lat)} key presses: "
          f"p50 {pct(0.5):.3f} ms, p99 {pct(0.99):.3f} ms, max {lat[-1] * 1000:.3f} ms (target p99 < 5 ms)")
    return 0 if elapsed < 1 and pct(0.99) < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
