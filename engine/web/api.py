"""The control API: JSON for the CLI, supervisors' tools and the console's pages.

Every request carries `Authorization: Bearer <token>` (control.tokens, each with a role) or a
logged-in account's session cookie (then also the CSRF token on every POST):
- agent: its own agent only (state changes, in-call features on its own call);
- supervisor: every agent and call, monitor/whisper/barge;
- admin: all of that and reload.
Every change is written to the audit log with the token's name (or the account's id) as actor.

    GET  /v1/health                      GET /v1/agents   GET /v1/queues   GET /v1/calls
    POST /v1/agents/<id>/<login|logout|ready|break|extend>     {"reason": .., "seconds": ..}
    POST /v1/calls/<call|agent>/<hold|unhold|transfer|consult|complete|cancel|three-way|survey|hangup>
                                         {"target": ..} for transfer, consult, three-way
    POST /v1/calls/<call|agent>/record   {"action": "start|stop|pause|resume"}
    POST /v1/supervise                   {"target": <agent|call>, "supervisor": <id|ext>, "mode": ..}
    POST /v1/tickets                     {"call", "category", "summary", "department"?}
    POST /v1/reload
    GET  /v1/cdrs/<uuid>                 one CDR, callers' ID and card numbers masked (supervisor)
    POST /v1/cdrs/<uuid>/reveal          {"reason": ..}: the same in clear, for privacy.reveal_role
Errors answer {"error": "..."} with 400, 401, 403, 404, 408, 409, 413, 502, 503 (openapi.py).
"""
import logging
import re

from flask import Blueprint, current_app

from engine.acd import views
from engine.acd.incall import ControlError
from engine.web.guard import ROLES, HttpError, json_body, own, principal, requires

log = logging.getLogger("hotline.control")

bp = Blueprint("api", __name__)

AGENT_ACTIONS = ("login", "logout", "ready", "break", "extend")
CALL_ACTIONS = ("hold", "unhold", "transfer", "consult", "complete", "cancel", "three-way", "survey",
                "record", "hangup")
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")


def _engine():
    return current_app.extensions["hotline"].engine


def _acd():
    acd = _engine().acd
    if acd is None:
        raise HttpError(503, "no ACD configured (files.agents and files.queues)")
    return acd


@bp.get("/v1/health")
def health():
    engine = _engine()
    return {"accepting": engine.accepting, "calls": len(engine.calls),
            "switch_connected": bool(getattr(engine.esl, "connected", False)),
            "acd": None if engine.acd is None else engine.acd.engine_id}


@bp.get("/v1/agents")
@requires("agent")
def list_agents():
    rows = views.agents(_acd())
    who = principal()
    if who.role == "agent":
        rows = [r for r in rows if r["id"] == who.agent]
    return {"agents": rows}


@bp.get("/v1/queues")
@requires("agent")
def list_queues():
    return {"queues": views.queues(_acd())}


@bp.get("/v1/calls")
@requires("supervisor")
def list_calls():
    rows, missing = _acd().relay.site_calls()
    return {"calls": rows, "engines_not_answering": missing}


@bp.get("/v1/calls/<ref>")
@requires("agent")
def call_detail(ref):
    """The screen pop of one call on this engine (REF: the call uuid or the agent id): its row of
    /v1/calls with the caller's name, the number dialled, the menu path and what the bot learnt.
    The bot's slots are in clear for the agent on the call (they need them, as on the phone's
    screen); others see them masked."""
    acd = _acd()
    if not _ID.match(ref):
        raise HttpError(400, f"bad call or agent reference {ref[:40]!r}")
    rows = {r["call"]: r for r in views.calls(acd)}
    row = rows.get(ref) or next((r for r in rows.values() if r["agent"] == ref), None)
    if row is None:
        owner = acd.relay.owner(ref)
        raise HttpError(404, f"{ref} is a call on engine {owner}: ask that engine" if owner
                        else f"no call {ref!r} on this engine")
    who = principal()
    if who.role == "agent" and who.agent not in (row["agent"], *row["agents_offered"]):
        own(row["agent"])
    call = (acd.conversations.get(row["call"]) or acd.waiters.get(row["call"])).call
    bot = dict((call.info.get("extra") or {}).get("bot") or {})
    if who.role != "agent":
        from engine import privacy
        bot = privacy.mask_value(bot)
    return {"call": dict(row, engine=acd.engine_id), "caller_name": call.caller_id_name,
            "destination": call.destination_number, "ivr_path": list(call.path),
            "ivr_choice": call.variables.get("ivr_choice"),
            "bot": {k: bot.get(k) for k in ("bot", "exit", "intent", "slots")} if bot else None,
            "bot_summary": call.variables.get("bot_summary") or None}


