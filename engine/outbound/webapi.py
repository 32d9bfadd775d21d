"""The control API's callbacks and campaigns (engine/outbound/web.py routes them here):

    GET  /v1/campaigns                       list (supervisor)
    POST /v1/campaigns                       {"name", "mode", "queue"?, "flow"?, "priority"?, ...}
    GET  /v1/campaigns/<name>                one, with contacts by state
    GET  /v1/campaigns/<name>/report         the figures
    POST /v1/campaigns/<name>/<start|pause|resume|stop>
    POST /v1/campaigns/<name>/contacts       {"rows": [{"number", "name"?, "reference"?, "fields"?}],
                                             "partial"?: bool}  (bigger lists: `hotline campaigns load`)
    GET  /v1/callbacks                       open jobs; an agent sees those of its queues, not skipped
    POST /v1/callbacks                       {"number", "queue"?, "note"?, "deadline_hours"?} (manual)
    POST /v1/callbacks/<id>/<take|skip|done> {"agent"?: supervisors name the agent; "disposition"?}
                                             take: the agent's phone rings first, then the customer
                                             is dialled and bridged (409: the agent is not available)
    POST /v1/campaigns/<name>/next          {"agent"?, "accept"?: true}: preview, the next contact for
                                             the agent (their phone rung, then the contact dialled,
                                             at once unless accept is false; 409 as for take)

Roles: supervisors run campaigns; agents list, take, skip and close callbacks (their own id only),
and take preview contacts. Errors: ApiRefused(status, message).
"""
from engine.outbound import campaigns, jobs, preview, report
from engine.outbound.agentfirst import AgentBusy
from engine.outbound.campaigns import OutboundError
from engine.outbound.contacts import normalise_number

ROLES = {"agent": 1, "supervisor": 2, "admin": 3}


