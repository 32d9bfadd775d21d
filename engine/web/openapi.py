"""GET /api/openapi.json: an OpenAPI 3.0 description of every route, written by hand here (one
line per route in ROUTES; tests/test_web_openapi.py fails when a route is missing or the
document's shape is wrong). A blueprint added to app.BLUEPRINTS adds its lines to ROUTES (or calls
`describe(...)` at import)."""
from flask import Blueprint, current_app

bp = Blueprint("openapi", __name__)

ERROR = {"$ref": "#/components/schemas/Error"}
OBJ = {"type": "object", "additionalProperties": True}

# (method, OpenAPI path, summary, least role or None (public), request body schema or None, tag)
ROUTES = [
    ("get", "/v1/health", "engine status: accepting calls, calls, switch connected", None, None, "engine"),
    ("get", "/v1/agents", "agents (an agent sees itself only)", "agent", None, "agents"),
    ("post", "/v1/agents/{agent_id}/{action}", "login | logout | ready | break {reason} | extend {seconds}",
     "agent", {"type": "object", "properties": {"reason": {"type": "string"}, "seconds": {"type": "number"}}},
     "agents"),
    ("get", "/v1/queues", "queues: waiting, longest wait, agents by state, service level", "agent", None, "queues"),
    ("get", "/v1/calls", "every engine's calls", "supervisor", None, "calls"),
    ("get", "/v1/calls/{ref}", "one call on this engine (call uuid or agent id): row, caller name, number "
     "dialled, menu path, the bot's findings (slots in clear for its agent only)", "agent", None, "calls"),
    ("post", "/v1/calls/{ref}/{action}", "hold | unhold | transfer | consult | complete | cancel | three-way | "
     "survey | record | hangup: REF is the call uuid or the agent id", "agent",
     {"type": "object", "properties": {
         "target": {"type": "string"},
         "action": {"type": "string", "enum": ["start", "stop", "pause", "resume"]}}},
     "calls"),
    ("post", "/v1/supervise", "monitor | whisper | barge a call", "supervisor",
     {"type": "object", "required": ["target", "supervisor", "mode"],
      "properties": {"target": {"type": "string"}, "supervisor": {"type": "string"},
                     "mode": {"type": "string", "enum": ["monitor", "whisper", "barge"]}}}, "calls"),
    ("post", "/v1/tickets", "an agent's work order for a call", "agent",
     {"type": "object", "required": ["call", "category"],
      "properties": {"call": {"type": "string"}, "category": {"type": "string"}, "summary": {"type": "string"},
                     "department": {"type": "string"}}}, "tickets"),
    ("post", "/v1/reload", "reload flows, agents, queues, tokens", "admin", None, "engine"),
    ("get", "/v1/cdrs/{uuid}", "one CDR, personal data masked", "supervisor", None, "cdrs"),
    ("post", "/v1/cdrs/{uuid}/reveal", "one CDR in clear (audited)", "supervisor",
     {"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}, "cdrs"),
    ("get", "/v1/users", "accounts of the web console", "admin", None, "accounts"),
    ("post", "/v1/users", "create an account (or reset its password and role)", "admin",
     {"type": "object", "required": ["id", "password"],
      "properties": {"id": {"type": "string"}, "password": {"type": "string", "minLength": 8},
                     "role": {"type": "string", "enum": ["agent", "supervisor", "admin"]},
                     "agent": {"type": "string"}}}, "accounts"),
    ("post", "/v1/users/{account_id}/password", "set an account's password; its sessions end", "admin",
     {"type": "object", "required": ["password"], "properties": {"password": {"type": "string"}}}, "accounts"),
    ("post", "/v1/users/{account_id}/{action}", "disable | enable an account", "admin", None, "accounts"),
    ("get", "/v1/users/{account_id}/audit", "changes of an account", "admin", None, "accounts"),
    ("get", "/v1/session", "who is logged in, the CSRF token, session limits", None, None, "session"),
    ("post", "/v1/session/password", "change one's own password {current, password}", "agent",
     {"type": "object", "required": ["current", "password"],
      "properties": {"current": {"type": "string"}, "password": {"type": "string"}}}, "session"),
    ("get", "/login", "the login page (HTML)", None, None, "session"),
    ("post", "/login", "log in: form (id, password, csrf_token, next) or JSON {id, password} "
     "with X-CSRFToken", None, {"type": "object", "properties": {"id": {"type": "string"},
                                                               "password": {"type": "string"}}}, "session"),
    ("post", "/logout", "end the session", None, None, "session"),
    ("get", "/", "to the page of one's role", None, None, "pages"),
    ("get", "/desk", "the agent's desk (HTML)", "agent", None, "pages"),
    ("get", "/wallboard", "the supervisors' wallboard (HTML)", "supervisor", None, "pages"),
    ("get", "/wallboard/big", "the big screen: today's figures per hour (HTML)", "supervisor", None, "pages"),
    ("get", "/events", "live updates (text/event-stream): snapshot, then agent, queue, call events",
     "agent", None, "live"),
    ("get", "/metrics", "Prometheus text format", "supervisor", None, "metrics"),
    ("get", "/api/openapi.json", "this document", None, None, "meta"),
    # callbacks and campaigns (engine/outbound/webapi.py); supervisors run campaigns, agents take
    # callbacks of their queues and preview contacts
    ("get", "/v1/campaigns", "campaigns with their state and figures (supervisor); ?preview_for=me: the "
     "running preview campaigns of queues this agent has the skills of (agent)", "agent", None, "outbound"),
    ("post", "/v1/campaigns", "create a campaign {name, mode: robot|preview|progressive|predictive, queue?, "
     "flow?, priority?, window?}", "supervisor", OBJ, "outbound"),
    ("get", "/v1/campaigns/{ref}", "one campaign, with its contacts by state", "supervisor", None, "outbound"),
    ("post", "/v1/campaigns/{ref}", "(no action here: 405)", "supervisor", None, "outbound"),
    ("get", "/v1/campaigns/{ref}/{action}", "report: the campaign's figures by day and by agent",
     "supervisor", None, "outbound"),
    ("post", "/v1/campaigns/{ref}/{action}", "start | pause | resume | stop; contacts {rows, partial?}; "
     "next {agent?, accept?} (preview: an agent's next contact); dial | skip {contact, agent?} (the contact "
     "next {accept: false} showed: dialled, or given back and not offered to this agent again)", "agent", OBJ,
     "outbound"),
    ("get", "/v1/callbacks", "open callback jobs (an agent: those of its queues)", "agent", None, "outbound"),
    ("post", "/v1/callbacks", "a manual callback {number, queue?, note?, deadline_hours?}", "agent", OBJ,
     "outbound"),
    ("get", "/v1/callbacks/{ref}", "(no action here: 404; GET /v1/callbacks lists them)", "agent", None,
     "outbound"),
    ("post", "/v1/callbacks/{ref}", "(no action here: 404)", "agent", None, "outbound"),
    ("get", "/v1/callbacks/{ref}/{action}", "(no GET action: 404; take, skip, done are POSTs)", "agent", None,
     "outbound"),
    ("post", "/v1/callbacks/{ref}/{action}", "take | skip | done {agent?, disposition?}", "agent", OBJ,
     "outbound"),
]

STATUS = {"400": "bad request", "401": "no or unknown token, or not logged in", "403": "role or ownership",
          "404": "unknown agent, call, account or endpoint", "408": "body not received in time",
          "409": "the state does not allow it", "413": "body over 64 KB", "429": "too many attempts",
          "502": "the switch refused", "503": "no ACD, Redis unavailable, too many connections"}


def describe(method, path, summary, role, body=None, tag="other"):
    """Add a route to the document (for blueprints of other packages)."""
    ROUTES.append((method, path, summary, role, body, tag))


def document():
    paths = {}
    for method, path, summary, role, body, tag in ROUTES:
        op = {"summary": summary, "tags": [tag], "operationId": f"{method}_{path}".replace("/", "_").strip("_"),
              "responses": {"200": {"description": "done",
                                    "content": {"application/json": {"schema": OBJ}}}}}
        params = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
        if params:
            op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                                for p in params]
        if role is not None:
            op["security"] = [{"bearer": []}, {"session": []}]
            op["x-role"] = role
        if body is not None:
            op["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}
        for code, text in STATUS.items():
            op["responses"][code] = {"description": text, "content": {"application/json": {"schema": ERROR}}}
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "hotline engine: control API and web console", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": {"Error": {"type": "object", "required": ["error"],
                                  "properties": {"error": {"type": "string"}}}},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "control.tokens (CLI, tools)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "hotline_session",
                            "description": "a logged-in account; POSTs also need the X-CSRFToken header"}}},
    }


@bp.get("/api/openapi.json")
def openapi():
    return current_app.json.response(document())