@bp.post("/v1/agents/<agent_id>/<action>")
@requires("agent")
def agent_action(agent_id, action):
    acd = _acd()
    if action not in AGENT_ACTIONS:
        raise HttpError(404, f"unknown agent action {action!r}; one of {', '.join(AGENT_ACTIONS)}")
    if agent_id not in acd.config.agents:
        raise HttpError(404, f"unknown agent {agent_id!r}")
    own(agent_id)
    body = json_body()
    actor = principal().actor
    board = acd.board
    if action == "login":
        t = board.login(agent_id, actor=actor)
    elif action == "logout":
        t = board.logout(agent_id, actor=actor)
    elif action == "ready":
        t = board.ready(agent_id, actor=actor)
    elif action == "break":
        t = board.take_break(agent_id, str(body.get("reason") or ""), actor=actor)
    else:
        seconds = body.get("seconds")
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 < seconds <= 3600:
            raise HttpError(400, "seconds: a number of seconds between 1 and 3600")
        board.extend_wrapup(agent_id, seconds, actor=actor)
        t = None
    state = acd.store.agent(agent_id)
    return {"agent": agent_id, "state": state.get("state"), "reason": state.get("reason") or None,
            "pending": state.get("pending") or None, "changed": bool(t) if t is not None else True}


@bp.post("/v1/calls/<ref>/<action>")
@requires("agent")
def call_action(ref, action):
    acd = _acd()
    if action not in CALL_ACTIONS:
        raise HttpError(404, f"unknown call action {action!r}; one of {', '.join(CALL_ACTIONS)}")
    if not _ID.match(ref):
        raise HttpError(400, f"bad call or agent reference {ref[:40]!r}")
    body = json_body()
    target = body.get("target")
    if action in ("transfer", "consult", "three-way") and not isinstance(target, str):
        raise HttpError(400, "target: 'agent:<id>', 'queue:<name>' or 'external:<number>'")
    op, args = {"three-way": ("three_way", [target]), "transfer": ("transfer", [target]),
                "consult": ("consult", [target]), "survey": ("to_survey", []),
                "record": ("record", [str(body.get("action") or "")])}.get(action, (action, []))
    actor = principal().actor
    try:
        conv = acd.incall.conversation(ref)
    except ControlError as exc:
        if exc.engine is None:
            raise
        own(_agent_of(acd, ref))
        return acd.relay.ask(exc.engine, op, ref, *args, actor=actor)
    own(conv.agent)
    return getattr(acd.incall, op)(conv.call.uuid, *args, actor=actor)


def _agent_of(acd, ref):
    if ref in acd.config.agents:
        return ref
    for agent_id, d in acd.store.agents(list(acd.config.agents)).items():
        if d.get("call") == ref:
            return agent_id
    return None


@bp.post("/v1/supervise")
@requires("supervisor")
def supervise():
    acd = _acd()
    body = json_body()
    target, supervisor, mode = body.get("target"), body.get("supervisor"), body.get("mode")
    for name, value in (("target", target), ("supervisor", supervisor), ("mode", mode)):
        if not isinstance(value, str) or not _ID.match(value):
            raise HttpError(400, f"{name}: required text")
    actor = principal().actor
    try:
        return acd.incall.supervise(target, supervisor, mode, actor=actor)
    except ControlError as exc:
        if exc.engine is None:
            raise
        return acd.relay.ask(exc.engine, "supervise", target, supervisor, mode, actor=actor)


