"""The control API: JSON over HTTP for the CLI and supervisors' tools, served by gevent's WSGI
server inside the engine.

Every request carries `Authorization: Bearer <token>`; tokens come from the settings
(control.tokens, each read from an environment variable) with a role:
- agent: its own agent only (state changes, in-call features on its own call);
- supervisor: every agent and call, monitor/whisper/barge;
- admin: all of that and reload.
Every change is written to the audit log with the token's name as the actor.

    GET  /v1/health                      GET /v1/agents   GET /v1/queues   GET /v1/calls
    POST /v1/agents/<id>/<login|logout|ready|break|extend>     {"reason": .., "seconds": ..}
    POST /v1/calls/<call|agent>/<hold|unhold|transfer|consult|complete|cancel|three-way|survey>
                                         {"target": ..} for transfer, consult, three-way
    POST /v1/calls/<call|agent>/record   {"action": "start|stop|pause|resume"}
    POST /v1/supervise                   {"target": <agent|call>, "supervisor": <id|ext>, "mode": ..}
    POST /v1/tickets                     {"call", "category", "summary", "department"?}: an agent's
                                         work order for a call (during wrap-up, typically)
    POST /v1/reload
    GET  /v1/cdrs/<uuid>                 one CDR, callers' ID and card numbers masked (supervisor)
    POST /v1/cdrs/<uuid>/reveal          {"reason": ..}: the same in clear, for privacy.reveal_role
                                         and up; each reveal is audited (engine.privacy.access)
Errors answer {"error": "..."} with 400 (bad request), 401 (no/unknown token), 403 (role),
404 (unknown agent/call), 408 (body not received in time), 409 (wrong state), 502 (the switch
refused), 503 (no ACD configured; too many connections).

Connections are bounded: at most MAX_CONNECTIONS open (MAX_PER_CLIENT from one address), each
must deliver its request within REQUEST_SECONDS; a connection over a cap is answered 503 at once
and closed, so a flood of half-open sockets neither exhausts the engine's descriptors nor locks
out a supervisor on another machine.
"""
import hmac
import json
import logging
import re
import socket

import gevent
from gevent.pywsgi import WSGIHandler, WSGIServer

from engine.acd import views
from engine.acd.agents import AgentError
from engine.acd.incall import ControlError

log = logging.getLogger("hotline.control")

