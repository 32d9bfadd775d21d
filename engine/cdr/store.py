"""Durable CDR storage: upsert by call uuid plus an outbox row in one transaction, never a lost CDR.

`write(record)` tries the database a few times; if it still fails, the record is appended (fsync)
to a spool file and `write` returns False. A drainer greenlet replays the spool into the database
and removes entries only once they are committed. A full disk while spooling keeps the record in
memory for the drainer and logs loudly. `write` never raises for database or disk trouble.

Why waits are cooperative: SQLite's own busy handler sleeps inside C, which would stop every call
on the gevent hub. SQLite is told not to wait at all; the store sleeps with gevent between polls
until `busy_timeout` is used up (one "try"), then backs off and tries again. PostgreSQL gets a
gevent wait callback and lock_timeout = busy_timeout (engine.infra.database.database_from_url).

Writes go through one writer greenlet, BATCH records a transaction; spool replays go one record a
transaction, and a record the database refuses outright is set aside in `cdr-spool.rejected`.

Storage trouble is never "a bad row": a full disk, an I/O error, a read-only file system or a
locked database (SQLite's "database or disk is full", "disk I/O error", "attempt to write a
readonly database"; PostgreSQL's classes 53 and 58, 25006) is transient, and the row waits in the
spool or in memory until the storage recovers. A row leaves memory only once it is committed or
durably written to a file (spool or rejected file): nothing that is only in memory is ever dropped.

`save(record)` says where a record went: "committed", "spooled" (fsynced to the spool file) or
"memory" (neither would take it: lost if the process dies now). Whoever holds another copy of the
call (the switch's XML CDR file) keeps it until save() says "committed" or "spooled".

A provisional record (tag "provisional", written while the call is still going: queue join, agent
answer, transfer) never overwrites a final one and makes no outbox row: consumers see the call once
it has ended (the engine's final write, or the switch-CDR import completing the row).

Replays are harmless: every write() carries a write id (the outbox row is unique by it) and an
updated_at stamp (a replayed older version never overwrites a newer one; stamps only grow within
a process, and a direct write always applies, so a clock stepped back cannot discard an update).

Spool layout (spool_dir): `cdr-spool.jsonl` (one JSON record a line, appended); the drainer renames
it to `cdr-spool.<ns>.draining` while it replays; lines that are not JSON (a crash mid-write) are
moved to `cdr-spool.corrupt` for a human, never deleted.
"""
import datetime
import glob
import json
import logging
import os
import time
import uuid as uuidlib

import gevent
import gevent.event
import gevent.lock
import peewee

from engine.cdr.models import CDR_FIELDS, MODELS, Cdr, Outbox, OutboxAck
from engine.cdr.rows import as_dict, aware, db_value, iso, json_safe, keep_nul_text, naive, normalize, parse_time
from engine.cdr.storage_errors import is_transient
from engine.infra.database import database_from_url, is_busy, make_sqlite_dir, sqlite_path

log = logging.getLogger("hotline.cdr")

SPOOL_NAME = "cdr-spool.jsonl"
CORRUPT_NAME = "cdr-spool.corrupt"
REJECTED_NAME = "cdr-spool.rejected"
LOCK_POLL = 0.02            # seconds between polls of a locked SQLite database
BATCH = 8                   # CDRs a transaction: one commit (fsync) for many, ~6 ms of hub time
YIELD = 0.001               # seconds the writer and the drainer pause between transactions
MAX_BACKOFF = 0.5           # seconds between tries, at most
CLOSE_WAIT = 15.0           # seconds close() keeps trying to store CDRs that are only in memory
# Errors meaning "the database is in trouble", as opposed to a bug in our code.
DB_ERRORS = (peewee.DatabaseError, peewee.InterfaceError, OSError)
PROVISIONAL = "provisional"     # tag of a CDR written while its call is still going


