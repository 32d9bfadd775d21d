"""What inbound connections and outbound sessions share: one socket, one reader, one dispatcher.

The reader greenlet only reads and parses, so the switch never waits on us (mod_event_socket drops
a listener 500 events behind); it yields to the hub after every read so a burst cannot starve the
other greenlets. Replies are matched to commands in send order (the switch answers in order);
events go through a queue to one dispatcher greenlet, so handlers run in arrival order, may block
(call `api`, wait for a reply) without stalling the reader, and a failing handler is logged and
isolated. When the socket goes, every pending wait is failed with `ConnectionLost`.
"""
import collections
import logging
import socket
import time

import gevent
from gevent.event import AsyncResult
from gevent.lock import Semaphore
from gevent.queue import Queue

from engine.esl.errors import CommandFailed, ConnectionLost, ReplyTimeout
from engine.esl.protocol import Event, Parser, ProtocolError, encode_command
from engine.infra.metrics import ESL_COMMAND_SECONDS, ESL_EVENTS

_REPLY_TYPES = ("command/reply", "api/response")
_EVENT_TYPES = ("text/event-plain", "text/event-json")
_KNOWN_TYPES = _REPLY_TYPES + _EVENT_TYPES + ("text/disconnect-notice", "log/data", "auth/request",
                                              "text/rude-rejection")

DEFAULT_REPLY_TIMEOUT = 30.0

_log = logging.getLogger("hotline.esl")


