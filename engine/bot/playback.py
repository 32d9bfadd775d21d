"""The bot speaking: sentences rendered ahead of playback, barge-in, resuming after a false one.

    speaker = Speaker(call, renderer)
    result = speaker.speak(["您好。", "请问有什么可以帮您?"], interruptible=True)
    speaker.barge_in(event)          # from the listener's greenlet, on SpeechStart
    result = speaker.speak(result.sentences, True, start=result.stopped_at)   # resume

Every text is split into sentences (media.prompts.split_sentences) and each sentence is one
`playback`: the first one plays while the next is synthesised (TTS runs off the hub: edge-tts in a
thread, espeak-ng as a subprocess), and an interruption is known to the sentence, so a false one
(speech onset, then no words) resumes from the sentence the caller broke into, not from the top.

Barge-in goes through `call.interrupt()` from the listener's greenlet: a plain `uuid_break` once
the sentence's playback has started (engine.calls: never `all`, which would flush the next
sentence's queued execute); PLAYBACK_STOP times are taken from the call's socket to measure the
reaction.
"""
import logging
import time
from dataclasses import dataclass
from typing import List, Optional

import gevent

from engine.media.prompts import split_sentences

log = logging.getLogger("hotline.bot.playback")

# Voices for bots that do not speak Mandarin: (edge-tts voice, espeak-ng voice). The espeak-ng
# fallback's default voice reads pinyin only, so other scripts need their own voice.
LANGUAGE_VOICES = {"ko": ("ko-KR-SunHiNeural", "ko"), "en": ("en-US-AriaNeural", "en-us")}


@dataclass
class SpeakResult:
    sentences: List[str]
    completed: bool = True
    stopped_at: Optional[int] = None      # index of the sentence that was playing when stopped
    stopped_by: Optional[str] = None      # "speech" | "dtmf"
    first_audio_at: Optional[float] = None   # time.monotonic() of the first PLAYBACK_START


@dataclass
class BargeIn:
    """One interruption, times in time.monotonic()."""
    onset_at: float                       # the first speech frame was read from the tap
    confirmed_at: float                   # the VAD/recogniser confirmed it (SpeechStart)
    break_at: float                       # uuid_break was asked for
    stopped_at: Optional[float] = None    # PLAYBACK_STOP arrived
    sentence: Optional[int] = None

    @property
    def reaction_ms(self):
        """Speech onset -> the switch reported the playback stopped."""
        end = self.stopped_at if self.stopped_at is not None else self.break_at
        return (end - self.onset_at) * 1000.0


def sentences_of(texts):
    out = []
    for text in texts or ():
        out.extend(split_sentences(str(text)) or ([str(text)] if str(text).strip() else []))
    return out


def fixed_sentences(bot):
    """The sentences of a bot file's own texts (greeting, answers, FAQ, messages without a
    placeholder): the only bot speech that may be rendered online (engine.media.prompts). A reply
    that reads back what a caller said is not among them and is rendered offline."""
    if bot is None:
        return frozenset()
    texts = [bot.greeting, *bot.answers.values(),
             *(m for m in bot.messages.values() if isinstance(m, str) and "{" not in m),
             *(i.answer for i in bot.intents.values() if i.answer),
             *(e.answer for e in bot.faq.values())]
    return frozenset(sentences_of([t for t in texts if isinstance(t, str)]))


class Speaker:
    def __init__(self, call, renderer, voice=None, logger=None, language=None, fixed=frozenset()):
        self.call = call
        self.renderer = renderer
        self.fixed = fixed                # sentences of the bot file itself (fixed_sentences)
        edge_voice, self.espeak_voice = LANGUAGE_VOICES.get((language or "zh").split("-")[0], (None, None))
        self.voice = voice or edge_voice
        self.log = logger or call.log
        self.playing = False              # a prompt is being spoken
        self.interruptible = False
        self.barge_ins: List[BargeIn] = []
        self.playback_starts: List[float] = []
        self._current = None              # index of the sentence playing
        self._barged = None               # the BargeIn of the prompt in progress
        self._renders = {}                # (text) -> greenlet rendering it
        session = getattr(call, "session", None)
        self._session = session
        if session is not None:
            session.on("PLAYBACK_START", self._on_playback_start)
            session.on("PLAYBACK_STOP", self._on_playback_stop)

    def close(self):
        if self._session is not None:
            self._session.off("PLAYBACK_START", self._on_playback_start)
            self._session.off("PLAYBACK_STOP", self._on_playback_stop)
        for g in self._renders.values():
            g.kill(block=False)
        self._renders.clear()

    # --- events from the switch and the listener ---------------------------------------------
    def _on_playback_start(self, event):
        self.playback_starts.append(time.monotonic())

    def _on_playback_stop(self, event):
        barge = self._barged
        if barge is not None and barge.stopped_at is None:
            barge.stopped_at = time.monotonic()
            self.log.info("barge-in: playback stopped %.0f ms after speech onset "
                          "(confirmed +%.0f ms, break +%.0f ms)", barge.reaction_ms,
                          (barge.confirmed_at - barge.onset_at) * 1000,
                          (barge.break_at - barge.onset_at) * 1000)

    def barge_in(self, speech_start):
        """Caller speech confirmed (a vad.SpeechStart): stop an interruptible prompt now.
        Returns True when it stopped one. Called from the listener's greenlet."""
        if not (self.playing and self.interruptible) or self._barged is not None:
            return False
        now = time.monotonic()
        self._barged = BargeIn(speech_start.onset_at, speech_start.at, now, sentence=self._current)
        self.barge_ins.append(self._barged)
        self.call.interrupt()
        return True

    # --- speaking ------------------------------------------------------------------------------
    def _render(self, text):
        g = self._renders.get(text)
        if g is None:
            kw = {"espeak_voice": self.espeak_voice} if self.espeak_voice else {}
            g = self._renders[text] = gevent.spawn(self.renderer.render, text, self.voice, None, self.log,
                                                   fixed=text in self.fixed, **kw)
        return g

    def prepare(self, sentences):
        """Start synthesising the first sentence now (a reply being decided can overlap it)."""
        if sentences:
            self._render(sentences[0])

    def speak(self, sentences, interruptible=True, start=0):
        """Play sentences[start:]; returns a SpeakResult. Raises CallGone if the caller hangs up."""
        result = SpeakResult(list(sentences))
        self.interruptible = bool(interruptible)
        self._barged = None
        self.call.clear_interrupt()
        self.call.flush_digits()
        starts_before = len(self.playback_starts)
        self.playing = True
        try:
            for index in range(start, len(sentences)):
                self._current = index
                if index + 1 < len(sentences):
                    self._render(sentences[index + 1])      # synthesised while this one plays
                try:
                    path = self._render(sentences[index]).get()
                except Exception as exc:
                    # one sentence TTS cannot say must not silence the rest of the answer
                    self.log.error("bot: cannot render %r: %s", sentences[index][:40], exc)
                    continue
                digit = self.call.play([str(path)], interruptible=self.interruptible)
                if len(self.playback_starts) > starts_before and result.first_audio_at is None:
                    result.first_audio_at = self.playback_starts[starts_before]
                if self._barged is not None:
                    result.completed, result.stopped_at, result.stopped_by = False, index, "speech"
                    break
                if digit:
                    result.completed, result.stopped_at, result.stopped_by = False, index, "dtmf"
                    break
        finally:
            self.playing = False
            self._current = None
            self.call.clear_interrupt()
            if len(self.playback_starts) > starts_before and result.first_audio_at is None:
                result.first_audio_at = self.playback_starts[starts_before]
        return result
