"""The supervisors' wallboard and its big-screen mode (pages and their JSON).

    GET /wallboard, /wallboard/big            the pages (engine.web.pages)
    GET /api/wallboard/snapshot[?queue&group] queues, agents, calls, alerts (engine.web.wallboard)
    GET /api/wallboard/today                  today's answered / abandoned / rates, per hour
    POST /api/wallboard/blacklist             {number, reason}: a caller onto the inbound blacklist,
                                              where the engine has the number lists (engine.outbound)

Actions use the control API's routes: /v1/supervise (monitor, whisper, barge: rings the
supervisor's phone), /v1/agents/<id>/<action> (state, extend or end a wrap-up).
"""
from flask import Blueprint, current_app, request

from engine.web import openapi, wallboard
from engine.web.guard import HttpError, json_body, principal, requires

bp = Blueprint("board", __name__)
openapi.describe("get", "/api/wallboard/snapshot", "queues, agents (time in state, over a threshold), calls with "
                 "their stage, alerts (?queue=, ?group=)", "supervisor", None, "wallboard")
openapi.describe("post", "/api/wallboard/blacklist", "add a caller's number to the inbound blacklist "
                 "(engine.outbound's lists; 503 where this engine has none)", "supervisor",
                 {"type": "object", "properties": {"number": {"type": "string"}, "reason": {"type": "string"}}},
                 "wallboard")
openapi.describe("get", "/api/wallboard/today", "today's answered, abandoned, answer rate, satisfaction, per hour",
                 "supervisor", None, "wallboard")


def _engine():
    return current_app.extensions["hotline"].engine


@bp.get("/api/wallboard/snapshot")
@requires("supervisor")
def snapshot():
    doc = wallboard.snapshot(_engine(), queue=request.args.get("queue") or None,
                             group=request.args.get("group") or None)
    doc["blacklist"] = _lists() is not None
    return doc


def _lists():
    """The engine's number lists (engine.outbound.service: `engine.outbound_calls.lists`, open
    once the database answered), or None where outbound calling is not part of the engine."""
    return getattr(getattr(_engine(), "outbound_calls", None), "lists", None)


@bp.post("/api/wallboard/blacklist")
@requires("supervisor")
def blacklist():
    lists = _lists()
    if lists is None:
        raise HttpError(503, "this engine has no number lists (engine.outbound) open")
    from engine.outbound.lists import ListError
    body = json_body()
    number, reason = body.get("number"), body.get("reason") or ""
    if not isinstance(number, str) or not number.strip() or not isinstance(reason, str):
        raise HttpError(400, "number: the caller's number; reason: text")
    try:
        entry = lists.add("blacklist", number, reason=reason, added_by=f"web:{principal().name}")
        lists.reload()                  # the engine screens the next call with it
    except ListError as exc:
        raise HttpError(400, str(exc))
    return {"blacklisted": entry}


@bp.get("/api/wallboard/today")
@requires("supervisor")
def today():
    return wallboard.today(_engine())
