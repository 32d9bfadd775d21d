"""What supervisors see: agents, queues and calls as plain dicts (the control API serves them, the
CLI draws them). Agents and queues come from Redis, so any engine shows the whole site; calls are
this engine's own."""
import time

STATES = ("available", "reserved", "ringing", "in_call", "wrap_up", "on_break", "logged_out")


def agents(acd, now=None, ids=None):
    """Every agent's row, or only those of `ids` (in the configuration's order): the live updates
    read the agents that changed, not all of them at every pass."""
    now = now or time.time()
    config = acd.config
    wanted = list(config.agents) if ids is None else [a for a in config.agents if a in ids]
    data = acd.store.agents(wanted)
    rows = []
    for agent_id in wanted:
        agent = config.agents[agent_id]
        d = data.get(agent_id) or {}
        since = float(d.get("since") or 0) or None
        rows.append({
            "id": agent_id, "name": agent.name, "extension": agent.extension, "role": agent.role,
            "state": d.get("state", "logged_out"), "reason": d.get("reason") or None,
            "seconds_in_state": round(now - since, 1) if since else None,
            "call": d.get("call") or None, "queue": d.get("queue") or None,
            "engine": d.get("engine") or None, "misses": int(float(d.get("misses") or 0)),
            "calls": int(float(d.get("calls") or 0)),          # since the agent first logged in
            "talk_seconds": round(float(d.get("talk") or 0), 1),
            "wrapup_left": _left(d.get("wrap_until"), now) if d.get("state") == "wrap_up" else None,
            # the conversation going on now (talk_seconds counts ended calls only)
            "talk_now": _since(d.get("answered_at"), now) if d.get("state") == "in_call" else None,
            "pending": d.get("pending") or None,
            "rated": int(float(d.get("rated") or 0)),
            "satisfaction_rate": _ratio(float(d.get("satisfied") or 0), float(d.get("rated") or 0)),
            "skills": dict(agent.skills),
        })
    return rows


def _left(until, now):
    try:
        return max(0.0, round(float(until) - now, 1))
    except (TypeError, ValueError):
        return None


def _since(at, now):
    try:
        return max(0.0, round(now - float(at), 1))
    except (TypeError, ValueError):
        return None


def queues(acd, now=None, day=None):
    now = now or time.time()
    day = day or time.strftime("%Y%m%d", time.localtime(now))
    config = acd.config
    states = acd.store.agent_states(list(config.agents))
    rows = []
    for name, queue in config.queues.items():
        qualified = [a.id for a in config.agents.values() if config.qualified(a, queue)]
        by_state = {s: 0 for s in STATES}
        for agent_id in qualified:
            by_state[states.get(agent_id) or "logged_out"] += 1
        stats = acd.store.stats(name, day)
        oldest = acd.store.oldest_joined(name)
        offered = stats.get("offered", 0)
        answered = stats.get("answered", 0)
        abandoned = stats.get("abandoned", 0)
        rows.append({
            "name": name, "strategy": queue.strategy, "waiting": acd.store.queue_length(name),
            "longest_wait": round(now - oldest, 1) if oldest else 0.0,
            "agents": by_state,
            "offered": int(offered), "answered": int(answered), "abandoned": int(abandoned),
            # one definition everywhere (the daily report's, engine.cdr.report): answered within
            # the threshold over the callers whose wait is over (answered or abandoned), so a
            # caller who gave up counts against it and one still waiting not yet
            "service_level": _ratio(stats.get("answered_sl", 0), answered + abandoned),
            "service_level_seconds": queue.service_level_seconds,
            "abandon_rate": _ratio(abandoned, offered),
            "average_wait": round(stats.get("wait_total", 0) / answered, 1) if answered else None,
            "average_talk": round(stats.get("talk_total", 0) / answered, 1) if answered else None,
            "rated": int(stats.get("rated", 0)),
            "satisfaction_rate": _ratio(stats.get("satisfied", 0), stats.get("rated", 0)),
        })
    return rows


def _ratio(part, whole):
    return round(100.0 * part / whole, 1) if whole else None


def calls(acd, now=None):
    now = now or time.time()
    rows = []
    for call_uuid, waiter in list(acd.waiters.items()):
        if call_uuid in acd.conversations:
            continue
        rows.append({"call": call_uuid, "caller": waiter.call.caller_id_number, "queue": waiter.queue,
                     "state": "ringing" if waiter.offer else "waiting", "agent": None,
                     "agents_offered": list(waiter.offer or []),
                     "seconds": round(now - waiter.joined, 1), "wait_seconds": round(now - waiter.joined, 1),
                     "talk_seconds": None, "parties": []})
    for call_uuid, conv in list(acd.conversations.items()):
        if conv.answered_at is None:
            state = "ringing"
        elif conv.consult:
            state = "consulting"
        elif conv.held:
            state = "held"
        elif conv.conference:
            state = "conference"
        else:
            state = "talking"
        since = conv.answered_at or conv.call.info.get("queue_joined") or now
        joined = conv.call.info.get("queue_joined")
        rows.append({"call": call_uuid, "caller": conv.call.caller_id_number, "queue": conv.queue.name,
                     "state": state, "agent": conv.agent, "agent_leg": conv.leg,
                     "agents_offered": list(conv.legs.values()) if conv.answered_at is None else [],
                     "seconds": round(now - since, 1),
                     "wait_seconds": round((conv.answered_at or now) - joined, 1) if joined else None,
                     "talk_seconds": round(now - conv.answered_at, 1) if conv.answered_at else None,
                     "parties": [{"leg": leg, "kind": p["kind"], "target": p["target"], "role": p["role"],
                                  "answered": p.get("answered", False)} for leg, p in conv.parties.items()],
                     "supervisors": [dict(s, leg=leg) for leg, s in acd.supervisions.items()
                                     if s["call"] == call_uuid]})
    rows.sort(key=lambda r: -r["seconds"])
    return rows
