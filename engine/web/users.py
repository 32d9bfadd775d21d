"""Accounts through the API (admin): list them, create one, set a password, disable or enable.

    GET  /v1/users                        every account (no hashes)
    POST /v1/users                        {"id", "role", "password", "agent"?}: create (or reset)
    POST /v1/users/<id>/password          {"password"}: set it; the account's sessions end
    POST /v1/users/<id>/disable|enable    a disabled account cannot log in; its sessions end
    GET  /v1/users/<id>/audit             who changed the account, when
    POST /v1/session/password             {"current", "password"}: one's own (a logged-in account)
Every change is an audit row (accounts.py) naming the admin.
"""
from flask import Blueprint, current_app

from engine.web.accounts import AccountError
from engine.web.guard import HttpError, json_body, principal, requires

bp = Blueprint("users", __name__)


def _state():
    return current_app.extensions["hotline"]


@bp.get("/v1/users")
@requires("admin")
def list_users():
    return {"users": _state().accounts.list()}


@bp.post("/v1/users")
@requires("admin")
def create_user():
    body = json_body()
    state = _state()
    account, created = state.accounts.set_password(body.get("id"), body.get("password"), principal().actor,
                                                   role=body.get("role") or None, agent=body.get("agent"))
    if not created:
        state.sessions.end_all(account["id"])
    return {"user": account, "created": created}


@bp.post("/v1/users/<account_id>/password")
@requires("admin")
def set_password(account_id):
    state = _state()
    if state.accounts.get(account_id) is None:
        raise HttpError(404, f"no account {account_id!r}")
    account, _ = state.accounts.set_password(account_id, json_body().get("password"), principal().actor)
    ended = state.sessions.end_all(account_id)
    return {"user": account, "sessions_ended": ended}


@bp.post("/v1/users/<account_id>/<action>")
@requires("admin")
def enable_disable(account_id, action):
    if action not in ("disable", "enable"):
        raise HttpError(404, f"unknown account action {action!r}; one of password, disable, enable")
    state = _state()
    try:
        state.accounts.set_disabled(account_id, action == "disable", principal().actor)
    except AccountError as exc:
        raise HttpError(404, str(exc))
    ended = state.sessions.end_all(account_id) if action == "disable" else 0
    return {"user": state.accounts.get(account_id), "sessions_ended": ended}


@bp.get("/v1/users/<account_id>/audit")
@requires("admin")
def audit(account_id):
    return {"audit": _state().accounts.audit(account_id)}


@bp.post("/v1/session/password")
@requires("agent")
def own_password():
    who = principal()
    if who.via != "session":
        raise HttpError(400, "a token has no password; an admin sets accounts' passwords")
    body = json_body()
    state = _state()
    current = body.get("current") if isinstance(body.get("current"), str) else ""
    if state.accounts.authenticate(who.name, current) is None:
        raise HttpError(403, "the current password is wrong")
    account, _ = state.accounts.set_password(who.name, body.get("password"), who.actor)
    state.sessions.end_all(who.name)         # every other browser logs in again; this one too
    return {"user": account, "logged_out": True}
