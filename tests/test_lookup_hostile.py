"""A look-up's answer comes from outside: it gets a total deadline, a size bound and a depth bound,
and whatever it sends ends in the `error` branch, never in an exception (issue 17, section 4)."""
import time

import gevent
import gevent.pywsgi
import pytest

from engine.ivr.nodes import lookup
from tests.test_ivr_nodes import go, lookup_flow


def hostile_app(environ, start_response):
    path = environ["PATH_INFO"]
    start_response("200 OK", [("Content-Type", "application/json")])
    if path == "/drip":            # one byte every 50 ms for 20 s: each read is quick, the whole is not
        def drip():
            yield b'{"data": {"name": "'
            for _ in range(400):
                gevent.sleep(0.05)
                yield b"x"
            yield b'"}}'
        return drip()
    if path == "/deep":
        return [b'{"data": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"]
    if path == "/huge":
        return [b'{"data": {"name": "' + b"x" * (5 * 1024 * 1024) + b'"}}']
    if path == "/long-field":
        return [b'{"data": {"name": "' + "张".encode() * 100_000 + b'", "items": [{"v": 1}]}}']
    return [b"{}"]


@pytest.fixture
def hostile():
    server = gevent.pywsgi.WSGIServer(("127.0.0.1", 0), hostile_app, log=None, error_log=None)
    server.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.stop()


@pytest.mark.parametrize("path", ["/drip", "/deep", "/huge"])
def test_hostile_answers_take_the_error_branch_in_bounded_time(tmp_path, hostile, path):
    rt = lookup_flow(tmp_path, "{{ base }}" + path, timeout=0.5)
    started = time.monotonic()
    result, call = go(rt, base=hostile)
    # a generous bound (the drip lasts 20 s); the runtime would turn a gevent.Timeout into `error`
    assert time.monotonic() - started < 8
    assert result["cause"] == "CALL_REJECTED" and call.path[0]["branch"] == "error"


def test_a_long_field_is_cut_before_it_reaches_the_call(tmp_path, hostile):
    rt = lookup_flow(tmp_path, "{{ base }}/long-field")
    result, call = go(rt, base=hostile)
    assert result["cause"] == "NORMAL_CLEARING"
    assert call.variables["who"] == "张" * lookup.MAX_FIELD_CHARS and call.variables["first"] == 1
