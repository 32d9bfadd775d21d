"""The Flask application of the engine: the control API (/v1/...), the web console's pages, login
sessions, live updates (/events), /metrics and /api/openapi.json.

`create_app(engine, tokens)` builds it; server.serve() runs it on gevent's WSGI server in the
engine process. Each part is a blueprint listed in BLUEPRINTS ("module:attribute"): a feature adds
its routes by appending its blueprint there (see docs/web-api.md); guard.py has what views use.

Who is asking is settled before every view: `Authorization: Bearer <token>` (control tokens from
the settings, for the CLI and tools; no CSRF check) or else the browser's session cookie (an
account, sessions.py; every state change needs the CSRF token of flask-wtf).
"""
import hmac
import logging
import os
import secrets
import time

from flask import Flask, g, jsonify, redirect, request, session, url_for
from flask_login import LoginManager
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from engine.web.guard import HttpError, Principal

log = logging.getLogger("hotline.web")

BLUEPRINTS = [
    "engine.web.api:bp",          # /v1/... the control API (ported from the hand-written router)
    "engine.web.users:bp",        # /v1/users... accounts (admin)
    "engine.web.auth:bp",         # /, /login, /logout, /v1/session
    "engine.web.live:bp",         # /events (SSE)
    "engine.web.metrics:bp",      # /metrics
    "engine.web.openapi:bp",      # /api/openapi.json
    "engine.web.pages:bp",        # /desk, /wallboard (the console's pages)
    "engine.web.desk:bp",         # /api/desk/... the desk's state, screen pop, wrap-up, knowledge base
    "engine.web.board:bp",        # /api/wallboard/... the wallboard's snapshot, today's figures
    "engine.outbound.web:bp",     # /v1/campaigns..., /v1/callbacks... (engine/outbound/webapi.py)
]
JSON_PREFIXES = ("/v1/", "/events", "/metrics", "/api/")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
SECRET_TTL = 400 * 86400          # seconds the cookie-signing key lives in Redis after its last use


class WebState:
    """What the views reach through `current_app.extensions["hotline"]`."""

    def __init__(self, engine, tokens, redis):
        from engine.web.accounts import Accounts
        from engine.web.live import Live
        from engine.web.metrics import Metrics
        from engine.web.sessions import Sessions
        self.engine = engine
        self.settings = engine.settings
        self.tokens = tokens              # callable: the current control tokens (reload swaps them)
        self.clock = time.time            # sessions' clock (tests replace it)
        self.redis = redis
        web = self.settings.web
        self.sessions = Sessions(redis, self.settings.redis.prefix, web.session_idle_minutes * 60,
                                 web.session_max_hours * 3600, lambda: self.clock())
        self.accounts = Accounts(engine.store)
        self.live = Live(self)
        self.metrics = Metrics(self)
        self.server = None

    def started(self, server):
        self.server = server
        self.live.start()

    def stop(self):
        self.live.stop()

    def token(self, presented):
        presented = presented.encode("utf-8")
        for token in self.tokens():
            if token.token and hmac.compare_digest(token.token.encode("utf-8"), presented):
                return token
        return None


def _redis(engine):
    acd = getattr(engine, "acd", None)
    if acd is not None:
        return acd.store.r
    from engine.infra.redisconn import redis_client
    r = engine.settings.redis
    return redis_client(r.url, r.sentinels, r.master_name, r.sentinel_password or None, max_connections=16,
                        timeout=5.0, decode_responses=True, socket_timeout=5, socket_connect_timeout=2)


def _secret_key(settings, redis):
    """The key signing session cookies: from `web.secret_key_env`, else one random key kept in
    Redis (SET NX: every engine of the site uses the same, so a browser may reach any of them)."""
    name = settings.web.secret_key_env
    if name:
        value = os.environ.get(name, "")
        if len(value) >= 32:
            return value
        # calls matter more than the console: run, loudly, with a key of this process only
        log.error("web.secret_key_env: $%s must hold at least 32 characters; a random key for this process: "
                  "sessions will not carry over to another engine or a restart", name)
        return secrets.token_hex(32)
    key = f"{settings.redis.prefix}web:secret"
    try:
        # like every key we write, it expires unless used: each start and each login renew it
        redis.set(key, secrets.token_hex(32), nx=True, ex=SECRET_TTL)
        redis.expire(key, SECRET_TTL)
        return redis.get(key)
    except Exception as exc:
        log.warning("web console: no cookie-signing key from Redis (%s); a random one for this process: "
                  "sessions will not carry over to another engine or a restart", exc)
        return secrets.token_hex(32)


def _storage_uri(settings):
    r = settings.redis
    if r.sentinels:
        return f"redis+sentinel://{','.join(r.sentinels)}/{r.master_name}"
    return r.url


