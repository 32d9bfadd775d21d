"""The switch's side of the Event Socket: inbound listeners and the outbound `socket` app sessions.

Both kinds share one `EslSession`: a reader greenlet that parses commands (Parser(commands=True))
and handles them in order, and a writer greenlet that drains one outgoing queue, so replies and
events leave in the order they were produced and no emitter ever blocks on a slow client
(mod_event_socket queues per listener too). Reply texts are the fixtures' (FREESWITCH.md).
"""
import logging
import socket
import uuid as _uuid
from urllib.parse import quote

import gevent
from gevent.queue import Queue
from gevent.server import StreamServer

from engine.esl.protocol import Parser, ProtocolError, encode_message
from engine.sim import headers
from engine.sim.events import EVENT_NAMES

log = logging.getLogger("hotline.sim.esl")

GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
MAX_QUEUE = 100_000       # mod_event_socket's per-listener event queue
LOST_EVENTS_LIMIT = 500   # ... and it drops a listener that lost this many
# What `myevents` subscribes on an outbound socket (mod_event_socket.c): no CALLSTATE, CODEC or
# PLAYBACK_* (fixtures 05/05b).
MYEVENTS = {"CHANNEL_ANSWER", "CHANNEL_APPLICATION", "CHANNEL_BRIDGE", "CHANNEL_CREATE",
            "CHANNEL_DATA", "CHANNEL_DESTROY", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE",
            "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_ORIGINATE", "CHANNEL_UUID",
            "CHANNEL_OUTGOING", "CHANNEL_PARK", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
            "CHANNEL_STATE", "CHANNEL_UNBRIDGE", "CHANNEL_UNPARK", "DETECTED_SPEECH", "DTMF",
            "NOTALK", "TALK"}


def reply(text, **extra):
    # a line break inside a value (a variable read by getvar) would end the header block
    text = text.replace("\r", " ").replace("\n", " ")
    hdrs = {"Content-Type": "command/reply", "Reply-Text": text}
    hdrs.update(extra)
    return encode_message(hdrs)


