"""Shared ACD state in Redis: agent states, atomic reservations, queue entries, queue statistics.

Several engines (one per FreeSWITCH) share one Redis, so every change of an agent's state is one
Lua script: it checks the state it expects, writes the new one, keeps the set of available agents,
and adds the time spent in the old state to the agent's counters. Two routers racing for one agent
both run the reserve script; Redis runs them one after the other and only the first finds the agent
`available`. That is the whole double-booking guarantee (mod_callcenter keeps this in SQL and polls).

Keys (prefix configurable, so tests and sites can share a Redis):
  {p}agent:<id>          hash: state since reason call leg engine queue misses wrap_until pending ...
  {p}agent:<id>:time     hash: state -> seconds spent in it (expires STATS_TTL after its last change)
  {p}avail               set of available agent ids
  {p}q:<queue>           zset of waiting call uuids, score = -priority * 1e10 + joined (epoch)
  {p}qe:<uuid>           hash: queue engine joined caller priority preferred (expires ENTRY_TTL unless
                         its engine refreshes it; the watchdog removes those of dead engines)
  {p}qstat:<queue>:<day> hash: offered answered answered_sl abandoned wait_total talk_total
  {p}aht:<queue>         list of recent handling times (expected-wait announcements; STATS_TTL)
  {p}last:<caller>       agent who last served this caller (expires after repeat_caller_hours)
  {p}engine:<id>         heartbeat of a live engine process (expires: its leftovers are then repaired)
  {p}epoch               token written once into a fresh Redis: a different or missing one means
                         Redis lost its data (restarted empty), and each engine re-asserts its calls
Every other key has a TTL; an agent's hash lives as long as the agent is configured.
  {p}wake                pub/sub channel: an agent became available or a caller joined
"""
import json
import time

import redis

from engine.infra.redisconn import redis_client

AHT_KEEP = 50                 # handling times kept per queue for expected-wait estimates
ENTRY_TTL = 60                # seconds a queue entry lives unless its engine refreshes it
STATS_TTL = 40 * 86400        # statistics outlive a month's report

# ARGV: id, allowed-from (comma list or *), to, now, then field/value pairs
_TRANSITION = """
local state = redis.call('HGET', KEYS[1], 'state') or 'logged_out'
local allowed = ARGV[2]
if allowed ~= '*' then
  local ok = false
  for s in string.gmatch(allowed, '[^,]+') do if s == state then ok = true end end
  if not ok then return {0, state, '0'} end
end
local since = tonumber(redis.call('HGET', KEYS[1], 'since') or ARGV[4])
local spent = tonumber(ARGV[4]) - since
if spent < 0 then spent = 0 end
redis.call('HINCRBYFLOAT', KEYS[2], state, spent)
redis.call('EXPIRE', KEYS[2], 3456000)   -- STATS_TTL: 40 days
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'since', ARGV[4])
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
if ARGV[3] == 'available' then redis.call('SADD', KEYS[3], ARGV[1])
else redis.call('SREM', KEYS[3], ARGV[1]) end
return {1, state, tostring(spent)}
"""

# ARGV: allowed states (comma list), then field/value pairs: set them only while the agent is in one
# of those states (a logout asked for during a call must not land on an agent the call just freed)
_MARK = """
local state = redis.call('HGET', KEYS[1], 'state') or 'logged_out'
for s in string.gmatch(ARGV[1], '[^,]+') do
  if s == state then
    for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
    return {1, state}
  end
end
return {0, state}
"""

# Take a waiting entry out of its queue for an offer; fails if another engine took it or it left.
_TAKE = """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return false end
redis.call('ZREM', KEYS[1], ARGV[1])
return score
"""


class Transition:
    __slots__ = ("ok", "previous", "spent")

    def __init__(self, ok, previous, spent):
        self.ok, self.previous, self.spent = ok, previous, spent

    def __bool__(self):
        return self.ok


POOL_CONNECTIONS = 32     # per engine; each operation holds one for a round trip
POOL_WAIT_S = 5.0         # an operation waits this long for a free one, then fails


