"""Tickets in the CDR database: create, assign, move through states, with the full history.

    store = TicketStore(db_url, config).open()      # tables created if missing (idempotent)
    t = store.create(kind="agent", category="consultation", summary="...", call_uuid=..., who="1001")
    store.assign(t["id"], "城管局", "张三", who="supervisor")
    store.transition(t["id"], "in_progress", who="张三")

Every write is one transaction: the ticket row and its TicketEvent commit together. A refused
request (unknown ticket, illegal transition, unknown category or department) raises TicketError
with a message a person can act on, and changes nothing.

The connection, the cooperative wait on a locked database and the serialised writes (SQLite:
BEGIN IMMEDIATE; PostgreSQL: an advisory lock, ticket writes are few and numbers stay gapless)
are engine.infra.dbwriter's, whose comments say why.
"""
import datetime
import json
import logging
import zoneinfo

import peewee

from engine.cdr.models import utcnow
from engine.infra.dbwriter import SerialisedDb
from engine.privacy import mask_text, mask_value
from engine.tickets.config import DEFAULT_CONFIG, TicketConfigError
from engine.tickets.models import KINDS, OPEN_STATES, STATES, TRANSITIONS, Ticket, bound_models

log = logging.getLogger("hotline.tickets")

PG_WRITE_LOCK = 0x7469636B   # advisory lock key ('tick') serialising ticket writers on PostgreSQL
UNIQUE_RETRIES = 3          # runs of a write transaction that lost a unique-key race
TEXT_LIMIT = 2000           # summaries and notes longer than this are refused, not cut
FIELDS = tuple(Ticket._meta.sorted_field_names)


class TicketError(ValueError):
    """A request the ticket module refuses (the message says why); nothing was changed."""


