"""What every view uses: who is asking (a control token or a logged-in account), role checks,
JSON bodies read within bounds, and errors that answer {"error": ...}.

    from engine.web.guard import HttpError, requires, json_body, own, principal
    @bp.post("/v1/things/<thing_id>/poke")
    @requires("supervisor")
    def poke(thing_id):
        body = json_body()
        return {"poked": thing_id, "by": principal().actor}
"""
import dataclasses
import functools
import json
from typing import Optional

import gevent
from flask import g, request

ROLES = {"agent": 1, "supervisor": 2, "admin": 3}


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is asking: a control token (via='token') or an account's browser session (via='session')."""
    name: str
    role: str
    agent: Optional[str] = None          # the agent an agent-role principal acts for
    via: str = "token"
    sid: Optional[str] = None            # the session's id (sessions only)

    @property
    def actor(self):
        """How the audit log names them: `<role>:<token name>` or `<role>:<account id>`."""
        return f"{self.role}:{self.name}"

    # flask-login's user protocol
    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self):
        return self.name


def principal():
    """The authenticated principal of this request (None: nobody)."""
    return g.get("principal")


def requires(role):
    """View decorator: 401 without a principal, 403 below `role`."""
    def wrap(view):
        @functools.wraps(view)
        def checked(*args, **kw):
            who = principal()
            if who is None:
                raise HttpError(401, g.get("auth_problem") or "missing bearer token (set HOTLINE_TOKEN for the CLI)")
            if ROLES[who.role] < ROLES[role]:
                raise HttpError(403, f"a {who.role} {'token' if who.via == 'token' else 'account'} cannot do this")
            if request.method == "POST":
                json_body()             # a bad body is refused before anything is done, as it always was
            return view(*args, **kw)
        checked.required_role = role
        return checked
    return wrap


def own(agent_id):
    """An agent acts only for itself: 403 for anyone else's agent or call."""
    who = principal()
    if who is not None and who.role == "agent" and who.agent != agent_id:
        raise HttpError(403, f"an agent {'token' if who.via == 'token' else 'account'} acts only for agent {who.agent}")


def json_body():
    """The request's JSON object ({} when empty): at most server.MAX_BODY bytes, received within
    server.REQUEST_SECONDS, nested within what the parser takes."""
    from engine.web import server
    if "json_body" in g:
        return g.json_body
    environ = request.environ
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HttpError(400, "bad Content-Length")
    if length < 0:                  # read(-1) would read until the client closes
        raise HttpError(400, "bad Content-Length")
    if length > server.MAX_BODY:
        raise HttpError(413, "request body too large")
    try:
        with gevent.Timeout(server.REQUEST_SECONDS, HttpError(408, "request body not received in time")):
            raw = environ["wsgi.input"].read(length) if length else b""
    except OSError:
        raise HttpError(408, "request body not received in time")
    data = {}
    if raw:
        try:
            data = json.loads(raw.decode("utf-8"))
        except RecursionError:      # the C scanner recurses per [ or {: 30,000 of them overflow
            raise HttpError(400, "body is not JSON we accept: nested too deeply")
        except ValueError as exc:   # JSONDecodeError, UnicodeDecodeError, an over-long integer
            raise HttpError(400, f"body is not JSON: {exc}")
        if not isinstance(data, dict):
            raise HttpError(400, "body must be a JSON object")
    g.json_body = data
    return data
