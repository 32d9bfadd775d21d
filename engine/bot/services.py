"""What one engine process shares between bot calls: the recogniser, the renderer, the media-tap
directory, the misses log, and bot files loaded once (reloaded when they change on disk).

`load_bot_file` and `new_dialogue` are the only doors to engine.bot.dialogue, so tests can put a
scripted dialogue behind the `bot` node.
"""
import inspect
import logging
from pathlib import Path

import gevent

log = logging.getLogger("hotline.bot.services")


def make_backend(settings):
    """The in-process Vosk backend, or None when no model is configured (speech input off)."""
    if settings.asr.vosk_model is None:
        return None
    from engine.bot.asr import VoskBackend
    backend = VoskBackend(settings.asr.vosk_model, settings.asr.sample_rate)
    gevent.spawn(_preload, backend)      # 2 s of model loading happen now, not on the first caller
    return backend


def _preload(backend):
    try:
        backend.load()
        backend.warm_up()                # free-form recognisers ready before the first caller
    except Exception as exc:
        log.error("ASR model not loaded: %s", exc)


def load_bot_file(path):
    from engine.bot.dialogue import load_bot
    return load_bot(path)


def new_dialogue(bot, misses_dir=None, call=None):
    from engine.bot.dialogue import Dialogue
    known = inspect.signature(Dialogue).parameters
    extra = {}
    if call is not None and "call_uuid" in known:      # its misses and log lines name the call
        extra["call_uuid"] = call.uuid
    return Dialogue(bot, misses_dir=misses_dir, **extra)


class BotServices:
    """The recogniser, the renderer and the directories one engine process shares between bot
    calls; bot files are loaded once and reloaded when they change on disk."""

    def __init__(self, backend, renderer, tap_dir, misses_dir=None, sample_rate=16000):
        self.backend = backend
        self.renderer = renderer
        self.tap_dir = Path(tap_dir)
        self.misses_dir = Path(misses_dir) if misses_dir else None
        self.sample_rate = sample_rate
        self._bots = {}                      # path -> (mtime, bot)

    @classmethod
    def from_settings(cls, settings, renderer, backend=None):
        var = Path(settings.paths.var_dir)
        services = cls(backend if backend is not None else make_backend(settings), renderer,
                       var / "tmp" / "live", var / "bot_misses", settings.asr.sample_rate)
        services.remove_stale_taps()
        return services

    def remove_stale_taps(self):
        """At start-up no bot listens yet: tap files left by an engine that died are removed (the
        switch stops writing them when those calls end)."""
        removed = 0
        for path in self.tap_dir.glob("*.r16") if self.tap_dir.is_dir() else ():
            try:
                path.unlink()
                removed += 1
            except OSError as exc:
                log.warning("cannot remove stale media tap %s: %s", path, exc)
        if removed:
            log.info("removed %d stale media tap file(s) from %s", removed, self.tap_dir)
        return removed

    def bot(self, path):
        path = Path(path)
        mtime = path.stat().st_mtime
        known = self._bots.get(path)
        if known is None or known[0] != mtime:
            known = self._bots[path] = (mtime, load_bot_file(path))
        return known[1]

    def dialogue(self, bot, call=None):
        return new_dialogue(bot, self.misses_dir, call)
