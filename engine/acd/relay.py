"""Call control across engines: a call lives on the engine whose switch carries it, but a
supervisor's CLI talks to any engine. The engine that gets a request for a call it does not hold
sends it through Redis to the engine that does, and waits for the answer.

Request: PUBLISH <prefix>ctl:<engine id> {"id", "op", "ref", "args", "actor"}
Answer:  LPUSH <prefix>ctlr:<id> {"ok": true, "result": ...} | {"ok": false, "status", "error"}
(the list expires after a minute; the asking engine waits with BLPOP).
"""
import json
import logging
import uuid as uuidlib

import gevent

from engine.acd.agents import AgentError
from engine.acd.incall import ControlError
from engine.acd.outage import ERRORS as REDIS_ERRORS

log = logging.getLogger("hotline.acd.relay")

OPS = ("hold", "unhold", "transfer", "consult", "complete", "cancel", "three_way", "to_survey", "record",
       "supervise", "calls")
ANSWER_TTL = 60
WAIT_SECONDS = 8


class Relay:
    def __init__(self, acd):
        self.acd = acd
        self._listener = None
        self._pubsub = None

    @property
    def channel(self):
        return f"{self.acd.store.p}ctl:{self.acd.engine_id}"

    def start(self):
        self._listener = gevent.spawn(self._listen)
        return self

    def stop(self):
        if self._listener is not None:
            self._listener.kill(block=True, timeout=1)
        if self._pubsub is not None:
            try:
                self._pubsub.close()
            except Exception:
                pass

    # --- asking -----------------------------------------------------------------------------------
    def owner(self, ref):
        """The engine holding the conversation `ref` (call uuid or agent id), if another one."""
        acd = self.acd
        states = acd.store.agents(list(acd.config.agents))
        for agent_id, d in states.items():
            if ref in (agent_id, d.get("call")) and d.get("state") == "in_call":
                engine = d.get("engine")
                if engine and engine != acd.engine_id and acd.store.engine_alive(engine):
                    return engine
        return None

    def ask(self, engine, op, ref, *args, actor="system"):
        if op not in OPS:
            raise ControlError(f"operation {op!r} cannot be relayed", 400)
        request_id = uuidlib.uuid4().hex
        message = json.dumps({"id": request_id, "op": op, "ref": ref, "args": list(args), "actor": actor})
        store = self.acd.store
        receivers = store.r.publish(f"{store.p}ctl:{engine}", message)
        if not receivers:
            raise ControlError(f"engine {engine} holds the call but does not listen for control requests", 502)
        answer = store.r.blpop(f"{store.p}ctlr:{request_id}", timeout=WAIT_SECONDS)
        if answer is None:
            raise ControlError(f"engine {engine} did not answer within {WAIT_SECONDS} s", 504)
        data = json.loads(answer[1])
        if not data.get("ok"):
            raise ControlError(data.get("error") or "failed on the other engine", data.get("status", 409))
        return dict(data.get("result") or {}, engine=engine)

    def site_calls(self):
        """Every engine's calls (this one's directly, the others' by asking), each row tagged with
        its engine; an engine that does not answer is reported, not fatal."""
        from engine.acd import views
        rows = [dict(r, engine=self.acd.engine_id) for r in views.calls(self.acd)]
        missing = []
        others = [e for e in self.acd.store.engines() if e != self.acd.engine_id]
        jobs = {e: gevent.spawn(self.ask, e, "calls", "") for e in others}
        gevent.joinall(list(jobs.values()), timeout=WAIT_SECONDS + 1)
        for engine, job in jobs.items():
            if job.successful():
                rows += [dict(r, engine=engine) for r in job.value.get("calls", [])]
            else:
                missing.append(engine)
        rows.sort(key=lambda r: -r["seconds"])
        return rows, missing

    # --- answering --------------------------------------------------------------------------------
    def _listen(self):
        backoff = 0.2
        while True:
            try:
                self._pubsub = self.acd.store.r.pubsub(ignore_subscribe_messages=True)
                self._pubsub.subscribe(self.channel)
                backoff = 0.2
                for message in self._pubsub.listen():
                    gevent.spawn(self._serve, message.get("data"))
            except Exception as exc:
                if isinstance(exc, REDIS_ERRORS):
                    self.acd.outage.failed(exc, "listening for control requests")
                else:
                    log.warning("control relay channel lost (%s); retrying", exc)
                gevent.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _serve(self, raw):
        try:
            request = json.loads(raw)
            request_id = str(request["id"])
        except (TypeError, ValueError, KeyError):
            log.warning("malformed control request ignored: %r", str(raw)[:200])
            return
        try:
            op = request.get("op")
            if op not in OPS:
                raise ControlError(f"operation {op!r} cannot be relayed", 400)
            actor = f"{request.get('actor') or 'system'} (relayed)"
            args = [a for a in request.get("args") or [] if isinstance(a, str)]
            if op == "calls":
                from engine.acd import views
                result = {"calls": views.calls(self.acd)}
            else:
                result = getattr(self.acd.incall, op)(str(request.get("ref")), *args, actor=actor)
            answer = {"ok": True, "result": result}
        except ControlError as exc:
            answer = {"ok": False, "status": exc.status, "error": str(exc)}
        except AgentError as exc:
            answer = {"ok": False, "status": 409, "error": str(exc)}
        except Exception as exc:
            log.exception("relayed control request failed")
            answer = {"ok": False, "status": 500, "error": f"failed on engine {self.acd.engine_id}: {exc}"}
        key = f"{self.acd.store.p}ctlr:{request_id}"
        pipe = self.acd.store.r.pipeline(transaction=False)
        pipe.lpush(key, json.dumps(answer, default=str))
        pipe.expire(key, ANSWER_TTL)
        pipe.execute()