MAX_BODY = 64 * 1024
MAX_CONNECTIONS = 128        # open API connections (the CLI and supervisors' tools open one a request)
MAX_PER_CLIENT = 32          # of those, from one address
REQUEST_SECONDS = 10.0       # to send the request line, headers and body (also the keep-alive idle)
ROLES = {"agent": 1, "supervisor": 2, "admin": 3}
AGENT_ACTIONS = ("login", "logout", "ready", "break", "extend")
CALL_ACTIONS = ("hold", "unhold", "transfer", "consult", "complete", "cancel", "three-way", "survey",
                "record")
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,80}$")


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class ControlApp:
    def __init__(self, engine, tokens=lambda: ()):
        self.engine = engine
        self.tokens = tokens              # callable: the current TokenSettings (reload swaps them)
        self.routes = [
            ("GET", re.compile(r"^/v1/health$"), self.health, None),
            ("GET", re.compile(r"^/v1/agents$"), self.list_agents, "agent"),
            ("GET", re.compile(r"^/v1/queues$"), self.list_queues, "agent"),
            ("GET", re.compile(r"^/v1/calls$"), self.list_calls, "supervisor"),
            ("POST", re.compile(r"^/v1/agents/([^/]+)/([a-z-]+)$"), self.agent_action, "agent"),
            ("POST", re.compile(r"^/v1/calls/([^/]+)/([a-z-]+)$"), self.call_action, "agent"),
            ("POST", re.compile(r"^/v1/supervise$"), self.supervise, "supervisor"),
            ("POST", re.compile(r"^/v1/tickets$"), self.file_ticket, "agent"),
            ("POST", re.compile(r"^/v1/reload$"), self.reload, "admin"),
            ("GET", re.compile(r"^/v1/cdrs/([^/]+)$"), self.show_cdr, "supervisor"),
            ("POST", re.compile(r"^/v1/cdrs/([^/]+)/reveal$"), self.reveal_cdr, "supervisor"),
        ]
        # --- callbacks and campaigns (issue 15): the logic is in engine/outbound/webapi.py ---
        outbound = re.compile(r"^/v1/(campaigns|callbacks)(?:/([^/]+))?(?:/([a-z]+))?$")
        self.routes += [("GET", outbound, self.outbound_get, "agent"),
                        ("POST", outbound, self.outbound_post, "agent")]

    # --- WSGI -------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        try:
            status, body = self._dispatch(environ)
        except HttpError as exc:
            status, body = exc.status, {"error": str(exc)}
        except ControlError as exc:
            status, body = exc.status, {"error": str(exc)}
        except AgentError as exc:
            status, body = 409, {"error": str(exc)}
        except Exception:
            log.exception("control API request failed")
            status, body = 500, {"error": "internal error (see the engine log)"}
        data = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
        start_response(f"{status} {_REASONS.get(status, 'Error')}",
                       [("Content-Type", "application/json; charset=utf-8"),
                        ("Content-Length", str(len(data))), ("Cache-Control", "no-store")])
        return [data]

    def _dispatch(self, environ):
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "")
        allowed = False
        for want, pattern, handler, role in self.routes:
            m = pattern.match(path)
            if not m:
                continue
            allowed = True
            if want != method:
                continue
            token = self._authenticate(environ) if role else None
            if role and ROLES[token.role] < ROLES[role]:
                raise HttpError(403, f"a {token.role} token cannot do this")
            body = self._body(environ) if method == "POST" else {}
            return 200, handler(token, body, *m.groups())
        if allowed:
            raise HttpError(405, f"{method} not allowed on {path}")
        raise HttpError(404, f"no such endpoint: {path}")

    def _authenticate(self, environ):
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            raise HttpError(401, "missing bearer token (set HOTLINE_TOKEN for the CLI)")
        presented = presented.strip().encode("utf-8")
        for token in self.tokens():
            if token.token and hmac.compare_digest(token.token.encode("utf-8"), presented):
                return token
        raise HttpError(401, "unknown token")

    def _body(self, environ):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise HttpError(400, "bad Content-Length")
        if length < 0:                  # read(-1) would read until the client closes
            raise HttpError(400, "bad Content-Length")
        if length > MAX_BODY:
            raise HttpError(413, "request body too large")
        try:
            with gevent.Timeout(REQUEST_SECONDS, HttpError(408, "request body not received in time")):
                raw = environ["wsgi.input"].read(length) if length else b""
        except OSError:
            raise HttpError(408, "request body not received in time")
        if not raw:
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
        except RecursionError:          # the C scanner recurses per [ or {: 30,000 of them overflow
            raise HttpError(400, "body is not JSON we accept: nested too deeply")
        except ValueError as exc:       # JSONDecodeError, UnicodeDecodeError, an over-long integer
            raise HttpError(400, f"body is not JSON: {exc}")
        if not isinstance(data, dict):
            raise HttpError(400, "body must be a JSON object")
        return data

    # --- handlers ---------------------------------------------------------------------------------
    def _acd(self):
        acd = self.engine.acd
        if acd is None:
            raise HttpError(503, "no ACD configured (files.agents and files.queues)")
        return acd

    def health(self, token, body):
        engine = self.engine
        return {"accepting": engine.accepting, "calls": len(engine.call.live),
                "switch_connected": bool(getattr(engine.esl, "connected", False)),
                "acd": None if engine.acd is None else engine.acd.engine_id}

    def list_agents(self, token, body):
        rows = views.agents(self._acd())
        if token.role == "agent":
            rows = [r for r in rows if r["id"] == token.agent]
        return {"agents": rows}

    def list_queues(self, token, body):
        return {"queues": views.queues(self._acd())}

    def list_calls(self, token, body):
        rows, missing = self._acd().relay.site_calls()
        return {"calls": rows, "engines_not_answering": missing}

    def agent_action(self, token, body, agent_id, action):
        acd = self._acd()
        if action not in AGENT_ACTIONS:
            raise HttpError(404, f"unknown agent action {action!r}; one of {', '.join(AGENT_ACTIONS)}")
        if agent_id not in acd.config.agents:
            raise HttpError(404, f"unknown agent {agent_id!r}")
        self._own(token, agent_id)
        actor = _actor(token)
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
            if not isinstance(seconds, (int, float)) or not 0 < seconds <= 3600:
                raise HttpError(400, "seconds: a number of seconds between 1 and 3600")
            board.extend_wrapup(agent_id, seconds, actor=actor)
            t = None
        state = acd.store.agent(agent_id)
        return {"agent": agent_id, "state": state.get("state"), "reason": state.get("reason") or None,
                "pending": state.get("pending") or None, "changed": bool(t) if t is not None else True}

    def call_action(self, token, body, ref, action):
        acd = self._acd()
        if action not in CALL_ACTIONS:
            raise HttpError(404, f"unknown call action {action!r}; one of {', '.join(CALL_ACTIONS)}")
        if not _ID.match(ref):
            raise HttpError(400, f"bad call or agent reference {ref[:40]!r}")
        target = body.get("target")
        if action in ("transfer", "consult", "three-way") and not isinstance(target, str):
            raise HttpError(400, "target: 'agent:<id>', 'queue:<name>' or 'external:<number>'")
        op, args = {"three-way": ("three_way", [target]), "transfer": ("transfer", [target]),
                    "consult": ("consult", [target]), "survey": ("to_survey", []),
                    "record": ("record", [str(body.get("action") or "")])}.get(action, (action, []))
        try:
            conv = acd.incall.conversation(ref)
        except ControlError as exc:
            if exc.engine is None:
                raise
            self._own(token, self._agent_of(acd, ref))
            return acd.relay.ask(exc.engine, op, ref, *args, actor=_actor(token))
        self._own(token, conv.agent)
        return getattr(acd.incall, op)(conv.call.uuid, *args, actor=_actor(token))

    @staticmethod
    def _agent_of(acd, ref):
        if ref in acd.config.agents:
            return ref
        for agent_id, d in acd.store.agents(list(acd.config.agents)).items():
            if d.get("call") == ref:
                return agent_id
        return None

    def supervise(self, token, body):
        acd = self._acd()
        target, supervisor, mode = body.get("target"), body.get("supervisor"), body.get("mode")
        for name, value in (("target", target), ("supervisor", supervisor), ("mode", mode)):
            if not isinstance(value, str) or not _ID.match(value):
                raise HttpError(400, f"{name}: required text")
        try:
            return acd.incall.supervise(target, supervisor, mode, actor=_actor(token))
        except ControlError as exc:
            if exc.engine is None:
                raise
            return acd.relay.ask(exc.engine, "supervise", target, supervisor, mode, actor=_actor(token))

    def file_ticket(self, token, body):
        from engine.tickets.store import TicketError
        service = getattr(self.engine, "tickets", None)
        if service is None:
            raise HttpError(503, "the ticket module is not running on this engine (see its log)")
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
        if token.role == "agent":
            # an agent files for the call they are on or wrapping up
            acd = self.engine.acd
            state = acd.store.agent(token.agent) if acd is not None else {}
            if state.get("call") != call_uuid:
                raise HttpError(403, f"call {call_uuid} is not agent {token.agent}'s current call")
        store = service.checker.store
        try:
            if store.db is None:
                store.open()
            ticket = store.create(kind="agent", category=category, summary=summary,
                                                  call_uuid=call_uuid, department=department,
                                                  who=_actor(token))
        except TicketError as exc:
            raise HttpError(409, str(exc))
        return {"ticket": ticket.get("number"), "state": ticket.get("state"),
                "department": ticket.get("department"), "due_at": ticket.get("due_at")}

    def outbound_get(self, token, body, *parts):
        return self._outbound(token, "GET", body, *parts)

    def outbound_post(self, token, body, *parts):
        return self._outbound(token, "POST", body, *parts)

    def _outbound(self, token, method, body, kind, ref=None, action=None):
        from engine.outbound.webapi import ApiRefused, handle
        try:
            return handle(self.engine, token, method, body, kind, ref, action)
        except ApiRefused as exc:
            raise HttpError(exc.status, str(exc)) from None

    def reload(self, token, body):
        problems = self.engine.reload()
        return {"reloaded": not problems, "problems": [str(p) for p in problems]}

    def show_cdr(self, token, body, uuid):
        row = self.engine.store.get(_checked_id(uuid))
        if row is None:
            raise HttpError(404, f"no CDR for call {uuid}")
        return {"cdr": _public(row)}

    def reveal_cdr(self, token, body, uuid):
        from engine import privacy
        from engine.privacy.access import AccessRefused, reveal_cdr
        needed = self.engine.settings.privacy.reveal_role
        if ROLES[token.role] < ROLES[needed]:
            log.warning("personal data of call %s refused to %s (privacy.reveal_role is %s)",
                        uuid, _actor(token), needed)
            raise HttpError(403, f"a {token.role} token cannot see personal data in clear "
                                 f"(privacy.reveal_role: {needed})")
        try:
            row = reveal_cdr(self.engine.store, _checked_id(uuid), f"api:{_actor(token)}",
                             body.get("reason"), via="api")
        except AccessRefused as exc:
            raise HttpError(400, str(exc))
        except privacy.PrivacyError as exc:
            raise HttpError(503, str(exc))
        if row is None:
            raise HttpError(404, f"no CDR for call {uuid}")
        log.info("personal data of call %s shown in clear to %s (audited)", uuid, _actor(token))
        return {"cdr": _public(row)}

    def _own(self, token, agent_id):
        if token.role == "agent" and token.agent != agent_id:
            raise HttpError(403, f"an agent token acts only for agent {token.agent}")


