"""The supervisors' wallboard and its big-screen mode (pages and their JSON).

    GET /wallboard, /wallboard/big            the pages (engine.web.pages)
    GET /api/wallboard/snapshot[?queue&group] queues, agents, calls, alerts (engine.web.wallboard)
    GET /api/wallboard/today                  today's answered / abandoned / rates, per hour

Actions use the control API's routes: /v1/supervise (monitor, whisper, barge: rings the
supervisor's phone), /v1/agents/<id>/<action> (state, extend or end a wrap-up).
"""
from flask import Blueprint, current_app, request

from engine.web import openapi, wallboard
from engine.web.guard import requires

bp = Blueprint("board", __name__)
openapi.describe("get", "/api/wallboard/snapshot", "queues, agents (time in state, over a threshold), calls with "
                 "their stage, alerts (?queue=, ?group=)", "supervisor", None, "wallboard")
openapi.describe("get", "/api/wallboard/today", "today's answered, abandoned, answer rate, satisfaction, per hour",
                 "supervisor", None, "wallboard")


def _engine():
    return current_app.extensions["hotline"].engine


@bp.get("/api/wallboard/snapshot")
@requires("supervisor")
def snapshot():
    return wallboard.snapshot(_engine(), queue=request.args.get("queue") or None,
                              group=request.args.get("group") or None)


@bp.get("/api/wallboard/today")
@requires("supervisor")
def today():
    return wallboard.today(_engine())
