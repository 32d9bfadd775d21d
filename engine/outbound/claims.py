"""Who may dial a contact or a callback job: the database row AND a Redis lock, both naming the
same owner (an engine process id, like the ACD's `host:port#token`).

    claims = Claims(db, redis, prefix, owner, ttl=60)
    ids = claims.claim("contact", where=..., order=..., limit=3)    # rows now ours
    claims.release("contact", id, state="done", last_result="answered")
    claims.refresh()        # every ttl/3 while calls go on (ClaimKeeper does it)
    claims.reap("contact")  # rows whose owner died: back to pending, nothing lost

Why both: the row's state moves pending -> claimed inside one serialised write transaction, so two
engines never take the same row; the Redis lock carries the owner's liveness (a TTL it keeps
refreshing, like the ACD's heartbeats in engine/acd/recovery.py). A row still `claimed` whose lock
has expired belonged to an engine that died or was restarted (a new process is a new owner): the
reaper gives it back to `pending`, its unfinished attempt marked `lost`, and it is dialled again
under the campaign's attempt rules — never by two engines at once.
"""
import datetime
import logging

from engine.infra.periodic import Looping, Periodic

log = logging.getLogger("hotline.outbound")

TABLES = {"contact": "Contact", "job": "CallbackJob"}
ATTEMPT_FIELD = {"contact": "contact_id", "job": "job_id"}

# Delete / refresh the lock only while it is still ours.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_REFRESH = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
            "end return 0")


class Claims:
    def __init__(self, db, redis, prefix, owner, ttl=60.0):
        self.db = db
        self.redis = redis
        self.prefix = prefix
        self.owner = owner
        self.ttl = float(ttl)
        self.held = set()            # (kind, id) this process holds
        self._release = redis.register_script(_RELEASE)
        self._refresh = redis.register_script(_REFRESH)

    def key(self, kind, row_id):
        return f"{self.prefix}outbound:claim:{kind}:{row_id}"

    def _model(self, kind):
        return getattr(self.db.m, TABLES[kind])

    def claim(self, kind, where=None, order=(), limit=1, ids=None):
        """Take up to `limit` pending rows (optionally only `ids`, or matching `where`); returns
        their ids, each now claimed in the database and locked in Redis by this owner."""
        M = self._model(kind)
        now = self.db.clock()
        if limit <= 0:
            return []

        def candidates():
            q = M.select(M.id).where(M.state == "pending")
            if where is not None:
                q = q.where(where)
            if ids is not None:
                q = q.where(M.id.in_(list(ids)))
            return list(q.order_by(*(order or (M.id,))).limit(limit))
        if not self.db.run(candidates):      # nothing due: no write transaction (most ticks)
            return []

        def write():
            taken = []
            for row in candidates():
                n = (M.update(state="claimed", claimed_by=self.owner, claimed_at=now, updated_at=now)
                      .where((M.id == row.id) & (M.state == "pending")).execute())
                if n:
                    taken.append(row.id)
            return taken
        taken = self.db.run(write, write=True)
        mine = []
        for row_id in taken:
            key = self.key(kind, row_id)
            if self.redis.set(key, self.owner, nx=True, px=int(self.ttl * 1000)) or \
                    self.redis.get(key) in (self.owner, self.owner.encode()):
                mine.append(row_id)
                self.held.add((kind, row_id))
                continue
            # A lock left by a process that has not expired yet: give the row back, try later.
            log.warning("outbound %s %s: claimed in the database but locked in Redis by %s; "
                        "left for later", kind, row_id, self.redis.get(key))
            self.db.run(lambda: M.update(state="pending", claimed_by=None, claimed_at=None)
                        .where((M.id == row_id) & (M.claimed_by == self.owner)).execute(), write=True)
        return mine

    def release(self, kind, row_id, state="pending", also=None, **fields):
        """End our claim: the row moves to `state` with `fields`; the lock goes. Returns False if
        the row was no longer ours (reaped after our lock expired): nothing is then written.
        `also()` runs in the same transaction (the attempt's result: never one without the other)."""
        M = self._model(kind)
        now = self.db.clock()
        values = dict(fields, state=state, claimed_by=None, claimed_at=None, updated_at=now)

        def write():
            n = M.update(**values).where((M.id == row_id) & (M.claimed_by == self.owner)).execute()
            if n and also is not None:
                also()
            return n
        n = self.db.run(write, write=True)
        self.held.discard((kind, row_id))
        try:
            self._release(keys=[self.key(kind, row_id)], args=[self.owner])
        except Exception as exc:       # noqa: BLE001 - the lock expires by itself
            log.warning("outbound %s %s: lock not removed (%s); it expires in %g s", kind, row_id, exc, self.ttl)
        if not n:
            log.error("outbound %s %s: no longer ours when released (lock expired?); result not written",
                      kind, row_id)
        return bool(n)

    def refresh(self):
        """Keep our locks alive; a lock we lost (expired, taken) is dropped from `held`."""
        for kind, row_id in list(self.held):
            if not self._refresh(keys=[self.key(kind, row_id)], args=[self.owner, int(self.ttl * 1000)]):
                log.error("outbound %s %s: our claim's lock was lost", kind, row_id)
                self.held.discard((kind, row_id))

    def reap(self, kind):
        """Rows claimed by an owner whose lock is gone go back to pending; returns their ids.
        Only rows claimed more than a TTL ago: a claim between its commit and its Redis SET is
        not an orphan."""
        M = self._model(kind)
        A = self.db.m.Attempt
        cutoff = self.db.clock() - datetime.timedelta(seconds=self.ttl)
        rows = self.db.run(lambda: [(r.id, r.claimed_by) for r in
                                    M.select(M.id, M.claimed_by).where((M.state == "claimed") &
                                                                       (M.claimed_at < cutoff))])
        reaped = []
        for row_id, owner in rows:
            if self.redis.exists(self.key(kind, row_id)):
                continue

            def write(row_id=row_id, owner=owner):
                now = self.db.clock()
                n = (M.update(state="pending", claimed_by=None, claimed_at=None, updated_at=now)
                      .where((M.id == row_id) & (M.state == "claimed") & (M.claimed_by == owner)).execute())
                if n:
                    field = getattr(A, ATTEMPT_FIELD[kind])
                    A.update(result="lost", ended_at=now).where((field == row_id) & A.ended_at.is_null()).execute()
                return n
            if self.db.run(write, write=True):
                log.warning("outbound %s %s: its owner %s is gone (lock expired): back to pending",
                            kind, row_id, owner)
                reaped.append(row_id)
        return reaped


class ClaimKeeper(Looping):
    """A greenlet refreshing the locks every ttl/3 and reaping orphans every ttl."""

    def __init__(self, claims, kinds=("contact", "job")):
        self.claims = claims
        self.kinds = kinds
        self.rounds = 0
        self.loop = Periodic(self.keep, max(claims.ttl / 3.0, 0.05), "outbound claims", log)

    def keep(self):
        """One round: refresh this engine's locks; every third round (every ttl) reap orphans."""
        reap = self.rounds % 3 == 0
        self.rounds += 1
        self.claims.refresh()
        if reap:
            for kind in self.kinds:
                self.claims.reap(kind)
