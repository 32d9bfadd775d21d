"""`hotline demo --serve`: it keeps the engine, the simulator and a trickle of callers running, and
the console URL and logins it prints work, until Ctrl-C stops everything."""
import re
import signal
import subprocess
import sys
import time

import gevent
from gevent.subprocess import PIPE, Popen

from engine.infra.netutil import free_port
from tests.acdfix import wait_for
from tests.webfix import Browser


def test_demo_serve_prints_working_logins_and_stops_on_ctrl_c(tmp_path):
    port = free_port()
    proc = Popen([sys.executable, "-m", "engine", "demo", "--serve", "--workdir", str(tmp_path / "demo"),
                  "--port", str(port)], stdout=PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        with gevent.Timeout(90, AssertionError(f"no console URL printed: {lines}")):
            while not any("Ctrl-C stops everything" in line for line in lines):
                line = proc.stdout.readline()
                assert line or proc.poll() is None, f"demo exited: {lines}"
                lines.append(line)
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}/metrics" in text
        agent, agent_pw = re.search(r"/desk\s+log in as (\S+) / (\S+)", text).groups()
        boss, boss_pw = re.search(r"/wallboard\s+log in as (\S+) / (\S+)", text).groups()
        base = f"http://127.0.0.1:{port}"

        desk = Browser(base)
        desk.login(agent, agent_pw)
        status, _, page = desk.request("GET", "/desk")
        assert status == 200 and "坐席工作台" in page
        desk.post(f"/v1/agents/{agent}/login")
        board = Browser(base)
        board.login(boss, boss_pw)
        # the trickle of callers reaches the wallboard, and the agent who logged in gets calls
        assert wait_for(lambda: board.get("/api/wallboard/snapshot")["calls"], 30)
        assert wait_for(lambda: desk.get("/api/desk/state")["agent"]["state"] in ("ringing", "in_call", "wrap_up"), 60)
        status, _, metrics = board.request("GET", "/metrics")
        assert status == 200 and "hotline_queue_waiting" in metrics
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            gevent.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
    rest = proc.stdout.read()
    assert proc.returncode == 0, rest
    assert "stopping the engine" in rest
    assert not (tmp_path / "demo" / "var" / "hotline.pid").exists()
