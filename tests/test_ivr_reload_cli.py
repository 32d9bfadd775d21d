"""`hotline ivr reload` against a real `hotline run` process: it checks the files first and says
what is wrong (exit 1), and never signals a pid that is not our engine (issue 17, section 4)."""
import os
import signal
import subprocess
import sys

from engine.infra.netutil import free_port
from tests.enginefix import EngineProcess
from tests.simfix import wait_for
from tests.test_hostile_yaml import BOMB


def reload(ep, *args, env=None):
    return subprocess.run([sys.executable, "-m", "engine", "ivr", "reload", "--config", str(ep.config), *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "HOTLINE_TOKEN": "", **(env or {})})


def test_reload_checks_first_signals_only_our_engine_and_not_after_kill_9(tmp_path, monkeypatch):
    monkeypatch.setenv("TOK_ADMIN", "admin-secret")
    port = free_port()
    ep = EngineProcess(tmp_path, extra=(
        f"control: {{listen_port: {port}, tokens: [{{name: root, role: admin, token_env: TOK_ADMIN}}]}}\n"))
    try:
        flows = tmp_path / "no-flows"
        flows.mkdir(exist_ok=True)
        (flows / "bad.yaml").write_text("name: bad\nentry: {'12345': m}\nnodes: {m: {type: hangup}}\n" + BOMB)
        out = reload(ep)
        assert out.returncode == 1 and f"{flows / 'bad.yaml'}:" in out.stderr and "alias *l0 refused" in out.stderr
        assert "nothing reloadable" not in ep.log.read_text()    # the engine was not bothered
        (flows / "bad.yaml").unlink()
        out = reload(ep)
        assert out.returncode == 0 and f"SIGHUP sent to engine {ep.proc.pid}" in out.stdout, out.stderr
        wait_for(lambda: "nothing reloadable" in ep.log.read_text(), timeout=10)
        out = reload(ep, "--token", "admin-secret")          # asks the API and shows its answer
        assert out.returncode == 0 and out.stdout.strip() == "reloaded", out.stderr
        ep.proc.send_signal(signal.SIGKILL)
        ep.proc.wait(timeout=10)
        assert ep.pid_file.exists()                          # what a crash leaves
        out = reload(ep)
        assert out.returncode == 1 and "no engine holds it" in out.stderr
    finally:
        ep.stop()