class AcdStore:
    def __init__(self, url, prefix="hl:", client=None, sentinels=(), master_name="hotline",
                 sentinel_password=None):
        # A blocking pool: operations beyond its connections wait for one (up to POOL_WAIT_S)
        # instead of raising "Too many connections" (redis-py's plain pool does at 100, which a
        # burst of wrap-up timers after a hub stall reached: the timer greenlets died).
        # With sentinels, the pool follows the master they name across a failover (redisconn).
        self.r = client or redis_client(
            url, sentinels, master_name, sentinel_password,
            max_connections=POOL_CONNECTIONS, timeout=POOL_WAIT_S, decode_responses=True,
            socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)
        self.p = prefix
        self._transition = self.r.register_script(_TRANSITION)
        self._take = self.r.register_script(_TAKE)
        self._mark = self.r.register_script(_MARK)
        self.watchers = []        # callables (kind, key) told of each change: "agent"/id, "queue"/name (web/live.py)

    def _changed(self, kind, key):
        for watch in self.watchers:
            watch(kind, key)      # must not block nor raise (live.Bus.publish only notes the key)

    # --- keys ---------------------------------------------------------------------------------
    def k_agent(self, agent_id):
        return f"{self.p}agent:{agent_id}"

    def k_queue(self, queue):
        return f"{self.p}q:{queue}"

    def k_entry(self, call_uuid):
        return f"{self.p}qe:{call_uuid}"

    @property
    def wake_channel(self):
        return f"{self.p}wake"

    # --- agents -------------------------------------------------------------------------------
    def transition(self, agent_id, allowed, to, now=None, **fields):
        """Atomically move an agent to `to` if its state is in `allowed` ('*' = any)."""
        now = time.time() if now is None else now
        args = [agent_id, allowed if isinstance(allowed, str) else ",".join(allowed), to, repr(now)]
        for k, v in fields.items():
            args += [k, "" if v is None else str(v)]
        ok, previous, spent = self._transition(
            keys=[self.k_agent(agent_id), self.k_agent(agent_id) + ":time", f"{self.p}avail"], args=args)
        if ok:
            self._changed("agent", agent_id)
        return Transition(bool(ok), previous, float(spent))

    def agent(self, agent_id):
        data = self.r.hgetall(self.k_agent(agent_id))
        data.setdefault("state", "logged_out")
        return data

    def agents(self, agent_ids):
        pipe = self.r.pipeline(transaction=False)
        for a in agent_ids:
            pipe.hgetall(self.k_agent(a))
        out = {}
        for a, data in zip(agent_ids, pipe.execute()):
            data.setdefault("state", "logged_out")
            out[a] = data
        return out

    def agent_states(self, agent_ids):
        """{agent id: state} in one round trip: the state field only (a queue's agents by state
        need no more; the whole hashes of 300 agents cost the parsing of ~10,000 strings)."""
        pipe = self.r.pipeline(transaction=False)
        for a in agent_ids:
            pipe.hget(self.k_agent(a), "state")
        return {a: state or "logged_out" for a, state in zip(agent_ids, pipe.execute())}

    def available(self):
        return self.r.smembers(f"{self.p}avail")

    def set_fields(self, agent_id, **fields):
        self.r.hset(self.k_agent(agent_id), mapping={k: str(v) for k, v in fields.items()})

    def mark_if(self, agent_id, allowed, **fields):
        """Set fields only if the agent's state is in `allowed`: (done, state it was in)."""
        args = [",".join(allowed)]
        for k, v in fields.items():
            args += [k, str(v)]
        ok, state = self._mark(keys=[self.k_agent(agent_id)], args=args)
        return bool(ok), state

    def incr_fields(self, agent_id, **amounts):
        pipe = self.r.pipeline(transaction=False)
        for k, v in amounts.items():
            pipe.hincrbyfloat(self.k_agent(agent_id), k, v)
        pipe.execute()

    def time_in_states(self, agent_id):
        return {k: float(v) for k, v in self.r.hgetall(self.k_agent(agent_id) + ":time").items()}

    # --- queue entries ------------------------------------------------------------------------
    def join(self, queue, call_uuid, engine, caller, priority=0, preferred="", joined=None):
        joined = time.time() if joined is None else joined
        score = -priority * 1e10 + joined
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.k_entry(call_uuid), mapping={"queue": queue, "engine": engine, "joined": repr(joined),
                                                     "caller": caller, "priority": priority,
                                                     "preferred": preferred, "score": repr(score)})
        pipe.expire(self.k_entry(call_uuid), ENTRY_TTL)
        pipe.zadd(self.k_queue(queue), {call_uuid: score})
        pipe.publish(self.wake_channel, "join:" + queue)
        pipe.execute()
        self._changed("queue", queue)
        return score

    def take(self, queue, call_uuid):
        """Remove an entry for an offer; None if it is no longer waiting."""
        score = self._take(keys=[self.k_queue(queue)], args=[call_uuid])
        self._changed("queue", queue)
        return None if score is None else float(score)

    def put_back(self, queue, call_uuid, score):
        """An offer failed: the caller keeps their place."""
        self.r.zadd(self.k_queue(queue), {call_uuid: score})
        self._changed("queue", queue)

    def leave(self, queue, call_uuid):
        pipe = self.r.pipeline(transaction=True)
        pipe.zrem(self.k_queue(queue), call_uuid)
        pipe.delete(self.k_entry(call_uuid))
        pipe.execute()
        self._changed("queue", queue)

    def refresh_entries(self, call_uuids):
        """The owner's proof of life for its callers' entries (the watchdog, every pass)."""
        if not call_uuids:
            return
        pipe = self.r.pipeline(transaction=False)
        for u in call_uuids:
            pipe.expire(self.k_entry(u), ENTRY_TTL)
        pipe.execute()

    def not_waiting(self, waiters):
        """Of (queue, call uuid) pairs, the call uuids their queue does not list (lost by an
        outage or a Redis that restarted empty)."""
        if not waiters:
            return []
        pipe = self.r.pipeline(transaction=False)
        for queue, call_uuid in waiters:
            pipe.zscore(self.k_queue(queue), call_uuid)
        return [u for (_, u), score in zip(waiters, pipe.execute()) if score is None]

    def entry_uuids(self):
        """Call uuids of every queue entry hash in Redis (waiting, or taken for a conversation)."""
        start = len(self.k_entry(""))
        return [k[start:] for k in self.r.scan_iter(self.k_entry("*"), count=500)]

    def waiting(self, queue, limit=-1):
        return self.r.zrange(self.k_queue(queue), 0, limit)

    def position(self, queue, call_uuid):
        rank = self.r.zrank(self.k_queue(queue), call_uuid)
        return None if rank is None else rank + 1

    def queue_length(self, queue):
        return self.r.zcard(self.k_queue(queue))

    def entries(self, call_uuids):
        pipe = self.r.pipeline(transaction=False)
        for u in call_uuids:
            pipe.hgetall(self.k_entry(u))
        return dict(zip(call_uuids, pipe.execute()))

    def oldest_joined(self, queue):
        """Epoch the longest-waiting caller joined (by joined time, whatever the priority)."""
        uuids = self.r.zrange(self.k_queue(queue), 0, -1)
        if not uuids:
            return None
        pipe = self.r.pipeline(transaction=False)
        for u in uuids:
            pipe.hget(self.k_entry(u), "joined")
        joined = [float(j) for j in pipe.execute() if j]
        return min(joined) if joined else None

    # --- statistics ---------------------------------------------------------------------------
    def k_stat(self, queue, day):
        return f"{self.p}qstat:{queue}:{day}"

    def count(self, queue, day, **amounts):
        pipe = self.r.pipeline(transaction=False)
        for k, v in amounts.items():
            pipe.hincrbyfloat(self.k_stat(queue, day), k, v)
        pipe.expire(self.k_stat(queue, day), STATS_TTL)
        pipe.execute()
        self._changed("queue", queue)

    def stats(self, queue, day):
        return {k: float(v) for k, v in self.r.hgetall(self.k_stat(queue, day)).items()}

    def add_handle_time(self, queue, seconds):
        key = f"{self.p}aht:{queue}"
        pipe = self.r.pipeline(transaction=False)
        pipe.lpush(key, round(seconds, 1))
        pipe.ltrim(key, 0, AHT_KEEP - 1)
        pipe.expire(key, STATS_TTL)
        pipe.execute()

    def handle_times(self, queue):
        return [float(x) for x in self.r.lrange(f"{self.p}aht:{queue}", 0, -1)]

    def remember_agent(self, caller, agent_id, hours):
        if caller and hours > 0:
            self.r.set(f"{self.p}last:{caller}", agent_id, ex=int(hours * 3600))

    def last_agent(self, caller):
        return self.r.get(f"{self.p}last:{caller}") if caller else None

    # --- engines and wake-ups -----------------------------------------------------------------
    def heartbeat(self, engine, ttl):
        self.r.set(f"{self.p}engine:{engine}", json.dumps({"at": time.time()}), ex=max(1, int(ttl)))

    def engine_alive(self, engine):
        return bool(self.r.exists(f"{self.p}engine:{engine}"))

    def forget_engine(self, engine):
        """A dead engine's heartbeat (its slot's new process knows it died): its leftovers are
        repaired at once instead of after the heartbeat expires."""
        self.r.delete(f"{self.p}engine:{engine}")

    def epoch(self):
        return self.r.get(f"{self.p}epoch")

    def claim_epoch(self, token):
        """Write the epoch into a Redis that has none; returns the epoch in force afterwards."""
        self.r.set(f"{self.p}epoch", token, nx=True)
        return self.r.get(f"{self.p}epoch")

    def engines(self):
        """Ids of the engines whose heartbeat is alive."""
        start = len(f"{self.p}engine:")
        return sorted(k[start:] for k in self.r.scan_iter(f"{self.p}engine:*", count=100))

    def wake(self, why):
        self.r.publish(self.wake_channel, why)

    def flush(self):
        """Tests and `hotline acd reset`: remove every key of this prefix."""
        for key in self.r.scan_iter(f"{self.p}*", count=500):
            self.r.delete(key)
