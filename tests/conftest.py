"""Tests run under gevent exactly as the daemon does: patch before anything imports socket."""
from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402

logging.getLogger("hotline").setLevel(logging.DEBUG)

import itertools  # noqa: E402

import pytest  # noqa: E402

# `switch` (the simulator on a free port) and `conn` (an ESL connection to it), for every test
# that drives the simulator directly; a module may still define its own.
from tests.simfix import conn, switch  # noqa: E402,F401

_prefixes = itertools.count()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    from tests.redisfix import RedisServer
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_prefix(redis_server):
    """A key prefix of this test's own on the session's Redis: tests never see each other's keys."""
    return f"t{next(_prefixes)}-{id(redis_server) % 1000}:"
