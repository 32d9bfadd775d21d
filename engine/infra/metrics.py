"""The engine's own Prometheus instruments, in a registry of our own (not prometheus_client's
global default: importing a library never adds to what /metrics shows, and tests see only ours).

Code that counts or times something imports the instrument from here; engine.web.metrics serves
this registry at /metrics, with the figures read at scrape time (queues, agents, spool...).
"""
from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

ESL_EVENTS = Counter("hotline_esl_events", "events received from the switch (all connections)",
                     registry=REGISTRY)
ESL_COMMAND_SECONDS = Histogram("hotline_esl_command_seconds", "round trip of a command to the switch and its reply",
                                buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                                registry=REGISTRY)
CALLS = Counter("hotline_calls", "trunk calls ended, by result (call_result: unanswered, agent, abandoned, "
                "self_service)", ["result"], registry=REGISTRY)
BOT_RECOGNITION_SECONDS = Histogram("hotline_bot_recognition_seconds",
                                    "end of the caller's speech to the recognised text",
                                    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5), registry=REGISTRY)
BOT_REPLY_SECONDS = Histogram("hotline_bot_reply_seconds",
                              "end of the caller's speech to the bot's first audio",
                              buckets=(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8), registry=REGISTRY)
WEB_LOGINS = Counter("hotline_web_logins", "web console logins, by outcome", ["outcome"], registry=REGISTRY)


def call_result(record):
    """A CDR's result, in a few values (a label's values must stay few): unanswered, agent (talked
    to a person), abandoned (waited in a queue, left before an agent), self_service."""
    if not record.get("answer_time"):
        return "unanswered"
    if record.get("agent"):
        return "agent"
    if record.get("queue"):
        return "abandoned"
    return "self_service"
