"""One caller talking with a bot: the media tap, the listener, the dialogue and the speaker, in a loop.

    services = BotServices.from_settings(settings, renderer)      # engine.bot.services, once per process
    exit = BotSession(call, dialogue, services, options).run()     # "human" | "done" | "error"

The loop: speak the Turn (barge-in while it plays, if it is interruptible), then wait for the
caller: an utterance -> dialogue.on_text, a key -> on_dtmf, nothing for `no_speech_seconds` ->
on_silence; until the Turn has an exit. Speech that began during a prompt that is not
interruptible (a legal notice) is not taken as an answer: the caller did not hear the question.
A barge-in pauses the prompt (engine.bot.playback: ending it would cost the tap 40 ms of the
caller's first word on a real switch); the paused prompt is ended once the utterance is over, and a
barge-in that turns out to be no words (a cough, a door) un-pauses it where it stopped. The whole transcript goes to the CDR's bot_transcript (the rest to its extra.bot), and on a hand-off the
agent's screen gets the intent, slots and a summary as channel variables.

Without a recogniser (settings.asr.vosk_model unset) there is no session: the node logs and takes
its `error` branch, so a flow decides what callers hear then (typically: straight to a queue).
"""
import datetime
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Optional

from gevent.queue import Empty

from engine import privacy
from engine.bot.listener import Listener, ListenerError
from engine.bot.playback import Speaker, fixed_sentences, sentences_of
from engine.bot.vad import Noise, SpeechStart, UtteranceEnd, VadConfig
from engine.call.port import CallGone
from engine.esl import commands
from engine.esl.errors import CommandFailed, ConnectionLost
from engine.infra.metrics import BOT_RECOGNITION_SECONDS, BOT_REPLY_SECONDS

log = logging.getLogger("hotline.bot.session")

EXITS = ("human", "done", "error")
MAX_RESUMES = 2             # false barge-ins per prompt before the bot stops repeating itself
SUMMARY_UTTERANCES = 3      # caller utterances in the agent's one-line summary


@dataclass(frozen=True)
class DtmfPressed:
    digit: str
    at: float
    kind: str = "dtmf"


@dataclass
class BotOptions:
    """Per-bot listening options (from the bot file's `asr` section, see options_from_bot)."""
    vad: VadConfig = field(default_factory=VadConfig)
    hot_words: Optional[list] = None
    no_speech_seconds: float = 6.0
    max_turns: int = 60
    max_seconds: float = 900.0
    voice: Optional[str] = None          # edge-tts voice (default: settings, or the language's)
    language: Optional[str] = None       # the bot's language: "zh" (default), "ko", ...


def _get(obj, name, default=None):
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def options_from_bot(bot, **overrides):
    """BotOptions from a loaded bot: its `asr` holds vad settings, hot_words, no_speech_seconds
    (as a mapping or an object; what it does not say keeps our defaults)."""
    asr = _get(bot, "asr")
    vad = _get(asr, "vad")
    if isinstance(vad, dict):
        vad = VadConfig.from_dict(vad)
    opts = BotOptions(vad=vad if isinstance(vad, VadConfig) else VadConfig(),
                      hot_words=list(_get(asr, "hot_words") or []) or None,
                      no_speech_seconds=float(_get(asr, "no_speech_seconds") or 6.0),
                      voice=_get(bot, "voice"), language=_get(bot, "language"))
    for key, value in overrides.items():
        if value is not None:
            setattr(opts, key, value)
    return opts


# --- the session -----------------------------------------------------------------------------

