"""Browser sessions, kept in Redis so every engine of a site knows them and a logout or a password
change ends them everywhere. The cookie holds only a random id (signed by Flask); Redis holds
`{p}web:s:<sha256 of the id>` (a Redis dump gives no usable cookie) with the account, role,
login and last-use times, and `{p}web:u:<account>` the set of an account's session keys.

A session ends after `web.session_idle_minutes` without a request and `web.session_max_hours`
after its login, whichever comes first (checked against the app's clock; Redis' TTL only cleans up).
"""
import hashlib
import secrets


class Sessions:
    def __init__(self, redis, prefix, idle_seconds, max_seconds, clock):
        self.r = redis
        self.p = prefix
        self.idle = idle_seconds
        self.max = max_seconds
        self.clock = clock              # callable: the app's clock (tests move it)

    def _key(self, sid):
        return f"{self.p}web:s:" + hashlib.sha256(sid.encode()).hexdigest()

    def _user_key(self, account_id):
        return f"{self.p}web:u:{account_id}"

    def create(self, account):
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        key = self._key(sid)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(key, mapping={"account": account["id"], "role": account["role"], "agent": account.get("agent") or "",
                                "login_at": repr(now), "seen_at": repr(now)})
        pipe.expire(key, int(self.max) + 60)
        pipe.sadd(self._user_key(account["id"]), key)
        pipe.expire(self._user_key(account["id"]), int(self.max) + 60)
        pipe.execute()
        return sid

    def get(self, sid, touch=True):
        """The session's fields, or None (unknown, or expired: then removed)."""
        if not sid or not isinstance(sid, str):
            return None
        key = self._key(sid)
        data = self.r.hgetall(key)
        if not data:
            return None
        now = self.clock()
        if now - float(data["seen_at"]) > self.idle or now - float(data["login_at"]) > self.max:
            self._remove(key, data.get("account"))
            return None
        if touch:
            self.r.hset(key, "seen_at", repr(now))
        return data

    def end(self, sid):
        key = self._key(sid)
        self._remove(key, self.r.hget(key, "account"))

    def _remove(self, key, account_id):
        pipe = self.r.pipeline(transaction=False)
        pipe.delete(key)
        if account_id:
            pipe.srem(self._user_key(account_id), key)
        pipe.execute()

    def end_all(self, account_id):
        """A password change or a disabled account: every session of the account ends."""
        keys = list(self.r.smembers(self._user_key(account_id)))
        if keys:
            self.r.delete(*keys)
        self.r.delete(self._user_key(account_id))
        return len(keys)

    def count(self):
        return sum(1 for _ in self.r.scan_iter(f"{self.p}web:s:*", count=500))
