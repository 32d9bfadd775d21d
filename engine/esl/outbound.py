"""Outbound Event Socket: the switch connects to us once per call (`socket host:port async full`).

A session follows what the real switch showed (FREESWITCH.md, fixtures 05 and 05b): `connect`
returns the channel data; `myevents` subscribes the channel's events, but PLAYBACK_START/STOP need
their own `event` subscription on the same socket; `linger` keeps the socket after hangup so the
hangup events arrive. An application runs by `sendmsg execute` carrying our own `Event-UUID`,
which the switch echoes as `Application-UUID` on that execution's CHANNEL_EXECUTE and
CHANNEL_EXECUTE_COMPLETE: we wait for that id, never for an application name. The switch queues
every execute and starts it on the channel's next media frame; `started(event_uuid)` is set by its
CHANNEL_EXECUTE, so a caller can tell "sent" from "running" (fixture 07: only a running
application can be broken; a queued one is lost to `uuid_break all`).
"""
import logging
import uuid as _uuid

import gevent
from gevent.event import AsyncResult, Event as Flag
from gevent.server import StreamServer

from engine.esl import commands
from engine.esl.errors import ChannelGone, ConnectionLost
from engine.esl.protocol import MAX_HEADER_BYTES, MAX_VALUE_BYTES, Event
from engine.esl.transport import Transport

log = logging.getLogger("hotline.esl.outbound")


