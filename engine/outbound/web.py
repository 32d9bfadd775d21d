"""The control API's callbacks and campaigns as a blueprint of the web application (the routes
only; what each does, and who may, is in webapi.py, whose docstring lists the paths and actions)."""
from flask import Blueprint, current_app, request

from engine.outbound.webapi import ApiRefused, handle
from engine.web.guard import HttpError, json_body, principal, requires

bp = Blueprint("outbound", __name__)
KINDS = ("campaigns", "callbacks")


def _answer(kind, ref=None, action=None):
    engine = current_app.extensions["hotline"].engine
    body = json_body() if request.method == "POST" else request.args.to_dict()   # GET: the query
    try:
        return handle(engine, principal(), request.method, body, kind, ref, action)
    except ApiRefused as exc:
        raise HttpError(exc.status, str(exc)) from None


def _view(kind):
    # agents list and take callbacks and preview contacts; webapi checks each action's role
    @requires("agent")
    def view(ref=None, action=None):
        return _answer(kind, ref, action)
    return view


for _kind in KINDS:
    _v = _view(_kind)
    for _rule in (f"/v1/{_kind}", f"/v1/{_kind}/<ref>", f"/v1/{_kind}/<ref>/<action>"):
        bp.add_url_rule(_rule, endpoint=f"{_kind}{_rule.count('/')}", view_func=_v, methods=["GET", "POST"])
