"""Live updates (SSE) over real HTTP: a snapshot on connect, then the engine's own changes; an
agent sees only itself; a slow client is dropped without holding the engine; hostile caller IDs
come back as JSON data."""
import gevent
import pytest

from tests.acdfix import AcdRig, agent, queue
from tests.enginefix import free_port
from tests.simfix import wait_for
from tests.webfix import Browser, add_account, base_url

PASSWORDS = {"1001": "desk-1001-pw", "2001": "boss-2001-pw"}


@pytest.fixture
def rig(tmp_path, redis_server, redis_prefix):
    r = AcdRig(tmp_path, redis_server.url, redis_prefix,
               [agent("1001"), agent("1002"), agent("2001", role="supervisor")],
               [queue("general", music="local_stream://moh")], control={"listen_port": free_port()},
               web={"stream_queue": 10})
    add_account(r.engine, "1001", PASSWORDS["1001"], "agent")
    add_account(r.engine, "2001", PASSWORDS["2001"], "supervisor")
    r.url = base_url(r)
    r.web = r.engine.control.application.extensions["hotline"]
    yield r
    r.stop()


def browser(rig, account_id):
    b = Browser(rig.url)
    b.login(account_id, PASSWORDS[account_id])
    return b


def next_event(events, name, predicate=lambda d: True, timeout=10):
    with gevent.Timeout(timeout, AssertionError(f"no {name} event in {timeout} s")):
        for got, data in events:
            if got == name and predicate(data):
                return data
    raise AssertionError("stream ended")


def test_snapshot_on_connect_then_an_agent_state_change(rig):
    rig.login("1002")
    events = browser(rig, "2001").events()
    name, snap = next(events)
    assert name == "snapshot"
    assert {a["id"]: a["state"] for a in snap["agents"]} == {"1001": "logged_out", "1002": "available",
                                                              "2001": "logged_out"}
    assert [q["name"] for q in snap["queues"]] == ["general"] and snap["me"]["role"] == "supervisor"
    assert snap["engines"] == [{"engine": rig.acd.engine_id, "accepting": True, "at": snap["engines"][0]["at"],
                                "calls": {"ivr": 0, "queue": 0, "ringing": 0, "agent": 0}}]
    rig.acd.board.login("1001")                       # the engine's own change, not a poll
    row = next_event(events, "agent", lambda d: d["id"] == "1001")
    assert row["state"] == "available"
    q = next_event(events, "queue")
    assert q["agents"]["available"] == 2
    # a reconnecting browser gets the current state at once
    name, snap = next(browser(rig, "2001").events())
    assert name == "snapshot" and {a["id"]: a["state"] for a in snap["agents"]}["1001"] == "available"


def test_an_agent_stream_carries_its_own_agent_and_calls_only(rig):
    events = browser(rig, "1001").events()
    name, snap = next(events)
    assert [a["id"] for a in snap["agents"]] == ["1001"]
    rig.login("1002")
    rig.acd.board.logout("1002")
    rig.login("1001")
    row = next_event(events, "agent")
    assert row["id"] == "1001"                       # 1002's changes were not sent to 1001
    caller = rig.call("13800000009")
    call = next_event(events, "call", lambda d: d.get("agent") == "1001" and d["state"] == "talking")
    assert call["call"] == caller.uuid
    caller.hangup()
    assert next_event(events, "call", lambda d: d.get("gone"))["call"] == caller.uuid


def test_a_hostile_caller_id_is_json_data(rig):
    rig.login("1001")
    events = browser(rig, "2001").events()
    next(events)
    hostile = '<script>alert(1)</script>"\n'
    rig.call(hostile.strip())
    call = next_event(events, "call", lambda d: d.get("caller"))
    assert next_event(events, "engine", lambda d: d["calls"]["agent"] == 1)["engine"] == rig.acd.engine_id
    # the simulator hands the engine the caller ID as it came; it reaches the browser as a JSON string
    assert "<script>" in call["caller"]
    b = browser(rig, "2001")
    status, headers, text = b.request("GET", "/v1/calls")
    assert headers["Content-Type"].startswith("application/json") and "<script>" in text


def test_a_client_that_falls_behind_is_dropped_and_the_others_are_served(rig):
    from engine.web.guard import Principal
    live = rig.web.live
    reader = browser(rig, "2001").events()
    assert next(reader)[0] == "snapshot"
    # a subscriber whose stream never takes from its queue (a browser that stopped reading: its
    # greenlet is stuck in a socket write) - web.stream_queue is 10 here
    stuck = live.subscribe(Principal("2001", "supervisor", via="session"))
    rounds = 0
    while not stuck.dropped and rounds < 50:          # each round: one to four events
        rig.acd.board.login("1002")
        rig.acd.board.logout("1002")
        next_event(reader, "agent", lambda d: d["id"] == "1002" and d["state"] == "logged_out")
        rounds += 1
    assert 3 <= rounds <= 11
    assert stuck.dropped and stuck not in live.clients and live.dropped == 1
    assert stuck.queue.qsize() == 10                 # what it held when dropped: bounded
    rig.acd.board.login("1001")                      # the reader goes on getting changes
    assert next_event(reader, "agent", lambda d: d["id"] == "1001")["state"] == "available"