class OutboundSession(Transport):
    """One call's socket. After `handshake()`, `channel` holds the CHANNEL_DATA headers."""

    def __init__(self, sock, address, event_format="plain", **kw):
        super().__init__(name=f"outbound {address[0]}:{address[1]}", **kw)
        self.address = address
        self.event_format = event_format
        self.channel = None
        self.uuid = None
        self.hungup = False
        self.hangup_event = None          # CHANNEL_HANGUP_COMPLETE, when seen
        self._executions = {}             # Event-UUID -> AsyncResult(CHANNEL_EXECUTE_COMPLETE)
        self._started = {}                # Event-UUID -> Flag set by its CHANNEL_EXECUTE
        self.closed = AsyncResult()
        self._attach(sock)
        self.on("CHANNEL_EXECUTE", self._execute_started)
        self.on("CHANNEL_EXECUTE_COMPLETE", self._execute_complete)
        self.on("CHANNEL_HANGUP", self._hangup)
        self.on("CHANNEL_HANGUP_COMPLETE", self._hangup_complete)

    def handshake(self, linger=True, playback_events=True):
        reply = self.command("connect")
        self.channel = Event(dict(reply.headers))
        self.uuid = self.channel.get("Unique-ID") or self.channel.get("Channel-Unique-ID")
        if reply.truncated:
            # a caller's oversized data (a 20,000-character name): served with the values cut
            log.warning("[%s] channel data over %d KB: cut %s to %d bytes each", self.uuid,
                        MAX_HEADER_BYTES // 1024, ", ".join(reply.truncated[:10]), MAX_VALUE_BYTES)
        fmt = "" if self.event_format == "plain" else f" {self.event_format}"
        self.command(f"myevents{fmt}")
        if playback_events:
            # myevents leaves these two out on the outbound socket (fixture 05b).
            self.command(f"event {self.event_format} PLAYBACK_START PLAYBACK_STOP")
        if linger:
            self.command("linger")
        return self.channel

    # --- applications -----------------------------------------------------------------------
    def execute_async(self, app, arg=None, event_lock=True):
        """Start an application; returns (event_uuid, AsyncResult of its EXECUTE_COMPLETE)."""
        if self.hungup:
            raise ChannelGone(f"{self.uuid}: channel already hung up")
        event_uuid = str(_uuid.uuid4())
        result = AsyncResult()
        self._executions[event_uuid] = result
        self._started[event_uuid] = Flag()
        try:
            self.sendmsg(commands.execute(app, arg, event_uuid=event_uuid, event_lock=event_lock))
        except Exception:
            self.forget(event_uuid)
            raise
        return event_uuid, result

    def started(self, event_uuid):
        """A Flag set when the switch started that execution (its CHANNEL_EXECUTE came); an
        execution no longer pending (completed, forgotten) gives a set Flag."""
        flag = self._started.get(event_uuid)
        if flag is None:
            flag = Flag()
            flag.set()
        return flag

    def running(self, event_uuid):
        """Started and not yet completed: the only state in which a break reaches it."""
        flag = self._started.get(event_uuid)
        return flag is not None and flag.is_set() and event_uuid in self._executions

    def forget(self, event_uuid):
        """Stop waiting for an execution (it was lost); a late completion is then ignored."""
        self._executions.pop(event_uuid, None)
        self._started.pop(event_uuid, None)

    def execute(self, app, arg=None, timeout=None):
        """Run an application and wait for its completion event."""
        _, result = self.execute_async(app, arg)
        return result.get(timeout=timeout)

    def getvar(self, name):
        reply = self.command(f"getvar {commands.varname(name)}")
        text = reply.reply_text
        return "" if text == "_undef_" else text

    def hangup(self, cause="NORMAL_CLEARING"):
        if self.hungup:
            return
        try:
            self.sendmsg(commands.hangup(cause))
        except ConnectionLost:
            pass

    def exit(self):
        if self.connected:
            try:
                self.command("exit", timeout=2)
            except Exception:
                pass
        self.close("exit")

    # --- events -----------------------------------------------------------------------------
    def _execute_started(self, event):
        flag = self._started.get(event.get("Application-UUID", ""))
        if flag is not None:
            flag.set()

    def _execute_complete(self, event):
        event_uuid = event.get("Application-UUID", "")
        result = self._executions.pop(event_uuid, None)
        flag = self._started.pop(event_uuid, None)
        if flag is not None:
            flag.set()
        if result is not None:
            result.set(event)

    def _hangup(self, event):
        self.hungup = True

    def _hangup_complete(self, event):
        self.hungup = True
        self.hangup_event = event
        self._fail_executions(ChannelGone(f"{self.uuid}: hung up "
                                          f"({event.get('Hangup-Cause', 'unknown cause')})"))

    def _fail_executions(self, error):
        pending, self._executions = self._executions, {}
        self._started = {}
        for result in pending.values():
            if not result.ready():
                result.set_exception(error)

    def on_disconnect_notice(self, msg):
        # `linger` notice: the channel is gone but its last events are still coming.
        if msg.headers.get("Content-Disposition") == "linger":
            self.hungup = True

    def on_lost(self, reason):
        self._fail_executions(ConnectionLost(f"{self.uuid}: socket {reason}"))
        if not self.closed.ready():
            self.closed.set(reason)


class OutboundServer:
    """Accepts the switch's per-call connections; `handler(session)` runs in the connection's greenlet."""

    def __init__(self, host, port, handler, event_format="plain", backlog=1024):
        self.handler = handler
        self.event_format = event_format
        self.server = StreamServer((host, int(port)), self._handle, backlog=backlog)
        self.sessions = set()
        self.accepting = True

    @property
    def address(self):
        return self.server.address

    def start(self):
        self.server.start()
        return self

    def stop_accepting(self):
        """Refuse new calls (shutdown) while the sessions we have finish.

        The listening socket is closed, not just left unaccepted: the kernel would still complete
        the switch's TCP connections into the backlog, and the switch's socket application then
        waits for our `connect` while the caller hears silence (mod_event_socket.c socket_function
        loops `while (switch_channel_ready(channel) && !LFLAG_CONNECTED)`). A refused connection
        makes the socket application return, and the dialplan's fallback runs (dialplans/public.xml)."""
        self.accepting = False
        self.server.close()

    def stop(self, timeout=None):
        self.accepting = False
        self.server.stop(timeout=timeout)

    def _handle(self, sock, address):
        if not self.accepting:
            sock.close()
            return
        session = OutboundSession(sock, address, event_format=self.event_format)
        self.sessions.add(session)
        try:
            self.handler(session)
        except ConnectionLost as exc:
            session.log.info("session ended: %s", exc)
        except Exception:
            session.log.exception("call handler failed")
        finally:
            self.sessions.discard(session)
            if session.connected:
                session.exit()
            gevent.sleep(0)
