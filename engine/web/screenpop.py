"""The screen pop: one JSON document about the caller an agent is offered or talking to.

Where the engine knows it:
- a live call on this engine (`engine.calls[uuid]`, engine.call.live.Call): caller ID, DID, the IVR
  path (`call.path`, one entry per node with the keys pressed), look-up results and other flow
  variables (`call.variables`, filled by the lookup/collect/set nodes), the bot's transcript and
  hand-off (`call.info["bot_transcript"]`, `call.info["extra"]["bot"]`, `call.variables`
  bot_intent / bot_summary: engine.bot.session), the queue and when the caller joined it
  (`call.info`, engine.acd.waiting);
- a call on another engine: its provisional CDR (written at queue join and agent answer:
  engine.daemon._provisional_cdr) has the same IVR path, queue and transcript, and the Redis
  queue entry (engine.acd.store `qe:<uuid>`) has the caller and the time they joined;
- the caller's history: their last CDRs (dates, agents, dispositions) and tickets.

Everything from outside is returned as data (the page shows it with textContent); ID and card
numbers are masked (engine.privacy) wherever they may appear: keys pressed, variables, transcript.
"""
import datetime
import logging
import time

from engine import privacy

log = logging.getLogger("hotline.web.screenpop")

HISTORY_CALLS = 5
HISTORY_TICKETS = 5
REPEAT_HOURS = 24.0            # without a queue: a call within a day makes a repeat caller
# flow variables that are the engine's own bookkeeping, not something the caller gave or a look-up found
_INTERNAL_VARIABLES = {"bot_intent", "bot_summary", "ivr_choice", "voicemail_path", "voicemail_seconds"}


def screen_pop(engine, call_uuid, now=None):
    """The document for `call_uuid`, or None when neither this engine nor the database knows it."""
    now = now or time.time()
    acd = engine.acd
    call = engine.calls.get(call_uuid)
    if call is not None:
        doc = _from_live(call, now)
    elif acd is not None and call_uuid in getattr(acd, "agent_first", {}):
        doc = _from_preview(acd.agent_first[call_uuid], call_uuid)
    else:
        doc = _from_elsewhere(engine, call_uuid, now)
        if doc is None:
            return None
    number = doc["caller_number"]
    doc["vip"] = False
    repeat_hours = REPEAT_HOURS
    if acd is not None and doc.get("queue") in acd.config.queues:
        queue = acd.config.queues[doc["queue"]]
        doc["vip"] = bool(number) and number in queue.vip_numbers
        repeat_hours = queue.repeat_caller_hours or REPEAT_HOURS
    doc["history"] = _history(engine, number, call_uuid)
    doc["tickets"] = _tickets(engine, number)
    # a repeat caller: called before within the queue's repeat_caller_hours (the same window the
    # router uses to send them to their last agent); that agent is the last one who served them
    since = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=repeat_hours)).isoformat()
    doc["repeat"] = any((h["start"] or "") >= since for h in doc["history"])
    served = [h["agent"] for h in doc["history"] if h["agent"]]
    doc["last_agent"] = served[0] if served else None
    return doc


def _from_preview(entry, call_uuid):
    """A preview call the dialler places for this agent (engine/outbound/agentfirst.py): whom it
    calls back and why, instead of an IVR path."""
    return {
        "call": call_uuid, "caller_number": entry.get("number") or "", "caller_name": entry.get("name") or "",
        "did": "", "source": "outbound", "ivr_path": [], "lookup": {}, "bot": None,
        "queue": entry.get("queue"), "waited_seconds": None,
        "outbound": {"kind": entry.get("kind"), "id": entry.get("row_id"), "campaign": entry.get("campaign"),
                     "ticket": entry.get("ticket"), "original_call": entry.get("original_call"),
                     "reason": entry.get("reason")},
    }


def _from_live(call, now):
    info, variables = call.info, call.variables
    bot = (info.get("extra") or {}).get("bot") or {}
    joined = info.get("queue_joined")
    waited = info.get("wait_seconds")
    if waited is None and joined:
        waited = now - joined
    return {
        "call": call.uuid, "caller_number": call.caller_id_number, "caller_name": call.caller_id_name,
        "did": call.destination_number, "source": "live",
        "ivr_path": ivr_steps(call.path),
        "lookup": _variables(variables),
        "bot": _bot(info.get("bot_transcript"), bot, variables) if (bot or info.get("bot_transcript")) else None,
        "queue": info.get("queue"), "waited_seconds": round(waited, 1) if waited is not None else None,
    }


