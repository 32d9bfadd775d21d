"""Helpers for the outbound tests: an OutboundDb on a temporary SQLite file with a settable clock,
and Claims on the session's real Redis under the test's own prefix."""
import redis

from engine.outbound.claims import Claims
from engine.outbound.db import OutboundDb
from tests.ticketfix import Clock, db_url


def outbound_db(tmp_path, clock=None):
    return OutboundDb(db_url(tmp_path), clock=clock or Clock()).open()


def claims_for(db, redis_server, prefix, owner, ttl=30.0):
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    return Claims(db, client, prefix, owner, ttl=ttl)
