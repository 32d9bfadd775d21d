"""The ticket module inside the engine: the outbox consumer and the SLA checker, from settings.

    tickets = TicketService(settings, hooks=[notify]).start()   # in Engine.start()
    tickets.stop()                                              # in Engine.shutdown()

Categories come from `tickets.yaml` beside the settings file (built-in defaults without one). A
database that is down at start is no reason to stop the engine: both greenlets keep retrying.
A hook is fn(action, ticket) with action "remind" or "escalate" (see engine/tickets/sla.py).
"""
from pathlib import Path

from engine.tickets.config import load_config
from engine.tickets.consumer import Consumer
from engine.tickets.sla import SlaChecker
from engine.tickets.store import TicketStore

POLL_INTERVAL = 2.0        # seconds between outbox polls
SLA_INTERVAL = 60.0        # seconds between SLA checks


def config_path(settings):
    """tickets.yaml beside the settings file, or None (defaults) when there is none."""
    if settings.source is None:
        return None
    path = Path(settings.source).resolve().parent / "tickets.yaml"
    return path if path.exists() else None


class TicketService:
    def __init__(self, settings, hooks=(), config=None, poll_interval=POLL_INTERVAL, sla_interval=SLA_INTERVAL):
        self.config = config or load_config(config_path(settings))     # raises TicketConfigError
        self.url = settings.database.url
        # Two stores, two connections: a slow SLA pass never holds up the outbox or the reverse.
        self.consumer = Consumer(self.url, poll_interval, config=self.config)
        self.checker = SlaChecker(TicketStore(self.url, self.config), hooks=hooks, interval=sla_interval)

    def start(self):
        self.consumer.start()
        self.checker.start()
        return self

    def stop(self):
        self.consumer.stop()
        self.checker.stop()
        self.consumer.store.close()
        self.checker.store.close()