def _from_elsewhere(engine, call_uuid, now):
    row = None
    try:
        row = engine.store.get(call_uuid)
    except Exception as exc:
        log.warning("[%s] screen pop: CDR not read: %s", call_uuid, exc)
    entry = {}
    acd = engine.acd
    if acd is not None:
        try:
            entry = acd.store.entries([call_uuid]).get(call_uuid) or {}
        except Exception as exc:
            log.warning("[%s] screen pop: queue entry not read: %s", call_uuid, exc)
    if row is None and not entry:
        return None
    row = row or {}
    extra = row.get("extra") or {}
    joined = float(entry["joined"]) if entry.get("joined") else None
    waited = row.get("wait_seconds")
    if waited is None and joined:
        waited = now - joined
    transcript = row.get("bot_transcript")
    return {
        "call": call_uuid, "caller_number": row.get("caller_number") or entry.get("caller") or "",
        "caller_name": row.get("caller_name") or "", "did": row.get("destination") or "",
        "source": "cdr" if row else "queue",
        "ivr_path": ivr_steps(row.get("ivr_path") or []),
        "lookup": {},
        "bot": _bot(transcript, extra.get("bot") or {}, {}) if (transcript or extra.get("bot")) else None,
        "queue": row.get("queue") or entry.get("queue"),
        "waited_seconds": round(waited, 1) if waited is not None else None,
    }


def ivr_steps(path):
    """The IVR path as the agent reads it: node, its type, how it ended, keys pressed (masked)."""
    steps = []
    for step in path or []:
        if not isinstance(step, dict):
            continue
        steps.append({"node": str(step.get("node") or ""), "type": str(step.get("type") or ""),
                      "branch": str(step.get("branch") or ""),
                      "digits": privacy.mask_text(str(step.get("digits") or ""))})
    return steps


def _variables(variables):
    out = {}
    for name, value in variables.items():
        if name in _INTERNAL_VARIABLES or name.startswith("_"):
            continue
        if isinstance(value, (dict, list)):
            out[name] = privacy.mask_value(value)
        else:
            out[name] = privacy.mask_text("" if value is None else str(value))
    return out


def _bot(transcript, bot, variables):
    lines = []
    for entry in transcript or []:
        if isinstance(entry, dict):
            lines.append({"who": str(entry.get("who") or ""),
                          "text": privacy.mask_text(str(entry.get("text") or ""))})
    return {"transcript": lines, "exit": bot.get("exit"), "intent": bot.get("intent") or variables.get("bot_intent"),
            "slots": privacy.mask_value(bot.get("slots") or {}),
            "summary": privacy.mask_text(str(variables.get("bot_summary") or ""))}


def _history(engine, number, call_uuid):
    if not number:
        return []
    try:
        rows = engine.store.by_caller(number, limit=HISTORY_CALLS + 1)
    except Exception as exc:
        log.warning("[%s] screen pop: caller history not read: %s", call_uuid, exc)
        return []
    out = []
    for row in rows:
        if row["uuid"] == call_uuid:
            continue
        extra = row.get("extra") or {}
        disposition = extra.get("disposition") or {}
        out.append({"call": row["uuid"], "start": _iso(row.get("start_time")), "agent": row.get("agent"),
                    "queue": row.get("queue"), "disposition": disposition.get("category"),
                    "notes": privacy.mask_text(str(disposition.get("notes") or "")),
                    "satisfaction": row.get("satisfaction"), "abandoned": "abandoned" in (row.get("tags") or [])})
    return out[:HISTORY_CALLS]


def _tickets(engine, number):
    service = getattr(engine, "tickets", None)
    if service is None or not number:
        return []
    store = service.checker.store
    try:
        if store.db is None:
            store.open()
        rows = store.by_caller(number, limit=HISTORY_TICKETS)
    except Exception as exc:
        log.warning("screen pop: tickets not read: %s", exc)
        return []
    return [{"number": t["number"], "kind": t["kind"], "category": t["category"], "state": t["state"],
             "summary": t["summary"], "created": _iso(t["created_at"]), "due": _iso(t["due_at"])}
            for t in rows]


def _iso(value):
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.isoformat(timespec="seconds")
    return value