class BotSession:
    def __init__(self, call, dialogue, services, options=None, bot_name=""):
        self.call = call
        self.dialogue = dialogue
        self.services = services
        self.options = options or BotOptions()
        self.bot_name = bot_name
        self.log = call.log
        self.speaker = Speaker(call, services.renderer, self.options.voice, self.log, self.options.language,
                               fixed=fixed_sentences(getattr(dialogue, "bot", None)))
        self.listener = None
        self.tap_path = None
        self.turn = None
        self.turns = 0
        self.deaf_onsets = set()         # utterances that began during a not-interruptible prompt
        self.hearing = False             # speech confirmed and not concluded yet
        self.reply_latencies = []        # seconds: end of caller speech -> first bot audio
        self.resumes = 0
        self._pending_reply = None       # speech_end_at of the utterance being answered
        self.set_queue_choice = True     # on hand-off the intent is shown on the agent's phone
        call.bot_session = self          # for monitoring (stream lag, barge-ins) while the call lasts

    # --- life cycle ---
    def run(self):
        """Talk until the dialogue exits; returns "human", "done" or "error". CallGone propagates."""
        started = time.monotonic()
        exit_ = "error"
        try:
            turn = self._step(self.dialogue.start)
            self.speaker.prepare(sentences_of(turn.say))   # the greeting renders while the tap starts
            self._start_listening()
            while True:
                self.turns += 1
                if not turn.exit:
                    self._listen_for(turn)       # before speaking: a barge-in is heard in this mode
                interrupted = self._say(turn)
                if turn.exit:
                    exit_ = turn.exit if turn.exit in EXITS else "error"
                    break
                if self.turns >= self.options.max_turns or time.monotonic() - started > self.options.max_seconds:
                    self.log.warning("bot: %d turns / %.0f s, handing over", self.turns,
                                     time.monotonic() - started)
                    exit_ = "human"
                    break
                turn = self._wait_answer(turn, interrupted)
        except CallGone:
            self._record(exit_="gone")
            raise
        except Exception as exc:
            self.log.exception("bot session failed: %s", exc)
            exit_ = "error"
        finally:
            self._stop_listening()
            self.speaker.close()
        self._record(exit_)
        if exit_ == "human":
            self._hand_off()
        return exit_

    def _step(self, fn, *args):
        turn = fn(*args)
        self.turn = turn
        # masked before the cut: a cut read-back would hide a number from the masker
        self.log.info("bot: say %r listen=%s exit=%s intent=%s",
                      [privacy.mask_text(s)[:40] for s in (turn.say or [])],
                      "free" if turn.listen is None else turn.listen, turn.exit,
                      getattr(turn, "intent", None))
        return turn

    # --- media tap and listener ---
    def _start_listening(self):
        self.services.tap_dir.mkdir(parents=True, exist_ok=True)
        self.tap_path = self.services.tap_dir / f"{commands.uuid(self.call.uuid)}.r16"
        for cmd in commands.media_tap_start(self.call.uuid, str(self.tap_path), self.services.sample_rate):
            self._api(cmd)
        self.listener = Listener(self.call.uuid, self.tap_path, self.services.backend, self.options.vad,
                                 grammar=None, hot_words=self.options.hot_words,
                                 on_event=self._on_heard, on_stop=self._stop_tap, logger=self.log)
        self.listener.start()
        self.call.session.on("DTMF", self._on_dtmf)

    def _stop_tap(self):
        self._api(commands.media_tap_stop(self.call.uuid, str(self.tap_path)), check=False)

    def _stop_listening(self):
        try:
            self.call.session.off("DTMF", self._on_dtmf)
        except Exception:
            pass
        if self.listener is not None:
            self.listener.stop()
        elif self.tap_path is not None:
            try:
                os.unlink(self.tap_path)
            except OSError:
                pass

    def _api(self, cmd, check=True):
        try:
            return self.call.session.api(cmd, check=check)
        except (ConnectionLost, CommandFailed) as exc:
            if self.call.gone:
                raise CallGone(self.call.uuid) from exc
            raise

    def _listen_for(self, turn):
        """Grammar mode when the turn expects known words, free-form otherwise. The listener starts
        a recogniser stream per utterance, so the next utterance uses this at once."""
        grammar = list(turn.listen) if turn.listen else None
        if grammar != self.listener.grammar:
            self.services.backend.check(grammar, self.options.hot_words)
            self.listener.grammar = grammar

    # --- listener's greenlet ---
    def _on_heard(self, event):
        if isinstance(event, SpeechStart):
            self.hearing = True
            if self.speaker.playing and not self.speaker.interruptible:
                self.deaf_onsets.add(event.onset_ms)
            else:
                self.speaker.barge_in(event)
        elif isinstance(event, (UtteranceEnd, Noise, ListenerError)):
            self.hearing = False

    def _on_dtmf(self, event):
        digit = event.get("DTMF-Digit", "")
        if len(digit) == 1 and digit in "0123456789*#ABCD" and self.listener is not None:
            self.listener.events.put(DtmfPressed(digit, time.monotonic()))

    # --- speaking ---
    def _say(self, turn):
        """Speak the turn; returns the SpeakResult when the caller interrupted it, else None."""
        sentences = sentences_of(turn.say)
        if not sentences:
            self._pending_reply = None       # nothing to say: no reply time to measure
            return None
        result = self.speaker.speak(sentences, turn.interruptible)
        self._note_first_audio(result)
        return None if result.completed else result

    def _note_first_audio(self, result):
        if self._pending_reply is not None and result.first_audio_at is not None:
            latency = result.first_audio_at - self._pending_reply
            self.reply_latencies.append(latency)
            BOT_REPLY_SECONDS.observe(latency)
            self.log.info("bot: first audio %.0f ms after the caller stopped speaking", latency * 1000)
        self._pending_reply = None

    # --- waiting for the caller ---
    def _wait_answer(self, turn, interrupted):
        """The next Turn, from what the caller does after (or while) this one was spoken."""
        events = self.listener.events
        deadline = time.monotonic() + self.options.no_speech_seconds
        max_hear = self.options.vad.max_utterance_ms / 1000.0 + 2.0
        while True:
            wait = deadline - time.monotonic()
            if self.hearing or (self.listener.endpointer.in_speech):
                wait = max(wait, max_hear)       # the caller is talking: let them finish
            try:
                item = events.get(timeout=max(0.0, wait))
            except Empty:
                if self.hearing or self.listener.endpointer.in_speech:
                    continue
                return self._step(self.dialogue.on_silence)
            if isinstance(item, (DtmfPressed, UtteranceEnd)):
                self.speaker.end_paused()       # the caller is done: the 40 ms hole costs nothing now
            if isinstance(item, DtmfPressed):
                self.call.flush_digits()
                return self._step(self.dialogue.on_dtmf, item.digit)
            if isinstance(item, ListenerError):
                self.log.error("bot: cannot hear the caller: %s", item.message)
                raise _ListenFailed(item.message)
            if isinstance(item, UtteranceEnd):
                if item.onset_ms in self.deaf_onsets:
                    self.deaf_onsets.discard(item.onset_ms)
                    self.log.info("bot: %r said over a prompt that cannot be interrupted; ignored",
                                  item.text)
                    continue
                self._pending_reply = item.speech_end_at
                if item.at and item.speech_end_at:
                    BOT_RECOGNITION_SECONDS.observe(max(0.0, item.at - item.speech_end_at))
                return self._step(self.dialogue.on_text, item.text, item.confidence)
            if isinstance(item, Noise):
                self.deaf_onsets.discard(item.onset_ms)
                if item.barged_in and interrupted is not None and self.resumes < MAX_RESUMES:
                    # a false interruption: the rest of the prompt, from where the noise broke in
                    self.resumes += 1
                    self.log.info("bot: false barge-in (%s), resuming sentence %d", item.reason,
                                  interrupted.stopped_at)
                    result = self.speaker.resume(interrupted, turn.interruptible)
                    interrupted = None if result.completed else result
                    deadline = time.monotonic() + self.options.no_speech_seconds
                elif item.barged_in:
                    self.speaker.end_paused()
                continue
            # SpeechStart / PartialText: the caller is speaking; keep waiting for the end

    # --- records ---
    def transcript(self):
        return [_plain_entry(e) for e in (getattr(self.turn, "transcript", None) or [])]

    def _record(self, exit_):
        turn = self.turn
        # The transcript has its own CDR column (tickets copy it from there); the rest is extra.
        self.call.info["bot_transcript"] = self.transcript()
        self.call.info.setdefault("extra", {})["bot"] = {
            "bot": self.bot_name, "exit": exit_,
            "intent": getattr(turn, "intent", None),
            "slots": _plain(getattr(turn, "slots", None) or {}),
            "barge_ins": [round(b.reaction_ms) for b in self.speaker.barge_ins],
            "reply_ms": [round(s * 1000) for s in self.reply_latencies],
        }
        self._register_callback(exit_)

    def _register_callback(self, exit_):
        """A finished `callback` task (the caller gave a number to be called back on) is a promise:
        the CDR says so like the queue's callback offer (tag `callback`, extra.callback_number), and
        the outbound module makes a callback job of it (engine/outbound/feed.py)."""
        turn = self.turn
        slots = getattr(turn, "slots", None) or {}
        number = slots.get("phone") or slots.get("mobile") or slots.get("number")
        if exit_ != "done" or getattr(turn, "intent", None) != "callback" or not number:
            return
        tags = getattr(self.call, "tags", None)
        if isinstance(tags, list) and "callback" not in tags:
            tags.append("callback")
        self.call.info.setdefault("extra", {}).update(callback_number=str(number), callback_source="bot")
        self.log.info("bot: call-back registered on %s", number)

    def _hand_off(self):
        """Put what the bot learnt where the agent sees it: channel variables on the caller's leg,
        and the IVR variables the queue shows on the agent's phone."""
        turn = self.turn
        intent = getattr(turn, "intent", None) or ""
        slots = _plain(getattr(turn, "slots", None) or {})
        said = [e["text"] for e in self.transcript() if e.get("who") in ("caller", "user")]
        # the summary is free text for the agent's screen (and the switch's CDR file): masked; the
        # exact ID the agent needs is in the slots
        summary = privacy.mask_text(" / ".join(said[-SUMMARY_UTTERANCES:]))
        try:
            self._api(commands.uuid_setvar(self.call.uuid, "hotline_bot_intent", intent or "none"))
            self._api(commands.uuid_setvar_json(self.call.uuid, "hotline_bot_slots", slots))
            self._api(commands.uuid_setvar(self.call.uuid, "hotline_bot_summary", summary or "none"))
        except (CommandFailed, commands.CommandError) as exc:
            self.log.warning("bot: hand-off variables not set: %s", exc)
        self.call.variables.update({"bot_intent": intent, "bot_summary": summary})
        if intent and self.set_queue_choice:
            self.call.variables["ivr_choice"] = commands.safe_text(intent, 40)


class _ListenFailed(Exception):
    pass


def _plain(value):
    """JSON-ready copy (datetimes as ISO text) for the CDR."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _plain_entry(entry):
    if not isinstance(entry, dict):
        entry = {k: getattr(entry, k, None) for k in ("who", "text", "at", "confidence")}
    return _plain(entry)