class TicketStore(SerialisedDb):
    pg_write_lock = PG_WRITE_LOCK
    # a write transaction that loses a unique-key race (two writers picking the same ticket
    # number, or making the same (call, kind) ticket) runs again and sees the winner's row
    unique_retries = UNIQUE_RETRIES

    def __init__(self, db_url, config=None, clock=utcnow):
        super().__init__(db_url)
        self.config = config or DEFAULT_CONFIG
        self.clock = clock          # naive UTC now(); tests inject their own
        self.m = None

    def bind(self, db):
        self.m = bound_models(db)
        # The CDR tables belong to the CDR store; created here too (safe) so a consumer that
        # starts before the first CDR finds them.
        return [self.m.Ticket, self.m.TicketEvent, self.m.Cdr, self.m.Outbox, self.m.OutboxAck]

    # --- reading ---------------------------------------------------------------------------
    def get(self, ticket_id):
        """The ticket (dict) by id or number; TicketError when there is none."""
        return self.run(lambda: as_dict(self._row(ticket_id)))

    def list(self, state=None, limit=None):
        if state is not None and state not in STATES:
            raise TicketError(f"unknown state {state!r}; states: {', '.join(STATES)}")
        T = self.m.Ticket

        def query():
            q = T.select().order_by(T.id)
            if state:
                q = q.where(T.state == state)
            if limit:
                q = q.limit(limit)
            return [as_dict(t) for t in q]
        return self.run(query)

    def history(self, ticket_id):
        E = self.m.TicketEvent

        def query():
            t = self._row(ticket_id)
            return [{"at": e.at, "who": e.who, "action": e.action, "from_state": e.from_state,
                     "to_state": e.to_state, "note": e.note}
                    for e in E.select().where(E.ticket_id == t.id).order_by(E.id)]
        return self.run(query)

    def by_call(self, call_uuid, kind):
        T = self.m.Ticket
        row = self.run(lambda: T.get_or_none((T.call_uuid == call_uuid) & (T.kind == kind)))
        return as_dict(row) if row else None

    def by_caller(self, number, limit=10):
        """The caller's tickets, newest first (the agent's screen pop)."""
        T = self.m.Ticket
        return self.run(lambda: [as_dict(t) for t in T.select().where(T.caller_number == number)
                                 .order_by(T.id.desc()).limit(limit)])

    # --- writing ---------------------------------------------------------------------------
    def create(self, *, kind, category, summary="", call_uuid=None, department=None, who="system",
               cdr=None, note=""):
        """A new ticket (dict). With a call uuid, the call's CDR (if stored) fills the caller
        number, recording, IVR path and bot transcript. One ticket per (call, kind): asking again
        raises TicketError naming the existing one."""
        fields = self.new_fields(kind, category, summary, call_uuid, department, who)

        def write():
            T = self.m.Ticket
            if call_uuid:
                existing = T.get_or_none((T.call_uuid == call_uuid) & (T.kind == kind))
                if existing:
                    raise TicketError(f"call {call_uuid} already has a {kind} ticket: {existing.number}")
            return as_dict(self.insert(fields, cdr, who, note))
        return self.run(write, write=True)

    def new_fields(self, kind, category, summary, call_uuid, department, who):
        if kind not in KINDS:
            raise TicketError(f"unknown ticket kind {kind!r}; kinds: {', '.join(KINDS)}")
        try:
            cat = self.config.category(category)
            department = department or cat.department or None
            if department:
                self.config.check_department(department)
        except TicketConfigError as exc:
            raise TicketError(str(exc)) from None
        check_text("summary", summary)
        summary = mask_text(summary)      # an agent may type the caller's ID number (engine.privacy)
        check_name("who", who)
        if call_uuid is not None and (not isinstance(call_uuid, str) or not 0 < len(call_uuid) <= 64
                                      or not call_uuid.isprintable()):
            raise TicketError(f"call uuid {call_uuid!r}: printable text of 1-64 characters expected")
        return {"kind": kind, "category": category, "summary": summary, "call_uuid": call_uuid,
                "department": department, "sla": cat, "by_category": department == cat.department}

    def insert(self, fields, cdr, who, note=""):
        """Insert inside the caller's transaction (the consumer's, with its outbox ack)."""
        T, E = self.m.Ticket, self.m.TicketEvent
        now = self.clock()
        fields = dict(fields)
        sla, by_category = fields.pop("sla"), fields.pop("by_category", False)
        if cdr is None and fields.get("call_uuid"):
            cdr = self._cdr(fields["call_uuid"])
        for key, value in link_fields(cdr or {}).items():
            if fields.get(key) is None:         # what the caller gave wins (a voicemail's file)
                fields[key] = value
        state = "assigned" if fields.get("department") else "new"
        row = T.create(number=self._next_number(now), state=state, created_at=now, updated_at=now,
                       due_at=now + datetime.timedelta(hours=sla.sla_hours), **fields)
        E.create(ticket_id=row.id, at=now, who=who, action="create", from_state=None, to_state="new",
                 note=note or fields.get("summary", ""))
        if state == "assigned":
            E.create(ticket_id=row.id, at=now, who=who, action="assign", from_state="new",
                     to_state="assigned", note=f"department {fields['department']}"
                     + (" (the category's default)" if by_category else ""))
        log.info("%s: ticket %s (%s, %s) created by %s, due %s UTC", fields.get("call_uuid") or "-",
                 row.number, fields["kind"], fields["category"], who, row.due_at.isoformat(timespec="seconds"))
        return row

    def _cdr(self, call_uuid):
        """The stored CDR of a call as a dict of its columns, or None."""
        Cdr = self.m.Cdr
        return Cdr.select().where(Cdr.uuid == call_uuid).dicts().first()

    def _next_number(self, now):
        """T<local date>-<4 digits>, counting within the local day. Unique: inside a write
        transaction (SQLite: BEGIN IMMEDIATE), so two writers cannot pick the same one."""
        T = self.m.Ticket
        local = now.replace(tzinfo=datetime.timezone.utc).astimezone(zoneinfo.ZoneInfo(self.config.timezone))
        prefix = f"T{local:%Y%m%d}-"
        last = (T.select(T.number).where(T.number.startswith(prefix))
                .order_by(peewee.fn.LENGTH(T.number).desc(), T.number.desc()).scalar())
        seq = int(last[len(prefix):]) + 1 if last else 1
        return f"{prefix}{seq:04d}"

    def assign(self, ticket_id, department, person=None, who="system", note=""):
        """To a department and (optionally) a person; reassigning is allowed until resolved."""
        try:
            self.config.check_department(department)
        except TicketConfigError as exc:
            raise TicketError(str(exc)) from None
        if person is not None:
            check_name("person", person)
        check_text("note", note)
        detail = f"department {department}" + (f", person {person}" if person else "")
        return self._move(ticket_id, "assigned", who, f"{detail}. {note}".rstrip(". ") if note else detail,
                          action="assign", changes={"department": department, "assignee": person})

    def transition(self, ticket_id, to_state, who="system", note=""):
        if to_state not in STATES:
            raise TicketError(f"unknown state {to_state!r}; states: {', '.join(STATES)}")
        if to_state == "assigned":
            raise TicketError("use assign (a department, and a person) to assign a ticket")
        if to_state == "withdrawn" and not (note or "").strip():
            raise TicketError("withdrawing a ticket needs a note saying why")
        check_text("note", note)
        return self._move(ticket_id, to_state, who, note)

    def _move(self, ticket_id, to_state, who, note, action="transition", changes=None):
        check_name("who", who)
        note = mask_text(note or "")

        def write():
            row = self._row(ticket_id)
            if to_state not in TRANSITIONS[row.state]:
                allowed = ", ".join(TRANSITIONS[row.state]) or "none: it is final"
                raise TicketError(f"ticket {row.number} is {row.state}; it cannot go to {to_state} "
                                  f"(allowed: {allowed})")
            if to_state == "in_progress" and row.state == "assigned" and not (row.assignee or (changes or {}).get("assignee")):
                raise TicketError(f"ticket {row.number} has no assignee yet; assign it to a person first")
            now = self.clock()
            T = self.m.Ticket
            T.update(state=to_state, updated_at=now, **(changes or {})).where(T.id == row.id).execute()
            self.m.TicketEvent.create(ticket_id=row.id, at=now, who=who, action=action,
                                      from_state=row.state, to_state=to_state, note=note or "")
            log.info("%s: ticket %s %s -> %s by %s%s", row.call_uuid or "-", row.number, row.state,
                     to_state, who, f": {note}" if note else "")
            return as_dict(T.get_by_id(row.id))
        return self.run(write, write=True)

    def amend(self, ticket_id, who, summary=None, category=None):
        """An agent corrects their work order (wrap-up): new summary and/or category, with a
        history row; only while it is open."""
        check_name("who", who)
        if summary is not None:
            check_text("summary", summary)
            summary = mask_text(summary)
        if category is not None:
            try:
                self.config.category(category)
            except TicketConfigError as exc:
                raise TicketError(str(exc)) from None

        def write():
            row = self._row(ticket_id)
            if row.state not in OPEN_STATES:
                raise TicketError(f"ticket {row.number} is {row.state}; only open tickets are amended")
            changes = {k: v for k, v in (("summary", summary), ("category", category)) if v is not None}
            now = self.clock()
            T = self.m.Ticket
            T.update(updated_at=now, **changes).where(T.id == row.id).execute()
            self.m.TicketEvent.create(ticket_id=row.id, at=now, who=who, action="amend",
                                      from_state=row.state, to_state=row.state,
                                      note=summary if summary is not None else f"category {category}")
            return as_dict(T.get_by_id(row.id))
        return self.run(write, write=True)

    def mark(self, ticket_id, field, action, who, note):
        """Set reminded_at/escalated_at once (the SLA checker): False when it was already set."""
        def write():
            row = self._row(ticket_id)
            if getattr(row, field) is not None or row.state not in OPEN_STATES:
                return False
            now = self.clock()
            T = self.m.Ticket
            T.update(**{field: now}).where(T.id == row.id).execute()
            self.m.TicketEvent.create(ticket_id=row.id, at=now, who=who, action=action,
                                      from_state=row.state, to_state=row.state, note=note)
            return True
        return self.run(write, write=True)

    def _row(self, ticket_id):
        T = self.m.Ticket
        key = str(ticket_id).strip()
        if key.isdigit():
            row = T.get_or_none(T.id == int(key))
        else:
            row = T.get_or_none(T.number == key.upper())
        if row is None:
            raise TicketError(f"no ticket {ticket_id!r} (give its id or its number, e.g. T20261123-0001)")
        return row


def link_fields(cdr):
    """What a ticket keeps from its call's CDR (a stored row dict or an outbox payload)."""
    out = {}
    if cdr.get("caller_number") is not None:
        out["caller_number"] = cdr["caller_number"]
    if cdr.get("recording"):
        out["recording"] = cdr["recording"]
    for key in ("ivr_path", "bot_transcript"):
        value = mask_value(cdr.get(key))          # masked in CDRs since issue 17; older rows too
        if value not in (None, "", [], {}):
            out[key] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return out


def as_dict(row):
    return {name: getattr(row, name) for name in FIELDS}


def check_text(what, text):
    if not isinstance(text, str):
        raise TicketError(f"{what}: text expected, got {type(text).__name__}")
    if len(text) > TEXT_LIMIT:
        raise TicketError(f"{what}: {len(text)} characters; at most {TEXT_LIMIT}")
    if "\x00" in text:
        raise TicketError(f"{what}: contains a NUL character")


def check_name(what, name):
    if not isinstance(name, str) or not name.strip() or len(name) > 64 or not name.isprintable():
        raise TicketError(f"{what}: {name!r} is not a name (printable text, 1-64 characters)")

