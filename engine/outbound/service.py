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
from engine.outbound.lists import NumberLists, install

log = logging.getLogger("hotline.outbound")


class Outbound:
    def __init__(self, engine):
        self.engine = engine
        settings = engine.settings
        self.cfg = settings.outbound_calls
        self.lists = None
        try:
            self.lists = NumberLists(settings.database.url).open()
            self.lists.reload()
            install(self.lists)
        except Exception as exc:       # the database away: calls go on, unscreened, loudly
            log.error("number lists not available (blacklist, DNC, block entries): %s", exc)
        self.gate = None
        acd = getattr(engine, "acd", None)
        if acd is not None:
            from engine.outbound.gate import Gate
            self.gate = Gate(acd.store, self.cfg)
        from engine.outbound.dialer import Dialer
        self.dialer = Dialer(settings, engine.esl, lists=self.lists, gate=self.gate, clock=engine.clock)
        self._blacklist_prompt = None
        self._reloader = gevent.spawn(self._reload_loop) if self.lists is not None else None

    def _reload_loop(self):
        while True:
            gevent.sleep(self.cfg.lists_reload_seconds)
            try:
                self.lists.reload()
            except Exception as exc:
                log.warning("number lists not reloaded (the last ones stay): %s", exc)

    def stop(self):
        if self._reloader is not None:
            self._reloader.kill(block=False)

    # --- the daemon's hook --------------------------------------------------------------------
    def handler_for(self, call):
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
    out = getattr(engine, "outbound_calls", None)
    if out is None:
        out = engine.outbound_calls = Outbound(engine)
    return out
