"""Outbound calling inside one engine: its number lists (reloaded every lists_reload_seconds),
the inbound-first gate on the ACD's Redis, the dialer, and the two hooks the daemon calls for
every call the switch hands it (`handler_for`): an outbound leg goes to its registered handler,
a blacklisted caller to the blacklist's treatment, anything else on to the IVR (None).

    out = service.for_engine(engine)      # made on first use, kept on the engine
    out.dialer.dial(DialRequest(...))
"""
import logging

import gevent

from engine.outbound import legs
from engine.outbound.dialblock import install
from engine.outbound.lists import NumberLists

log = logging.getLogger("hotline.outbound")


class Outbound:
    def __init__(self, engine):
        self.engine = engine
        settings = engine.settings
        self.cfg = settings.outbound_calls
        self.lists = None               # set once the database answered (in the background)
        install(None, settings)
        self.gate = None
        acd = getattr(engine, "acd", None)
        if acd is not None:
            from engine.outbound.gate import Gate
            self.gate = Gate(acd.store, self.cfg, queues=lambda: list(acd.config.queues),
                             agents=lambda: list(acd.config.agents))
        from engine.outbound.dialer import Dialer
        self.dialer = Dialer(settings, engine.esl, lists=None, gate=self.gate, clock=engine.clock)
        self.dialer.lists_required = True       # no campaign or callback dial without the DNC list
        self._blacklist_prompt = None
        # Opening the lists may wait on a locked or absent database: never on a caller's greenlet
        # (a call would wait with it). Until they are open, calls go on unscreened.
        self._reloader = gevent.spawn(self._keep_lists)

    def _keep_lists(self):
        """Open the lists (again and again until the database answers), then reload them every
        lists_reload_seconds until the engine stops."""
        while True:
            try:
                if self.lists is None:
                    lists = NumberLists(self.engine.settings.database.url).open()
                    counts = lists.reload()
                    self.lists = self.dialer.lists = lists
                    install(lists, self.engine.settings)
                    log.info("number lists loaded: %s", counts)
                else:
                    self.lists.reload()
            except Exception as exc:        # the database away: calls go on, unscreened, loudly
                log.error("number lists (blacklist, DNC, block) not %s: %s; trying again in %.0f s",
                          "reloaded, the last ones stay" if self.lists else "available",
                          exc, self.cfg.lists_reload_seconds)
            if self._engine_stopped(self.cfg.lists_reload_seconds):
                if self.lists is not None:
                    self.lists.close()
                return

    def _engine_stopped(self, seconds):
        finished = getattr(self.engine, "finished", None)
        if finished is None:
            gevent.sleep(seconds)
            return False
        return finished.wait(timeout=seconds)

    def wait_lists(self, timeout=10.0):
        """For tests and jobs that need the lists: True once they are loaded."""
        deadline = gevent.get_hub().loop.now() + timeout
        while self.lists is None and gevent.get_hub().loop.now() < deadline:
            gevent.sleep(0.02)
        return self.lists is not None

    def stop(self):
        if self._reloader is not None:
            self._reloader.kill(block=False)

    # --- the daemon's hook --------------------------------------------------------------------
    def handler_for(self, call):
        """Never raises: a fault here must not cost an inbound caller their call."""
        try:
            return self._handler_for(call)
        except Exception:
            call.log.exception("outbound/blacklist screening failed; the call goes on unscreened")
            return None

    def _handler_for(self, call):
        handler = legs.handler_for(call)
        if handler is not None:
            return handler
        if self.lists is None:
            return None
        entry = self.lists.blacklist_hit(call.caller_id_number)
        if entry is None:
            return None
        call.tags.append("blacklisted")
        call.info.setdefault("extra", {})["blacklist"] = {"entry": entry["number"], "action": entry["action"]}
        call.log.warning("caller %s is on the blacklist (%s, %s hits): %s", call.caller_id_number,
                         entry["number"], entry["hits"], entry["action"])
        return self._blacklisted_queue if entry["action"] == "queue" else self._blacklisted_message

    def _blacklisted_message(self, call):
        call.answer()
        call.play([self._prompt()], interruptible=False)
        call.hangup()

    def _blacklisted_queue(self, call):
        acd = getattr(self.engine, "acd", None)
        if acd is None:
            return self._blacklisted_message(call)
        from engine.daemon import _to_queue
        call.answer()
        call.info["queue_priority"] = self.cfg.blacklist.priority
        _to_queue(acd, call, self.cfg.blacklist.queue or acd.default_queue())

    def _prompt(self):
        if self._blacklist_prompt is None:
            try:
                from engine.media.prompts import PromptRenderer
                s = self.engine.settings
                self._blacklist_prompt = str(PromptRenderer(s.tts, s.paths.prompt_cache).render(
                    self.cfg.blacklist.message, fixed=True))
            except Exception as exc:
                log.error("blacklist message not rendered (%s): a tone instead", exc)
                return "tone_stream://%(400,200,440);loops=2"
        return self._blacklist_prompt


def for_engine(engine):
    """The engine's Outbound, made on first use (the first call, or the first job that dials)."""
    out = getattr(engine, "outbound_calls", None)
    if out is None:
        out = engine.outbound_calls = Outbound(engine)
    return out
