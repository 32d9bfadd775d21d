"""Listener: the media tap -> voice-activity detection -> the recogniser, for one call.

    listener = Listener(call.uuid, tap_path, backend, VadConfig(), grammar=["네", "아니요"])
    listener.start()            # after uuid_record start (commands.media_tap_start)
    event = listener.events.get(timeout=...)   # SpeechStart / PartialText / UtteranceEnd / Noise
    listener.stop()             # stops following, calls on_stop (uuid_record stop), removes the file

Events are those of engine.bot.vad, plus `ListenerError` when the tap cannot be followed.
"""
import logging
from dataclasses import dataclass

import gevent
from gevent.queue import Queue

from engine.bot.tap import Tap, TapError
from engine.bot.vad import Endpointer, VadConfig

log = logging.getLogger("hotline.bot.listener")


class _CallLog(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        return f"[{self.extra['uuid']}] {msg}", kwargs


@dataclass(frozen=True)
class ListenerError:
    message: str
    kind: str = "error"


class Listener:
    def __init__(self, call_uuid, tap_path, backend, vad_config=None, grammar=None,
                 hot_words=None, on_event=None, on_stop=None, open_timeout=2.0, logger=None):
        self.call_uuid = call_uuid
        self.log = logger or _CallLog(log, {"uuid": call_uuid})
        self.backend = backend
        self.grammar = list(grammar) if grammar is not None else None
        self.hot_words = list(hot_words) if hot_words else None
        self.config = vad_config or VadConfig()
        self.on_event = on_event
        self.on_stop = on_stop
        self.events = Queue()
        self.tap = Tap(tap_path, backend.sample_rate, open_timeout=open_timeout, log_=self.log)
        self.endpointer = Endpointer(self.config, self._start_stream, self._emit, self.log)
        self.streams = []             # every recogniser stream started (for measurements)
        self._greenlet = None
        self.stopped = False

    def start(self):
        """Check the grammar now (a bad word is a configuration error, reported before the caller
        speaks), then follow the tap in a greenlet."""
        self.backend.check(self.grammar, self.hot_words)
        self._greenlet = gevent.spawn(self._run)
        return self

    def _start_stream(self, on_result):
        stream = self.backend.start(self.grammar, self.hot_words, on_result, self.log)
        self.streams.append(stream)
        return stream

    def _run(self):
        try:
            for frame, position_ms, at in self.tap.frames():
                self.endpointer.feed(frame, position_ms, at)
        except TapError as exc:
            self.log.warning("%s", exc)
            self._emit(ListenerError(str(exc)))
        except Exception as exc:
            self.log.exception("listener failed")
            self._emit(ListenerError(f"listener failed: {exc}"))

    def _emit(self, event):
        if self.stopped:
            return
        self.log.debug("heard %r", event)
        self.events.put(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                self.log.exception("listener event handler failed on %r", event)

    def stop(self):
        """Stop listening; the tap file is removed. Safe to call twice."""
        if self.stopped:
            return
        self.stopped = True
        if self._greenlet is not None:
            self._greenlet.kill()
        self.endpointer.close()
        if self.on_stop is not None:
            try:
                self.on_stop()
            except Exception as exc:
                self.log.warning("stopping the media tap failed: %s", exc)
        self.tap.close()
