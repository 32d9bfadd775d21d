"""The agent's desk: the page, its state document (state bar, the call and its screen pop, which
controls apply), the wrap-up (disposition, notes, work order, callback) and the knowledge base.

State changes and call controls go through the control API's own routes (/v1/agents/<id>/...,
/v1/calls/<ref>/...), which check that an agent acts only for itself; this blueprint adds what
only the desk needs. An agent account sees its own agent; a supervisor may open any agent's desk
(`/desk?agent=1001`).

    GET  /desk                       the page (engine.web.pages)
    GET  /api/desk/state[?agent=ID]  {agent, today, call, controls, pop}
    POST /api/desk/wrapup            {call, disposition, notes?, ticket?: {category, summary,
                                     department?}, callback?: bool}
    GET  /api/desk/kb?q=WORDS        knowledge base entries (words or pinyin initials)
"""
import datetime
import logging
import time
import types
import zoneinfo

from flask import Blueprint, current_app, request

from engine import privacy
from engine.acd import bridged, views
from engine.web import openapi
from engine.web.guard import HttpError, json_body, own, principal, requires
from engine.web.kb import KnowledgeBase
from engine.web.screenpop import screen_pop
from engine.web.wallboard import stage_of

log = logging.getLogger("hotline.web.desk")

bp = Blueprint("desk", __name__)
openapi.describe("get", "/api/desk/state", "the desk: agent row, today's calls and talk, the call, which controls "
                 "apply, the screen pop (?agent= for supervisors)", "agent", None, "desk")
openapi.describe("post", "/api/desk/wrapup", "wrap-up: disposition on the CDR, notes, work order created or "
                 "amended, callback", "agent",
                 {"type": "object", "properties": {"call": {"type": "string"}, "disposition": {"type": "string"},
                                                   "notes": {"type": "string"}, "ticket": {"type": "object"},
                                                   "callback": {"type": "boolean"}}}, "desk")
openapi.describe("get", "/api/desk/kb", "knowledge base search (?q= words or pinyin initials)", "agent", None, "desk")

NOTES_LIMIT = 2000
POP_CACHE_SECONDS = 2.0          # a screen pop reads the database: once per call per 2 s is enough
TODAY_CACHE_SECONDS = 5.0
# which control applies in which stage of the agent's call (engine.acd.views.calls states)
CONTROLS = {
    "talking": ("hold", "transfer", "consult", "three-way", "survey", "record", "hangup"),
    "held": ("unhold", "transfer", "consult", "hangup"),
    "consulting": ("complete", "cancel", "three-way"),
    "conference": ("record", "hangup"),
    "ringing": (),
}
# a preview call placed agent first, once the customer is bridged (engine/acd/bridged.py): the
# switch bridges it, so no consult, three-way, survey or recording control reaches it
BRIDGED_CONTROLS = {"talking": ("hold", "transfer", "hangup"), "held": ("unhold", "transfer", "hangup")}
ALL_CONTROLS = ("hold", "unhold", "transfer", "consult", "complete", "cancel", "three-way", "survey", "record",
                "hangup")


def _state():
    return current_app.extensions["hotline"]


def _engine():
    return _state().engine


def _acd():
    acd = _engine().acd
    if acd is None:
        raise HttpError(503, "no ACD configured (files.agents and files.queues)")
    return acd


def _agent_id():
    """The agent this desk is for: an agent's own, or ?agent= for supervisors."""
    who = principal()
    wanted = request.args.get("agent") or (json_body().get("agent") if request.method == "POST" else None)
    agent_id = wanted or who.agent
    if not agent_id:
        raise HttpError(400, "agent: which agent's desk (?agent=ID)")
    if agent_id not in _acd().config.agents:
        raise HttpError(404, f"unknown agent {agent_id!r}")
    own(agent_id)
    return agent_id


def _cache(name):
    state = _state()
    cache = getattr(state, name, None)
    if cache is None:
        cache = {}
        setattr(state, name, cache)
    return cache


def knowledge_base():
    state = _state()
    kb = getattr(state, "kb", None)
    if kb is None:
        kb = state.kb = KnowledgeBase(state.settings.files.flows_dir)
    return kb


def dispositions():
    """The wrap-up's categories: the ticket settings' (etc/tickets.yaml), label and name."""
    service = getattr(_engine(), "tickets", None)
    config = service.checker.store.config if service is not None else None
    if config is None:
        from engine.tickets.config import DEFAULT_CONFIG as config
    return [{"name": name, "label": cat.label or name} for name, cat in config.categories.items()], \
        list(config.departments)


