"""Audio for the bot's speech tests: Korean words spoken by espeak-ng, noise and tones from sox or
computed, all 16 kHz mono 16-bit; and a fake recogniser for tests of the endpointing logic."""
import array
import math
import os
import random
import shutil
import subprocess
import time

import gevent

from engine.bot.asr import AsrBackend, AsrStream, Final, Partial

RATE = 16000
WORDS = ("네", "아니요", "상담원")


def silence(ms):
    return bytes(2 * RATE * ms // 1000)


def tone(ms, dbfs=-20.0, freq=220.0):
    amp = 32767 * 10 ** (dbfs / 20.0) * math.sqrt(2)
    return array.array("h", (int(amp * math.sin(2 * math.pi * freq * i / RATE))
                             for i in range(RATE * ms // 1000))).tobytes()


def white_noise(ms, dbfs=-45.0, seed=7):
    rnd = random.Random(seed)
    sigma = 32767 * 10 ** (dbfs / 20.0)
    return array.array("h", (max(-32768, min(32767, int(rnd.gauss(0, sigma))))
                             for _ in range(RATE * ms // 1000))).tobytes()


def mix(base, overlay, at_ms):
    """`overlay` added onto `base` from `at_ms` on (clipped)."""
    out = array.array("h", base)
    add = array.array("h", overlay)
    first = RATE * at_ms // 1000
    for i, s in enumerate(add[:max(0, len(out) - first)]):
        out[first + i] = max(-32768, min(32767, out[first + i] + s))
    return out.tobytes()


def have_tools():
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


def _sox_raw(src, dst):
    subprocess.run(["sox", str(src), "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
                    "-t", "raw", str(dst)], check=True, capture_output=True)


def spoken(word, directory):
    """Raw 16 kHz PCM of `word` spoken by espeak-ng's Korean voice (cached in `directory`)."""
    raw = os.path.join(directory, f"{word}.r16")
    if not os.path.exists(raw):
        wav = os.path.join(directory, f"{word}.espeak.wav")
        subprocess.run(["espeak-ng", "-v", "ko", "-w", wav, word], check=True, capture_output=True)
        _sox_raw(wav, raw)
    with open(raw, "rb") as f:
        return f.read()


def noise_burst(directory, ms=80):
    """A burst of loud white noise made by sox (a click, a bump on the handset)."""
    raw = os.path.join(directory, f"burst{ms}.r16")
    if not os.path.exists(raw):
        subprocess.run(["sox", "-n", "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
                        "-t", "raw", raw, "synth", f"{ms / 1000.0}", "whitenoise", "vol", "0.5"],
                       check=True, capture_output=True)
    with open(raw, "rb") as f:
        return f.read()


def write_wav(path, pcm):
    import wave
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return str(path)


def speech_bounds(pcm, threshold=500):
    """(first, last) ms where |sample| exceeds threshold: an independent truth for VAD tests."""
    samples = memoryview(pcm).cast("h")
    loud = [i for i in range(len(samples)) if abs(samples[i]) > threshold]
    return loud[0] * 1000 // RATE, loud[-1] * 1000 // RATE


def frames(pcm, ms=20):
    step = 2 * RATE * ms // 1000
    return [pcm[i:i + step] for i in range(0, len(pcm) - step + 1, step)]


def write_progressively(path, pcm, speed=1.0, frame_ms=20):
    """Like the switch: append one frame every `frame_ms` / speed (real time at speed 1)."""
    step = 2 * RATE * frame_ms // 1000
    started = time.monotonic()
    with open(path, "ab", buffering=0) as f:
        for n, i in enumerate(range(0, len(pcm), step)):
            f.write(pcm[i:i + step])
            gevent.sleep(max(0.0, started + (n + 1) * frame_ms / 1000.0 / speed - time.monotonic()))


class FakeStream(AsrStream):
    """Says `text` once `partial_after` bytes were fed; `final` (None: never) after finish(), or
    when the test calls release_final() if `hold_final` (a late recogniser, without a clock)."""

    def __init__(self, text, final, partial_after, on_result, hold_final=False):
        super().__init__(on_result)
        self.text, self.final_text, self.partial_after = text, final, partial_after
        self.hold_final = hold_final
        self.fed = 0
        self.chunks = []
        self.finished = False

    def feed(self, pcm):
        before = self.fed
        self.fed += len(pcm)
        self.chunks.append(bytes(pcm))
        if self.text and before < self.partial_after <= self.fed:
            self._emit(Partial(self.text, time.monotonic()))

    def finish(self):
        self.finished = True
        if self.final_text is not None and not self.hold_final:
            gevent.spawn(self.release_final)

    def release_final(self):
        self._emit(Final(self.final_text, 0.9 if self.final_text else None, (), time.monotonic()))

    def close(self):
        self.closed = True


class FakeBackend(AsrBackend):
    def __init__(self, text="네", final="네", partial_after=2 * RATE * 200 // 1000, hold_final=False):
        self.text, self.final, self.partial_after = text, final, partial_after
        self.hold_final = hold_final
        self.streams = []

    def start(self, grammar=None, hot_words=None, on_result=None, log_=None):
        stream = FakeStream(self.text, self.final, self.partial_after, on_result, self.hold_final)
        self.streams.append(stream)
        return stream