@bp.post("/v1/tickets")
@requires("agent")
def file_ticket():
    from engine.tickets.store import TicketError
    engine = _engine()
    service = getattr(engine, "tickets", None)
    if service is None:
        raise HttpError(503, "the ticket module is not running on this engine (see its log)")
    body = json_body()
    call_uuid, category = body.get("call"), body.get("category")
    summary, department = body.get("summary") or "", body.get("department")
    if not isinstance(call_uuid, str) or not _ID.match(call_uuid):
        raise HttpError(400, "call: the call's uuid")
    if not isinstance(category, str) or not category:
        raise HttpError(400, "category: required")
    if not isinstance(summary, str) or len(summary) > 2000:
        raise HttpError(400, "summary: text of at most 2000 characters")
    if department is not None and not isinstance(department, str):
        raise HttpError(400, "department: text")
    who = principal()
    if who.role == "agent":
        # an agent files for the call they are on or wrapping up
        acd = engine.acd
        state = acd.store.agent(who.agent) if acd is not None else {}
        if state.get("call") != call_uuid:
            raise HttpError(403, f"call {call_uuid} is not agent {who.agent}'s current call")
    store = service.checker.store
    try:
        if store.db is None:
            store.open()
        ticket = store.create(kind="agent", category=category, summary=summary, call_uuid=call_uuid,
                              department=department, who=who.actor)
    except TicketError as exc:
        raise HttpError(409, str(exc))
    return {"ticket": ticket.get("number"), "state": ticket.get("state"),
            "department": ticket.get("department"), "due_at": ticket.get("due_at")}


@bp.post("/v1/reload")
@requires("admin")
def reload():
    problems = _engine().reload()
    return {"reloaded": not problems, "problems": [str(p) for p in problems]}


@bp.get("/v1/cdrs/<uuid>")
@requires("supervisor")
def show_cdr(uuid):
    row = _engine().store.get(_checked_id(uuid))
    if row is None:
        raise HttpError(404, f"no CDR for call {uuid}")
    return {"cdr": _public(row)}


@bp.post("/v1/cdrs/<uuid>/reveal")
@requires("supervisor")
def reveal_cdr(uuid):
    from engine import privacy
    from engine.privacy.access import AccessRefused, reveal_cdr as reveal
    engine = _engine()
    who = principal()
    needed = engine.settings.privacy.reveal_role
    if ROLES[who.role] < ROLES[needed]:
        log.warning("personal data of call %s refused to %s (privacy.reveal_role is %s)", uuid, who.actor, needed)
        raise HttpError(403, f"a {who.role} token cannot see personal data in clear "
                             f"(privacy.reveal_role: {needed})")
    body = json_body()
    try:
        row = reveal(engine.store, _checked_id(uuid), f"api:{who.actor}", body.get("reason"), via="api")
    except AccessRefused as exc:
        raise HttpError(400, str(exc))
    except privacy.PrivacyError as exc:
        raise HttpError(503, str(exc))
    if row is None:
        raise HttpError(404, f"no CDR for call {uuid}")
    log.info("personal data of call %s shown in clear to %s (audited)", uuid, who.actor)
    return {"cdr": _public(row)}


def _checked_id(value):
    if not _ID.match(value or ""):
        raise HttpError(400, f"not a call uuid: {value[:80]!r}")
    return value


def _public(row):
    """A CDR as JSON: ISO times, and no sealed copy (useless without the key, and long)."""
    from engine import privacy
    out = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
    if isinstance(out.get("extra"), dict):
        out["extra"] = {k: v for k, v in out["extra"].items() if k != privacy.SEALED_KEY}
    return out