class EslSession:
    """One ESL connection (inbound: a client of ours; outbound: our socket to the engine)."""

    def __init__(self, switch, sock, channel=None):
        self.switch = switch
        self.sock = sock
        self.channel = channel                # outbound mode: the controlled channel
        self.authed = channel is not None
        self.fmt = "plain"
        self.all_events = False
        self.names = set()
        self.subclasses = set()
        self.myevents_uuid = None
        self.myevents_fmt = None
        self.filters = []
        self.linger = None                    # None: no linger; -1 forever; N seconds
        self.closed = False
        self.connected = False                # outbound: the engine sent `connect`
        self.out = Queue()
        self.dropped = 0
        self.writer = gevent.spawn(self._write_loop)
        self.reader = None

    # --- output -------------------------------------------------------------------------------
    def send(self, data):
        if not self.closed:
            self.out.put(data)

    def _write_loop(self):
        try:
            while True:
                data = self.out.get()
                if data is None:
                    break
                self.sock.sendall(data)
        except OSError:
            pass
        finally:
            self._close_socket()

    def _close_socket(self):
        self.closed = True
        if self.channel is not None:
            self.channel.release_hold(self)      # also wakes the socket app's park loop
        try:
            self.sock.close()
        except OSError:
            pass

    def close(self):
        """Flush what is queued, then close."""
        if not self.closed:
            self.closed = True
            self.out.put(None)
            self.switch.remove_listener(self)
            if self.channel is not None:
                self.channel.release_hold(self)
                self.channel.wake()

    def _abort(self):
        """Drop a client that stopped reading: what is queued is thrown away."""
        self.closed = True
        self.switch.remove_listener(self)
        if self.channel is not None:
            self.channel.release_hold(self)
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.writer.kill(block=False)
        self._close_socket()

    def disconnect(self, disposition="disconnect"):
        hdrs = {"Content-Type": "text/disconnect-notice"}
        if self.channel is not None:
            hdrs["Controlled-Session-UUID"] = self.channel.uuid
            hdrs["Content-Disposition"] = disposition
        self.send(encode_message(hdrs, GOODBYE))
        self.close()

    # --- events ------------------------------------------------------------------------------
    def wants(self, ev):
        if self.channel is not None:
            if ev.uuid != self.channel.uuid:
                return None
            if self.myevents_fmt is not None and ev.name in MYEVENTS:
                return self.myevents_fmt
            if self.all_events or ev.name in self.names:
                return self.fmt
            return None
        if self.myevents_uuid is not None:
            if ev.uuid == self.myevents_uuid and ev.name in MYEVENTS:
                return self.myevents_fmt
            if ev.uuid != self.myevents_uuid:
                return None
        if self.all_events or ev.name in self.names or \
                (ev.name == "CUSTOM" and ev.subclass in self.subclasses):
            # filters: an event passes if it matches any of them (mod_event_socket)
            if self.filters and not any(ev.get(n) == v for n, v in self.filters):
                return None
            return self.fmt
        return None

    def offer(self, ev):
        fmt = self.wants(ev)
        if fmt is None or self.closed:
            return
        if self.out.qsize() >= self.switch.listener_queue_max:
            self.dropped += 1
            if self.dropped >= LOST_EVENTS_LIMIT:
                log.warning("ESL listener fell %d events behind: dropping it (as mod_event_socket does)",
                            self.dropped)
                self._abort()
            return
        self.send(ev.encoded(fmt))

    # --- input -------------------------------------------------------------------------------
    def serve(self):
        """Read and handle commands until the peer goes away (runs in the caller's greenlet)."""
        parser = Parser(commands=True)
        try:
            while not self.closed:
                data = self.sock.recv(65536)
                if not data:
                    break
                for msg in parser.feed(data):
                    self.handle(msg)
                    if self.closed:
                        break
        except ProtocolError as exc:
            log.warning("dropping ESL client: %s", exc)
        except OSError:
            pass
        finally:
            self.close()

    def handle(self, msg):
        line = (msg.line or "").strip()
        cmd, _, rest = line.partition(" ")
        rest = rest.strip()
        if not self.authed:
            if cmd == "auth":
                if rest == self.switch.password:
                    self.authed = True
                    self.send(reply("+OK accepted"))
                else:
                    self.send(reply("-ERR invalid"))
                    self.disconnect()
            elif cmd == "exit":
                self.send(reply("+OK bye"))
                self.disconnect()
            else:
                self.send(reply("-ERR command not found"))
            return
        handler = getattr(self, "cmd_" + cmd, None)
        if handler is None or cmd in ("auth",):
            self.send(reply("-ERR command not found"))
            return
        handler(rest, msg)

    # --- commands -----------------------------------------------------------------------------
    def cmd_api(self, rest, msg):
        out = self.switch.api(rest)
        self.send(encode_message({"Content-Type": "api/response", "Content-Length": str(len(out.encode()))},
                                 out))

    def cmd_bgapi(self, rest, msg):
        job = msg.headers.get("Job-UUID") or str(_uuid.uuid4())
        self.send(reply(f"+OK Job-UUID: {job}", **{"Job-UUID": job}))
        self.switch.bgapi(rest, job)

    def cmd_event(self, rest, msg):
        words = rest.split()
        fmt = "plain"
        if words and words[0] in ("plain", "json", "xml"):
            fmt = words.pop(0)
        ok = False
        custom = False
        for w in words:
            if custom and w not in EVENT_NAMES:
                self.subclasses.add(w)
                ok = True
            elif w == "ALL":
                self.all_events = ok = True
            elif w in EVENT_NAMES:
                custom = w == "CUSTOM"
                self.names.add(w)
                ok = True
        if not ok:
            self.send(reply("-ERR no keywords supplied"))
            return
        self.fmt = fmt
        self.switch.add_listener(self)
        self.send(reply(f"+OK event listener enabled {fmt}"))

    def cmd_nixevent(self, rest, msg):
        words = rest.split()
        for w in words:
            if w == "ALL":
                self.all_events = False
                self.names.clear()
            self.names.discard(w)
            self.subclasses.discard(w)
        if not words:
            self.send(reply("-ERR no keywords supplied"))
            return
        self.send(reply("+OK events nixed"))

    def cmd_noevents(self, rest, msg):
        self.all_events = False
        self.names.clear()
        self.subclasses.clear()
        self.myevents_fmt = None
        self.send(reply("+OK no longer listening for events"))

    def cmd_myevents(self, rest, msg):
        words = rest.split()
        fmt = "plain"
        if words and words[-1] in ("plain", "json", "xml"):
            fmt = words.pop()
        if self.channel is None:
            if not words or words[0] not in self.switch.channels:
                self.send(reply("-ERR invalid uuid"))
                return
            self.myevents_uuid = words[0]
        self.myevents_fmt = fmt
        self.switch.add_listener(self)
        self.send(reply("+OK Events Enabled"))

    def cmd_filter(self, rest, msg):
        words = rest.split(" ", 2)
        if words and words[0] == "delete":
            name = words[1] if len(words) > 1 else ""
            value = words[2] if len(words) > 2 else None
            self.filters = [(n, v) for n, v in self.filters
                            if not (n == name and (value is None or v == value))]
            self.send(reply(f"+OK filter deleted. [{name}]=[{value or ''}]"))
            return
        if len(words) < 2:
            self.send(reply("-ERR invalid syntax"))
            return
        name, value = words[0], " ".join(words[1:])
        self.filters.append((name, value))
        self.send(reply(f"+OK filter added. [{name}]=[{value}]"))

    def cmd_linger(self, rest, msg):
        if rest.strip().isdigit():
            self.linger = int(rest)
            self.send(reply(f"+OK will linger {self.linger} seconds"))
        else:
            self.linger = -1
            self.send(reply("+OK will linger"))

    def cmd_nolinger(self, rest, msg):
        self.linger = None
        self.send(reply("+OK will not linger"))

    def cmd_log(self, rest, msg):
        level = rest or "7"
        self.send(reply(f"+OK log level {level} [{level}]"))

    def cmd_nolog(self, rest, msg):
        self.send(reply("+OK no longer logging"))

    def cmd_divert_events(self, rest, msg):
        self.send(reply("+OK events diverted" if rest == "on" else "+OK events not diverted"))

    def cmd_resume(self, rest, msg):
        self.send(reply("+OK"))

    def cmd_exit(self, rest, msg):
        self.send(reply("+OK bye"))
        self.disconnect()

    def cmd_sendmsg(self, rest, msg):
        target = rest or (self.channel.uuid if self.channel is not None else "")
        ch = self.switch.channels.get(target)
        if ch is None:
            self.send(reply(f"-ERR invalid session id [{target}]"))
            return
        self.send(reply("+OK"))
        if self.channel is None:
            raw = msg.line
        else:   # the outbound socket's PRIVATE_COMMAND carries the whole message text (fixture 05)
            raw = msg.line + "\n" + "".join(f"{k}: {v}\n" for k, v in msg.headers.items()) + "\n"
        self.switch.sendmsg(ch, msg, raw)

    def cmd_connect(self, rest, msg):
        if self.channel is None:
            self.send(reply("-ERR command not found"))
            return
        self.connected = True           # LFLAG_CONNECTED: run_socket_app stops waiting
        self.channel.wake()
        pairs = self.switch.channel_data(self.channel)
        lines = [f"{k}: {quote(str(v), safe=headers._SAFE)}" for k, v in pairs]
        lines += ["Content-Type: command/reply", "Reply-Text: %2BOK%0A", "Socket-Mode: async",
                  "Control: full"]
        self.send(("\n".join(lines) + "\n\n").encode("utf-8"))

    def cmd_getvar(self, rest, msg):
        value = None
        if self.channel is not None:
            value = self.channel.variables.get(rest.strip())
        self.send(reply(value if value not in (None, "") else "_undef_"))

    # --- outbound: the channel ended ------------------------------------------------------------
    def channel_hungup(self, ch):
        """After CHANNEL_HANGUP_COMPLETE: the linger notice, or goodbye at once."""
        if self.closed:
            ch.release_hold(self)
            return
        if self.linger is None:
            self.disconnect()
            return
        notice = {"Content-Type": "text/disconnect-notice", "Controlled-Session-UUID": ch.uuid,
                  "Content-Disposition": "linger", "Channel-Name": ch.name,
                  "Linger-Time": str(self.linger), "Content-Length": "0"}
        self.send(encode_message(notice))
        if self.linger >= 0:
            gevent.spawn_later(self.linger, self._linger_over)

    def _linger_over(self):
        if not self.closed:
            self.disconnect()


