"""A real redis-server for tests: started on a free loopback port, stopped by PID."""
import pytest

from engine.infra.localredis import LocalRedis, RedisStartError


class RedisServer(LocalRedis):
    def __init__(self, tmp_dir):
        super().__init__(tmp_dir)
        try:
            self.start()
        except RedisStartError as exc:
            pytest.fail(str(exc))
