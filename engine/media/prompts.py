"""Text prompts -> 8 kHz mono 16-bit PCM WAV files that FreeSWITCH's mod_sndfile plays.

edge-tts (neural zh-CN voice) when reachable, espeak-ng's Mandarin pinyin voice when not.
Files are cached by a hash of (text, voice, rate, engine) and written atomically (tmp + rename),
so a 0-byte or partial file is never served. Nothing here runs a shell: subprocesses get
argument lists and text arrives on stdin. Work that blocks (edge-tts's asyncio loop, the
subprocesses) stays off the gevent hub.
"""
import asyncio
import hashlib
import logging
import math
import os
import re
import tempfile
import time
import wave
from pathlib import Path

import gevent
import gevent.lock
from gevent import subprocess

from engine.media import say

log = logging.getLogger("engine.media.prompts")

MAX_TEXT_CHARS = 20000  # a prompt longer than this is a mistake in a flow file, not a prompt
ESPEAK_BASE_WPM = 175
SUBPROCESS_TIMEOUT = 60.0

# Chinese punctuation -> pauses espeak-ng understands
PAUSES = {"，": ",", "、": ",", "；": ",", "：": ",", "。": ".", "！": ".", "？": ".",
          ";": ",", ":": ",", "!": ".", "?": ".", "\n": ".", "\r": ","}


class TTSError(RuntimeError):
    """No engine could render the text."""


def edge_synthesize(text, voice, rate, mp3_path, timeout):
    """Run edge-tts to an mp3 file. Called in a worker thread: it has its own asyncio loop."""
    import edge_tts

    async def run():
        seconds = max(1, math.ceil(timeout))  # edge-tts wants whole seconds
        communicate = edge_tts.Communicate(text, voice, rate=f"{rate:+d}%",
                                           connect_timeout=seconds, receive_timeout=seconds)
        await asyncio.wait_for(communicate.save(str(mp3_path)), timeout)

    asyncio.run(run())


def _returning_errors(func, *args):
    """Run func in a worker thread, handing its exception back instead of letting the hub print it."""
    try:
        func(*args)
    except BaseException as exc:  # noqa: BLE001 - re-raised in the calling greenlet
        return exc
    return None


def to_pinyin(text):
    """Chinese text -> tone-numbered pinyin for espeak-ng's cmn-latn-pinyin voice.
    Digit runs are spelled in Chinese first (phone/ID numbers digit by digit).
    Anything that is not pinyin, a digit or a pause is dropped: the voice would spell it in English."""
    from pypinyin import Style, lazy_pinyin

    text = say.digit_runs_as_words(text)
    words = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
    out = []
    for word in words:
        for ch, pause in PAUSES.items():
            word = word.replace(ch, f" {pause} ")
        word = re.sub(r"[^A-Za-z0-9,. ]+", " ", word)
        out.append(word.lower())
    return re.sub(r"\s+", " ", " ".join(out)).strip()


_SENTENCE = re.compile(r"(?:[^。！？；!?;\n.]|\.(?!\s|$))+[。！？；!?;.]*")


def split_sentences(text, max_chars=80):
    """Split at sentence ends (。！？；!?; and newlines, and a `.` that ends a word, as in Korean or
    English text: not the one in "3.5"), keeping the punctuation; a sentence longer than max_chars
    is split again at commas so no piece takes long to synthesise. (A Korean greeting that was
    one 9.6 s "sentence" was repeated whole after a false barge-in.)"""
    pieces = []
    for sentence in _SENTENCE.findall(text):
        sentence = sentence.strip()
        while len(sentence) > max_chars:
            cut = max(sentence.rfind(c, 0, max_chars) for c in "，、,")
            cut = cut + 1 if cut > 0 else max_chars
            pieces.append(sentence[:cut])
            sentence = sentence[cut:].strip()
        if sentence.strip(" 。！？；!?;，、,"):
            pieces.append(sentence)
    return pieces


