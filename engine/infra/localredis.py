"""A private redis-server on a free loopback port (the demo, tests, benchmarks): started as a child
process with no persistence, stopped by its PID."""
import os
import shutil
import signal
import socket
import subprocess
import time

from engine.infra.netutil import free_port


class RedisStartError(RuntimeError):
    pass


class LocalRedis:
    def __init__(self, work_dir, port=None, extra_args=(), conf=None):
        self.work_dir = str(work_dir)
        self.extra_args = list(extra_args)   # e.g. ["--replicaof", host, port] or ["--sentinel"]
        self.conf = conf                     # a config file first on the command line (a sentinel's)
        self.port = port or free_port()
        self.proc = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout=10.0):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisStartError("redis-server is not installed: run scripts/setup")
        conf = [str(self.conf)] if self.conf else []
        self.proc = subprocess.Popen(
            [binary] + conf + ["--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                               "--dir", self.work_dir, "--loglevel", "warning"] + self.extra_args,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RedisStartError(f"redis-server exited with {self.proc.returncode} (port {self.port} taken?)")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RedisStartError(f"redis-server did not answer on port {self.port} within {timeout:.0f} s")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
