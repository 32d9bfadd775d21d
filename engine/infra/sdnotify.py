"""systemd's service notifications (sd_notify(3)): READY=1, STATUS=..., WATCHDOG=1, STOPPING=1.

The protocol is one datagram of newline-separated VARIABLE=VALUE lines sent to the AF_UNIX socket
that $NOTIFY_SOCKET names (a path, or "@name" in the abstract namespace); sd_notify(3) documents it
as a stable interface to reimplement without libsystemd. These few lines rather than a library:
`sdnotify` (last release 2017) drops every error silently, `systemd-python` compiles against
libsystemd-dev (no wheels on PyPI), and `cysystemd` binds all of libsystemd (journal, ...) for one
datagram. Without $NOTIFY_SOCKET (not started by systemd, or Type= is not notify) nothing is sent.

`Notifier.start(not_ready)` runs two greenlets: one sends STATUS= (what start-up still waits for)
and READY=1 once `not_ready()` returns None; the other WATCHDOG=1 every third of $WATCHDOG_USEC
(WatchdogSec=) for as long as the gevent hub runs greenlets: a hub blocked that long serves no
call either.
"""
import logging
import os
import socket

import gevent

log = logging.getLogger("hotline.sdnotify")

POLL_STARTING = 0.5       # seconds between readiness checks before READY=1
POLL_SERVING = 5.0        # seconds between STATUS refreshes after it


def socket_address(env=None):
    """The address of $NOTIFY_SOCKET for socket.connect, or None when unset or not AF_UNIX."""
    addr = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    if addr.startswith("@"):
        return "\0" + addr[1:]          # abstract namespace (sd_notify(3))
    if addr.startswith("/"):
        return addr
    if addr:                            # e.g. systemd 254's vsock: for VMs: not ours to serve
        log.warning("NOTIFY_SOCKET=%r is not a unix socket: no notifications sent", addr)
    return None


def notify(*lines, env=None):
    """Send one notification (lines such as "READY=1", "STATUS=..."); False when there is nowhere
    to send it. An error sending it is logged, never raised: the engine runs on regardless."""
    addr = socket_address(env)
    if addr is None:
        return False
    text = "\n".join(line.replace("\n", " ") for line in lines)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(addr)
            sock.sendall(text.encode("utf-8"))
    except OSError as exc:
        log.warning("systemd notification %r not sent: %s", text, exc)
        return False
    return True


def watchdog_interval(env=None):
    """Seconds between WATCHDOG=1 (a third of WatchdogSec=), or None when no watchdog is asked
    for this process ($WATCHDOG_PID, when set, names the process meant)."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1e6 / 3


class Notifier:
    """Readiness, status and watchdog pings for one process."""

    def __init__(self, not_ready, env=None):
        self.not_ready = not_ready      # () -> None when ready, else what start-up waits for
        self.env = env
        self.ready = False
        self._status = None
        self._greenlets = []

    @classmethod
    def start(cls, not_ready, env=None):
        self = cls(not_ready, env)
        if socket_address(env) is not None:
            self._greenlets.append(gevent.spawn(self._readiness))
            interval = watchdog_interval(env)
            if interval:
                # its own greenlet: a slow readiness check (Redis timing out) never delays it
                self._greenlets.append(gevent.spawn(self._watchdog, interval))
        return self

    def stopping(self, status="stopping"):
        """Shutdown has begun (systemd then waits for the process to exit: TimeoutStopSec=)."""
        gevent.killall(self._greenlets, block=False)
        notify("STOPPING=1", f"STATUS={status}", env=self.env)

    def _readiness(self):
        while True:
            try:
                waiting = self.not_ready()
            except Exception as exc:       # a check that fails is one more thing to wait for
                waiting = f"readiness check failed: {exc}"
            lines = []
            if waiting is None and not self.ready:
                self.ready = True
                lines.append("READY=1")
            status = waiting or "serving calls"
            if status != self._status:
                self._status = status
                lines.append(f"STATUS={status}")
            if lines:
                notify(*lines, env=self.env)
            gevent.sleep(POLL_SERVING if self.ready else POLL_STARTING)

    def _watchdog(self, interval):
        while True:
            notify("WATCHDOG=1", env=self.env)
            gevent.sleep(interval)