def check_wav(path):
    """Return the duration in seconds of a playable 8 kHz mono 16-bit WAV; raise TTSError otherwise."""
    try:
        with wave.open(str(path), "rb") as w:
            params = (w.getframerate(), w.getnchannels(), w.getsampwidth())
            frames = w.getnframes()
    except (wave.Error, EOFError, OSError) as exc:
        raise TTSError(f"{path}: not a WAV file: {exc}") from None
    if params != (8000, 1, 2):
        raise TTSError(f"{path}: {params} is not 8000 Hz mono 16-bit")
    if frames == 0:
        raise TTSError(f"{path}: no audio")
    return frames / 8000.0


class PromptRenderer:
    def __init__(self, tts_settings, cache_dir, clock=time.monotonic, edge_synth=edge_synthesize):
        self.settings = tts_settings
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.edge_synth = edge_synth
        self.edge_down_until = None  # clock time before which edge-tts is not tried
        self.engine_used = None      # engine of the last render (or "cache:<engine>")
        self._locks = {}             # cache key -> lock, so one text is rendered once at a time

    # ---- public API

    def render(self, text, voice=None, rate=None, log=log, espeak_voice=None, fixed=False):
        """Return the Path of a WAV for text. voice: an edge-tts voice name (default from settings);
        rate: speed change in percent (e.g. -10, 20); espeak_voice: another espeak-ng voice for text
        that is not Mandarin (e.g. "ko" for a Korean bot), which gets the text as it is.

        fixed: the text is a fixed prompt from a file (rendered ahead of time), never built from a
        caller's data. Only fixed text goes to edge-tts, an online service; text built per call
        (read-backs of ID numbers, amounts, names) is rendered offline by espeak-ng unless the
        operator opted in (tts.edge_for_caller_text)."""
        text = self._check_text(text)
        online = fixed or self.settings.edge_for_caller_text
        rate = int(rate or 0)
        if not -90 <= rate <= 200:
            raise ValueError(f"rate {rate} out of range -90..200 (percent)")
        edge_voice = voice or self.settings.edge_voice
        edge_path = self._cache_path(text, edge_voice, rate, "edge")
        espeak_voice = espeak_voice or self.settings.espeak_voice
        espeak_path = self._cache_path(text, espeak_voice, rate, "espeak")
        # a cached neural rendering is preferred even while edge-tts is unreachable
        for engine, path in ((("edge", edge_path),) if online else ()) + (("espeak", espeak_path),):
            if self._cached(path):
                self.engine_used = f"cache:{engine}"
                return path
        if online and self._edge_available():
            with self._lock(edge_path):
                if self._cached(edge_path):
                    self.engine_used = "cache:edge"
                    return edge_path
                started = time.monotonic()
                try:
                    self._render_edge(text, edge_voice, rate, edge_path)
                except (Exception, gevent.Timeout) as exc:  # network, timeout, 0-byte mp3, decoder: fall back
                    self.edge_down_until = self.clock() + self.settings.edge_retry_after
                    log.warning("edge-tts failed after %.0f ms (%s: %s); espeak-ng for %.0f s",
                                (time.monotonic() - started) * 1000, type(exc).__name__, exc,
                                self.settings.edge_retry_after)
                else:
                    self._done("edge", edge_path, started, text, log)
                    return edge_path
        with self._lock(espeak_path):
            if self._cached(espeak_path):
                self.engine_used = "cache:espeak"
                return espeak_path
            started = time.monotonic()
            self._render_espeak(text, rate, espeak_path, espeak_voice)
            self._done("espeak", espeak_path, started, text, log)
            return espeak_path

    def render_many(self, texts, log=log, fixed=False):
        """Render each distinct text (e.g. a flow's prompts at load), returning {text: path}."""
        return {text: self.render(text, log=log, fixed=fixed) for text in dict.fromkeys(texts)}

    def render_sentences(self, text, voice=None, rate=None, log=log, fixed=False):
        """Yield one WAV path per sentence of a long answer; the next sentence is synthesised
        while the caller hears the current one, so the first audio starts sooner."""
        parts = split_sentences(text)
        self._check_text(text)  # the same clear errors as render()
        if not parts:
            raise ValueError(f"prompt text has nothing to say: {text[:40]!r}")
        pending = gevent.spawn(self.render, parts[0], voice, rate, log, fixed=fixed)
        for index in range(len(parts)):
            path = pending.get()
            if index + 1 < len(parts):
                pending = gevent.spawn(self.render, parts[index + 1], voice, rate, log, fixed=fixed)
            yield path

    # ---- engines

    def _edge_available(self):
        if not self.settings.edge_enabled:
            return False
        return self.edge_down_until is None or self.clock() >= self.edge_down_until

    def _render_edge(self, text, voice, rate, dest):
        timeout = self.settings.edge_timeout
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".edge-") as tmp:
            mp3 = Path(tmp) / "out.mp3"
            # edge-tts is asyncio/aiohttp: its own loop in a hub thread; the caller's greenlet waits
            # at most edge_timeout (+ a little) even if the thread hangs on a half-open socket.
            job = gevent.get_hub().threadpool.spawn(_returning_errors, self.edge_synth,
                                                    text, voice, rate, mp3, timeout)
            error = job.get(timeout=timeout + 0.5)
            if error is not None:
                raise error
            if not mp3.exists() or mp3.stat().st_size == 0:
                raise TTSError("edge-tts produced an empty file")
            wav = Path(tmp) / "out.wav"
            self._run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(mp3),
                       "-ar", "8000", "-ac", "1", "-c:a", "pcm_s16le", "-f", "wav", str(wav)])
            self._install(wav, dest)

    def _render_espeak(self, text, rate, dest, voice=None):
        voice = voice or self.settings.espeak_voice
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,39}", voice):
            raise TTSError(f"invalid espeak-ng voice {voice[:40]!r}")
        # only the pinyin voice speaks Mandarin (DEPENDENCIES.md); another voice reads its own script
        pinyin = to_pinyin(text) if voice == self.settings.espeak_voice else " ".join(text.split())
        if not pinyin.strip(" ,."):
            raise TTSError(f"nothing speakable in {text[:40]!r}")
        speed = max(80, min(450, int(ESPEAK_BASE_WPM * (1 + rate / 100))))
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".espeak-") as tmp:
            raw = Path(tmp) / "raw.wav"
            wav = Path(tmp) / "out.wav"
            self._run(["espeak-ng", "-v", voice, "-s", str(speed),
                       "-w", str(raw), "--stdin"], stdin=pinyin.encode())
            self._run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
                       str(wav)])
            self._install(wav, dest)

    # ---- helpers

    def _run(self, args, stdin=None):
        """Run one program (argument list, never a shell) from gevent.subprocess."""
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            _, err = proc.communicate(stdin, timeout=SUBPROCESS_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise TTSError(f"{args[0]} timed out") from None
        if proc.returncode != 0:
            raise TTSError(f"{args[0]} exited {proc.returncode}: {err.decode(errors='replace')[-300:]}")

    def _install(self, wav, dest):
        check_wav(wav)
        fd, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=".tmp-", suffix=".wav")
        os.close(fd)
        os.replace(wav, tmp)  # same directory as dest, so the final rename is atomic
        os.replace(tmp, dest)

    def _done(self, engine, path, started, text, log):
        self.engine_used = engine
        log.info("rendered %d chars with %s in %.0f ms (%.1f s audio): %s", len(text), engine,
                 (time.monotonic() - started) * 1000, check_wav(path), path.name)

    def _check_text(self, text):
        if not isinstance(text, str):
            raise TypeError(f"prompt text must be str, not {type(text).__name__}")
        if "\x00" in text:
            raise ValueError("prompt text contains a NUL character")
        if not text.strip():
            raise ValueError("prompt text is empty")
        if len(text) > MAX_TEXT_CHARS:
            raise ValueError(f"prompt text is {len(text)} chars, more than {MAX_TEXT_CHARS}")
        return text

    def _cache_path(self, text, voice, rate, engine):
        key = "\x1f".join([engine, voice, str(rate), text]).encode()
        return self.cache_dir / f"{engine}-{hashlib.sha256(key).hexdigest()[:32]}.wav"

    def _cached(self, path):
        try:
            return path.stat().st_size > 44  # a header alone is not a prompt
        except FileNotFoundError:
            return False

    def _lock(self, path):
        return self._locks.setdefault(path, gevent.lock.Semaphore())
