"""The web console's accounts and sessions over real HTTP against an engine on the simulator:
login/logout, wrong password, rate limit, session expiry (the app's clock moved), CSRF, roles."""
import re

import pytest

from tests.acdfix import AcdRig, agent, queue
from tests.enginefix import free_port
from tests.webfix import Browser, add_account, base_url

TOKENS = {"TOK_SUP": "sup-secret-1"}
PASSWORDS = {"1001": "desk-1001-pw", "1002": "desk-1002-pw", "2001": "boss-2001-pw", "root": "root-pw-123"}


@pytest.fixture
def rig(tmp_path, redis_server, redis_prefix):
    control = {"listen_port": free_port(), "tokens": [{"name": "ops", "role": "supervisor", "token_env": "TOK_SUP"}]}
    r = AcdRig(tmp_path, redis_server.url, redis_prefix,
               [agent("1001"), agent("1002"), agent("2001", role="supervisor")],
               [queue("general", music="local_stream://moh")], env=TOKENS, control=control,
               web={"login_attempts": 3, "login_window_seconds": 600, "session_idle_minutes": 10,
                    "session_max_hours": 1})
    for account_id, role in (("1001", "agent"), ("1002", "agent"), ("2001", "supervisor"), ("root", "admin")):
        add_account(r.engine, account_id, PASSWORDS[account_id], role)
    r.url = base_url(r)
    r.web = r.engine.control.application.extensions["hotline"]
    yield r
    r.stop()


def browser(rig, account_id=None):
    b = Browser(rig.url)
    if account_id:
        b.login(account_id, PASSWORDS[account_id])
    return b


def test_login_sets_a_safe_cookie_and_logout_ends_the_session_everywhere(rig):
    b = browser(rig)
    assert b.get("/v1/session")["authenticated"] is False
    me = b.login("1001", PASSWORDS["1001"])
    assert (me["id"], me["role"], me["agent"]) == ("1001", "agent", "1001")
    cookie = b.cookie()
    assert cookie is not None and cookie.has_nonstandard_attr("HttpOnly")
    assert b.get("/v1/session")["id"] == "1001"
    assert b.get("/v1/agents")["agents"][0]["id"] == "1001"
    stolen = Browser(rig.url)
    stolen.jar.set_cookie(cookie)                       # a copy of the cookie, taken before logout
    assert stolen.get("/v1/session")["authenticated"] is True
    assert b.post("/logout") == {"logged_out": True}
    assert b.get("/v1/agents", expect=401)["error"].startswith("not logged in")
    assert stolen.get("/v1/agents", expect=401)                   # the server forgot it: no replay


def test_the_session_cookie_is_httponly_samesite_lax(rig):
    b = browser(rig)
    b.refresh_csrf()
    status, headers, _ = b.request("POST", "/login", {"id": "1001", "password": PASSWORDS["1001"]})
    assert status == 200
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_a_wrong_password_and_an_unknown_id_get_the_same_refusal(rig):
    b = browser(rig)
    assert b.login("1001", "wrong-password", expect=401) == {"error": "wrong id or password"}
    assert b.login("9999", "wrong-password", expect=401) == {"error": "wrong id or password"}
    assert b.get("/v1/session")["authenticated"] is False
    status, _, page = b.request("POST", "/login", form={"id": "1001", "password": "nope", "csrf_token": b.csrf})
    assert status == 401 and "wrong id or password" in page


def test_login_attempts_are_limited_per_account(rig):
    b = browser(rig)
    for _ in range(3):
        b.login("1002", "guess-guess", expect=401)
    assert "too many attempts" in b.login("1002", PASSWORDS["1002"], expect=429)["error"]   # even the right one
    # other accounts log in from the same address (successes do not count), 1002 stays locked
    assert Browser(rig.url).login("1001", PASSWORDS["1001"])["id"] == "1001"
    assert Browser(rig.url).login("1002", PASSWORDS["1002"], expect=429)


def test_a_session_ends_when_idle_and_at_its_absolute_limit(rig):
    now = [1_000_000.0]
    rig.web.clock = lambda: now[0]
    b = browser(rig, "1001")
    now[0] += 9 * 60                                     # idle 10 minutes
    assert b.get("/v1/session")["authenticated"] is True
    now[0] += 9 * 60
    assert b.get("/v1/agents")["agents"]                  # each request restarts the idle time
    now[0] += 10 * 60 + 1
    assert b.get("/v1/agents", expect=401)["error"].startswith("session expired")
    b.login("1001", PASSWORDS["1001"])
    for _ in range(6):                                   # busy all along, but 1 hour is the most
        now[0] += 9 * 60
        b.get("/v1/agents")
    now[0] += 5 * 60
    assert b.get("/v1/agents")["agents"]                 # 59 minutes after the login
    now[0] += 2 * 60
    assert b.get("/v1/agents", expect=401)["error"].startswith("session expired")