@bp.get("/api/desk/state")
@requires("agent")
def state():
    acd = _acd()
    agent_id = _agent_id()
    now = time.time()
    row = _agent_row(acd, agent_id, now)
    call_uuid = row["call"]
    call_row = None
    if call_uuid:
        call_row = _call_row(acd, call_uuid, now)
    stage = stage_of(call_row) if call_row else None
    allowed = set(CONTROLS.get(stage, ()))
    if call_uuid and call_uuid in getattr(acd, "agent_first", {}):
        # a preview call: until the customer is bridged (ringing the agent, dialling the
        # customer) nothing applies; then hold / transfer / hang-up
        bridged = acd.agent_first[call_uuid].get("conversation")
        allowed = set(BRIDGED_CONTROLS.get(stage, ())) if bridged is not None and not bridged.agent_finished \
            else set()
    conv = acd.conversations.get(call_uuid) if call_uuid else None
    recording = paused = False
    if conv is not None:
        recording = bool(conv.call.info.get("recording")) and not conv.call.info.get("recording_stopped")
        paused = bool(conv.call.info.get("recording_paused_at"))
        if not conv.queue.survey:
            allowed.discard("survey")
    if not recording:
        allowed.discard("record")
    pop = None
    if call_uuid and row["state"] in ("ringing", "in_call", "wrap_up"):
        pop = _pop(call_uuid, now)
    return {"agent": row, "today": _today(agent_id, now),
            "call": ({"call": call_uuid, "stage": stage or ("ended" if row["state"] == "wrap_up" else None),
                      "seconds": call_row["seconds"] if call_row else None,
                      "recording": recording, "recording_paused": paused,
                      "parties": call_row["parties"] if call_row else []} if call_uuid else None),
            "controls": {c: c in allowed for c in ALL_CONTROLS},
            "pop": pop, "at": now}


def _agent_row(acd, agent_id, now):
    """The agent's row as GET /v1/agents has it (engine.acd.views), reading only this agent: 300
    desks refreshing on their own events must not read 300 agents each."""
    one = types.SimpleNamespace(config=types.SimpleNamespace(agents={agent_id: acd.config.agents[agent_id]}),
                                store=acd.store)
    return views.agents(one, now)[0]


def _call_row(acd, call_uuid, now):
    """The call's row as GET /v1/calls has it (engine.acd.views), built for this call only (this
    engine's; None for a call another engine holds)."""
    one = types.SimpleNamespace(
        waiters={call_uuid: acd.waiters[call_uuid]} if call_uuid in acd.waiters else {},
        conversations={call_uuid: acd.conversations[call_uuid]} if call_uuid in acd.conversations else {},
        supervisions=acd.supervisions)
    rows = views.calls(one, now)
    if not rows and call_uuid in getattr(acd, "agent_first", {}):
        # a preview call (engine/outbound/agentfirst.py): the agent's phone rings, then the agent
        # is on the line while the customer is dialled and bridged
        entry = acd.agent_first[call_uuid]
        answered = entry.get("answered_at")
        conv = entry.get("conversation")
        state = "held" if conv is not None and conv.held else "talking" if entry.get("state") == "in_call" \
            else "ringing"
        return {"call": call_uuid, "state": state,
                "seconds": round(now - answered, 1) if answered else None, "parties": [],
                "queue": entry.get("queue"), "caller": entry.get("number")}
    return rows[0] if rows else None


def _pop(call_uuid, now):
    cache = _cache("pop_cache")
    hit = cache.get(call_uuid)
    if hit and now - hit[0] < POP_CACHE_SECONDS:
        return hit[1]
    doc = screen_pop(_engine(), call_uuid, now)
    if len(cache) > 1000:
        cache.clear()
    cache[call_uuid] = (now, doc)
    return doc


def _today(agent_id, now):
    """Calls and talk time today (local day) from the CDRs, as the daily report counts them."""
    cache = _cache("today_cache")
    hit = cache.get(agent_id)
    if hit and now - hit[0] < TODAY_CACHE_SECONDS:
        return hit[1]
    zone = zoneinfo.ZoneInfo(getattr(_engine().settings, "timezone", None) or "Asia/Shanghai")
    midnight = datetime.datetime.fromtimestamp(now, zone).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        calls, talk = _engine().store.agent_day(agent_id, midnight.astimezone(datetime.timezone.utc))
    except Exception as exc:
        log.warning("desk of %s: today's figures not read: %s", agent_id, exc)
        calls, talk = None, None
    doc = {"calls": calls, "talk_seconds": round(talk, 1) if talk is not None else None}
    cache[agent_id] = (now, doc)
    return doc


