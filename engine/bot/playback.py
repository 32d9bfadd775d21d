"""The bot speaking: sentences rendered ahead of playback, barge-in, resuming after a false one.

    speaker = Speaker(call, renderer)
    result = speaker.speak(["您好。", "请问有什么可以帮您?"], interruptible=True)
    speaker.barge_in(event)          # from the listener's greenlet, on SpeechStart
    speaker.resume(result) / speaker.end_paused()     # after a false / a real one

Every text is split into sentences (media.prompts.split_sentences) and each sentence is one
`playback`: the first one plays while the next is synthesised (TTS runs off the hub: edge-tts in a
thread, espeak-ng as a subprocess), and an interruption is known to the sentence, so a false one
(speech onset, then no words) resumes where the caller broke in, not from the top.

Barge-in PAUSES the prompt (`uuid_fileman <uuid> pause`) instead of ending it: on the real switch
every application that ends on the leg costs the media tap 40 ms of the caller's audio (-1 fill,
fixture 12), which landed inside a short answer ("네" understood 1 time in 5); a pause costs
nothing. The paused playback keeps running: it is ended (plain `uuid_break`, never `all`, which
would flush executes queued behind it) when the utterance is over or before the next prompt, where
the 40 ms do not matter; a false barge-in toggles the pause back and the sentence goes on from
where it stopped. The pause is a toggle and does nothing unless a playback runs, so it is only sent
for a playback seen to start (PLAYBACK_START) and once per pause. Barge-in time is measured from
speech onset to the pause.
"""
import logging
import time
from dataclasses import dataclass
from typing import List, Optional

import gevent
from gevent.event import Event as Flag

from engine.call.port import CallGone
from engine.esl import commands
from engine.esl.errors import ConnectionLost
from engine.media.prompts import split_sentences

log = logging.getLogger("hotline.bot.playback")

# Voices for bots that do not speak Mandarin: (edge-tts voice, espeak-ng voice). The espeak-ng
# fallback's default voice reads pinyin only, so other scripts need their own voice.
LANGUAGE_VOICES = {"ko": ("ko-KR-SunHiNeural", "ko"), "en": ("en-US-AriaNeural", "en-us")}


END_WAIT_SECONDS = 3.0      # a paused playback ended with uuid_break reports back in ms; bound


@dataclass
class SpeakResult:
    sentences: List[str]
    completed: bool = True
    stopped_at: Optional[int] = None      # index of the sentence that was playing when stopped
    stopped_by: Optional[str] = None      # "speech" | "dtmf"
    first_audio_at: Optional[float] = None   # time.monotonic() of the first PLAYBACK_START
    paused: bool = False                  # sentence `stopped_at` is paused mid-way, still running


