"""The number lists: the inbound blacklist, do-not-call (DNC) and the dial-block list.

    lists = NumberLists(db_url).open()          # table created if missing
    lists.add("blacklist", "13800138000", reason="abuse", added_by="admin", action="message")
    lists.add("block", "0755*")                 # a trailing * makes a prefix entry
    lists.reload()                              # the engine's in-memory view (also every N s)
    lists.blacklist_hit("+86 138 0013 8000")    # -> entry dict (hit counted) or None
    lists.is_dnc("13800138000", "survey-2026")  # campaign '' entries apply to every campaign

The `block` entries add to the settings' dial-block list (engine.outbound.dialblock.DialBlock,
the one check for transfers and outbound calls).
"""
import csv
import datetime
import io
import logging
import re
import time

import gevent
import peewee

from engine.cdr.models import utcnow
from engine.infra.dbwriter import SerialisedDb
from engine.outbound.models import ACTIONS, KINDS, bound_model
from engine.outbound.numbers import InvalidNumber, lookup_forms, normalise

log = logging.getLogger("hotline.outbound.lists")

PG_WRITE_LOCK = 0x6C69_7374     # advisory lock key ('list') serialising list writers on PostgreSQL
EXPORT_FIELDS = ("number", "reason", "expires", "extra", "added_by", "hits")
MAX_PROBLEMS_SHOWN = 50     # bad import rows listed (a wrong file can have a million)


class ListError(ValueError):
    """A request the lists refuse; the message says why, nothing was changed."""


def parse_entry_number(text, kind):
    """'13800138000' / '+86 138...' -> ('13800138000', False); '0755*' -> ('0755', True)."""
    raw = str(text or "").strip()
    if raw.endswith("*"):
        digits = re.sub(r"[\s\-]", "", raw[:-1])
        for p in ("+86", "0086"):
            if digits.startswith(p):
                digits = "0" + digits[len(p):] if not digits[len(p):].startswith("1") else digits[len(p):]
        if not re.fullmatch(r"\+?\d{1,20}", digits):
            raise ListError(f"prefix {raw!r}: digits then '*' (e.g. 0755*)")
        return digits, True
    try:
        return normalise(raw).national, False
    except InvalidNumber as exc:
        if kind == "block" and re.fullmatch(r"\d{3,20}", raw):
            return raw, False                   # any digits may be blocked
        raise ListError(str(exc)) from None


def _parse_expiry(text):
    if text in (None, ""):
        return None
    if isinstance(text, datetime.datetime):
        return text
    try:
        day = datetime.date.fromisoformat(str(text).strip())
    except ValueError:
        raise ListError(f"expiry {text!r}: use YYYY-MM-DD") from None
    return datetime.datetime.combine(day, datetime.time(0))