class CdrStore:
    def __init__(self, url, spool_dir, retries=3, busy_timeout=1.0, drain_interval=5.0,
                 close_wait=CLOSE_WAIT):
        self.url = url
        self.spool_dir = os.fspath(spool_dir)
        self.spool_path = os.path.join(self.spool_dir, SPOOL_NAME)
        self.retries = retries
        self.busy_timeout = busy_timeout
        self.drain_interval = drain_interval
        self.close_wait = close_wait
        self.db = None
        self.db_down = False          # set after a write gave up: writes go straight to the spool
        self._memory = []             # records neither the database nor the disk would take
        self._in_drain = []           # records taken from _memory by the drain in progress
        self._spool_failing = False   # the spool's disk refused the last append
        self._lock = gevent.lock.RLock()          # one connection, one user at a time
        self._spool_lock = gevent.lock.RLock()
        self._drain_lock = gevent.lock.Semaphore()
        self._drainer = None
        self._inode = None
        self._last_stamp = None
        self._queue = []              # (row, AsyncResult) waiting for the writer greenlet
        self._writer = None
        self.last_error = None

    # --- life cycle -------------------------------------------------------------------------
    def open(self, drain=True):
        """Bind the tables, create them if needed, replay the spool. Works with the database down."""
        os.makedirs(self.spool_dir, exist_ok=True)
        self.db = database_from_url(self.url, self.busy_timeout)
        self.db.bind(MODELS, bind_refs=False, bind_backrefs=False)
        make_sqlite_dir(self.db)
        with self._lock:
            try:
                self._connect()
            except Exception as exc:       # noqa: BLE001 - any driver trouble: spool, do not stop
                log.error("CDR database %s unavailable at start (%s); CDRs go to the spool %s",
                          self.url, exc, self.spool_path)
                self.db_down = True
        if drain:
            self.drain()
        return self

    def start(self):
        if self._drainer is None:
            self._drainer = gevent.spawn(self._drain_loop)
        return self

    def stop(self):
        if self._drainer is not None:
            self._drainer.kill()
            self._drainer = None

    def close(self):
        self.stop()
        if self.db is None:
            return
        if self._writer is not None:
            self._writer.join(timeout=max(10.0, 3 * self.retries * self.busy_timeout))   # CDRs in flight
        if self._memory or self.pending():
            self.drain()
        # CDRs only in memory die with the process: give a full disk or a locked database a few
        # more seconds to take them (the service manager's stop timeout is far longer)
        deadline = time.monotonic() + self.close_wait
        while self._memory and time.monotonic() < deadline:
            gevent.sleep(min(1.0, self.close_wait))
            self.drain()
        if self._memory:
            # Last resort before the process ends: the log is the only place left.
            for row in self._memory:
                log.critical("CDR NOT STORED (database and spool both failed): %s",
                             json.dumps(row, ensure_ascii=False))
        with self._lock:
            self._disconnect()

    # --- writing ----------------------------------------------------------------------------
    def write(self, record) -> bool:
        """Store one CDR (upsert by uuid) and its outbox row. False = kept in the spool (or, with
        the spool's disk full too, in memory) for later; see save()."""
        return self.save(record) == "committed"

    def save(self, record) -> str:
        """write() that says where the record went: "committed", "spooled" or "memory".

        Calls hand their record to one writer greenlet and wait: it commits up to BATCH records a
        transaction and lets the hub run between transactions, so a burst of hangups costs the
        other calls a few milliseconds, not one SQLite commit per hangup in a row.
        """
        if self.db is None:
            raise RuntimeError("CdrStore.write() before open()")
        row = normalize(record)
        row["_write_id"] = uuidlib.uuid4().hex
        row["updated_at"] = iso(self._stamp())
        if not self.db_down:
            done = gevent.event.AsyncResult()
            self._queue.append((row, done))
            if self._writer is None:
                self._writer = gevent.spawn(self._write_loop)
            if done.get():
                return "committed"
        if self._spool([row]):
            log.warning("%s: CDR kept in the spool %s", row["uuid"], self.spool_path)
            return "spooled"
        return "memory"

    def _write_loop(self):
        batch = []
        try:
            while True:
                if not self._queue:
                    self._writer = None     # no yield between the check and this: write() respawns us
                    return
                batch, self._queue = self._queue[:BATCH], self._queue[BATCH:]
                ok = not self.db_down and self._commit_with_retries([row for row, _ in batch])
                for _, done in batch:
                    done.set(ok)
                gevent.sleep(YIELD)         # a timer, not sleep(0): timers and sockets get their turn
        finally:
            # Killed or broken: no caller may wait forever; they spool their CDRs themselves.
            if self._writer is gevent.getcurrent():
                self._writer = None
                waiting, self._queue = batch + self._queue, []
                for _, done in waiting:
                    if not done.ready():
                        done.set(False)

    def _commit_with_retries(self, rows):
        attempts = max(1, self.retries)
        for n in range(attempts):
            if self._attempt(rows, replay=False):
                return True
            if n + 1 < attempts:
                gevent.sleep(min(MAX_BACKOFF, 0.05 * 2 ** n))
        log.error("CDR database %s failing; spooling CDRs until it recovers", self.url)
        self.db_down = True
        return False

    def _stamp(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + datetime.timedelta(microseconds=1)
        self._last_stamp = now
        return now

    def _attempt(self, rows, replay=True) -> bool:
        """One try to commit rows in one transaction: wait for a lock cooperatively up to
        busy_timeout, give up at once on other errors."""
        deadline = time.monotonic() + self.busy_timeout
        self.last_error = None
        while True:
            with self._lock:
                try:
                    self._connect()
                    with self.db.atomic():
                        for row in rows:
                            self._upsert(row, replay)
                    return True
                except Exception as exc:       # noqa: BLE001 - a driver may raise ValueError etc.
                    # Never raise for database trouble: drivers also refuse values with plain
                    # exceptions (psycopg2: ValueError for a NUL character in text).
                    error = exc
                    busy = is_busy(exc)
                    if not busy:
                        self._disconnect()     # the next try starts from a fresh connection
                    if not isinstance(exc, DB_ERRORS):
                        log.error("CDR write raised %s: %s", type(exc).__name__, exc)
            if not busy or time.monotonic() >= deadline:
                log.warning("%s: CDR write failed: %s", ", ".join(r.get("uuid", "?") for r in rows[:5]), error)
                self.last_error = error
                return False
            gevent.sleep(LOCK_POLL)

    def _upsert(self, row, replay):
        fields = {k: db_value(k, v) for k, v in row.items() if k in CDR_FIELDS}
        updated_at = parse_time(row["updated_at"])
        provisional = is_provisional(row)
        if replay or provisional:
            current = Cdr.select(Cdr.updated_at, Cdr.tags).where(Cdr.uuid == row["uuid"]).first()
            stored_provisional = current is not None and is_provisional({"tags": current.tags})
            if current is not None and replay and naive(current.updated_at) > updated_at \
                    and not (stored_provisional and not provisional):
                # (a final version always replaces a provisional one, whatever their stamps say:
                # a snapshot of the call in progress may be stamped after its spooled final CDR)
                log.info("%s: spooled CDR version is older than the stored one; not applied", row["uuid"])
                return
            if current is not None and provisional and not stored_provisional:
                # the call has ended and its CDR is final: a late snapshot of it in progress is stale
                log.info("%s: provisional CDR after the final one; not applied", row["uuid"])
                return
        fields["updated_at"] = updated_at
        if sqlite_path(self.db) is None:
            keep_nul_text(fields)
        (Cdr.insert(**fields)
            .on_conflict(conflict_target=[Cdr.uuid], preserve=[getattr(Cdr, k) for k in fields if k != "uuid"])
            .execute())
        if provisional:
            return                  # consumers hear of the call when it has ended
        # Consumers get the whole CDR as stored now, not just the fields this write carried.
        payload = json_safe(as_dict(Cdr.get(Cdr.uuid == row["uuid"])))
        (Outbox.insert(cdr_uuid=row["uuid"], kind="cdr", write_id=row["_write_id"], payload=payload)
            .on_conflict_ignore().execute())

    # --- connection -------------------------------------------------------------------------
    def _connect(self):
        path = sqlite_path(self.db)
        if not self.db.is_closed() and path and path != ":memory:":
            # A database file deleted or moved away under an open connection swallows writes
            # into a ghost inode: notice it and reconnect to whatever is at the path now.
            try:
                inode = os.stat(path).st_ino
            except OSError:
                inode = None
            if inode != self._inode:
                log.error("CDR database file %s was replaced or removed; reconnecting", path)
                self._disconnect()
        if self.db.is_closed():
            if path and path != ":memory:" and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
                raise peewee.OperationalError(f"directory of {path} does not exist")
            self.db.connect()
            self.db.create_tables(MODELS, safe=True)
            if path and path != ":memory:":
                self._inode = os.stat(path).st_ino

    def _reachable(self):
        with self._lock:
            try:
                self._connect()
                self.db.execute_sql("SELECT 1")
                return True
            except Exception:               # noqa: BLE001 - unreachable, whatever the driver says
                self._disconnect()
                return False

    def _disconnect(self):
        try:
            if self.db is not None and not self.db.is_closed():
                self.db.close()
        except Exception as exc:        # a broken connection may fail to close; it is dropped anyway
            log.debug("closing the CDR database: %s", exc)

    # --- spool ------------------------------------------------------------------------------
    def _spool(self, rows):
        lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in rows]
        try:
            _append_durably(self.spool_path, lines, self._spool_lock)
        except OSError as exc:
            # Once per episode: the drainer tries again every few seconds, and a line each time
            # would bury the one an operator needs.
            if not self._spool_failing:
                log.critical("CANNOT SPOOL CDRs to %s (%s): kept in memory until the database or "
                             "the disk recovers (CDRs in memory are lost if the process dies)",
                             self.spool_path, exc)
            self._spool_failing = True
            self._memory.extend(rows)
            return False
        if self._spool_failing:
            self._spool_failing = False
            log.warning("the spool %s takes CDRs again", self.spool_path)
        return True

    def pending(self) -> int:
        """CDRs waiting for the database (spooled or in memory)."""
        count = len(self._memory) + len(self._in_drain)
        for path in [self.spool_path] + glob.glob(os.path.join(self.spool_dir, "cdr-spool.*.draining")):
            try:
                with open(path, "rb") as fh:
                    count += sum(1 for line in fh if line.strip())
            except FileNotFoundError:
                pass
        return count

    def waiting(self):
        """{uuid: "final" | "provisional" | "memory"} of CDRs not in the database yet: a final or
        only a provisional CDR in the spool, or any in memory ("memory" wins: that call is not safe
        until its row is written somewhere)."""
        where = {}
        for path in [self.spool_path] + glob.glob(os.path.join(self.spool_dir, "cdr-spool.*.draining")):
            try:
                with open(path, "rb") as fh:
                    for raw in fh:
                        try:
                            row = json.loads(raw)
                            kind = "provisional" if is_provisional(row) else "final"
                            if where.get(row["uuid"]) != "final":
                                where[row["uuid"]] = kind
                        except (ValueError, KeyError, TypeError):
                            continue
            except FileNotFoundError:
                pass
        for row in self._memory + self._in_drain:
            where[row["uuid"]] = "memory"
        return where

    def drain(self):
        """Replay spooled CDRs into the database. Returns (committed, still waiting)."""
        if self.db is None or not self._drain_lock.acquire(blocking=False):
            return 0, self.pending()
        try:
            return self._drain()
        finally:
            self._drain_lock.release()

    def _drain(self):
        committed, failed = 0, False
        memory = self._in_drain = self._memory
        self._memory = []
        try:
            while memory and not failed:
                result = self._replay(memory[0])
                if result:
                    memory.pop(0)
                    committed += result == "committed"
                else:
                    failed = True
            if memory:
                rest, memory[:] = list(memory), []
                self._spool(rest)           # back to disk if it takes it now, else memory again
        finally:
            # Whatever went wrong above, a row taken from memory goes back there: it is nowhere else.
            self._memory[:0] = memory
            self._in_drain = []
        with self._spool_lock:
            if os.path.exists(self.spool_path) and os.path.getsize(self.spool_path) > 0:
                os.rename(self.spool_path, os.path.join(self.spool_dir, f"cdr-spool.{time.time_ns()}.draining"))
        for path in sorted(glob.glob(os.path.join(self.spool_dir, "cdr-spool.*.draining"))):
            rows = self._read_spool(path)
            left = []
            for row in rows:
                result = None if failed else self._replay(row)
                if result:
                    committed += result == "committed"
                else:
                    failed = True           # the database is still in trouble: keep the rest
                    left.append(row)
            if failed and len(left) == len(rows):
                continue                    # nothing taken from this file: it stays as it is
            try:
                if left:
                    _append_durably(self.spool_path, [json.dumps(r, ensure_ascii=False) + "\n" for r in left],
                                    self._spool_lock)
                os.unlink(path)
            except OSError as exc:
                # The draining file still holds them; replaying it again later is harmless.
                log.critical("cannot move unsent CDRs back to %s (%s); they stay in %s",
                             self.spool_path, exc, path)
        if committed:
            log.info("spool: %d CDR(s) written to the database", committed)
        if not failed and self.db_down and self._reachable():
            log.info("CDR database %s is back", self.url)
            self.db_down = False
        return committed, self.pending()

    def _replay(self, row):
        """One spooled row into the database, one transaction, then the hub gets a turn.
        Returns "committed", "rejected" (set aside, see below) or None (storage still in trouble:
        the caller keeps the row).

        A row the database refuses while it answers otherwise (PostgreSQL rejects NUL characters
        in text, for one) would block the spool forever: it is set aside in the rejected file for
        a human, never dropped, and counts as handled. Storage trouble (a full disk, an I/O error,
        a lock) is not the row's fault: it is never set aside for it. If the rejected file cannot
        be written either, the row stays where it is.
        """
        try:
            if self._attempt([row]):
                return "committed"
            if is_transient(self.last_error) or not self._reachable():
                return None
            error = self.last_error
            try:
                _append_durably(os.path.join(self.spool_dir, REJECTED_NAME),
                                [json.dumps({"error": str(error), "cdr": row}, ensure_ascii=False) + "\n"],
                                self._spool_lock)
            except OSError as exc:
                log.critical("%s: the database refuses this CDR (%s) and %s cannot be written (%s); "
                             "kept for the next pass", row.get("uuid"), error, REJECTED_NAME, exc)
                return None
            log.critical("%s: the database refuses this CDR (%s); kept in %s for a human",
                         row.get("uuid"), error, REJECTED_NAME)
            return "rejected"
        finally:
            gevent.sleep(YIELD)

    def _read_spool(self, path):
        rows, corrupt = [], []
        with open(path, "rb") as fh:
            for raw in fh:
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw.decode("utf-8"))
                    if not isinstance(row, dict) or not row.get("uuid"):
                        raise ValueError("not a CDR")
                    rows.append(row)
                except ValueError:
                    corrupt.append(raw if raw.endswith(b"\n") else raw + b"\n")
        if corrupt:
            log.error("spool %s: %d unreadable line(s) moved to %s", path, len(corrupt), CORRUPT_NAME)
            _append_durably(os.path.join(self.spool_dir, CORRUPT_NAME),
                            [c.decode("utf-8", "replace") for c in corrupt], self._spool_lock)
        return rows

    def _drain_loop(self):
        while True:
            gevent.sleep(self.drain_interval)
            try:
                if self.db_down or self._memory or os.path.exists(self.spool_path) \
                        or glob.glob(os.path.join(self.spool_dir, "cdr-spool.*.draining")):
                    self.drain()
            except Exception:
                log.exception("CDR spool drainer failed; trying again in %.1f s", self.drain_interval)

    # --- reading ----------------------------------------------------------------------------
    def get(self, uuid):
        """The CDR of one call as a dict (times as UTC datetimes), or None."""
        with self._lock:
            self._connect()
            row = Cdr.get_or_none(Cdr.uuid == uuid)
            return as_dict(row) if row else None

    def list(self, since=None, limit=None, provisional=False):
        """CDRs of calls started at or after `since` (datetime or ISO text), oldest first. Calls
        still going (their provisional CDRs) only with provisional=True."""
        with self._lock:
            self._connect()
            query = Cdr.select().order_by(Cdr.start_time, Cdr.id)
            if not provisional:
                # tags is JSON text: the tag appears as "provisional" with its quotes (the pattern
                # must bypass JSONField.db_value, which would JSON-encode it once more)
                pattern = peewee.Value(f'%"{PROVISIONAL}"%', converter=False)
                query = query.where(Cdr.tags.is_null() | ~peewee.Expression(Cdr.tags, peewee.OP.ILIKE, pattern))
            if since is not None:
                query = query.where(Cdr.start_time >= parse_time(since))
            if limit is not None:
                query = query.limit(limit)
            return [as_dict(r) for r in query]

    def by_caller(self, number, limit=10):
        """The caller's last CDRs, newest first (the agent's screen pop: their history)."""
        with self._lock:
            self._connect()
            query = (Cdr.select().where(Cdr.caller_number == number)
                     .order_by(Cdr.start_time.desc(), Cdr.id.desc()).limit(limit))
            return [as_dict(r) for r in query]

    def agent_day(self, agent_id, since):
        """(calls, talk seconds) of the CDRs an agent served since `since` (their desk's today)."""
        with self._lock:
            self._connect()
            row = (Cdr.select(peewee.fn.COUNT(Cdr.id), peewee.fn.SUM(Cdr.talk_seconds))
                   .where((Cdr.agent == agent_id) & (Cdr.start_time >= parse_time(since))).tuples().first())
            return int(row[0] or 0), float(row[1] or 0.0)

    def outbox_take(self, consumer, limit=100):
        """Outbox entries `consumer` has not acknowledged yet, oldest first.

        An entry is handed out again until `outbox_ack` records it, also across restarts: a
        consumer that acks after its own work is done (ideally in the same transaction) sees each
        entry exactly once. Raises peewee.DatabaseError when the database is unavailable.
        """
        acked = OutboxAck.select().where((OutboxAck.consumer == consumer) & (OutboxAck.outbox == Outbox.id))
        with self._lock:
            self._connect()
            query = Outbox.select().where(~peewee.fn.EXISTS(acked)).order_by(Outbox.id).limit(limit)
            return [{"id": e.id, "cdr_uuid": e.cdr_uuid, "kind": e.kind, "payload": e.payload,
                     "created_at": aware(e.created_at)} for e in query]

    def outbox_ack(self, consumer, ids):
        """Record that `consumer` is done with these outbox entries (acking twice is harmless)."""
        rows = [{"consumer": consumer, "outbox": i} for i in ids]
        if not rows:
            return
        with self._lock:
            self._connect()
            with self.db.atomic():
                OutboxAck.insert_many(rows).on_conflict_ignore().execute()


def is_provisional(row):
    """Was this CDR (a record, a row dict) written while its call was still going?"""
    tags = row.get("tags") if isinstance(row, dict) else None
    return isinstance(tags, list) and PROVISIONAL in tags


def _append_durably(path, lines, lock):
    """Append whole lines and fsync. On failure the file is cut back, so no half line remains."""
    data = "".join(lines).encode("utf-8")
    with lock:
        created = not os.path.exists(path)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data         # a half line from a crash stays alone on its line
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError:
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    pass
                raise
        finally:
            os.close(fd)
        if created:
            dirfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
            try:
                os.fsync(dirfd)             # the new file's name must survive a crash too
            finally:
                os.close(dirfd)