def _actor(token):
    return f"{token.role}:{token.name}"


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


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 413: "Payload Too Large",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


_TOO_MANY = json.dumps({"error": "too many connections to the control API; try again"}).encode()
_TOO_MANY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                      b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_TOO_MANY), _TOO_MANY))


class _BoundedHandler(WSGIHandler):
    """A connection over a cap is answered 503 and closed; the others get REQUEST_SECONDS to send
    each request (a socket timeout for every read, and a deadline for line + headers)."""

    def handle(self):
        server, client = self.server, _client(self.client_address)
        if server.open_connections >= MAX_CONNECTIONS or server.per_client.get(client, 0) >= MAX_PER_CLIENT:
            server.refused += 1
            if server.refused == 1 or server.refused % 100 == 0:
                log.warning("control API: %d connection(s) refused over the caps (%d open, %d from %s)",
                            server.refused, server.open_connections, server.per_client.get(client, 0), client)
            try:
                self.socket.sendall(_TOO_MANY_RESPONSE)
            except OSError:
                pass
            self.socket.close()
            return
        server.open_connections += 1
        server.per_client[client] = server.per_client.get(client, 0) + 1
        try:
            self.socket.settimeout(REQUEST_SECONDS)
            super().handle()
        finally:
            server.open_connections -= 1
            server.per_client[client] -= 1
            if not server.per_client[client]:
                del server.per_client[client]

    def handle_one_request(self):
        self._deadline = gevent.Timeout.start_new(REQUEST_SECONDS, socket.timeout("request not received in time"))
        try:
            return super().handle_one_request()
        finally:
            self._deadline.close()

    def handle_one_response(self):
        self._deadline.close()          # the request is in; the answer may take longer (a reload)
        return super().handle_one_response()

    def _handle_client_error(self, ex):
        if isinstance(ex, OSError):     # too slow, or gone: nobody to answer
            self.close_connection = True
            return None
        return super()._handle_client_error(ex)


def _client(address):
    return address[0] if isinstance(address, tuple) and address else str(address)


class ControlServer(WSGIServer):
    handler_class = _BoundedHandler

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.open_connections, self.per_client, self.refused = 0, {}, 0


def serve(engine, host, port, tokens):
    """Start the API server (gevent WSGI, no access log on stderr: requests are logged by us)."""
    server = ControlServer((host, port), ControlApp(engine, tokens), log=None, error_log=log)
    server.start()
    log.info("control API on http://%s:%s", *server.address[:2])
    return server