def test_a_forged_form_without_the_csrf_token_is_refused(rig):
    b = browser(rig, "1001")
    # what another site's page could make the browser send: the cookie, no token
    status, _, text = b.request("POST", "/v1/agents/1001/login", body={}, csrf=False)
    assert status == 400 and "CSRF" in text
    status, _, text = b.request("POST", "/v1/agents/1001/login", form={"x": "1"}, csrf=False)
    assert status == 400 and "CSRF" in text
    status, _, _ = b.request("POST", "/v1/agents/1001/login", body={}, headers={"X-CSRFToken": "forged"}, csrf=False)
    assert status == 400
    assert rig.state("1001") == "logged_out"
    assert b.post("/v1/agents/1001/login")["state"] == "available"       # with the token
    # a token request needs no CSRF token (no cookie to ride on)
    tok = Browser(rig.url)
    status, _, text = tok.request("POST", "/v1/agents/1001/break", body={"reason": "meal"},
                                  headers={"Authorization": "Bearer sup-secret-1"})
    assert status == 409 or status == 200


def test_an_agent_account_acts_only_for_itself(rig):
    rig.login("1001", "1002")
    first = rig.call("13800000001")
    second = rig.call("13800000002")
    from tests.acdfix import wait_for
    assert wait_for(lambda: rig.state("1001") == "in_call" and rig.state("1002") == "in_call")
    b = browser(rig, "1001")
    assert b.post("/v1/calls/1002/hold", expect=403)["error"] == "an agent account acts only for agent 1001"
    call_of_1002 = rig.acd.store.agent("1002")["call"]
    assert b.post(f"/v1/calls/{call_of_1002}/hold", expect=403)
    assert b.post("/v1/agents/1002/logout", expect=403)
    assert b.get("/v1/calls", expect=403)
    mine = b.get("/v1/calls/1001")                                # the screen pop of its own call
    assert mine["call"]["call"] == rig.acd.store.agent("1001")["call"] and mine["caller_name"] == "Caller"
    assert mine["destination"] == "12345" and mine["bot"] is None
    assert b.get("/v1/calls/1002", expect=403) and b.get(f"/v1/calls/{call_of_1002}", expect=403)
    assert b.post("/v1/calls/1001/hold")["held"] is True
    sup = browser(rig, "2001")
    assert {c["agent"] for c in sup.get("/v1/calls")["calls"]} == {"1001", "1002"}
    assert sup.get(f"/v1/calls/{call_of_1002}")["call"]["agent"] == "1002"
    assert sup.get("/v1/calls/nobody", expect=404)
    assert sup.post("/v1/reload", expect=403)
    first.hangup()
    second.hangup()


def test_accounts_are_managed_by_an_admin_and_audited(rig):
    root = browser(rig, "root")
    assert root.post("/v1/users", {"id": "1003", "role": "agent", "password": "short"}, expect=400)
    made = root.post("/v1/users", {"id": "1003", "role": "agent", "password": "new-agent-pw"})
    assert made["created"] is True and made["user"]["agent"] == "1003"
    assert "password_hash" not in str(root.get("/v1/users"))
    desk = browser(rig)
    desk.login("1003", "new-agent-pw")
    root.post("/v1/users/1003/password", {"password": "another-pw-1"})
    assert desk.get("/v1/session")["authenticated"] is False          # reset ends its sessions
    desk.login("1003", "new-agent-pw", expect=401)
    desk.login("1003", "another-pw-1")
    root.post("/v1/users/1003/disable")
    desk.login("1003", "another-pw-1", expect=401)
    assert browser(rig, "2001").get("/v1/users", expect=403)
    actions = [(e["actor"], e["action"]) for e in root.get("/v1/users/1003/audit")["audit"]]
    assert actions == [("admin:root", "created"), ("admin:root", "password"), ("admin:root", "disabled")]


def test_pages_need_a_login_and_escape_what_they_show(rig):
    b = browser(rig)
    status, headers, _ = b.request("GET", "/desk")
    assert status == 302 and headers["Location"].startswith("/login")
    status, _, page = b.request("GET", "/login?next=//evil.example/x")
    assert status == 200 and "evil.example" not in page
    m = re.search(r'name="csrf_token" value="([^"]+)"', page)
    status, headers, _ = b.request("POST", "/login", form={"id": "1001", "password": PASSWORDS["1001"],
                                                          "csrf_token": m.group(1), "next": "/desk"})
    assert status == 302 and headers["Location"] == "/desk"
    status, _, page = b.request("GET", "/desk")
    assert status == 200 and 'data-agent="1001"' in page


def test_an_account_changes_its_own_password(rig):
    b = browser(rig, "1001")
    assert b.post("/v1/session/password", {"current": "wrong-one-1", "password": "brand-new-pw"}, expect=403)
    assert b.post("/v1/session/password", {"current": PASSWORDS["1001"], "password": "brand-new-pw"})["logged_out"]
    assert b.get("/v1/session")["authenticated"] is False
    b.login("1001", PASSWORDS["1001"], expect=401)
    b.login("1001", "brand-new-pw")


def test_behind_a_proxy_failed_logins_count_per_browser_address(tmp_path, redis_server, redis_prefix):
    r = AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001")], [queue("general")],
               control={"listen_port": free_port()},
               web={"trusted_proxies": 1, "login_attempts": 100, "login_attempts_per_address": 2})
    try:
        add_account(r.engine, "1001", PASSWORDS["1001"], "agent")
        b = Browser(base_url(r))
        b.refresh_csrf()

        def attempt(address, password="wrong-pw-xx"):
            return b.request("POST", "/login", {"id": "1001", "password": password},
                             headers={"X-Forwarded-For": address})[0]
        assert [attempt("10.0.0.7") for _ in range(3)] == [401, 401, 429]
        assert attempt("10.0.0.8", PASSWORDS["1001"]) == 200          # another desk behind the proxy
    finally:
        r.stop()