def run_socket_app(ch, arg):
    """The `socket host:port async full` application: connect to the engine, park, serve.

    As mod_event_socket.c socket_function does: it sets `socket_host` before connecting; when
    switch_socket_connect fails (connection refused: no engine listening) it logs "Socket Error!"
    and returns, without hanging up: the dialplan goes on with its next action. Once connected, in
    async mode it waits `while (switch_channel_ready(channel) && !LFLAG_CONNECTED)`, a flag only
    the `connect` command sets (parse_command): an engine that accepts and closes without `connect`
    ends the listener thread (listener_run: read_packet fails, "Socket Error!", done) but not that
    loop, so the caller stays in silence until they hang up. After `connect`, switch_ivr_park loops
    `while (switch_channel_ready && CF_CONTROLLED && CF_PARK)` (switch_ivr.c); listener_run clears
    CF_CONTROLLED when the socket closes, so the park and the application return and the dialplan
    goes on (with nothing left, the channel hangs up; the dialplan we ship plays its fallback)."""
    target = arg.split()[0] if arg.split() else ""
    host, _, port = target.rpartition(":")
    ch.set_var("socket_host", host)
    try:
        sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=5)
        sock.settimeout(None)
        # mod_event_socket sets TCP_NODELAY on every listener socket, outbound ones included.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, ValueError) as exc:
        ch.log.error("%s: Socket Error! (socket app cannot connect to %s: %s)", ch.uuid, target, exc)
        return "_none_"
    session = EslSession(ch.switch, sock, channel=ch)
    ch.destroy_holds.add(session)
    session.reader = gevent.spawn(session.serve)
    ch.switch.add_listener(session)
    try:
        ch.wait(until=lambda: session.connected)      # until hangup, if `connect` never comes
        ch.park_loop(stop=lambda: session.closed)
    finally:
        if session.closed:
            ch.release_hold(session)


class InboundServer:
    """Listens for ESL clients (engine, CLI, tests) like mod_event_socket on 8021."""

    def __init__(self, switch, host, port):
        self.switch = switch
        self.server = StreamServer((host, port), self._handle, backlog=1024)
        self.sessions = set()

    def start(self):
        self.server.start()
        return self.server.address

    def stop(self):
        self.server.stop(timeout=1)
        for s in list(self.sessions):
            s.close()

    def _handle(self, sock, address):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = EslSession(self.switch, sock)
        self.sessions.add(session)
        session.send(encode_message({"Content-Type": "auth/request"}))
        try:
            session.serve()
            # StreamServer closes the socket when this returns: let the writer flush first
            session.writer.join(timeout=5)
        finally:
            self.sessions.discard(session)