def test_a_change_made_by_another_engine_reaches_this_engines_browsers(tmp_path, redis_server, redis_prefix):
    rigs = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            rigs.append(AcdRig(tmp_path / name, redis_server.url, redis_prefix, [agent("1001"), agent("2001")],
                               [queue("general", music="local_stream://moh")], control={"listen_port": free_port()}))
        a, b = rigs
        add_account(a.engine, "2001", PASSWORDS["2001"], "supervisor")
        browser_a = Browser(base_url(a))
        browser_a.login("2001", PASSWORDS["2001"])
        events = browser_a.events()
        assert next(events)[0] == "snapshot"
        b.acd.board.login("1001")                      # engine B's change; Redis is the truth for both
        assert next_event(events, "agent", lambda d: d["id"] == "1001")["state"] == "available"
        b.phone("1001")
        caller = b.call("13800000042")                 # B's call, on B's switch
        row = next_event(events, "call", lambda d: d.get("state") == "talking")
        assert row["call"] == caller.uuid and row["engine"] == b.acd.engine_id
        caller.hangup()
    finally:
        for r in rigs:
            r.stop()


def test_pages_escape_what_comes_from_outside(rig):
    b = Browser(rig.url)
    status, headers, page = b.request("GET", '/login?next=/desk%22%3E%3Cscript%3Ealert(1)%3C/script%3E')
    assert status == 200 and "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self';" in headers["Content-Security-Policy"]      # no inline script runs


def test_the_stream_says_expired_when_its_session_ends(rig, monkeypatch):
    from engine.web import live as live_mod
    monkeypatch.setattr(live_mod, "KEEPALIVE", 0.2)       # the session is checked at each keepalive
    now = [1_000_000.0]
    rig.web.clock = lambda: now[0]
    events = browser(rig, "1001").events()
    assert next(events)[0] == "snapshot"
    now[0] += 61 * 60                                     # web.session_idle_minutes: 60
    assert next_event(events, "expired") == {}
    assert list(events) == []                             # and the stream is closed


def test_live_streams_over_the_cap_are_refused_and_leave_the_request_caps(rig):
    server = rig.engine.control
    server.max_streams = 1
    first = browser(rig, "2001").events()
    assert next(first)[0] == "snapshot"
    assert server.streams == 1 and server.open_connections == 0     # a stream is not a pending request
    from tests.webfix import HttpFailed
    with pytest.raises(HttpFailed) as e:
        next(browser(rig, "2001").events())
    assert e.value.status == 503 and "too many live-update connections" in e.value.body


def test_browsers_connecting_while_nothing_changes_share_one_read(rig, monkeypatch):
    from engine.web import live as live_mod
    reads = []
    real = live_mod.views.agents
    monkeypatch.setattr(live_mod.views, "agents", lambda acd, *a: reads.append(1) or real(acd, *a))
    monkeypatch.setattr(live_mod, "SNAPSHOT_REUSE", 60.0)
    browsers = [browser(rig, "2001") for _ in range(5)]
    snaps = [next(b.events())[1] for b in browsers]
    assert len(reads) == 1 and all(s["agents"] == snaps[0]["agents"] for s in snaps)
    rig.acd.board.login("1001")                       # a change: the next browser gets a fresh read
    snap = next(browser(rig, "2001").events())[1]
    assert {a["id"]: a["state"] for a in snap["agents"]}["1001"] == "available"


def test_a_call_is_sent_again_when_it_changes_not_when_its_time_ticks(rig, monkeypatch):
    """Talk and wait times are as of `at` (the browser ticks them): re-sending every call at every
    pass as its talk time grew would send all calls to every wallboard several times a second."""
    from engine.web import live as live_mod
    rig.login("1001")
    events = browser(rig, "2001").events()
    next(events)
    caller = rig.call("13800000077")
    next_event(events, "call", lambda d: d["call"] == caller.uuid and d["state"] == "talking")
    live = rig.web.live
    live._pump.kill()                                             # its passes are ours from here
    real_time = live_mod.time.time
    try:
        base = real_time()
        monkeypatch.setattr(live_mod.time, "time", lambda: base)
        live.changes([], [])                                     # what this engine sent is now current
        monkeypatch.setattr(live_mod.time, "time", lambda: base + 7.0)
        _, calls = live.changes([], [])
    finally:
        monkeypatch.setattr(live_mod.time, "time", real_time)
    assert [c for c in calls if c[0] == "call"] == []             # 7 s more talk is no change
    caller.hangup()                                               # a real change goes out
    wait_for(lambda: caller.uuid not in rig.acd.conversations)
    _, calls = live.changes([], [])
    assert [(n, d["call"], d.get("gone")) for n, d in calls if n == "call"] == [("call", caller.uuid, True)]
