"""SLA watch: a reminder before a ticket's due time, an escalation after it, each exactly once.

    checker = SlaChecker(store, hooks=[notify], interval=60).start()
    checker.check_once()          # tests: with the store's injected clock

A hook is fn(action, ticket) with action "remind" or "escalate" and the ticket as a dict; it runs
after the mark is committed (reminded_at / escalated_at, plus a history line), so a restart never
sends a notice twice. A hook that raises is logged; the mark stays (the notice counts as sent
once the log line says so). A ticket already past due when first seen is escalated only.
"""
import datetime
import logging

from engine.infra.periodic import Looping, Periodic
from engine.tickets.models import OPEN_STATES

log = logging.getLogger("hotline.tickets")


class SlaChecker(Looping):
    def __init__(self, store, hooks=(), interval=60.0):
        self.store = store
        self.hooks = list(hooks)
        self.loop = Periodic(self.check_once, interval, "ticket SLA check", log)

    def check_once(self, now=None):
        """Send what is due now; returns [(action, ticket dict)] in the order sent."""
        if self.store.db is None:          # down at start, or never opened: try now
            self.store.open()
        now = now or self.store.clock()
        sent = []
        for ticket in self._candidates(now):
            action = self._due_action(ticket, now)
            if action is None:
                continue
            field = "reminded_at" if action == "remind" else "escalated_at"
            note = (f"due {ticket['due_at']:%Y-%m-%d %H:%M} UTC; reminder sent" if action == "remind"
                    else f"overdue since {ticket['due_at']:%Y-%m-%d %H:%M} UTC; escalated")
            if not self.store.mark(ticket["id"], field, action, "sla", note):
                continue            # another checker (or an earlier pass) got there first
            ticket = self.store.get(ticket["id"])
            level = logging.WARNING if action == "escalate" else logging.INFO
            log.log(level, "%s: ticket %s %s (%s, department %s, assignee %s): %s",
                    ticket["call_uuid"] or "-", ticket["number"], "ESCALATED" if action == "escalate" else "reminder",
                    ticket["category"], ticket["department"] or "-", ticket["assignee"] or "-", note)
            self._notify(action, ticket)
            sent.append((action, ticket))
        return sent

    def _candidates(self, now):
        T = self.store.m.Ticket
        horizon = now + datetime.timedelta(hours=max(
            [c.reminder_before_hours for c in self.store.config.categories.values()] or [0]))
        return self.store.run(lambda: [
            {"id": t.id, "category": t.category, "due_at": t.due_at, "reminded_at": t.reminded_at,
             "escalated_at": t.escalated_at}
            for t in T.select().where(T.state.in_(OPEN_STATES) & T.escalated_at.is_null()
                                      & (T.due_at <= horizon)).order_by(T.due_at, T.id)])

    def _due_action(self, ticket, now):
        if ticket["due_at"] <= now:
            return "escalate"
        category = self.store.config.categories.get(ticket["category"])
        before = datetime.timedelta(hours=category.reminder_before_hours if category else 0)
        if ticket["reminded_at"] is None and before and ticket["due_at"] - before <= now:
            return "remind"
        return None

    def _notify(self, action, ticket):
        for hook in self.hooks:
            try:
                hook(action, ticket)
            except Exception:       # noqa: BLE001 - a broken notifier must not stop the checks
                log.exception("ticket %s: %s hook %r failed", ticket["number"], action, hook)
