"""The supervisors' wallboard and its big-screen mode (pages and their JSON).

    GET /wallboard[?queue=Q&group=G]          the page
    GET /wallboard/big                        the big screen (today's figures, per hour)
    GET /wallboard/api/snapshot[?queue&group] queues, agents, calls, alerts (engine.web.wallboard)
    GET /wallboard/api/today                  today's answered / abandoned / rates, per hour

Actions use the control API's routes: /v1/supervise (monitor, whisper, barge: rings the
supervisor's phone), /v1/agents/<id>/<action> (state, extend or end a wrap-up).
"""
from flask import Blueprint, current_app, render_template, request

from engine.web import wallboard
from engine.web.guard import principal, requires

bp = Blueprint("board", __name__)


def _engine():
    return current_app.extensions["hotline"].engine


@bp.get("/wallboard")
@requires("supervisor")
def page():
    engine = _engine()
    acd = engine.acd
    supervisors = [] if acd is None else [a for a in acd.config.agents.values() if a.role == "supervisor"]
    me = principal()
    mine = next((s.id for s in supervisors if s.id in (me.agent, me.name)), supervisors[0].id if supervisors else "")
    return render_template("wallboard.html", who=me, supervisors=supervisors, me=mine,
                           break_reasons=acd.config.break_reasons if acd else (),
                           cfg=wallboard.settings_of(engine))


@bp.get("/wallboard/big")
@requires("supervisor")
def big():
    return render_template("bigscreen.html", who=principal())


@bp.get("/wallboard/api/snapshot")
@requires("supervisor")
def snapshot():
    return wallboard.snapshot(_engine(), queue=request.args.get("queue") or None,
                              group=request.args.get("group") or None)


@bp.get("/wallboard/api/today")
@requires("supervisor")
def today():
    return wallboard.today(_engine())
