"""Logging in and out of the web console.

    GET  /login            the login form (HTML, with the CSRF token)
    POST /login            form fields id, password, csrf_token (and next): a session cookie and a
                           redirect; or JSON {"id", "password"} with the X-CSRFToken header: JSON
    POST /logout           ends the session (everywhere: it is removed from Redis)
    GET  /v1/session       who is logged in, the CSRF token for the page's scripts, the expiries
    GET  /                 to the page of one's role (/desk for agents, /wallboard above)

Failed attempts are limited per account id (`web.login_attempts` within `web.login_window_seconds`)
and per address (`web.login_attempts_per_address`), counted in Redis by flask-limiter (every engine
of the site shares the count); over either, 429, even for the right password, until the window
ends. A wrong id and a wrong password get the same answer.
"""
import logging
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request, session, url_for
from flask_wtf.csrf import generate_csrf

from engine.web.app import SECRET_TTL
from engine.web.guard import HttpError, principal

log = logging.getLogger("hotline.web.auth")

bp = Blueprint("auth", __name__)


def _state():
    return current_app.extensions["hotline"]


def home_of(who):
    return url_for("pages.desk") if who.role == "agent" else url_for("pages.wallboard")


def _safe_next(target):
    """Only a path on this site (no scheme, no host, no '//' or backslash tricks)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


@bp.get("/")
def index():
    who = principal()
    if who is None or who.via != "session":
        return redirect(url_for("auth.login"))
    return redirect(home_of(who))


@bp.route("/login", methods=["GET", "POST"])
def login():
    state = _state()
    as_json = request.is_json
    if request.method == "GET":
        return render_template("login.html", next=_safe_next(request.args.get("next")) or "", error=None)
    if as_json:
        body = request.get_json(silent=True)
        body = body if isinstance(body, dict) else {}
        account_id, password, nxt = body.get("id"), body.get("password"), None
    else:
        account_id, password = request.form.get("id", ""), request.form.get("password", "")
        nxt = _safe_next(request.form.get("next"))
    account = state.accounts.authenticate(account_id if isinstance(account_id, str) else "",
                                          password if isinstance(password, str) else "")
    if account is None:
        log.warning("web login refused for %r from %s", str(account_id)[:80], request.remote_addr)
        state.metrics.logins.labels("refused").inc()
        message = "wrong id or password"
        if as_json:
            raise HttpError(401, message)
        return render_template("login.html", next=nxt or "", error=message), 401
    session.clear()                       # a fresh session (no fixation) and a fresh CSRF token
    try:
        session["sid"] = state.sessions.create(account)
        state.redis.expire(f"{state.settings.redis.prefix}web:secret", SECRET_TTL)
    except Exception as exc:
        log.error("web login of %s: sessions unavailable (%s)", account["id"], exc)
        raise HttpError(503, "sessions are unavailable (Redis); try again")
    session.permanent = True
    state.metrics.logins.labels("ok").inc()
    log.info("web login: %s (%s) from %s", account["id"], account["role"], request.remote_addr)
    from engine.web.guard import Principal
    g.principal = Principal(account["id"], account["role"], account.get("agent"), via="session", sid=session["sid"])
    if as_json:
        return {"id": account["id"], "role": account["role"], "agent": account.get("agent"),
                "csrf_token": generate_csrf()}
    return redirect(nxt or home_of(g.principal))


@bp.post("/logout")
def logout():
    who = principal()
    if who is not None and who.via == "session":
        try:
            _state().sessions.end(who.sid)
        except Exception as exc:
            log.warning("web logout of %s: session not removed from Redis (%s)", who.name, exc)
        log.info("web logout: %s", who.name)
    session.clear()
    if request.is_json or request.accept_mimetypes.best == "application/json":
        return {"logged_out": True}
    return redirect(url_for("auth.login"))


@bp.get("/v1/session")
def whoami():
    who = principal()
    settings = _state().settings.web
    out = {"authenticated": who is not None, "csrf_token": generate_csrf(),
           "idle_seconds": settings.session_idle_minutes * 60, "max_seconds": settings.session_max_hours * 3600}
    if who is not None:
        out.update(id=who.name, role=who.role, agent=who.agent, via=who.via)
    return jsonify(out)


def _account_key():
    if request.is_json:
        data = request.get_json(silent=True) or {}
        value = data.get("id") if isinstance(data, dict) else None
    else:
        value = request.form.get("id")
    return "account:" + (str(value)[:80] if value else "-")


def _failed(response):
    """Only refused attempts count: a floor of agents logging in at 9:00 is not an attack."""
    return response.status_code == 401


def install(app, state):
    """Login attempts limited per address and per account id (flask-limiter, Redis storage)."""
    web = state.settings.web
    per_account = f"{web.login_attempts} per {web.login_window_seconds} seconds"
    per_address = f"{web.login_attempts_per_address} per {web.login_window_seconds} seconds"
    view = app.view_functions["auth.login"]
    view = state.limiter.limit(per_account, methods=["POST"], key_func=_account_key, scope="login-account",
                               deduct_when=_failed)(view)
    view = state.limiter.limit(per_address, methods=["POST"], scope="login-address", deduct_when=_failed)(view)
    app.view_functions["auth.login"] = view