def create_app(engine, tokens=lambda: ()):
    import importlib

    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    settings = engine.settings
    app = Flask("engine.web", template_folder="templates", static_folder="static")
    redis = _redis(engine)
    state = WebState(engine, tokens, redis)
    app.extensions["hotline"] = state
    app.config.update(
        SECRET_KEY=_secret_key(settings, redis),
        SESSION_COOKIE_NAME="hotline_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.web.secure_cookies,
        PERMANENT_SESSION_LIFETIME=int(settings.web.session_max_hours * 3600),
        MAX_CONTENT_LENGTH=64 * 1024,
        WTF_CSRF_CHECK_DEFAULT=False,          # checked in _before for session requests only
        WTF_CSRF_TIME_LIMIT=None,              # a token lives as long as its session
        WTF_CSRF_SSL_STRICT=settings.web.secure_cookies,
    )
    if settings.web.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix
        n = settings.web.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    csrf = CSRFProtect(app)
    login_manager = LoginManager(app)
    login_manager.request_loader(lambda req: g.get("principal"))
    limiter = Limiter(get_remote_address, app=app, storage_uri=_storage_uri(settings),
                      storage_options={"socket_connect_timeout": 2, "socket_timeout": 5},
                      key_prefix=f"{settings.redis.prefix}web:limit", strategy="fixed-window",
                      in_memory_fallback_enabled=True, swallow_errors=True, headers_enabled=True)
    state.limiter = limiter
    for spec in BLUEPRINTS:
        module, _, attr = spec.partition(":")
        mod = importlib.import_module(module)
        app.register_blueprint(getattr(mod, attr))
        if hasattr(mod, "install"):
            mod.install(app, state)

    @app.before_request
    def _before():
        g.principal = None
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, presented = header.partition(" ")
            g.bearer = True
            if scheme.lower() != "bearer" or not presented.strip():
                g.auth_problem = "missing bearer token (set HOTLINE_TOKEN for the CLI)"
            else:
                token = state.token(presented.strip())
                if token is None:
                    g.auth_problem = "unknown token"
                else:
                    g.principal = Principal(token.name, token.role, token.agent, via="token")
            return None
        g.bearer = False
        sid = session.get("sid")
        if sid:
            try:
                data = state.sessions.get(sid, touch=request.endpoint not in ("live.events",))
            except Exception as exc:
                log.warning("web sessions unavailable (%s)", exc)
                raise HttpError(503, "sessions are unavailable (Redis); try again")
            if data is None:
                session.pop("sid", None)
                g.auth_problem = "session expired or ended; log in again"
            else:
                g.principal = Principal(data["account"], data["role"], data.get("agent") or None,
                                        via="session", sid=sid)
        else:
            g.auth_problem = "not logged in (log in, or send Authorization: Bearer <token>)"
        if request.method not in SAFE_METHODS:
            csrf.protect()
        return None

    @app.after_request
    def _after(response):
        if request.path.startswith(JSON_PREFIXES):
            response.headers["Cache-Control"] = "no-store"
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if response.mimetype == "text/html":
            # scripts only from our own files: a caller ID that slipped into a page unescaped
            # still would not run
            response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    def wants_json():
        return request.path.startswith(JSON_PREFIXES) or request.is_json or g.get("bearer")

    def error(status, message):
        if status == 401 and not wants_json():
            return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))
        response = jsonify({"error": message})
        response.status_code = status
        return response

    from engine.acd.agents import AgentError
    from engine.acd.incall import ControlError
    from engine.web.accounts import AccountError

    app.register_error_handler(HttpError, lambda e: error(e.status, str(e)))
    app.register_error_handler(ControlError, lambda e: error(e.status, str(e)))
    app.register_error_handler(AgentError, lambda e: error(409, str(e)))
    app.register_error_handler(AccountError, lambda e: error(400, str(e)))
    from engine.acd.outage import ERRORS as REDIS_ERRORS
    for error_class in REDIS_ERRORS:
        app.register_error_handler(error_class, lambda e: error(503, "Redis is unavailable; try again"))
    app.register_error_handler(CSRFError, lambda e: error(400, f"CSRF check failed: {e.description}"))

    @app.errorhandler(HTTPException)
    def _http(e):
        if e.code == 404:
            return error(404, f"no such endpoint: {request.path}")
        if e.code == 405:
            return error(405, f"{request.method} not allowed on {request.path}")
        if e.code == 429:
            return error(429, f"too many attempts: {e.description}; wait and try again")
        return error(e.code or 500, e.description or e.name)

    @app.errorhandler(Exception)
    def _crash(e):
        log.exception("web request %s %s failed", request.method, request.path)
        return error(500, "internal error (see the engine log)")

    return app
