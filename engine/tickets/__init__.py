"""Tickets (work orders) from the CDR outbox and from agents, with SLA reminders and escalation.

    engine.tickets.daily_counts(db_url, day) -> {"opened": n, "closed": n, "overdue": n}
    TicketStore(db_url, config).open()        create / assign / transition / list / history
    Consumer(db_url, poll_interval)           the CDR outbox -> tickets, exactly once
    SlaChecker(store, hooks, interval)        reminder before, escalation after the due time
    TicketService(settings, hooks).start()    both of the above inside the engine
"""
from engine.tickets.config import DEFAULT_CONFIG, TicketConfig, TicketConfigError, load_config
from engine.tickets.consumer import Consumer
from engine.tickets.service import TicketService
from engine.tickets.counts import daily_counts
from engine.tickets.sla import SlaChecker
from engine.tickets.store import TicketError, TicketStore

__all__ = ["daily_counts", "TicketStore", "TicketError", "Consumer", "SlaChecker", "TicketService", "TicketConfig",
           "TicketConfigError", "load_config", "DEFAULT_CONFIG"]
