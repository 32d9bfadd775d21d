"""Conformance of the simulator with the real switch: replay each fixture's client side, compare.

For every scenario in tests/fixtures/esl (our copy of the transcripts in shared/fixtures/esl) the client's commands (every `C->S` record of the
control, events, outbound-socket and bad-auth connections) are sent to a fresh simulator over TCP,
in transcript order. Before each command we wait — not for the transcript's wall-clock time, but
for the cause: the last event the real switch had sent before the client issued it (same event
name, same channel or none, same occurrence count), and the destruction of every channel the switch
had destroyed by then. Channel uuids the switch chose are mapped to the
simulator's by direction and caller number; uuids the client chose (origination_uuid) are kept.
The `N.json-events.txt` companion is compared with an `event json ALL` connection of the same run.

What is compared, per scenario:
- events: for every channel, the sequence of event names on each events connection (plain, json,
  outbound socket), and the sequence of events that belong to no channel (BACKGROUND_JOB, API,
  conference events without a member). HEARTBEAT and RE_SCHEDULE are left out of the sequences
  because a timer sends them, not the scenario; they still count for headers. `log/data` lines are
  not events and not compared.
- replies: every reply on every connection, in order: `Reply-Text` of command/reply; the first line
  of an api/response that starts with +OK/-ERR (uuids masked), or "<data>" for other output;
  auth/request and disconnect-notice (with its Content-Disposition).
- headers: per event type, the header names the switch sent (union over the scenario) against the
  simulator's; `variable_*` names are reported apart because they depend on SIP details of the
  capturing host rather than on the event.
Scores: events = matching names / longest sequence (difflib matching blocks, order kept);
replies = equal items / items; headers = names the sim sent / names the switch sent.
"""
import difflib
import json
import os
import re
import socket
import time
from dataclasses import dataclass, field

import gevent
from gevent.event import Event as Flag

from engine.esl.protocol import Event, Parser
from engine.sim.transcript import Note, Record, default_fixture_dir, read_transcript

TIMER_EVENTS = {"HEARTBEAT", "RE_SCHEDULE"}
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
WAIT = 6.0                  # seconds to wait for a cause before sending anyway (reported)
EVENT_TYPES = ("text/event-plain", "text/event-json")
SCENARIOS = ("01-answer-playback-dtmf-hangup", "02-bridge-record", "03-conference-three-way",
             "04-eavesdrop", "05-outbound-socket", "05b-outbound-socket-myevents-json-digits",
             "06-api-json-dump-errors", "07-outbound-break-all-and-missing-moh",
             "08-hold-inside-event-locked-bridge", "09-eavesdrop-dtmf-mode-switch",
             "09b-eavesdrop-mixed-rates", "10-dtmf-from-held-leg", "11-xml-cdr-legs",
             "12-tap-across-barge-in")
# The SIP desk phones of fixtures 07-12 (fixtures README): baresip 1003-1005 registered on the
# internal profile, auto-answer. The capture shows no ring time (fixture 10: CHANNEL_PROGRESS and
# CHANNEL_ANSWER of user/1005 0.5 ms apart), so the simulated phones answer at once.
PHONES = ("1003", "1004", "1005")
PHONE_LEG = re.compile(r"^sofia/internal/(\d+)[-@]")
# `### NOTE t=+4.63 agent 1005 keyed 1 (...)`: the phone keyed digits over RFC2833 through
# baresip's control port, which is not in the transcript (fixture 10)
PHONE_KEYED = re.compile(r"^agent (\d+) keyed (\S+)")
# After this many causes that never came the replay has left the capture's path: later waits are
# short, so a scenario that fails does not take minutes (the count is reported).
DIVERGED_AFTER = 3
DIVERGED_WAIT = 1.0
# Commands the capture's client sent within one media frame of each other, with no event between,
# are sent back to back by the replay (Replay._replies_before).
BURST = 0.02