@bp.post("/api/desk/wrapup")
@requires("agent")
def wrapup():
    acd = _acd()
    body = json_body()
    agent_id = _agent_id()
    call_uuid = body.get("call")
    disposition = body.get("disposition")
    notes = body.get("notes") or ""
    cats, _ = dispositions()
    if not isinstance(call_uuid, str) or not call_uuid:
        raise HttpError(400, "call: the call's uuid")
    if disposition not in {c["name"] for c in cats}:
        raise HttpError(400, f"disposition: one of {', '.join(c['name'] for c in cats)}")
    if not isinstance(notes, str) or len(notes) > NOTES_LIMIT or "\x00" in notes:
        raise HttpError(400, f"notes: text of at most {NOTES_LIMIT} characters")
    current = acd.store.agent(agent_id).get("call")
    who = principal()
    if who.role == "agent" and current != call_uuid:
        raise HttpError(403, f"call {call_uuid} is not agent {agent_id}'s current call")
    # a preview call placed agent first: the agent's state names their leg, the CDR the customer's
    call_uuid = bridged.customer_of(call_uuid) or call_uuid
    record = {"category": disposition, "notes": privacy.mask_text(notes), "agent": agent_id,
              "by": who.actor, "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    where = _store_disposition(call_uuid, record)
    out = {"call": call_uuid, "disposition": disposition, "stored": where}
    ticket = body.get("ticket")
    if ticket:
        out["ticket"] = _ticket(call_uuid, ticket, who)
    if body.get("callback"):
        out["callback"] = _callback(call_uuid, notes, who)
    log.info("[%s] wrap-up by %s: %s%s", call_uuid, who.actor, disposition,
             f", ticket {out['ticket']['number']}" if out.get("ticket") else "")
    return out


def _store_disposition(call_uuid, record):
    """On the live call (its final CDR carries it) and on the stored CDR if the call has ended."""
    engine = _engine()
    call = engine.calls.get(call_uuid)
    if call is not None and not getattr(call, "cdr_final", False):
        call.info.setdefault("extra", {})["disposition"] = record
        return "call"
    row = engine.store.get(call_uuid)
    if row is None:
        raise HttpError(404, f"no call {call_uuid} (neither live here nor in the CDRs)")
    row["extra"] = {**(row.get("extra") or {}), "disposition": record}
    row.pop("created_at", None)
    row.pop("updated_at", None)
    where = engine.store.save(row)
    if where != "committed":
        log.warning("[%s] disposition %s (database unavailable)", call_uuid, where)
    return where


def _tickets():
    service = getattr(_engine(), "tickets", None)
    if service is None:
        raise HttpError(503, "the ticket module is not running on this engine (see its log)")
    store = service.checker.store
    if store.db is None:
        store.open()
    return store


def _ticket(call_uuid, spec, who):
    from engine.tickets.store import TicketError
    if not isinstance(spec, dict):
        raise HttpError(400, "ticket: {category, summary, department?}")
    category, summary = spec.get("category"), spec.get("summary") or ""
    department = spec.get("department") or None
    store = _tickets()
    try:
        existing = store.by_call(call_uuid, "agent")
        if existing:
            t = store.amend(existing["number"], _who(who), summary=summary, category=category or None)
        else:
            t = store.create(kind="agent", category=category, summary=summary, call_uuid=call_uuid,
                             department=department, who=_who(who))
    except TicketError as exc:
        raise HttpError(409, str(exc))
    return {"number": t["number"], "state": t["state"], "category": t["category"],
            "department": t["department"], "updated": bool(existing)}


def _callback(call_uuid, notes, who):
    from engine.tickets.store import TicketError
    store = _tickets()
    try:
        existing = store.by_call(call_uuid, "callback")
        t = existing or store.create(kind="callback", category="callback", call_uuid=call_uuid,
                                     summary=notes or "坐席标记回拨", who=_who(who))
    except TicketError as exc:
        raise HttpError(409, str(exc))
    return {"number": t["number"], "state": t["state"]}


def _who(principal_):
    return f"web:{principal_.name}"[:64]


@bp.get("/api/desk/kb")
@requires("agent")
def kb():
    return {"entries": knowledge_base().search(request.args.get("q", ""))}
