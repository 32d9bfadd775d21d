"""Live updates for the console: Server-Sent Events from the engine's own state changes.

The engine tells the bus what changed — the ACD store calls `Bus.publish(kind, key)` on every agent
transition and queue change (store.watchers), in-call actions too (incall._audit) — and goes on:
publish only notes the key and sets a flag, it never blocks nor touches the network. One pump
greenlet (Live._run) takes everything noted since its last pass (a burst costs one pass), reads the
rows (engine.acd.views: the same figures the API serves, from Redis, the truth for every engine),
sends them to every subscribed browser, and publishes them on Redis (`{p}live`) for the other
engines' browsers; it forwards what the other engines publish there to its own.

Every client has a bounded queue (`web.stream_queue`): a client that falls that far behind is
dropped (its stream ends; EventSource reconnects and gets the current state), the engine never
waits for a browser. A reconnecting browser gets a `snapshot` event first, then changes.

Events (`event:` name, `data:` JSON; see docs/web-api.md):
    snapshot  {"at", "me", "agents": [...], "queues": [...], "calls": [...], "engines": [this one's]}
    agent     one row of GET /v1/agents, plus "at"
    queue     one row of GET /v1/queues, plus "at"
    call      one row of GET /v1/calls, plus "at"; {"call": uuid, "gone": true, "at"} when it ended
    engine    {"engine": id, "accepting", "calls": {"ivr", "queue", "ringing", "agent"}, "at"}: an
              engine's trunk calls by stage, when they change
    expired   {} the session ended: log in again (the stream closes)
An agent's stream carries its own agent row and its own calls only (queues: all).
"""
import json
import logging
import time

import gevent
import gevent.event
import gevent.queue
from flask import Blueprint, Response, current_app, request, stream_with_context

from engine.acd import views
from engine.acd.outage import ERRORS as REDIS_ERRORS
from engine.web.guard import HttpError, principal, requires

log = logging.getLogger("hotline.web.live")

bp = Blueprint("live", __name__)

# seconds at least between two passes of the pump: a burst costs one pass. Under load every change
# waits up to this long for its pass: with 310 browsers and 300 calls (scripts/bench_web) 0.1 s
# rather than 0.2 s halves the median (150 -> 80 ms) for ~8 % of a core, now that a pass sends only
# what changed (when it sent every call again, 0.1 s was slower)
PASS_EVERY = 0.1
SNAPSHOT_REUSE = 2.0         # seconds a snapshot read serves browsers connecting while nothing changes
KEEPALIVE = 15.0             # seconds between comment lines on a quiet stream (and session checks)
RETRY_MS = 2000              # EventSource's reconnect delay
WRITE_BATCH = 200            # events at most in one write to a stream


class Bus:
    """What changed since the pump's last pass: sets of (kind, key), so it is bounded by the
    number of agents, queues and calls, whatever the rate of changes. `publish` is this engine's
    own change; `remote` one another engine reported (not sent on again)."""

    def __init__(self):
        self._local, self._remote = {}, {}
        self.flag = gevent.event.Event()
        self.generation = 0          # bumped by every change: a snapshot of the same generation is current

    def publish(self, kind, key=""):
        self._local[(kind, key)] = None
        self.generation += 1
        self.flag.set()

    def remote(self, kind, key=""):
        self._remote[(kind, key)] = None
        self.generation += 1
        self.flag.set()

    def take(self):
        local, self._local = list(self._local), {}
        remote, self._remote = list(self._remote), {}
        self.flag.clear()
        return local, remote


class Client:
    def __init__(self, who, size):
        self.who = who
        self.queue = gevent.queue.Queue(size)
        self.dropped = False

    def wants(self, name, data):
        who = self.who
        if who.role != "agent":
            return True
        if name == "agent":
            return data.get("id") == who.agent
        if name == "call":
            return data.get("agent") == who.agent or who.agent in (data.get("agents_offered") or ()) \
                or data.get("gone", False) and data.get("call") in self.calls_seen
        return True

    calls_seen = ()

    def offer(self, name, data, text):
        """Queue one event (`text`: its bytes on the stream, made once for every client)."""
        if self.dropped or not self.wants(name, data):
            return True
        if self.who.role == "agent" and name == "call":     # its calls, to pass on their end
            seen = set(self.calls_seen)
            (seen.discard if data.get("gone") else seen.add)(data.get("call"))
            self.calls_seen = seen
        try:
            self.queue.put_nowait((name, text))
            return True
        except gevent.queue.Full:
            self.dropped = True
            return False


def event_text(name, data):
    # json.dumps escapes nothing HTML-ish, but the data line is never HTML: the browser parses it
    # as JSON (EventSource), and a newline inside a value is "\n" in JSON, so no line is forged
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False, default=str)}\n\n"


