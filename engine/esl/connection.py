"""Inbound Event Socket connection: the engine connects to the switch for commands and events.

It stays up by itself: when the socket drops it reconnects with capped exponential backoff,
authenticates, re-sends the event subscriptions and filters, then calls the `connected` hooks —
where the engine reconciles its state with the switch (ARCHITECTURE.md, "State and recovery").
"""
import random

import gevent
from gevent import socket
from gevent.event import AsyncResult, Event as Flag

from engine.esl.errors import AuthFailed, ConnectionLost, ReplyTimeout
from engine.esl.protocol import ProtocolError
from engine.esl.transport import Transport

_EVENT_NAME_OK = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789:abcdefghijklmnopqrstuvwxyz")


class InboundConnection(Transport):
    def __init__(self, host, port, password, events=("ALL",), event_format="plain", filters=(),
                 reconnect=True, backoff_initial=0.1, backoff_max=5.0, connect_timeout=5.0,
                 name="inbound", **kw):
        super().__init__(name=name, **kw)
        self.host, self.port, self.password = host, int(port), password
        self.events = list(events)
        self.event_format = event_format
        self.filters = list(filters)
        self.reconnect = reconnect
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.connect_timeout = connect_timeout
        self.connected_hooks = []      # called with (conn) after every successful (re)connect
        self.lost_hooks = []           # called with (conn, reason) when the socket goes
        self._auth = None
        self._stopping = False
        self._supervisor = None
        self.up = Flag()
        self.connects = 0

    # --- public -----------------------------------------------------------------------------
    def start(self, wait=True, timeout=None):
        """Connect in the background, keep connected; with wait=True block until the first success."""
        self._stopping = False
        self._supervisor = gevent.spawn(self._keep_connected)
        if wait:
            if not self.up.wait(timeout):
                raise ConnectionLost(f"{self.name}: could not connect to {self.host}:{self.port}")
        return self

    def stop(self):
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.kill(block=False)
        if self.connected:
            try:
                self.command("exit", timeout=2)
            except Exception:
                pass
            self.close("stopped")

    def subscribe(self, events, event_format=None):
        self.events = list(events)
        self.event_format = event_format or self.event_format
        if self.connected:
            self._send_subscriptions()

    def add_filter(self, header, value):
        self.filters.append((header, value))
        if self.connected:
            self.command(f"filter {header} {value}")

    # --- internals --------------------------------------------------------------------------
    def connect_once(self):
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
        sock.settimeout(None)
        self._auth = AsyncResult()
        self._attach(sock)
        try:
            self._auth.get(timeout=self.connect_timeout)
        except gevent.Timeout:
            self.close("no auth/request from the switch")
            raise ConnectionLost(f"{self.name}: no auth/request in {self.connect_timeout}s") from None
        reply = self.send_raw(f"auth {self.password}\n\n".encode(), timeout=self.connect_timeout)
        if not reply.reply_text.startswith("+OK"):
            self.close("authentication refused")
            raise AuthFailed(f"{self.name}: switch at {self.host}:{self.port} refused the password "
                             f"({reply.reply_text})")
        self._send_subscriptions()
        self.connects += 1

    def _send_subscriptions(self):
        for name in self.events:
            if not set(name) <= _EVENT_NAME_OK:
                raise ValueError(f"invalid event name {name!r}")
        if self.events:
            self.command(f"event {self.event_format} {' '.join(self.events)}")
        for header, value in self.filters:
            self.command(f"filter {header} {value}")

    def on_auth_request(self, msg):
        if self._auth is None or self._auth.ready():
            raise ProtocolError("unexpected auth/request")
        self._auth.set(True)

    def on_disconnect_notice(self, msg):
        self.log.info("%s: switch says goodbye (%s)", self.name,
                      msg.headers.get("Content-Disposition", "disconnect"))

    def on_lost(self, reason):
        self.up.clear()
        if self._auth is not None and not self._auth.ready():
            self._auth.set_exception(ConnectionLost(reason))
        if not self._stopping:
            self.log.warning("%s: connection to %s:%s lost: %s", self.name, self.host, self.port, reason)
        for hook in list(self.lost_hooks):
            try:
                hook(self, reason)
            except Exception:
                self.log.exception("lost hook failed")

    def _keep_connected(self):
        delay = self.backoff_initial
        while not self._stopping:
            try:
                self.connect_once()
            except AuthFailed as exc:
                self.log.error("%s", exc)
            except (OSError, ConnectionLost, ReplyTimeout) as exc:
                self.log.warning("%s: connect to %s:%s failed: %s", self.name, self.host, self.port, exc)
            else:
                delay = self.backoff_initial
                self.log.info("%s: connected to %s:%s", self.name, self.host, self.port)
                self.up.set()
                for hook in list(self.connected_hooks):
                    try:
                        hook(self)
                    except Exception:
                        self.log.exception("connected hook failed")
                # Wait for the reader to end, then loop round to reconnect.
                self._greenlets[0].join()
            if self._stopping or not self.reconnect:
                return
            gevent.sleep(delay * (0.5 + random.random() / 2))
            delay = min(delay * 2, self.backoff_max)