class NumberLists(SerialisedDb):
    pg_write_lock = PG_WRITE_LOCK

    def __init__(self, db_url, clock=utcnow):
        super().__init__(db_url)
        self.clock = clock          # naive UTC now()
        self.Entry = None
        self._view = {k: ({}, []) for k in KINDS}   # kind -> ({(number, campaign): entry}, [prefix entries])
        self.loaded_at = None

    def bind(self, db):
        self.Entry = bound_model(db)
        return [self.Entry]

    # --- changes -----------------------------------------------------------------------------
    def add(self, kind, number, reason="", added_by="", action=None, campaign="", expires=None):
        """Add (or update) an entry; returns it as a dict."""
        write = self._entry_writer(kind, number, reason, added_by, action, campaign, expires)
        return self.run(write, write=True)

    def _entry_writer(self, kind, number, reason="", added_by="", action=None, campaign="", expires=None):
        """Check one entry (ListError says why not) and return the function that writes it."""
        if kind not in KINDS:
            raise ListError(f"unknown list {kind!r}; lists: {', '.join(KINDS)}")
        digits, prefix = parse_entry_number(number, kind)
        if kind == "blacklist":
            action = action or "message"
            if action not in ACTIONS:
                raise ListError(f"blacklist action {action!r}: one of {', '.join(ACTIONS)}")
        elif action:
            raise ListError(f"only blacklist entries have an action (message or queue), not {kind}")
        if campaign and kind != "dnc":
            raise ListError("only DNC entries may be for one campaign")
        if len(str(reason)) > 500:
            raise ListError("reason longer than 500 characters")
        if any(ord(c) < 32 or ord(c) == 127 for c in str(reason) + str(added_by) + str(campaign)):
            raise ListError("a control character in the reason, campaign or name")
        expires_at = _parse_expiry(expires)
        E = self.Entry
        fields = dict(reason=str(reason or ""), added_by=str(added_by or "")[:64], action=action,
                      expires_at=expires_at)

        def write():
            row = E.get_or_none(E.kind == kind, E.number == digits, E.prefix == prefix, E.campaign == (campaign or ""))
            if row is None:
                row = E.create(kind=kind, number=digits, prefix=prefix, campaign=campaign or "", **fields)
            else:
                for k, v in fields.items():
                    setattr(row, k, v)
                row.save()
            return self._row(row)
        return write

    def remove(self, kind, number, campaign=""):
        digits, prefix = parse_entry_number(number, kind)
        E = self.Entry
        gone = self.run(lambda: E.delete().where(
            E.kind == kind, E.number == digits, E.prefix == prefix, E.campaign == (campaign or "")).execute(),
            write=True)
        return gone > 0

    def add_from_optout(self, number, campaign):
        """The called person pressed the opt-out key: never call them again for this campaign."""
        entry = self.add("dnc", number, reason="opt-out key", added_by="caller", campaign=campaign or "")
        self._remember(entry)
        return entry

    def entries(self, kind, include_expired=True):
        E = self.Entry
        now = self.clock()
        rows = self.run(lambda: list(E.select().where(E.kind == kind).order_by(E.prefix, E.number)))
        return [self._row(r) for r in rows if include_expired or not r.expires_at or r.expires_at > now]

    @staticmethod
    def _row(r):
        return {"id": r.id, "kind": r.kind, "number": r.number + ("*" if r.prefix else ""),
                "digits": r.number, "prefix": bool(r.prefix), "campaign": r.campaign, "action": r.action,
                "reason": r.reason, "added_by": r.added_by,
                "expires": r.expires_at.date().isoformat() if r.expires_at else None,
                "expires_at": r.expires_at, "hits": r.hits,
                "last_hit": r.last_hit_at.isoformat(timespec="seconds") if r.last_hit_at else None}

    # --- import / export (CSV: number,reason,expires,extra) -----------------------------------
    def import_file(self, kind, path, added_by=""):
        """Add every row of a CSV file, or none: a bad row stops the import with `file:line:`
        problems (all of them). `extra` is the blacklist action or the DNC campaign."""
        try:
            with open(path, encoding="utf-8-sig") as f:
                text = f.read()
        except OSError as exc:
            raise ListError(f"{path}: cannot read: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ListError(f"{path}: not UTF-8 text at byte {exc.start} (save the sheet as \"CSV UTF-8\")") from None
        writers, problems = [], []
        reader = csv.reader(io.StringIO(text))
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise ListError(f"{path}:{reader.line_num}: not CSV: {exc}") from None
            line_no = reader.line_num           # the physical line (a quoted field may span lines)
            if not row or not "".join(row).strip() or row[0].strip().startswith("#"):
                continue
            if line_no == 1 and row[0].strip().lower() == "number":
                continue                        # a header
            number, reason, expires, extra = [c.strip() for c in (list(row) + ["", "", "", ""])[:4]]
            try:
                writers.append(self._entry_writer(
                    kind, number, reason=reason, added_by=added_by, expires=expires or None,
                    action=(extra or None) if kind == "blacklist" else None,
                    campaign=extra if kind == "dnc" else ""))
            except ListError as exc:
                problems.append(f"{path}:{line_no}: {exc}")
        if problems:
            shown = problems[:MAX_PROBLEMS_SHOWN]
            more = len(problems) - len(shown)
            raise ListError("nothing imported:\n" + "\n".join(shown) + (f"\n... and {more} more" if more else ""))
        # one transaction: the file goes in whole or not at all, also if the database fails midway
        self.run(lambda: [w() for w in writers], write=True)
        return len(writers)

    def export_rows(self, kind):
        out = [list(EXPORT_FIELDS)]
        for e in self.entries(kind):
            extra = e["action"] if kind == "blacklist" else e["campaign"]
            out.append([e["number"], e["reason"], e["expires"] or "", extra or "", e["added_by"], e["hits"]])
        return out

    # --- the engine's view -------------------------------------------------------------------
    def reload(self):
        """Read every unexpired entry into memory (the engine calls it every
        outbound_calls.lists_reload_seconds, so the CLI's changes reach it)."""
        view = {k: ({}, []) for k in KINDS}
        for kind in KINDS:
            for e in self.entries(kind, include_expired=False):
                self._place(view, e)
        self._view = view
        self.loaded_at = time.monotonic()
        return {k: len(v[0]) + len(v[1]) for k, v in view.items()}

    @staticmethod
    def _place(view, e):
        exact, prefixes = view[e["kind"]]
        if e["prefix"]:
            prefixes.append(e)
            prefixes.sort(key=lambda x: -len(x["digits"]))
        else:
            exact[(e["digits"], e["campaign"])] = e

    def _remember(self, e):
        self._place(self._view, e)

    def _match(self, kind, number, campaign=""):
        exact, prefixes = self._view[kind]
        keys = lookup_forms(number)
        now = self.clock()
        for key in keys:
            for c in ({"", campaign} if campaign else {""}):
                e = exact.get((key, c))
                if e and not (e["expires_at"] and e["expires_at"] <= now):
                    return e
        for e in prefixes:
            if e["campaign"] in ("", campaign) and any(k.startswith(e["digits"]) for k in keys) \
                    and not (e["expires_at"] and e["expires_at"] <= now):
                return e
        return None

    def blacklist_entry(self, number):
        """The blacklist entry this number matches, without counting a hit (tools, checks)."""
        return self._match("blacklist", number)

    def blacklist_hit(self, number):
        """The blacklist entry this caller number matches (the hit is counted), or None."""
        e = self._match("blacklist", number)
        if e is not None:
            e["hits"] = e.get("hits", 0) + 1
            gevent.spawn(self._count_hit, e["id"])
        return e

    def _count_hit(self, entry_id):
        E = self.Entry
        try:
            self.run(lambda: E.update(hits=E.hits + 1, last_hit_at=self.clock()).where(E.id == entry_id).execute(),
                     write=True)
        except Exception as exc:            # the caller is already refused; the count is what is lost
            log.error("blacklist hit on entry %s not counted: %s", entry_id, exc)

    def is_dnc(self, number, campaign=""):
        """Asked from the database each time (an opt-out taken by another engine a second ago
        counts); the in-memory view if the database cannot answer."""
        try:
            return self._dnc_in_db(number, campaign or "")
        except peewee.DatabaseError as exc:
            log.warning("DNC asked from memory (%s as of the last reload): %s", number, exc)
            return self._match("dnc", number, campaign or "") is not None

    def _dnc_in_db(self, number, campaign):
        E = self.Entry
        keys = lookup_forms(number)
        now = self.clock()
        rows = self.run(lambda: list(E.select().where(
            E.kind == "dnc", E.campaign.in_(["", campaign]),
            ((E.prefix == False) & E.number.in_(keys)) | (E.prefix == True))))     # noqa: E712
        for r in rows:
            if r.expires_at and r.expires_at <= now:
                continue
            if (not r.prefix) or any(k.startswith(r.number) for k in keys):
                return True
        return False

    def blocked_entry(self, number):
        return self._match("block", number)


# the dial-block list used to live here; its home is engine.outbound.dialblock
from engine.outbound.dialblock import DialBlock, active, install  # noqa: E402,F401
