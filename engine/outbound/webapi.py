"""The control API's callbacks and campaigns (engine/outbound/web.py routes them here):

    GET  /v1/campaigns                       list (supervisor)
    GET  /v1/campaigns?preview_for=me        running preview campaigns this agent may serve (agents)
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
                                             the agent (dialled at once unless accept is false)
    POST /v1/campaigns/<name>/<dial|skip>    {"contact": id, "agent"?}: a contact offered with
                                             accept false, dialled or given back (not offered again)
                                             (accepting rings the agent's phone first, then dials the
                                             contact; 409 as for take)

Roles: supervisors run campaigns; agents list, take, skip and close callbacks (their own id only),
and take preview contacts. Errors: ApiRefused(status, message).
"""
from engine.outbound import campaigns, jobs, preview, report
from engine.outbound.agentfirst import AgentBusy
from engine.outbound.campaigns import OutboundError
from engine.outbound.contacts import normalise_number
from engine.outbound.tables import as_dict

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
            return _campaigns(engine, service, token, method, body or {}, ref, action)
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


def _campaigns(engine, service, token, method, body, ref, action):
    db = service.db
    if action in ("next", "dial", "skip") and method != "POST":
        raise ApiRefused(405, f"{action}: POST only")     # a GET must never dial (no CSRF check on GETs)
    if ref is None and method == "GET" and body.get("preview_for"):
        return {"campaigns": _preview_for(engine, db, _agent_of(token, _me(token, body["preview_for"])))}
    if action in ("dial", "skip"):              # preview: the contact shown by next {accept: false}
        agent = _agent_of(token, body)
        contact = _offered(service, ref, agent, body.get("contact"))
        if action == "skip":
            preview.skip(db, service.claims, contact, agent)
            return {"contact": contact, "skipped": True}
        _dial(service, contact, campaigns.get(db, ref), agent)
        return {"contact": contact, "dialling": True}
    if action == "next":                        # preview: agents fetch their next contact
        agent = _agent_of(token, body)
        accept = bool(body.get("accept", True))
        campaign = campaigns.get(db, ref)
        # accepting rings the agent first: reserved before any contact is claimed for them
        held = _reserve(service, agent, campaign.get("queue")) if accept else None
        try:
            # the contact shown before and neither dialled nor skipped (a reloaded desk) comes first
            contact = _shown(service, ref, agent) or preview.offer(db, service.claims, ref, agent)
        except BaseException:
            if held is not None:
                service.placer.agent_first.cancel(held, "no_contact")
            raise
        if contact is None:
            if held is not None:
                service.placer.agent_first.cancel(held, "no_contact")
            return {"contact": None}
        if accept:
            _dial(service, contact, campaign, agent, reservation=held)
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


def _me(token, who):
    """preview_for=me (or the agent's own id; supervisors name an agent) -> the body _agent_of reads."""
    return {"agent": token.agent if who == "me" else who}


def _preview_for(engine, db, agent):
    """Running preview campaigns of queues this agent has the skills of (read only: no claim)."""
    return [c for c in campaigns.list_campaigns(db)
            if c["mode"] == "preview" and c["state"] == "running" and _may_take(engine, agent, c)]


# preview contacts this process is dialling (claimed rows look the same before and during the dial:
# this tells a shown contact from a dialled one, and refuses a second dial of the same contact)
_DIALLING = set()


def _dial(service, contact, campaign, agent, reservation=None):
    """Dial a contact claimed for `agent` (their phone rings first: `reservation` holds them, taken
    here when not given); the reservation is given back if the dial cannot start."""
    if contact["id"] in _DIALLING:
        if reservation is not None:
            service.placer.agent_first.cancel(reservation, "already_dialling")
        raise ApiRefused(409, f"contact {contact['id']} is being dialled")
    held = reservation if reservation is not None else _reserve(service, agent, campaign.get("queue"))
    _DIALLING.add(contact["id"])
    try:
        greenlet = service.runner.dial_claimed("contact", contact["id"], campaign, agent=agent, reservation=held)
    except BaseException:
        _DIALLING.discard(contact["id"])
        service.placer.agent_first.cancel(held, "dial_refused")
        raise
    if hasattr(greenlet, "link"):
        greenlet.link(lambda _g: _DIALLING.discard(contact["id"]))
    else:                                   # nothing to follow: the claim's state must tell
        _DIALLING.discard(contact["id"])


def _shown(service, name, agent):
    K = service.db.m.Contact
    campaign = campaigns.get(service.db, name)
    rows = service.db.run(lambda: list(K.select().where(
        (K.campaign_id == campaign["id"]) & (K.state == "claimed") & (K.agent == agent)
        & (K.claimed_by == service.claims.owner)).order_by(K.id)))
    row = next((r for r in rows if r.id not in _DIALLING), None)
    return None if row is None else {**as_dict(row), "campaign": campaign["name"]}


def _offered(service, name, agent, contact_id):
    """The contact `next` claimed for this agent on this engine, shown and not dialled yet."""
    if not str(contact_id or "").isdigit():
        raise ApiRefused(400, "contact: the id of the contact `next` offered")
    K = service.db.m.Contact
    row = service.db.run(lambda: K.get_or_none(K.id == int(contact_id)))
    campaign = campaigns.get(service.db, name)
    if row is None or row.campaign_id != campaign["id"]:
        raise ApiRefused(404, f"campaign {name} has no contact {contact_id}")
    if row.state != "claimed" or row.agent != agent or row.claimed_by != service.claims.owner:
        raise ApiRefused(409, f"contact {contact_id} is not waiting for agent {agent} on this engine")
    if row.id in _DIALLING:
        raise ApiRefused(409, f"contact {contact_id} is being dialled")
    return {**as_dict(row), "campaign": campaign["name"]}


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
    if method != "POST":
        raise ApiRefused(404, "no GET action on a callback job (GET /v1/callbacks lists them)")
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
