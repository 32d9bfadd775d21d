"""Redis Sentinel: the ACD store finds the master through real sentinels (redis-server --sentinel)
and keeps working after the sentinels promote the replica (SENTINEL FAILOVER)."""
import pytest
import redis

from engine.acd.store import AcdStore
from engine.infra.localredis import LocalRedis, RedisStartError
from engine.settings import SettingsError, load_settings
from tests.simfix import wait_for

MASTER = "hotline"


def _start(server):
    try:
        return server.start()
    except RedisStartError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def sentinel_pair(tmp_path):
    """A master, its replica and one sentinel watching them, each its own redis-server process."""
    servers = []
    try:
        (tmp_path / "m").mkdir(), (tmp_path / "r").mkdir(), (tmp_path / "s").mkdir()
        master = _start(LocalRedis(tmp_path / "m"))
        servers.append(master)
        replica = _start(LocalRedis(tmp_path / "r", extra_args=["--replicaof", "127.0.0.1", str(master.port)]))
        servers.append(replica)
        conf = tmp_path / "s" / "sentinel.conf"
        # quorum 1 (one sentinel); short timeouts so a failover takes seconds, not the default minutes
        conf.write_text(f"sentinel monitor {MASTER} 127.0.0.1 {master.port} 1\n"
                        f"sentinel down-after-milliseconds {MASTER} 1000\n"
                        f"sentinel failover-timeout {MASTER} 10000\n")
        sentinel = _start(LocalRedis(tmp_path / "s", conf=conf, extra_args=["--sentinel"]))
        servers.append(sentinel)
        probe = redis.Redis(port=replica.port, decode_responses=True)
        wait_for(lambda: probe.info("replication").get("master_link_status") == "up", timeout=20)
        yield master, replica, sentinel
    finally:
        for s in reversed(servers):
            s.stop()


def _master_port(sentinel):
    s = redis.Redis(port=sentinel.port, decode_responses=True)
    return int(s.execute_command("SENTINEL", "get-master-addr-by-name", MASTER)[1])


def test_store_follows_the_master_through_a_failover(sentinel_pair):
    master, replica, sentinel = sentinel_pair
    # the url's host and port are unused with sentinels: point it at nothing to prove it
    store = AcdStore("redis://127.0.0.1:1/0", prefix="t-sent:", sentinels=[f"127.0.0.1:{sentinel.port}"],
                     master_name=MASTER)
    assert store.transition("a1", "*", "available")
    assert redis.Redis(port=master.port, decode_responses=True).hget("t-sent:agent:a1", "state") == "available"

    # the sentinel must know the replica before it can promote it
    s = redis.Redis(port=sentinel.port, decode_responses=True)
    wait_for(lambda: len(s.execute_command("SENTINEL", "replicas", MASTER)) == 1, timeout=30)
    s.execute_command("SENTINEL", "failover", MASTER)
    wait_for(lambda: _master_port(sentinel) == replica.port, timeout=30)
    new_master = redis.Redis(port=replica.port, decode_responses=True)
    wait_for(lambda: new_master.info("replication")["role"] == "master", timeout=30)
    # until the sentinel has demoted the old master it still takes writes (lost when it resyncs:
    # Sentinel's documented window); the engine's writes count from here
    old = redis.Redis(port=master.port, decode_responses=True)
    wait_for(lambda: old.info("replication")["role"] == "slave", timeout=30)

    # the store's pooled connections still point at the old master (now a replica: READONLY);
    # the next operations reach the new master, within a bound
    def moved():
        try:
            return bool(store.transition("a1", "available", "on_break"))
        except (redis.ConnectionError, redis.ReadOnlyError):
            return False
    wait_for(moved, timeout=30)
    assert new_master.hget("t-sent:agent:a1", "state") == "on_break"
    assert store.agent("a1")["state"] == "on_break"


def test_sentinel_settings_are_checked(tmp_path):
    cfg = tmp_path / "hotline.yaml"
    base = 'trunk: {dids: ["12345"]}\nesl: {allow_default_password: true}\npaths: {var_dir: var}\n'
    cfg.write_text(base + "redis: {sentinels: ['10.0.0.1:26379', 'nohost'], master_name: hl}\n")
    with pytest.raises(SettingsError, match=r"redis.sentinels\[1\]"):
        load_settings(cfg, env={})
    cfg.write_text(base + "redis: {sentinels: ['10.0.0.1:26379'], sentinel_password_env: HL_SENT}\n")
    with pytest.raises(SettingsError, match="HL_SENT is not set"):
        load_settings(cfg, env={})
    s = load_settings(cfg, env={"HL_SENT": "pw"})
    assert s.redis.sentinels == ("10.0.0.1:26379",) and s.redis.sentinel_password == "pw"
