"""The control API against hostile clients, on a real server on loopback: deep JSON, half-open
connections (issue 17, section 4)."""
import json
import socket

import gevent
import pytest

from engine.web import server as api_mod
from engine.control.client import ApiError, Client
from tests.enginefix import Rig
from tests.simfix import wait_for

TOKENS = {"TOK_ADMIN": "admin-secret"}


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path, env=TOKENS, control={"listen_port": __import__("engine.infra.netutil").infra.netutil.free_port(),
                                           "tokens": [{"name": "root", "role": "admin", "token_env": "TOK_ADMIN"}]})
    r.port = r.engine.control.address[1]
    yield r
    r.stop()


def raw_request(port, body, source="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    s.sendall(b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-secret\r\n"
              b"Content-Type: application/json\r\nConnection: close\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


def health(port, source="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return int(data.split()[1])


def test_deeply_nested_json_is_a_bad_request(rig):
    status, body = raw_request(rig.port, b"[" * 30_000 + b"]" * 30_000)
    assert status == 400 and "nested too deeply" in body["error"]
    status, body = raw_request(rig.port, b'{"a": ' + b"9" * 5000 + b"}")    # past int's 4300 digits
    assert status == 400 and "not JSON" in body["error"]
    assert health(rig.port) == 200


def test_half_open_connections_are_bounded_in_count_and_time(rig, monkeypatch):
    monkeypatch.setattr(api_mod, "MAX_CONNECTIONS", 40)
    monkeypatch.setattr(api_mod, "MAX_PER_CLIENT", 30)
    monkeypatch.setattr(api_mod, "REQUEST_SECONDS", 1.0)
    server = rig.engine.control
    idle = []
    for i in range(200):                 # connect, send half a request line, then nothing
        s = socket.create_connection(("127.0.0.1", rig.port), timeout=10)
        s.sendall(b"GET /v1/hea")
        idle.append(s)
    # The server holds at most MAX_PER_CLIENT of them; the rest were answered 503 and closed.
    wait_for(lambda: server.refused >= 170, timeout=10)
    assert server.open_connections <= 30
    answered = [s for s in idle[30:] if s.recv(4096).startswith(b"HTTP/1.1 503")]
    assert len(answered) == 170
    # Another client is served meanwhile.
    assert health(rig.port, source="127.0.0.2") == 200
    # The held ones are closed by the server within REQUEST_SECONDS: recv sees the end.
    for s in idle[:30]:
        assert s.recv(4096) == b""
    wait_for(lambda: server.open_connections == 0, timeout=10)
    assert health(rig.port) == 200
    for s in idle:
        s.close()


def test_a_slow_body_is_cut_off(rig, monkeypatch):
    monkeypatch.setattr(api_mod, "REQUEST_SECONDS", 1.0)
    s = socket.create_connection(("127.0.0.1", rig.port), timeout=10)
    s.sendall(b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-secret\r\n"
              b"Content-Length: 100\r\n\r\n{")
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    assert data.startswith(b"HTTP/1.1 408")
    s.close()


def test_a_negative_content_length_is_a_bad_request(rig):
    s = socket.create_connection(("127.0.0.1", rig.port), timeout=10)
    s.sendall(b"POST /v1/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-secret\r\n"
              b"Content-Length: -1\r\n\r\n{}")
    assert s.recv(65536).split()[1] in (b"400",)
    s.close()