class Live:
    def __init__(self, state):
        self.state = state
        self.engine = state.engine
        self.bus = Bus()
        self.clients = set()
        self.dropped = 0
        self._calls = {}           # call uuid -> last row sent (this engine's calls)
        self._queues = {}          # queue name -> last row sent
        self._pump = self._listener = None
        self._pubsub = None
        acd = self.engine.acd
        self.channel = None if acd is None else f"{acd.store.p}live"
        if acd is not None:
            acd.store.watchers.append(self.bus.publish)
            getattr(self.engine, "watchers", []).append(self.bus.publish)
        self._stages = None        # last "engine" event's figures
        self._snapshot = None      # (bus generation, monotonic, (agents, queues, calls))

    # --- life cycle ---------------------------------------------------------------------------
    def start(self):
        if self.engine.acd is None:
            return
        self._pump = gevent.spawn(self._run)
        self._listener = gevent.spawn(self._listen)

    def stop(self):
        for g in (self._pump, self._listener):
            if g is not None:
                g.kill(block=True, timeout=1)
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:
                pass
        acd = self.engine.acd
        for watchers in (getattr(acd, "store", None) and acd.store.watchers, getattr(self.engine, "watchers", None)):
            if watchers and self.bus.publish in watchers:
                watchers.remove(self.bus.publish)

    # --- subscribers --------------------------------------------------------------------------
    def subscribe(self, who):
        client = Client(who, self.state.settings.web.stream_queue)
        self.clients.add(client)
        return client

    def remove(self, client):
        self.clients.discard(client)

    def fan_out(self, events):
        events = [(name, data, event_text(name, data)) for name, data in events]    # once, not per client
        for client in list(self.clients):
            for name, data, text in events:
                if not client.offer(name, data, text):
                    self.clients.discard(client)
                    self.dropped += 1
                    log.warning("live updates: %s dropped (%d events behind)", client.who.actor,
                                client.queue.qsize())
                    break

    # --- what the clients see -----------------------------------------------------------------
    def _site(self):
        """Agents, queues and the site's calls for a snapshot: read once for every browser that
        connects while nothing changed (300 desks reconnecting after a restart cost one read), at
        most SNAPSHOT_REUSE s old."""
        cached = self._snapshot
        if cached is not None and cached[0] == self.bus.generation and time.monotonic() - cached[1] < SNAPSHOT_REUSE:
            return cached[2]
        generation, acd = self.bus.generation, self.engine.acd
        calls, _ = acd.relay.site_calls()
        site = (views.agents(acd), views.queues(acd), calls)
        self._snapshot = (generation, time.monotonic(), site)
        return site

    def snapshot(self, who):
        acd = self.engine.acd
        if acd is None:
            return {"at": time.time(), "me": _me(who), "agents": [], "queues": [], "calls": [], "engines": []}
        agents, queues, calls = self._site()
        if who.role == "agent":
            agents = [a for a in agents if a["id"] == who.agent]
            calls = [c for c in calls if c.get("agent") == who.agent or who.agent in (c.get("agents_offered") or ())]
        return {"at": time.time(), "me": _me(who), "agents": agents, "queues": queues, "calls": calls,
                "engines": [self.engine_row()]}

    def engine_row(self, now=None):
        from engine.web.metrics import call_stages
        return {"engine": self.engine.acd.engine_id, "accepting": self.engine.accepting,
                "calls": call_stages(self.engine), "at": now or time.time()}

    def changes(self, local, remote=()):
        """The events of a pass: this engine's calls that changed (always: other engines' browsers
        rely on them, and they are in memory), and, when browsers are connected here, the rows of
        the agents named and of every queue whose figures moved (read from Redis)."""
        acd = self.engine.acd
        now = time.time()
        events = []
        if self.clients:
            agents = {key for kind, key in (*local, *remote) if kind == "agent"}
            if agents:
                events += [("agent", dict(row, at=now)) for row in views.agents(acd, now, agents)]
            for row in views.queues(acd, now):
                if _without_time(self._queues.get(row["name"]) or {}) != _without_time(row):
                    self._queues[row["name"]] = row
                    events.append(("queue", dict(row, at=now)))
        rows = {r["call"]: dict(r, engine=acd.engine_id) for r in views.calls(acd, now)}
        calls = []
        for uuid, row in rows.items():
            old = self._calls.get(uuid)
            if old is None or _without_time(old) != _without_time(row):
                calls.append(("call", dict(row, at=now)))
        for uuid in set(self._calls) - set(rows):
            calls.append(("call", {"call": uuid, "gone": True, "engine": acd.engine_id, "at": now}))
        self._calls = rows
        row = self.engine_row(now)
        if row["calls"] != self._stages:
            self._stages = row["calls"]
            calls.append(("engine", row))
        return events + calls, calls

    # --- the pump and the other engines -------------------------------------------------------
    def _run(self):
        acd = self.engine.acd
        last = 0.0
        while True:
            self.bus.flag.wait()
            wait = PASS_EVERY - (time.monotonic() - last)
            if wait > 0:
                gevent.sleep(wait)              # what changes meanwhile joins this pass
            last = time.monotonic()
            local, remote = self.bus.take()
            try:
                events, calls = self.changes(local, remote)
            except REDIS_ERRORS as exc:
                acd.outage.failed(exc, "live updates")      # logged once per outage
                for kind, key in local:
                    self.bus.publish(kind, key)
                gevent.sleep(1.0)
                continue
            except Exception:
                log.exception("live updates: reading the changes failed")
                continue
            if events:
                self.fan_out(events)
            keys = [[kind, key] for kind, key in local if kind in ("agent", "queue")]
            if keys or calls:
                try:
                    acd.store.r.publish(self.channel, json.dumps(
                        {"origin": acd.engine_id, "keys": keys, "events": calls},
                        ensure_ascii=False, default=str))
                except REDIS_ERRORS:
                    pass                # other engines' browsers catch up at the next change

    def _listen(self):
        """What the other engines report: which agents and queues changed (read here from Redis
        when browsers are connected) and their calls' rows (only they know them)."""
        acd = self.engine.acd
        backoff = 0.2
        while True:
            try:
                self._pubsub = acd.store.r.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(self.channel)
                backoff = 0.2
                for message in self._pubsub.listen():
                    try:
                        data = json.loads(message["data"])
                    except (TypeError, ValueError):
                        continue
                    if not isinstance(data, dict) or data.get("origin") == acd.engine_id:
                        continue
                    for key in data.get("keys") or ():
                        if isinstance(key, list) and len(key) == 2 and key[0] in ("agent", "queue"):
                            self.bus.remote(key[0], str(key[1]))
                    calls = [(e[0], e[1]) for e in data.get("events") or ()
                             if isinstance(e, list) and len(e) == 2 and e[0] in ("call", "engine")
                             and isinstance(e[1], dict)]
                    if calls:
                        self.bus.generation += 1        # cached snapshots miss these calls
                        self.fan_out(calls)
            except Exception as exc:
                log.debug("live channel lost (%s)", exc)
                gevent.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