class _Named(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        return f"[{self.extra['name']}] {msg}", kwargs


class Transport:
    """One ESL socket. Subclasses add the handshake (inbound auth, outbound connect)."""

    def __init__(self, name="esl", reply_timeout=DEFAULT_REPLY_TIMEOUT, logger=None):
        self.name = name
        self.reply_timeout = reply_timeout
        # one logger for every connection, the name as a prefix: a logger per name would be one
        # per outbound session (address:port), kept by the logging module for ever
        self.log = logger or _Named(_log, {"name": name})
        self.sock = None
        self._parser = None
        self._pending = collections.deque()     # AsyncResult per command, in send order
        self._jobs = {}                         # Job-UUID -> AsyncResult (bgapi)
        self._send_lock = Semaphore()
        self._events = Queue()
        self._handlers = collections.defaultdict(list)   # event name ('*' = all) -> [callable]
        self._greenlets = []
        self.connected = False
        self.close_reason = None

    # --- handlers ---------------------------------------------------------------------------
    def on(self, event_name, handler):
        """Call handler(event) for events named event_name ('*' for every event)."""
        self._handlers[event_name].append(handler)

    def off(self, event_name, handler):
        try:
            self._handlers[event_name].remove(handler)
        except ValueError:
            pass

    # --- life cycle -------------------------------------------------------------------------
    def _attach(self, sock):
        self.sock = sock
        try:
            # Each command is one small write that the switch should see at once: no Nagle delay
            # (the switch sets TCP_NODELAY on its side too).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass            # not a TCP socket (tests use socketpairs)
        self._parser = Parser()
        self.connected = True
        self.close_reason = None
        self._events = Queue()
        self._greenlets = [gevent.spawn(self._read_loop), gevent.spawn(self._dispatch_loop, self._events)]

    def _read_loop(self):
        sock = self.sock
        reason = "closed by peer"
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                for msg in self._parser.feed(data):
                    self._route(msg)
                gevent.sleep(0)
        except ProtocolError as exc:
            reason = f"protocol error: {exc}"
        except OSError as exc:
            reason = f"socket error: {exc}"
        except gevent.GreenletExit:
            reason = "closed"
        except Exception as exc:        # a bug on bytes from outside: end the link, never a silent read loop death
            self.log.exception("reading from the switch failed")
            reason = f"internal error: {exc}"
        self._lost(reason)

    def _route(self, msg):
        ctype = msg.content_type
        if ctype in _REPLY_TYPES:
            if not self._pending:
                raise ProtocolError(f"unexpected {ctype} with no command waiting")
            self._pending.popleft().set(msg)
        elif ctype in _EVENT_TYPES:
            if "body" in msg.truncated:     # over MAX_BODY_BYTES: skipped, the connection kept
                self.log.warning("event of %s bytes skipped (over the size limit)",
                                 msg.headers.get("Content-Length"))
                return
            event = Event.from_message(msg)
            ESL_EVENTS.inc()
            if event.name == "BACKGROUND_JOB":
                job = self._jobs.pop(event.get("Job-UUID", ""), None)
                if job is not None:
                    job.set(event.body)
            self._events.put(event)
        elif ctype == "text/disconnect-notice":
            self.on_disconnect_notice(msg)
        elif ctype == "log/data":
            self.log.debug("switch log: %s", msg.text().rstrip())
        elif ctype == "auth/request":
            self.on_auth_request(msg)
        elif ctype == "text/rude-rejection":
            raise ProtocolError(f"switch rejected us: {msg.text().strip()[:200]}")
        else:
            raise ProtocolError(f"unknown Content-Type {ctype[:60]!r}")

    def on_disconnect_notice(self, msg):
        self.log.debug("disconnect notice: %s", msg.headers.get("Content-Disposition", ""))

    def on_auth_request(self, msg):
        raise ProtocolError("auth/request in the middle of a session")

    def _dispatch_loop(self, events):
        while True:
            event = events.get()
            if event is None:
                return
            for handler in self._handlers.get(event.name, []) + self._handlers.get("*", []):
                try:
                    handler(event)
                except Exception:
                    self.log.exception("handler %r failed on %s", handler, event.name)

    def _lost(self, reason):
        if not self.connected:
            return
        self.connected = False
        self.close_reason = reason
        try:
            self.sock.close()
        except OSError:
            pass
        error = ConnectionLost(f"{self.name}: {reason}")
        while self._pending:
            self._pending.popleft().set_exception(error)
        jobs, self._jobs = self._jobs, {}
        for job in jobs.values():
            job.set_exception(error)
        self._events.put(None)
        self.on_lost(reason)

    def on_lost(self, reason):
        """Subclasses: the socket is gone (reconnect, end the call...)."""

    def close(self, reason="closed"):
        self._lost(reason)
        reader = self._greenlets[0] if self._greenlets else None
        if reader is not None and reader is not gevent.getcurrent():
            reader.kill(block=False)

    # --- commands ---------------------------------------------------------------------------
    def send_raw(self, data, timeout=None):
        """Write one encoded command and wait for its reply Message."""
        if not self.connected:
            raise ConnectionLost(f"{self.name}: not connected")
        result = AsyncResult()
        with self._send_lock:
            self._pending.append(result)
            try:
                self.sock.sendall(data)
            except OSError as exc:
                self._lost(f"send failed: {exc}")
                raise ConnectionLost(f"{self.name}: send failed: {exc}") from None
        started = time.monotonic()
        try:
            reply = result.get(timeout=timeout or self.reply_timeout)
            ESL_COMMAND_SECONDS.observe(time.monotonic() - started)
            return reply
        except gevent.Timeout:
            self._lost("no reply in time")
            raise ReplyTimeout(f"{self.name}: no reply in {timeout or self.reply_timeout}s") from None

    def command(self, line, headers=None, body=None, timeout=None):
        """Send `line` (+ headers/body), return the reply; `-ERR` replies raise CommandFailed."""
        reply = self.send_raw(encode_command(line, headers, body), timeout)
        text = reply.reply_text
        if text.startswith("-ERR"):
            raise CommandFailed(line, text)
        return reply

    def api(self, cmd, timeout=None, check=True):
        """`api <cmd>`: the response body as text; a body starting `-ERR` raises CommandFailed."""
        reply = self.send_raw(encode_command(f"api {cmd}"), timeout)
        text = reply.text()
        if check and text.startswith("-ERR"):
            raise CommandFailed(cmd, text.strip())
        return text

    def bgapi(self, cmd, job_uuid=None):
        """`bgapi <cmd>`: returns an AsyncResult that gets the BACKGROUND_JOB body.

        We choose the Job-UUID ourselves (the switch honours a `Job-UUID` header) and register it
        before sending, so a job that finishes before its reply is read is still caught.
        """
        import uuid as _uuid
        job = job_uuid or str(_uuid.uuid4())
        result = AsyncResult()
        self._jobs[job] = result
        try:
            reply = self.send_raw(encode_command(f"bgapi {cmd}", {"Job-UUID": job}))
        except Exception:
            self._jobs.pop(job, None)
            raise
        if reply.reply_text.startswith("-ERR"):
            self._jobs.pop(job, None)
            raise CommandFailed(cmd, reply.reply_text)
        return result

    def sendmsg(self, msg, timeout=None):
        """Send an engine.esl.commands.SendMsg; raises CommandFailed on `-ERR`."""
        reply = self.send_raw(msg.encode(), timeout)
        if reply.reply_text.startswith("-ERR"):
            raise CommandFailed(msg.line, reply.reply_text)
        return reply
