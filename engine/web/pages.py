"""The console's pages: the agent's desk, the supervisors' wallboard and its big screen.
Their data and actions: engine.web.desk, engine.web.board and the control API (/v1/...)."""
from flask import Blueprint, render_template

from engine.web import wallboard as board_data
from engine.web.desk import _acd, _agent_id, _engine, dispositions
from engine.web.guard import principal, requires

bp = Blueprint("pages", __name__)


@bp.get("/desk")
@requires("agent")
def desk():
    acd = _acd()
    agent_id = _agent_id()
    cats, departments = dispositions()
    agents = [{"id": a.id, "name": a.name} for a in acd.config.agents.values() if a.id != agent_id]
    return render_template("desk.html", agent=acd.config.agents[agent_id], who=principal(),
                           break_reasons=acd.config.break_reasons, dispositions=cats,
                           departments=departments, queues=list(acd.config.queues), agents=agents)


@bp.get("/wallboard")
@requires("supervisor")
def wallboard():
    engine = _engine()
    acd = engine.acd
    supervisors = [] if acd is None else [a for a in acd.config.agents.values() if a.role == "supervisor"]
    me = principal()
    mine = next((s.id for s in supervisors if s.id in (me.agent, me.name)), supervisors[0].id if supervisors else "")
    return render_template("wallboard.html", who=me, supervisors=supervisors, me=mine,
                           cfg=board_data.settings_of(engine))


@bp.get("/wallboard/big")
@requires("supervisor")
def big():
    return render_template("bigscreen.html", who=principal())
