"""Inbound connection behaviour against a scripted peer: replies, jobs, events, loss, reconnect."""
import gc

import gevent
import pytest
from gevent.event import Event as Flag

from engine.esl.connection import InboundConnection
from engine.esl.errors import AuthFailed, CommandFailed, ConnectionLost
from tests.eslpeer import ScriptedPeer


def serve_commands(conn, extra=None, hold=True):
    """A well-behaved peer: auth, then answers commands until the client leaves."""
    if not conn.authenticate():
        return
    while True:
        cmd = conn.recv_command(timeout=30)
        if cmd is None:
            return
        if extra and extra(conn, cmd):
            continue
        if cmd.line.startswith("event "):
            conn.reply("+OK event listener enabled plain")
        elif cmd.line == "api status":
            conn.api_response("UP 0 years\n")
        elif cmd.line.startswith("api nosuch"):
            conn.api_response("-ERR nosuch Command not found!\n")
        elif cmd.line.startswith("bgapi "):
            job = cmd.headers["Job-UUID"]
            # The job's event first, then the reply: a real switch can do this under load.
            conn.event({"Event-Name": "BACKGROUND_JOB", "Job-UUID": job}, "+OK done\n")
            conn.send({"Content-Type": "command/reply", "Reply-Text": f"+OK Job-UUID: {job}", "Job-UUID": job})
        elif cmd.line == "exit":
            conn.reply("+OK bye")
            return
        else:
            conn.reply("-ERR command not found")


@pytest.fixture
def peer_factory():
    peers = []

    def make(script):
        peer = ScriptedPeer(script)
        peers.append(peer)
        return peer
    yield make
    for p in peers:
        p.stop()


def connect(peer, **kw):
    conn = InboundConnection("127.0.0.1", peer.port, "ClueCon", backoff_initial=0.01, backoff_max=0.05,
                             connect_timeout=2, **kw)
    return conn.start(timeout=3)


def test_api_bgapi_and_errors(peer_factory):
    peer = peer_factory(lambda c, n: serve_commands(c))
    conn = connect(peer)
    try:
        assert conn.api("status") == "UP 0 years\n"
        with pytest.raises(CommandFailed) as err:
            conn.api("nosuchcommand")
        assert "Command not found" in str(err.value)
        assert conn.bgapi("status").get(timeout=2) == "+OK done\n"
        with pytest.raises(CommandFailed):
            conn.command("bogus")
    finally:
        conn.stop()


def test_wrong_password_is_a_clear_error(peer_factory):
    peer = peer_factory(lambda c, n: serve_commands(c))
    conn = InboundConnection("127.0.0.1", peer.port, "wrong", reconnect=False)
    with pytest.raises(AuthFailed):
        conn.connect_once()


def test_events_in_order_and_failing_handler_isolated(peer_factory):
    def script(c, n):
        def extra(conn, cmd):
            if cmd.line == "api go":
                for i in range(50):
                    conn.event({"Event-Name": "CUSTOM", "Seq": str(i)})
                conn.api_response("+OK\n")
                return True
        serve_commands(c, extra)
    peer = peer_factory(script)
    conn = connect(peer)
    seen, done = [], Flag()

    def bad(event):
        raise RuntimeError("handler bug")

    def good(event):
        seen.append(int(event["Seq"]))
        if len(seen) == 50:
            done.set()
    conn.on("CUSTOM", bad)
    conn.on("CUSTOM", good)
    conn.api("go")
    assert done.wait(2)
    assert seen == list(range(50))
    conn.stop()


def test_disconnect_fails_every_pending_wait_then_reconnects_and_resubscribes(peer_factory):
    subscriptions = []

    def script(c, n):
        def extra(conn, cmd):
            if cmd.line.startswith("event "):
                subscriptions.append((n, cmd.line))
                conn.reply("+OK event listener enabled plain")
                return True
            if cmd.line == "api hang" and n == 0:
                conn.close()        # drop while a command and a job are pending
                return True
        serve_commands(c, extra)
    peer = peer_factory(script)
    conn = connect(peer)
    reconnected = Flag()
    conn.connected_hooks.append(lambda c: reconnected.set())
    job = conn.bgapi("status")     # answered
    job.get(timeout=2)
    waits = [gevent.spawn(conn.api, "hang")]
    gevent.joinall(waits, timeout=2)
    assert isinstance(waits[0].exception, ConnectionLost)
    assert reconnected.wait(3)
    assert conn.api("status") == "UP 0 years\n"
    assert [s[0] for s in subscriptions] == [0, 1]
    assert all(s[1] == "event plain ALL" for s in subscriptions)
    conn.stop()


@pytest.mark.parametrize("garbage", [
    b"garbage without structure\n\n",
    b"Content-Type: api/response\nContent-Length: 100\n\ntruncated",   # then the peer closes
    b"Content-Type: api/response\nContent-Length: 10485760\n\n" + b"x" * 1024,
    b"Content-Type: api/response\nheader without colon\n\n",
    b"Content-Type: text/unknown-kind\n\n",
])
def test_bad_peer_is_dropped_and_reconnected_without_leaks(peer_factory, garbage, caplog):
    def script(c, n):
        def extra(conn, cmd):
            if cmd.line == "api status" and n == 0:
                conn.send_raw(garbage)
                conn.close()
                return True
        serve_commands(c, extra)
    peer = peer_factory(script)
    conn = connect(peer)
    with pytest.raises(ConnectionLost):
        conn.api("status")
    gevent.sleep(0.2)
    assert conn.api("status") == "UP 0 years\n"     # the second connection is healthy
    assert conn.connects == 2
    lost_lines = [r for r in caplog.records if "lost" in r.getMessage()]
    assert len(lost_lines) == 1
    conn.stop()
    gevent.sleep(0.05)
    gc.collect()
    from gevent import greenlet
    from engine.esl.transport import Transport
    live = [o for o in gc.get_objects() if isinstance(o, greenlet.Greenlet) and not o.dead
            and getattr(getattr(o, "_run", None), "__self__", None) is conn]
    assert live == []
    assert conn.sock.fileno() == -1