# Differences the captures themselves show to be races inside FreeSWITCH, so either outcome is the
# real switch's behaviour. Each entry names the only event names a difference may involve.
KNOWN_RACES = {
    "05b-outbound-socket-myevents-json-digits": {
        "events": {"CHANNEL_PARK"}, "conns": {"outbound-socket"},
        "why": "the switch parks the channel when it reads `connect`, racing the client's `myevents`: "
               "fixture 05 (myevents 0.2 ms after the reply) has no CHANNEL_PARK on the socket, 05b "
               "(0.1 ms) has one; the simulator follows 05"},
    "08-hold-inside-event-locked-bridge": {
        "events": {"CHANNEL_PARK"}, "conns": {"outbound-socket"},
        "why": "the same race as 05b: the switch parks the channel when it reads `connect`, racing the "
               "client's `myevents`; 08's capture, like 05b's, got the CHANNEL_PARK on the socket, 05's did "
               "not; the simulator follows 05"},
    "10-dtmf-from-held-leg": {
        "events": {"CHANNEL_STATE"}, "conns": {"events-plain"},
        "why": "switch_ivr_multi_threaded_bridge sets the uuid_bridge'd second leg to CS_CONSUME_MEDIA and, "
               "a few steps later in the first leg's thread, to CS_EXCHANGE_MEDIA; the second leg's own state "
               "thread fires CHANNEL_STATE CS_CONSUME_MEDIA only if it runs before the second request: fixture "
               "10 has it (809a5add #75, 0.08 ms before CS_EXCHANGE_MEDIA), fixtures 02, 04, 09 and 09b (the "
               "same uuid_bridge of two parked legs) do not; the simulator follows 02/04/09"},
    "03-conference-three-way": {
        "events": {"CUSTOM::conference::maintenance"}, "conns": {"events-plain", "events-json"},
        "why": "after `hup all` each member notices the kick on its own 20 ms media frame; the capture "
               "has member 2 leave 4 ms before member 3, the simulator the reverse, which moves one "
               "floor-change event"},
}