@dataclass
class BargeIn:
    """One interruption, times in time.monotonic()."""
    onset_at: float                       # the first speech frame was read from the tap
    confirmed_at: float                   # the VAD/recogniser confirmed it (SpeechStart)
    break_at: float                       # the speaker decided to stop the prompt
    paused_at: Optional[float] = None     # the switch answered the pause: the prompt is silent
    stopped_at: Optional[float] = None    # PLAYBACK_STOP of the interrupted sentence arrived
    sentence: Optional[int] = None

    @property
    def reaction_ms(self):
        """Speech onset -> the prompt went silent (the pause; the decision if there was no
        playback to pause: between two sentences nothing more is sent)."""
        end = self.paused_at if self.paused_at is not None else self.break_at
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
        self._play = None                 # greenlet of call.play for the current sentence
        self._running = False             # its PLAYBACK_START came, its PLAYBACK_STOP not yet
        self._pause_sent = False          # one pause per playback: it is a toggle
        self._paused = Flag()             # the switch answered our pause: the playback is silent
        session = getattr(call, "session", None)
        self._session = session
        if session is not None:
            session.on("PLAYBACK_START", self._on_playback_start)
            session.on("PLAYBACK_STOP", self._on_playback_stop)

    def close(self):
        """End a playback left paused (quietly: the call may be gone) and stop listening."""
        try:
            self.end_paused()
        except Exception as exc:
            self.log.info("bot: paused prompt not ended at close: %s", exc)
        if self._session is not None:
            self._session.off("PLAYBACK_START", self._on_playback_start)
            self._session.off("PLAYBACK_STOP", self._on_playback_stop)
        for g in self._renders.values():
            g.kill(block=False)
        self._renders.clear()

    @property
    def paused(self):
        """A sentence is paused mid-way (its playback still runs, silent)."""
        return self._paused.is_set() and self._play is not None and not self._play.ready()

    # --- events from the switch and the listener ---------------------------------------------
    def _on_playback_start(self, event):
        self.playback_starts.append(time.monotonic())
        if self._play is None or self._play.ready():
            return
        self._running = True
        if self._barged is not None:
            # the caller spoke while this sentence's execute was on its way: silence it now
            self._send_pause()

    def _on_playback_stop(self, event):
        self._running = False
        barge = self._barged
        if barge is not None and barge.stopped_at is None:
            barge.stopped_at = time.monotonic()

    def barge_in(self, speech_start):
        """Caller speech confirmed (a vad.SpeechStart): silence an interruptible prompt now.
        Returns True when it interrupted one. Called from the listener's greenlet."""
        if not (self.playing and self.interruptible) or self._barged is not None:
            return False
        now = time.monotonic()
        self._barged = BargeIn(speech_start.onset_at, speech_start.at, now, sentence=self._current)
        self.barge_ins.append(self._barged)
        if self._running:
            self._send_pause()
        # else: between two sentences (nothing more is sent) or the next one's execute is on its
        # way: its PLAYBACK_START pauses it. Never a break of an execute not seen to start.
        return True

    def _send_pause(self):
        if self._pause_sent or not self._running:
            return
        self._pause_sent = True
        gevent.spawn(self._toggle_pause, self._barged)

    def _toggle_pause(self, barge):
        try:
            self.call.session.api(commands.uuid_fileman(self.call.uuid, "pause"), check=False)
        except ConnectionLost:
            return
        if barge is not None and barge.paused_at is None:
            barge.paused_at = time.monotonic()
            self.log.info("barge-in: prompt paused %.0f ms after speech onset (confirmed +%.0f ms)",
                          barge.reaction_ms, (barge.confirmed_at - barge.onset_at) * 1000)
        self._paused.set()

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
        """Play sentences[start:]; returns a SpeakResult. Raises CallGone if the caller hangs up.
        A playback left paused by a barge-in is ended first (the next prompt replaces it)."""
        self.end_paused()
        return self._speak(sentences, interruptible, start, None)

    def resume(self, interrupted, interruptible=True):
        """After a false barge-in: the paused sentence plays on from where it stopped (the pause
        toggled back), then the rest; if nothing was paused (the caller spoke between two
        sentences), from the sentence it broke into. Returns a SpeakResult like speak()."""
        running = self._play if self.paused else None
        if running is None:
            return self.speak(interrupted.sentences, interruptible, interrupted.stopped_at)
        self.log.info("bot: resuming the paused sentence %d", interrupted.stopped_at)
        self._barged = None
        self._pause_sent = False
        self._paused.clear()
        try:
            self.call.session.api(commands.uuid_fileman(self.call.uuid, "pause"), check=False)
        except ConnectionLost as exc:
            raise CallGone(self.call.uuid) from exc
        return self._speak(interrupted.sentences, interruptible, interrupted.stopped_at, running)

    def end_paused(self):
        """End the playback a barge-in paused (plain uuid_break: it has started; it is the only
        thing on the leg). The 40 ms the switch then takes from the tap fall after the caller's
        utterance. Waits, bounded, for its completion so the next execute does not queue behind it."""
        g = self._play
        if g is None:
            return
        self._play = None
        self._paused.clear()
        if not g.ready() and self._running:
            try:
                self.call.session.api(commands.uuid_break(self.call.uuid, everything=False), check=False)
            except ConnectionLost as exc:
                raise CallGone(self.call.uuid) from exc
        if not g.ready():
            g.join(timeout=END_WAIT_SECONDS)
        if not g.ready():
            # recovery: the file handle's own stop (the switch then takes ~260 ms, fixture 12)
            self.log.warning("bot: paused prompt did not end on uuid_break; uuid_fileman stop")
            self.call.session.api(commands.uuid_fileman(self.call.uuid, "stop"), check=False)
            g.join(timeout=END_WAIT_SECONDS)
            if not g.ready():
                self.log.error("bot: paused prompt still running after %.0f s", 2 * END_WAIT_SECONDS)
                return
        _outcome(g)                       # CallGone if the caller hung up meanwhile

    def _play_sentence(self, path):
        """call.play in its own greenlet (a paused sentence outlives speak()); returns the digit
        that stopped it, or the CallGone, so a hang-up is raised where it is waited for."""
        try:
            return self.call.play([path], interruptible=self.interruptible)
        except CallGone as exc:
            return exc

    def _speak(self, sentences, interruptible, start, running):
        result = SpeakResult(list(sentences))
        self.interruptible = bool(interruptible)
        self._barged = None
        self.call.clear_interrupt()
        if running is None:
            self.call.flush_digits()
        starts_before = len(self.playback_starts)
        self.playing = True
        try:
            for index in range(start, len(sentences)):
                self._current = index
                if index + 1 < len(sentences):
                    self._render(sentences[index + 1])      # synthesised while this one plays
                if running is not None:
                    g, running = running, None               # the resumed sentence
                else:
                    if self._barged is not None:             # the caller spoke between sentences
                        result.completed, result.stopped_at, result.stopped_by = False, index, "speech"
                        break
                    try:
                        path = self._render(sentences[index]).get()
                    except Exception as exc:
                        # one sentence TTS cannot say must not silence the rest of the answer
                        self.log.error("bot: cannot render %r: %s", sentences[index][:40], exc)
                        continue
                    if self._barged is not None:
                        result.completed, result.stopped_at, result.stopped_by = False, index, "speech"
                        break
                    self._running, self._pause_sent = False, False
                    self._paused.clear()
                    g = self._play = gevent.spawn(self._play_sentence, str(path))
                gevent.wait([g, self._paused], count=1)
                if not g.ready() and not self._running:
                    g.join(timeout=END_WAIT_SECONDS)     # it ended as the pause went out
                if len(self.playback_starts) > starts_before and result.first_audio_at is None:
                    result.first_audio_at = self.playback_starts[starts_before]
                if not g.ready():                        # paused by a barge-in: left running
                    result.completed, result.stopped_at, result.stopped_by = False, index, "speech"
                    result.paused = True
                    break
                self._play = None
                digit = _outcome(g)
                if self._barged is not None:
                    # it played to its end before the pause reached it: resume after it
                    result.completed, result.stopped_at, result.stopped_by = False, index + 1, "speech"
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


def _outcome(g):
    value = g.get()
    if isinstance(value, CallGone):
        raise value
    return value
