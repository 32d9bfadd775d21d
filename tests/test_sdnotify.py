"""`hotline run` under systemd (Type=notify): READY=1 only once the engine can serve calls — the
switch's event socket logged in and Redis answering — and STOPPING=1 when SIGTERM starts the
shutdown. The test owns the unix datagram socket that $NOTIFY_SOCKET names, as systemd does."""
import os
import signal
import socket
import tempfile
import time

import pytest

from engine.infra import sdnotify
from engine.infra.localredis import LocalRedis
from engine.infra.netutil import free_port
from tests.acdfix import agent, queue, write_yaml
from tests.enginefix import EngineProcess, switch_for

BOUND = 30.0          # seconds for an engine process under load to get where the test waits


class NotifySocket:
    """The service manager's end: a bound AF_UNIX datagram socket (short path: sun_path < 108)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="hl-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.seen = []            # every line received, in order

    def wait(self, prefix, timeout=BOUND, after=0):
        """Receive until a line starting with `prefix` came (READY=1, STATUS=waiting...) at or
        after index `after` of what was seen; return the lines received before it."""
        deadline = time.monotonic() + timeout
        while self._index(prefix, after) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {prefix!r} within {timeout} s; received {self.seen}")
            self.sock.settimeout(remaining)
            try:
                self.seen.extend(self.sock.recv(4096).decode().split("\n"))
            except socket.timeout:
                pass
        return self.seen[:self._index(prefix, after)]

    def _index(self, prefix, after=0):
        return next((i for i, line in enumerate(self.seen) if i >= after and line.startswith(prefix)), None)

    def close(self):
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


@pytest.fixture
def notify_socket():
    ns = NotifySocket()
    yield ns
    ns.close()


def test_ready_waits_for_redis_then_stopping_on_sigterm(tmp_path, notify_socket):
    write_yaml(tmp_path / "agents.yaml", {"agents": [agent("1001")]})
    write_yaml(tmp_path / "queues.yaml", {"queues": [queue("general")]})
    redis_port = free_port()                # no Redis there yet
    ep = EngineProcess(tmp_path, files=f"agents: {tmp_path / 'agents.yaml'}, queues: {tmp_path / 'queues.yaml'}, ",
                       extra=f"redis: {{url: 'redis://127.0.0.1:{redis_port}/0'}}\n",
                       env={"NOTIFY_SOCKET": notify_socket.path})
    redis = None
    try:
        # the switch is up, Redis is not: the engine says what it waits for, and is not ready
        notify_socket.wait("STATUS=waiting for Redis")
        assert "READY=1" not in notify_socket.seen
        (tmp_path / "redis").mkdir()
        redis = LocalRedis(tmp_path / "redis", port=redis_port).start()
        before = notify_socket.wait("READY=1")
        assert "READY=1" not in before
        assert "STATUS=serving calls" in notify_socket.seen
        ep.proc.send_signal(signal.SIGTERM)
        notify_socket.wait("STOPPING=1")
        assert ep.proc.wait(BOUND) == 0
    finally:
        ep.stop()
        if redis is not None:
            redis.stop()


def test_ready_waits_for_the_switchs_event_socket(tmp_path, notify_socket):
    # WatchdogSec=0.3 s: WATCHDOG=1 every 0.1 s
    ep = EngineProcess(tmp_path, env={"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "300000"})
    try:
        notify_socket.wait("READY=1")         # no ACD configured: the switch is all it needs
        pings = notify_socket.seen.count("WATCHDOG=1")
        notify_socket.wait("WATCHDOG=1", after=len(notify_socket.seen))
        assert notify_socket.seen.count("WATCHDOG=1") > pings
        ep.proc.send_signal(signal.SIGTERM)
        notify_socket.wait("STOPPING=1")
        assert ep.proc.wait(BOUND) == 0
        ep.switch.stop()                      # the switch is down when the engine starts again
        del notify_socket.seen[:]
        ep.start()
        notify_socket.wait(f"STATUS=waiting for the switch's event socket at 127.0.0.1:{ep.settings.esl.port}")
        assert "READY=1" not in notify_socket.seen
        ep.switch = switch_for(ep.settings, tmp_path / "fs-again", ep.settings.esl.port)
        notify_socket.wait("READY=1")
        assert notify_socket.seen.count("READY=1") == 1
    finally:
        ep.stop()


def test_notify_speaks_the_protocol_and_keeps_quiet_without_a_socket(notify_socket):
    env = {"NOTIFY_SOCKET": notify_socket.path}
    assert sdnotify.notify("READY=1", "STATUS=a\nb", env=env)
    assert notify_socket.sock.recv(4096) == b"READY=1\nSTATUS=a b"    # one datagram, one line each
    assert not sdnotify.notify("READY=1", env={})
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 10.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_interval({}) is None
    assert sdnotify.socket_address({"NOTIFY_SOCKET": "@hl"}) == "\0hl"