def explained_by_race(name, conn, diff):
    race = KNOWN_RACES.get(name)
    if not race or conn not in race["conns"]:
        return False
    changed = [line[1:] for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return bool(changed) and all(event in race["events"] for event in changed)


def event_key(ev):
    key = getattr(ev, "key", None)
    if key:
        return key
    sub = ev.get("Event-Subclass")
    return f"{ev.name}::{sub}" if ev.name == "CUSTOM" and sub else ev.name


class KeyedEvent(Event):
    """An event with the key the comparison uses. A private event that was created as a COMMAND
    event (switch_ivr_broadcast: uuid_broadcast, uuid_hold's music) is fired as PRIVATE_COMMAND
    with its own `Event-Name: COMMAND` block first (Switch.private_message); a reader sees
    PRIVATE_COMMAND, so the key says where it came from: `PRIVATE_COMMAND<COMMAND`."""
    key = None


def parse_event(msg):
    ev = KeyedEvent.from_message(msg)
    key = event_key(ev)
    if ev.name == "PRIVATE_COMMAND" and msg.body.lstrip(b"{").startswith(
            (b"Event-Name: COMMAND\n", b'"Event-Name":"COMMAND"')):
        key += "<COMMAND"
    ev.key = key
    return ev


@dataclass
class Press:
    """The phone of `ext` keys `digits` (RFC2833) at this point of the capture; `t_uuid`: its leg,
    when a DTMF event of the capture names it."""
    ext: str
    digits: str
    t_uuid: str = None
    direction: str = "PRESS"
    conn: str = ""


@dataclass
class Stream:
    """What one connection carried from the switch: messages in order, events parsed."""
    messages: list = field(default_factory=list)
    events: list = field(default_factory=list)       # (index in messages, Event)
    replies: int = 0

    def add(self, msg):
        self.messages.append(msg)
        if msg.content_type in EVENT_TYPES:
            self.events.append((len(self.messages) - 1, parse_event(msg)))
        elif msg.content_type in ("command/reply", "api/response"):
            self.replies += 1


def parse_stream(records):
    parser, stream = Parser(), Stream()
    for r in records:
        for msg in parser.feed(r.data):
            stream.add(msg)
    return stream


# --- the live side ------------------------------------------------------------------------------

class LiveConn:
    """A raw client socket to the simulator (or the socket it opened to us), read by one greenlet."""

    def __init__(self, sock):
        self.sock = sock
        self.stream = Stream()
        self.parser = Parser()
        self.changed = Flag()
        self.closed = False
        self.reader = gevent.spawn(self._read)

    def _read(self):
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                for msg in self.parser.feed(data):
                    self.stream.add(msg)
                self.changed.set()
        except OSError:
            pass
        self.closed = True
        self.changed.set()

    def wait(self, predicate, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.closed or time.monotonic() > deadline:
                return predicate()
            self.changed.clear()
            self.changed.wait(min(0.05, max(0.0, deadline - time.monotonic())))
        return True

    def send(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.reader.kill(block=False)


@dataclass
class Result:
    name: str
    events: float = 0.0
    replies: float = 0.0
    headers: float = 0.0
    headers_min: float = 0.0
    variables: float = 0.0
    missing: dict = field(default_factory=dict)       # event type -> header names missing in sim
    extra: dict = field(default_factory=dict)         # event type -> header names only in sim
    event_diffs: list = field(default_factory=list)
    reply_diffs: list = field(default_factory=list)
    waits_timed_out: int = 0
    not_emitted: list = field(default_factory=list)   # event types the switch sent and the sim did not

    @property
    def unexplained_event_diffs(self):
        return [d for d in self.event_diffs if not explained_by_race(self.name, d[0], d[2])]

    def line(self):
        race = ""
        if self.events < 100 and not self.unexplained_event_diffs:
            race = " (the rest is a race inside FreeSWITCH itself, see KNOWN_RACES)"
        text = (f"conformance {self.name[:3].rstrip('-')}: events {self.events:.1f}%{race}, replies {self.replies:.1f}%, "
                f"headers {self.headers:.1f}% (lowest event type {self.headers_min:.1f}%), "
                f"variables {self.variables:.1f}%")
        if self.not_emitted:
            text += f" [not emitted by sim: {', '.join(sorted(self.not_emitted))}]"
        missing = sorted({h for names in self.missing.values() for h in names})
        if missing:
            text += f" (missing in sim: {', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''})"
        return text


class Replay:
    """Runs one scenario against a fresh simulator and compares."""

    def __init__(self, name, fixture_dir=None, dialplan_dir=None):
        self.name = name
        fixture_dir = fixture_dir or default_fixture_dir()
        self.plain_path = os.path.join(fixture_dir, f"{name}.txt")
        json_path = os.path.join(fixture_dir, f"{name}.json-events.txt")
        self.json_path = json_path if os.path.exists(json_path) else None
        self.dialplan_dir = dialplan_dir or os.path.join(os.path.dirname(__file__), "..", "..", "tests", "sim_dialplan")
        self.items = phone_presses(read_transcript(self.plain_path))
        self.conns = {}             # transcript connection name -> LiveConn
        self.uuid_map = {}          # transcript uuid -> sim uuid
        self.sim_ids = []           # (uuid, identity) of every channel the simulator created
        self.sim_destroyed = set()  # sim uuids whose CHANNEL_DESTROY the simulator has fired
        self.awaited_gone = set()   # transcript uuids already waited for (each one only once)
        self.causes = None          # command index -> (last event key, its count, destroyed uuids)
        self.timeouts = 0

    # --- transcript facts ---
    def _transcript_streams(self):
        names = sorted({r.conn for r in self.items if isinstance(r, Record)})
        streams = {n: parse_stream([r for r in self.items if r.conn == n and r.direction == "S->C"])
                   for n in names}
        if self.json_path:
            streams["events-json"] = parse_stream(
                [r for r in read_transcript(self.json_path) if isinstance(r, Record) and r.direction == "S->C"])
        return streams

    @staticmethod
    def _channel_ids(streams):
        """uuid -> (direction, caller number, sofia profile) from every event and channel list seen."""
        ids = {}
        for stream in streams.values():
            for _, ev in stream.events:
                uid = ev.get("Unique-ID")
                if uid and uid not in ids and ev.get("Call-Direction") and ev.get("Caller-Caller-ID-Number"):
                    ids[uid] = _ident(ev.get("Call-Direction"), ev.get("Caller-Caller-ID-Number", ""),
                                      ev.get("Channel-Name", ""))
            for msg in stream.messages:        # `show channels as json` (fixture 06 has no events)
                if msg.content_type == "api/response" and msg.text().startswith('{"row_count"'):
                    for row in json.loads(msg.text()).get("rows") or []:
                        ids.setdefault(row["uuid"], _ident(row.get("direction"), row.get("cid_num", ""),
                                                           row.get("name", "")))
        return ids

    def _on_sim_event(self, pairs, body=None):
        h = pairs if isinstance(pairs, dict) else dict(pairs)
        if h.get("Event-Name") == "CHANNEL_DESTROY":
            self.sim_destroyed.add(h.get("Unique-ID"))
        if h.get("Event-Name") == "CHANNEL_CREATE":
            self.sim_ids.append((h.get("Unique-ID"), _ident(h.get("Call-Direction"),
                                 h.get("Caller-Caller-ID-Number", ""), h.get("Channel-Name", ""))))

    # --- run ---
    def run(self):
        from engine.sim.endpoints import AgentPhone
        from engine.sim.scenario import AgentSpec
        from engine.sim.switch import Switch
        self.switch = None
        streams_t = self._transcript_streams()
        self.t_ids = self._channel_ids(streams_t)
        # uuids the client chose itself (origination_uuid=...) are the same on both sides
        chosen = {m.group(1) for r in self.items if r.direction == "C->S"
                  for m in re.finditer(r"origination_uuid=(" + UUID_RE.pattern + ")", r.data.decode("utf-8", "replace"))}
        for uid in chosen:
            self.t_ids.pop(uid, None)
            self.uuid_map[uid] = uid
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        out_port = listener.getsockname()[1]
        switch = Switch(dialplan_dirs=[self.dialplan_dir], password="ClueCon",
                        global_vars={"engine_socket": f"127.0.0.1:{out_port}"})
        switch.heartbeat_interval = 1.0        # so HEARTBEAT / RE_SCHEDULE headers get compared too
        for ext in PHONES:
            switch.register(ext, AgentPhone(None, AgentSpec(extension=ext, answer_after=0.0)))
        switch.subscribe(self._on_sim_event)
        host, port = switch.start("127.0.0.1", 0)[:2]
        self.switch = switch
        acceptor = gevent.spawn(self._accept, listener)
        try:
            if self.json_path:
                jconn = self._connect(host, port)
                jconn.send(b"auth ClueCon\n\n")
                jconn.send(b"event json ALL\n\n")
                jconn.wait(lambda: jconn.stream.replies >= 2)
                self.conns["events-json"] = jconn
            burst = []
            for index, rec in enumerate(self.items):
                if isinstance(rec, Press):
                    self._wait_cause(index, rec, streams_t)
                    self._press(rec)
                    continue
                if rec.direction != "C->S":
                    continue
                conn = self.conns.get(rec.conn)
                if conn is None:
                    if rec.conn == "outbound-socket":
                        if not self._wait_for(lambda: "outbound-socket" in self.conns):
                            continue
                        conn = self.conns["outbound-socket"]
                    else:
                        conn = self._connect(host, port)
                        self.conns[rec.conn] = conn
                        conn.wait(lambda: conn.stream.messages)          # auth/request first
                self._wait_cause(index, rec, streams_t)
                need = self._replies_before(index)
                if not conn.wait(lambda: conn.closed or all(
                        c.stream.replies >= need.get(n, 0) or c.closed for n, c in list(self.conns.items()))):
                    self.timeouts += 1
                data = self._map_uuids(rec.data)
                if self._next_in_burst(index):
                    burst.append(data)             # sent with the rest of its burst, below
                    continue
                try:
                    conn.send(b"".join(burst) + data)
                except OSError:
                    pass
                burst = []
            jconn = self.conns.get("events-json")
            if jconn is not None:                      # the json companion ends with `exit` too
                jconn.send(b"exit\n\n")
            for conn in self.conns.values():         # let closing notices arrive
                conn.wait(lambda: conn.closed, timeout=2.0)
        finally:
            acceptor.kill(block=False)
            listener.close()
            for conn in self.conns.values():
                conn.close()
            switch.stop()
        return self.compare(streams_t, {n: c.stream for n, c in self.conns.items()})

    def _press(self, press):
        """The phone keys digits: RFC2833 from its leg into the switch (Channel.press)."""
        leg = None
        if press.t_uuid is not None:
            leg = self.switch.channels.get(self._sim_uuid(press.t_uuid) or "")
        if leg is None:                         # a NOTE: the phone's current call
            legs = [c for c in self.switch.channels.values()
                    if (PHONE_LEG.match(c.name) or [None, None])[1] == press.ext and c.alive]
            leg = legs[-1] if legs else None
        if leg is None:
            self.timeouts += 1                  # reported: the phone had no call to key into
            return
        leg.press(press.digits)

    def _connect(self, host, port):
        sock = socket.create_connection((host, port), timeout=5)
        sock.settimeout(None)
        return LiveConn(sock)

    def _accept(self, listener):
        while True:
            sock, _ = listener.accept()
            self.conns["outbound-socket"] = LiveConn(sock)

    def _wait_for(self, predicate, timeout=WAIT):
        if self.timeouts >= DIVERGED_AFTER:
            timeout = min(timeout, DIVERGED_WAIT)
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                self.timeouts += 1
                return False
            gevent.sleep(0.01)
        return True

    def _causes(self):
        """For every command (by index in items): the last event (of a channel or of none) on any
        connection before it, how many of that (name, channel) the connection had carried by then, and the channels
        destroyed by then. Computed in one pass before the replay: re-parsing the transcript at
        every command cost ~10 ms each, so the replayed client was far slower than the real one
        (which sent its next uuid_kill 0.1-1 ms after a reply, fixture 04)."""
        causes, counts, last, gone = {}, {}, None, set()
        parsers = {}
        for index, r in enumerate(self.items):
            if r.direction in ("C->S", "PRESS"):
                causes[index] = (last, counts.get(last, 0), frozenset(gone))
                continue
            if r.conn not in ("events-plain", "outbound-socket"):
                continue
            for msg in parsers.setdefault(r.conn, Parser()).feed(r.data):
                if msg.content_type in EVENT_TYPES:
                    ev = parse_event(msg)
                    if ev.name in TIMER_EVENTS:
                        continue
                    # events of no channel count too (conference play-file-done, fixture 03: the
                    # client waited for them in wall-clock time; the replay must wait for them)
                    key = (r.conn, event_key(ev), ev.get("Unique-ID"))
                    counts[key] = counts.get(key, 0) + 1
                    last = key
                    if ev.name == "CHANNEL_DESTROY":
                        gone.add(ev.get("Unique-ID"))
        return causes

    def _replies_before(self, index):
        """How many replies (command/reply, api/response) the replay waits for, per connection,
        before sending command `index`: those the capture's client had when it sent it (a
        `sendmsg` reply on the outbound socket before an `api` on control, fixture 08), except
        inside a burst. A burst is an `api` command sent within one media frame (BURST) of
        the previous `api` command on its connection with no event between them: the replay sends
        it without waiting for the previous reply (an api command runs when the switch reads it,
        so the order the switch runs them in is kept). Fixture 04 killed four legs in 9 ms (3.527-3.536 s), each
        uuid_kill 0.05-1 ms after the last +OK, so the switch ran the kill of d6abe123 3.9 ms
        after the kill of its bridged partner edde8232, within the frame the partner's bridge
        thread needs to notice, and answered +OK. Waiting for every reply over TCP made the
        replay slower than that capture (a loaded machine: more than a frame), so the
        simulator, which hangs the partner up one frame after its partner's end as the switch
        does, had already hung it up (-ERR No such channel!)."""
        if getattr(self, "_reply_counts", None) is None:
            if self.causes is None:
                self.causes = self._causes()
            counts, parsers, self._reply_counts, prev = {}, {}, {}, {}
            self._burst_members = set()           # commands sent together with the one before
            for i, r in enumerate(self.items):
                if r.direction == "C->S":
                    need = dict(counts)
                    last = prev.get(r.conn)
                    if last is not None and last[2] and r.data.startswith(b"api ") \
                            and r.t - last[1] < BURST and self.causes[i] == self.causes[last[0]]:
                        need = self._reply_counts[last[0]]
                        self._burst_members.add(i)
                    self._reply_counts[i] = need
                    prev[r.conn] = (i, r.t, r.data.startswith(b"api "))
                elif r.direction == "S->C":
                    for msg in parsers.setdefault(r.conn, Parser()).feed(r.data):
                        if msg.content_type in ("command/reply", "api/response"):
                            counts[r.conn] = counts.get(r.conn, 0) + 1
        return self._reply_counts.get(index, {})

    def _next_in_burst(self, index):
        """Is the next client record the next command of `index`'s burst (same connection)?
        A burst goes to the simulator in one write: the switch runs api commands in the order it
        reads them, and one write lets the simulator read them in one go, before a media-frame
        timer of its own can run on a loaded machine (waiting for each `+OK` over TCP, fixture 04's
        replay failed 7 of 8 runs with two CPU burners: the partner was already hung up)."""
        self._replies_before(index)
        rec = self.items[index]
        for nxt in range(index + 1, len(self.items)):
            item = self.items[nxt]
            if isinstance(item, Press):
                return False
            if item.direction == "C->S":
                return item.conn == rec.conn and nxt in self._burst_members
        return False

    def _wait_cause(self, index, rec, streams_t):
        """Wait until the sim has sent what the switch had sent when the client issued `rec`."""
        if self.causes is None:
            self.causes = self._causes()
        last, need, gone = self.causes[index]
        # Channels the switch had destroyed before the command are gone in the sim too: the last
        # event alone does not say so when it came on another connection (fixture 05: the far leg's
        # BYE landed a second before the final `exit`s, whose cause is the near leg's destroy).
        for t_uuid in sorted(gone - self.awaited_gone):
            self.awaited_gone.add(t_uuid)
            self._wait_for(lambda: self._sim_uuid(t_uuid) in self.sim_destroyed)
        if last is None:
            return
        conn_name, name, t_uuid = last

        def reached():
            conn = self.conns.get(conn_name)
            if t_uuid is None:
                return conn is not None and sum(
                    1 for _, ev in conn.stream.events
                    if event_key(ev) == name and not ev.get("Unique-ID")) >= need
            sim_uuid = self._sim_uuid(t_uuid)
            if conn is None or sim_uuid is None:
                return False
            return sum(1 for _, ev in conn.stream.events
                       if event_key(ev) == name and ev.get("Unique-ID") == sim_uuid) >= need
        self._wait_for(reached)

    def _sim_uuid(self, t_uuid):
        if t_uuid in self.uuid_map:
            return self.uuid_map[t_uuid]
        want = self.t_ids.get(t_uuid)
        if want is None:
            return None
        taken = set(self.uuid_map.values())
        for uid, ident in self.sim_ids:        # channels in the order the simulator created them
            if uid not in taken and (uid == t_uuid or ident == want):
                self.uuid_map[t_uuid] = uid
                return uid
        return None

    def _map_uuids(self, data):
        text = data.decode("utf-8", "surrogateescape")

        def sub(m):
            t_uuid = m.group(0)
            if t_uuid not in self.t_ids:
                return t_uuid                      # chosen by the client (origination_uuid) or unknown
            self._wait_for(lambda: self._sim_uuid(t_uuid) is not None)
            return self._sim_uuid(t_uuid) or t_uuid
        return UUID_RE.sub(sub, text).encode("utf-8", "surrogateescape")

    # --- compare ---
    def compare(self, streams_t, streams_s):
        result = Result(self.name, waits_timed_out=self.timeouts)
        matched = total = 0
        for conn_name, st in streams_t.items():
            ss = streams_s.get(conn_name, Stream())
            for t_uuid in sorted(self._uuids(st)):
                a = [event_key(ev) for _, ev in st.events if ev.get("Unique-ID") == t_uuid
                     and ev.name not in TIMER_EVENTS]
                s_uuid = self.uuid_map.get(t_uuid, t_uuid)
                b = [event_key(ev) for _, ev in ss.events if ev.get("Unique-ID") == s_uuid
                     and ev.name not in TIMER_EVENTS]
                m = sum(block.size for block in difflib.SequenceMatcher(None, a, b, autojunk=False)
                        .get_matching_blocks())
                matched += m
                total += max(len(a), len(b))
                if a != b:
                    result.event_diffs.append((conn_name, t_uuid, _diff(a, b)))
            a = [event_key(ev) for _, ev in st.events if not ev.get("Unique-ID") and ev.name not in TIMER_EVENTS]
            b = [event_key(ev) for _, ev in ss.events if not ev.get("Unique-ID") and ev.name not in TIMER_EVENTS]
            m = sum(block.size for block in difflib.SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks())
            matched += m
            total += max(len(a), len(b))
            if a != b:
                result.event_diffs.append((conn_name, "(no channel)", _diff(a, b)))
        result.events = 100.0 * matched / total if total else 100.0

        equal = count = 0
        for conn_name, st in streams_t.items():
            a = [_reply(m) for m in st.messages if _reply(m) is not None]
            b = [_reply(m) for m in streams_s.get(conn_name, Stream()).messages if _reply(m) is not None]
            for i in range(max(len(a), len(b))):
                count += 1
                x = a[i] if i < len(a) else None
                y = b[i] if i < len(b) else None
                if x == y:
                    equal += 1
                else:
                    result.reply_diffs.append((conn_name, i, x, y))
        result.replies = 100.0 * equal / count if count else 100.0

        names_t, names_s = _header_names(streams_t.values()), _header_names(streams_s.values())
        per_type, var_have = [], [0, 0]
        for etype, t_names in names_t.items():
            if etype not in names_s:
                result.not_emitted.append(etype)     # counted by the events score, not here
                continue
            s_names = names_s[etype]
            plain_t = {h for h in t_names if not h.startswith("variable_")}
            plain_s = {h for h in s_names if not h.startswith("variable_")}
            vars_t = t_names - plain_t
            var_have[0] += len(vars_t & s_names)
            var_have[1] += len(vars_t)
            if plain_t:
                per_type.append(100.0 * len(plain_t & plain_s) / len(plain_t))
            if plain_t - plain_s:
                result.missing[etype] = sorted(plain_t - plain_s)
            if plain_s - plain_t:
                result.extra[etype] = sorted(plain_s - plain_t)
        result.headers = sum(per_type) / len(per_type) if per_type else 100.0
        result.headers_min = min(per_type) if per_type else 100.0
        result.variables = 100.0 * var_have[0] / var_have[1] if var_have[1] else 100.0
        return result

    @staticmethod
    def _uuids(stream):
        return {ev.get("Unique-ID") for _, ev in stream.events if ev.get("Unique-ID")}


def phone_presses(items):
    """The transcript's records, with a Press where a desk phone keyed digits.

    The phone's keys are not traffic: the capture shows them as DTMF events (RTP) on the phone's
    leg, and as `### NOTE ... agent <ext> keyed <digits>` written after the keying, which is the
    only trace of digits the switch never delivered (fixture 10: `*1` keyed on a held phone). A
    Press goes right before its DTMF event (so the replay presses once the events before it have
    come), or at the NOTE when no DTMF event since the last command shows those digits."""
    out, parser, since_command = [], Parser(), {}
    for item in items:
        if isinstance(item, Note):
            m = PHONE_KEYED.match(item.text)
            if m and since_command.get(m.group(1), 0) < len(m.group(2)):
                out.append(Press(m.group(1), m.group(2)))
            continue
        if item.direction == "C->S":
            since_command = {}
        elif item.conn == "events-plain":
            for msg in parser.feed(item.data):
                if msg.content_type not in EVENT_TYPES:
                    continue
                ev = Event.from_message(msg)
                phone = PHONE_LEG.match(ev.get("Channel-Name", ""))
                if ev.name == "DTMF" and ev.get("DTMF-Source") == "RTP" and phone and phone.group(1) in PHONES:
                    out.append(Press(phone.group(1), ev.get("DTMF-Digit"), ev.get("Unique-ID")))
                    since_command[phone.group(1)] = since_command.get(phone.group(1), 0) + 1
        out.append(item)
    return out


def _ident(direction, number, channel_name):
    parts = channel_name.split("/")
    return (direction, number, parts[1] if len(parts) > 1 else channel_name)


def _reply(msg):
    ct = msg.content_type
    if ct == "command/reply":
        return "reply: " + UUID_RE.sub("<uuid>", msg.headers.get("Reply-Text", ""))
    if ct == "api/response":
        first = msg.text().split("\n", 1)[0].strip()
        if first.startswith(("+OK", "-ERR", "-USAGE")):
            return "api: " + UUID_RE.sub("<uuid>", first)
        return "api: <data>"
    if ct == "auth/request":
        return "auth/request"
    if ct == "text/disconnect-notice":
        return "disconnect-notice " + msg.headers.get("Content-Disposition", "")
    return None


def _header_names(streams):
    names = {}
    for stream in streams:
        for _, ev in stream.events:
            names.setdefault(event_key(ev), set()).update(ev.header_names())
    return names


def _diff(a, b):
    return [line for line in difflib.unified_diff(a, b, "switch", "sim", n=1, lineterm="")][2:40]


def run_all(names=SCENARIOS, fixture_dir=None):
    """Run every scenario concurrently (each on its own simulator); results in the given order."""
    jobs = [gevent.spawn(Replay(n, fixture_dir).run) for n in names]
    gevent.joinall(jobs, raise_error=True)
    return [j.value for j in jobs]


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description="Compare the simulator with the captured FreeSWITCH transcripts")
    ap.add_argument("scenarios", nargs="*", default=list(SCENARIOS))
    ap.add_argument("-v", "--verbose", action="store_true", help="show event and reply differences")
    args = ap.parse_args(argv)
    ok = True
    for res in run_all(args.scenarios):
        print(res.line())
        if args.verbose:
            for conn, uid, diff in res.event_diffs:
                if explained_by_race(res.name, conn, diff):
                    print(f"  race on {conn} for {uid}: {KNOWN_RACES[res.name]['why']}")
                print(f"  events differ on {conn} for {uid}:")
                print("    " + "\n    ".join(diff))
            for conn, i, x, y in res.reply_diffs:
                print(f"  reply {i} on {conn}: switch {x!r}, sim {y!r}")
            for etype, names in res.missing.items():
                print(f"  {etype}: missing in sim: {', '.join(names)}")
            for etype, names in res.extra.items():
                print(f"  {etype}: only in sim: {', '.join(names)}")
        if res.waits_timed_out:
            print(f"  ({res.waits_timed_out} waits timed out)")
        ok = ok and not res.unexplained_event_diffs and res.replies == 100 and res.headers_min >= 95
    return 0 if ok else 1


if __name__ == "__main__":
    from gevent import monkey
    monkey.patch_all()
    raise SystemExit(main())
