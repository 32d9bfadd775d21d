"""The web console over real HTTP against an engine of tests/acdfix.py (or enginefix.Rig).

    from tests.webfix import add_account, Browser
    add_account(rig.engine, "1001", "pass-1001-x", "agent")      # straight into the database
    b = Browser(rig.base_url)                                    # cookies kept like a browser's
    b.login("1001", "pass-1001-x")                               # GET /v1/session for the CSRF token, POST /login
    b.post("/v1/agents/1001/login")                              # X-CSRFToken sent on every POST
    events = b.events()                                          # SSE: next(events) -> (name, data)
"""
import http.client
import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request

from engine.web.accounts import Accounts


def add_account(engine, account_id, password, role, agent=None):
    """Create (or reset) an account in the engine's database, as `hotline users passwd` does."""
    account, _ = Accounts(engine.store).set_password(account_id, password, "test", role=role, agent=agent)
    return account


def base_url(rig):
    host, port = rig.engine.control.address[:2]
    return f"http://{host}:{port}"


class HttpFailed(Exception):
    def __init__(self, status, body):
        super().__init__(f"{status}: {body}")
        self.status, self.body = status, body


class Browser:
    def __init__(self, base):
        self.base = base.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())
        self.csrf = None

    def request(self, method, path, body=None, form=None, headers=None, csrf=True):
        """(status, headers, body text); never raises on an HTTP status."""
        data, hdrs = None, dict(headers or {})
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        if method != "GET" and csrf and self.csrf:
            hdrs.setdefault("X-CSRFToken", self.csrf)
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with self.opener.open(req, timeout=15) as r:
                return r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read().decode()

    def json(self, method, path, body=None, expect=200, **kw):
        status, _, text = self.request(method, path, body=body, **kw)
        if status != expect:
            raise HttpFailed(status, text)
        return json.loads(text)

    def get(self, path, expect=200):
        return self.json("GET", path, expect=expect)

    def post(self, path, body=None, expect=200):
        return self.json("POST", path, body if body is not None else {}, expect=expect)

    def refresh_csrf(self):
        self.csrf = self.get("/v1/session")["csrf_token"]
        return self.csrf

    def login(self, account_id, password, expect=200):
        self.refresh_csrf()
        out = self.json("POST", "/login", {"id": account_id, "password": password}, expect=expect)
        if expect == 200:
            self.csrf = out["csrf_token"]
        return out

    def cookie(self, name="hotline_session"):
        return next((c for c in self.jar if c.name == name), None)

    def events(self, timeout=15):
        """The /events stream as a generator of (event name, data) (comments skipped)."""
        host, port = self.base.split("//", 1)[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
        cookies = "; ".join(f"{c.name}={c.value}" for c in self.jar)
        conn.request("GET", "/events", headers={"Cookie": cookies, "Accept": "text/event-stream"})
        response = conn.getresponse()
        if response.status != 200:
            raise HttpFailed(response.status, response.read().decode())
        return _parse_sse(response, conn)


def _parse_sse(response, conn):
    try:
        name, data = None, []
        while True:
            line = response.readline()
            if not line:
                return
            line = line.decode("utf-8").rstrip("\n")
            if line == "":
                if data:
                    yield name or "message", json.loads("\n".join(data))
                name, data = None, []
            elif line.startswith(":"):
                continue
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
    finally:
        conn.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kw):
        return None
