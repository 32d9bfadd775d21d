"""One Redis client for the engine: straight to `redis.url`, or through Redis Sentinel.

With `redis.sentinels` set, the engine asks the sentinels which server is the master of
`redis.master_name` and connects there; when the sentinels promote a replica (the master died or
an operator ran SENTINEL FAILOVER), a connection to the old master fails or is refused as a
replica (READONLY), redis-py's SentinelManagedConnection asks the sentinels again, and the next
operation goes to the new master. Redis is then no single point of failure (three sentinels on
three machines, one master and one replica or more).

Both pools block: an operation beyond `max_connections` waits up to `timeout` seconds for a free
connection instead of raising "Too many connections" (see AcdStore)."""
import redis
from redis.connection import parse_url
from redis.sentinel import Sentinel, SentinelConnectionPool


class BlockingSentinelConnectionPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """SentinelConnectionPool (finds the master through the sentinels) with the blocking pool's
    wait-for-a-free-connection; redis-py ships only the non-blocking one."""


def parse_sentinels(entries):
    """['host:port', ...] -> [(host, port), ...]; ValueError names the bad entry."""
    out = []
    for entry in entries:
        host, sep, port = str(entry).rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"sentinel {entry!r} is not host:port")
        out.append((host.strip("[]"), int(port)))
    return out


def redis_client(url, sentinels=(), master_name="hotline", sentinel_password=None, **pool_kwargs):
    """A redis.Redis on a blocking pool. Without sentinels, on `url`; with them, on the master
    they name, using the database, user and password of `url` (the host and port of `url` are
    then unused)."""
    if not sentinels:
        return redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(url, **pool_kwargs))
    conn = {k: v for k, v in parse_url(url).items() if k in ("db", "username", "password")}
    sentinel_kwargs = {"socket_timeout": pool_kwargs.get("socket_connect_timeout", 2)}
    if sentinel_password:
        sentinel_kwargs["password"] = sentinel_password
    sentinel = Sentinel(parse_sentinels(sentinels), sentinel_kwargs=sentinel_kwargs)
    return sentinel.master_for(master_name, connection_pool_class=BlockingSentinelConnectionPool,
                               **conn, **pool_kwargs)