# figures that grow with the clock (the browser adds now - at): a row whose other fields are the same
# is not sent again, or every call's row would go to every wallboard at every pass (300 calls, 10
# wallboards, 5 passes a second: 15,000 events a second for nothing)
TICKING = frozenset(("seconds", "wait_seconds", "talk_seconds", "longest_wait", "at"))


def _without_time(row):
    return {k: v for k, v in row.items() if k not in TICKING}


def _me(who):
    return {"id": who.name, "role": who.role, "agent": who.agent, "via": who.via}


@bp.get("/events")
@requires("agent")
def events():
    from engine.web.server import STREAM_KEY
    state = current_app.extensions["hotline"]
    who = principal()
    to_stream = request.environ.get(STREAM_KEY)
    if to_stream is not None and not to_stream():
        raise HttpError(503, "too many live-update connections; try again")
    live = state.live
    client = live.subscribe(who)          # before the snapshot: nothing between them is lost
    try:
        first = live.snapshot(who)
    except Exception:
        live.remove(client)
        raise
    if who.role == "agent":
        client.calls_seen = {c["call"] for c in first["calls"]}
    sessions = state.sessions

    def stream():
        try:
            yield f"retry: {RETRY_MS}\n\n"
            yield event_text("snapshot", first)
            while True:
                try:
                    name, text = client.queue.get(timeout=KEEPALIVE)
                except gevent.queue.Empty:
                    if client.dropped:
                        return
                    if who.via == "session":
                        try:
                            alive = sessions.get(who.sid, touch=False) is not None
                        except Exception:
                            alive = True          # Redis trouble is not the session's end
                        if not alive:
                            yield event_text("expired", {})
                            return
                    yield ": keepalive\n\n"
                    continue
                if client.dropped:
                    return
                texts = [text]
                while len(texts) < WRITE_BATCH:            # what a pass queued: one write, not one each
                    try:
                        texts.append(client.queue.get_nowait()[1])
                    except gevent.queue.Empty:
                        break
                yield "".join(texts)
        finally:
            live.remove(client)

    return Response(stream_with_context(stream()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