class ApiRefused(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def handle(engine, token, method, body, kind, ref=None, action=None):
    service = getattr(engine, "outbound_jobs", None)
    if service is None:
        raise ApiRefused(503, "callbacks and campaigns are not running on this engine (see its log)")
    try:
        if kind == "campaigns":
            return _campaigns(service, token, method, body or {}, ref, action)
        return _callbacks(engine, service, token, method, body or {}, ref, action)
    except OutboundError as exc:
        raise ApiRefused(409 if "is " in str(exc) or "exists" in str(exc) else 400, str(exc)) from None


def _need(token, role):
    if ROLES[token.role] < ROLES[role]:
        raise ApiRefused(403, f"a {token.role} token cannot do this")


def _actor(token):
    return f"{token.role}:{token.name}"


def _agent_of(token, body):
    """Agents act for themselves; supervisors name the agent."""
    if token.role == "agent":
        if body.get("agent") not in (None, token.agent):
            raise ApiRefused(403, f"an agent token acts for agent {token.agent} only")
        return token.agent
    agent = body.get("agent")
    if not isinstance(agent, str) or not agent:
        raise ApiRefused(400, "agent: the agent's id")
    return agent


def _campaigns(service, token, method, body, ref, action):
    db = service.db
    if action == "next":                        # preview: agents fetch their next contact
        agent = _agent_of(token, body)
        accept = bool(body.get("accept", True))
        campaign = campaigns.get(db, ref)
        # accepting rings the agent first: reserved before any contact is claimed for them
        held = _reserve(service, agent, campaign.get("queue")) if accept else None
        try:
            contact = preview.offer(db, service.claims, ref, agent)
        except BaseException:
            if held is not None:
                service.placer.agent_first.cancel(held, "no_contact")
            raise
        if contact is None:
            if held is not None:
                service.placer.agent_first.cancel(held, "no_contact")
            return {"contact": None}
        if accept:
            service.runner.dial_claimed("contact", contact["id"], campaign, agent=agent, reservation=held)
        return {"contact": contact, "dialling": accept}
    _need(token, "supervisor")
    if ref is None:
        if method == "GET":
            return {"campaigns": campaigns.list_campaigns(db)}
        fields = {k: body[k] for k in ("queue", "flow", "priority", "max_attempts", "abandon_target", "note")
                  if k in body}
        return {"campaign": campaigns.create(db, body.get("name"), body.get("mode"), who=_actor(token), **fields)}
    if action is None and method == "GET":
        return {"campaign": campaigns.show(db, ref)}
    if action == "report" and method == "GET":
        return {"report": report.campaign_report(db, ref)}
    if action in campaigns.ACTIONS and method == "POST":
        return {"campaign": campaigns.control(db, ref, action, who=_actor(token))}
    if action == "contacts" and method == "POST":
        rows, errors = [], []
        for i, raw in enumerate(body.get("rows") or []):
            if not isinstance(raw, dict):
                errors.append(f"rows[{i}]: an object")
                continue
            number, problem = normalise_number(raw.get("number"))
            if number is None:
                errors.append(f"rows[{i}]: number: {problem}")
                continue
            rows.append({"number": number, "name": str(raw.get("name") or ""),
                         "reference": str(raw.get("reference") or ""),
                         "fields": {str(k): str(v) for k, v in (raw.get("fields") or {}).items()},
                         "source": f"api rows[{i}]"})
        return campaigns.add_contacts(db, ref, rows, errors, partial=bool(body.get("partial")))
    raise ApiRefused(405, f"{method} not allowed here")


def _callbacks(engine, service, token, method, body, ref, action):
    db = service.db
    if ref is None and method == "GET":
        rows = jobs.list_jobs(db, state="open")
        if token.role == "agent":
            rows = [r for r in rows if _may_take(engine, token.agent, r) and token.agent not in (r["skipped_by"] or [])]
        return {"callbacks": rows}
    if ref is None and method == "POST":
        return {"job": jobs.create_job(db, body.get("number"), "manual", queue=body.get("queue"),
                                       note=str(body.get("note") or ""), who=_actor(token),
                                       **({"deadline_hours": float(body["deadline_hours"])}
                                          if body.get("deadline_hours") else {}))}
    if not str(ref).isdigit():
        raise ApiRefused(400, "callback job id: a number")
    agent = _agent_of(token, body)
    job = jobs.get_job(db, ref)
    if token.role == "agent" and not _may_take(engine, agent, job):
        raise ApiRefused(403, f"callback job {ref} needs the skills of queue {job['queue']}")
    if action == "take":
        if job["state"] != "pending":           # said before the agent is reserved for nothing
            jobs.take(db, service.claims, ref, agent)
        held = _reserve(service, agent, job.get("queue"))
        try:
            job = jobs.take(db, service.claims, ref, agent)
        except BaseException:
            service.placer.agent_first.cancel(held, "take_refused")
            raise
        service.runner.dial_claimed("job", job["id"], None, agent=agent, reservation=held)
        return {"job": job, "ringing_agent": agent}
    if action == "skip":
        return {"job": jobs.skip(db, ref, agent)}
    if action == "done":
        return {"job": jobs.done(db, service.claims, ref, agent, disposition=str(body.get("disposition") or "done"),
                                 note=str(body.get("note") or ""))}
    raise ApiRefused(404, f"no such action: {action}")


def _reserve(service, agent, queue):
    """The agent reserved in the ACD for a preview call (their phone rings first); 409 when the
    agent is not available (on a call, ringing, wrapping up, on a break, logged out)."""
    try:
        return service.placer.agent_first.reserve(agent, queue)
    except AgentBusy as exc:
        raise ApiRefused(409, f"cannot ring agent {agent} for a preview call: {exc}") from None


def _may_take(engine, agent_id, job):
    """An agent takes callbacks of queues whose skills they have (a job without a queue: anyone)."""
    acd = getattr(engine, "acd", None)
    if acd is None or not job.get("queue"):
        return True
    queue, agent = acd.config.queues.get(job["queue"]), acd.config.agents.get(agent_id)
    return queue is None or (agent is not None and acd.config.qualified(agent, queue))
