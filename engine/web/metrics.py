"""GET /metrics: the engine in the Prometheus text format (prometheus-client, our own registry).

Counted as things happen (engine.infra.metrics): ESL events, command round trips, calls by result,
bot recognition and reply latency, web logins. Read at scrape time (EngineCollector): calls in
progress by stage, queue waiting / longest wait / service level (views.queues: the one definition,
answered within the queue's service_level_seconds over answered + abandoned, today), agents by state, CDR
spool depth, database and Redis round trips (one probe each), web sessions and live streams.
A Grafana dashboard of these: docs/grafana-hotline.json.

Scraping needs a supervisor token (Prometheus: `authorization: {credentials_file: ...}`) or session.
"""
import logging
import time

from flask import Blueprint, Response, current_app
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from engine.infra import metrics as instruments
from engine.web.guard import requires

log = logging.getLogger("hotline.web.metrics")

bp = Blueprint("metrics", __name__)

AGENT_STATES = ("available", "reserved", "ringing", "in_call", "wrap_up", "on_break", "logged_out")


class _Forward:
    """The process's instruments inside an app's registry."""

    def __init__(self, registry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()


def call_stages(engine):
    """This engine's trunk calls by stage: ivr (menus, bot, survey...), queue (waiting), ringing
    (an agent's phone rings), agent (talking, held, consulting)."""
    acd = engine.acd
    stages = {"ivr": 0, "queue": 0, "ringing": 0, "agent": 0}
    waiting = set(acd.waiters) if acd is not None else set()
    conversations = dict(acd.conversations) if acd is not None else {}
    for uuid in list(engine.calls):
        conv = conversations.get(uuid)
        if conv is not None:
            stages["agent" if conv.answered_at is not None else "ringing"] += 1
        elif uuid in waiting:
            stages["queue"] += 1
        else:
            stages["ivr"] += 1
    return stages


class EngineCollector:
    def __init__(self, state):
        self.state = state

    def describe(self):
        return []

    def collect(self):
        state = self.state
        engine = state.engine
        acd = engine.acd
        stages = call_stages(engine)
        g = GaugeMetricFamily("hotline_calls_in_progress", "this engine's trunk calls now, by stage", labels=["stage"])
        for stage, n in stages.items():
            g.add_metric([stage], n)
        yield g
        yield from self._acd(acd)
        spool = GaugeMetricFamily("hotline_cdr_spool_depth", "CDRs waiting in the spool file for the database")
        try:
            spool.add_metric([], engine.store.pending())
        except Exception as exc:
            log.debug("spool depth unknown: %s", exc)
        yield spool
        yield from self._latencies(engine, state)
        yield GaugeMetricFamily("hotline_web_streams", "live-update (SSE) connections open on this engine",
                                value=len(state.live.clients))
        dropped = GaugeMetricFamily("hotline_web_streams_dropped", "live-update clients dropped for falling behind "
                                    "(since start)", value=state.live.dropped)
        yield dropped

    def _acd(self, acd):
        if acd is None:
            return
        from engine.acd import views
        try:
            queues = views.queues(acd)
            agents = views.agents(acd)
        except Exception as exc:
            log.warning("metrics: ACD figures unavailable (%s)", exc)
            return
        waiting = GaugeMetricFamily("hotline_queue_waiting", "callers waiting in the queue (site)", labels=["queue"])
        longest = GaugeMetricFamily("hotline_queue_longest_wait_seconds", "wait of the longest-waiting caller",
                                    labels=["queue"])
        sl = GaugeMetricFamily("hotline_queue_service_level_ratio", "today's answered within the queue's "
                               "service_level_seconds over answered + abandoned (0-1; absent before the first)",
                               labels=["queue"])
        offered = GaugeMetricFamily("hotline_queue_offered_today", "callers offered to the queue today",
                                    labels=["queue"])
        answered = GaugeMetricFamily("hotline_queue_answered_today", "callers answered today", labels=["queue"])
        abandoned = GaugeMetricFamily("hotline_queue_abandoned_today", "callers who left while waiting, today",
                                      labels=["queue"])
        for q in queues:
            waiting.add_metric([q["name"]], q["waiting"])
            longest.add_metric([q["name"]], q["longest_wait"])
            if q["service_level"] is not None:
                sl.add_metric([q["name"]], q["service_level"] / 100.0)
            offered.add_metric([q["name"]], q["offered"])
            answered.add_metric([q["name"]], q["answered"])
            abandoned.add_metric([q["name"]], q["abandoned"])
        yield from (waiting, longest, sl, offered, answered, abandoned)
        by_state = {s: 0 for s in AGENT_STATES}
        for a in agents:
            by_state[a["state"]] = by_state.get(a["state"], 0) + 1
        g = GaugeMetricFamily("hotline_agents", "agents by state (site)", labels=["state"])
        for s, n in by_state.items():
            g.add_metric([s], n)
        yield g

    def _latencies(self, engine, state):
        g = GaugeMetricFamily("hotline_backend_latency_seconds", "one round trip to the backend at this scrape "
                              "(absent: it failed)", labels=["backend"])
        up = GaugeMetricFamily("hotline_backend_up", "1 if the backend answered this scrape's probe",
                               labels=["backend"])
        for name, probe in (("redis", lambda: state.redis.ping()), ("database", lambda: _db_ping(engine.store))):
            started = time.monotonic()
            try:
                probe()
            except Exception as exc:
                log.debug("metrics: %s probe failed: %s", name, exc)
                up.add_metric([name], 0)
                continue
            g.add_metric([name], time.monotonic() - started)
            up.add_metric([name], 1)
        yield g
        yield up
        sessions = GaugeMetricFamily("hotline_web_sessions", "web console sessions alive (site, Redis)")
        try:
            sessions.add_metric([], state.sessions.count())
        except Exception:
            pass
        yield sessions


def _db_ping(store):
    with store._lock:
        store._connect()
        store.db.execute_sql("SELECT 1").fetchone()


class Metrics:
    def __init__(self, state):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Forward(instruments.REGISTRY))
        self.registry.register(EngineCollector(state))
        self.logins = instruments.WEB_LOGINS

    def text(self):
        return generate_latest(self.registry)


@bp.get("/metrics")
@requires("supervisor")
def scrape():
    return Response(current_app.extensions["hotline"].metrics.text(), content_type=CONTENT_TYPE_LATEST)
