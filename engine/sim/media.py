"""Media without RTP: how long a prompt plays, and the files uuid_record / record write.

Durations are real (FREESWITCH.md: a playback lasts the audio's real duration): WAV from its
header, tone_stream from its on/off spec times loops, silence_stream from its milliseconds.
Recordings hold what the far end "speaks" (Channel.speak) or silence. The media tap (raw 16-bit
file with enable_file_write_buffering=false) grows every 20 ms in real time, like the real switch.

The media tap (a raw file) loses 40 ms of the far end at each application boundary on its channel
and at its own start: those samples are -1 (0xFFFF), not the caller's audio and not zeros (fixture
12 measured raw read-only taps; WAV recordings were not measured and keep every sample). Why
(fixture 12's header, FREESWITCH.md): switch_ivr_parse_event -> switch_channel_audio_sync -> the
RTP read's do_flush drops the packet just received; the record bug then finds its read buffer
empty and writes a fill frame (memset 255, switch_core_media_bug_read).
"""
import array
import logging
import os
import re
import time
import wave

import gevent

log = logging.getLogger("hotline.sim.media")

FRAME_SECONDS = 0.020
FILL_SAMPLE = -1            # what the record bug writes for a read that carried no audio (0xFFFF)
FILL_FRAMES = 2             # 40 ms at every audio sync (fixture 12: 39-40 ms in every trial)
RAW_EXTENSIONS = {".r8": 8000, ".r16": 16000, ".r32": 32000, ".r48": 48000, ".raw": None, ".pcm": None}
BUFFERED_BYTES = 65536      # default file write buffering: the tap grows in 64 KB steps


class MediaError(Exception):
    """A media source cannot be played (missing file, unknown scheme, bad spec)."""


_TONE = re.compile(r"%\(([^)]*)\)")


def tone_duration(spec):
    """tone_stream://%(on,off,freqs...);...;loops=N -> seconds (None if it loops forever)."""
    loops = 1
    m = re.search(r"loops=(-?\d+)", spec)
    if m:
        loops = int(m.group(1))
    if loops < 0:
        return None
    total_ms = 0
    for seg in _TONE.findall(spec):
        parts = [p.strip() for p in seg.split(",")]
        try:
            total_ms += int(float(parts[0])) + (int(float(parts[1])) if len(parts) > 1 else 0)
        except (ValueError, IndexError):
            raise MediaError(f"bad tone spec {spec!r}") from None
    if not _TONE.search(spec):
        raise MediaError(f"bad tone spec {spec!r}")
    return total_ms * max(loops, 1) / 1000.0


def duration(source, sounds_dir=None):
    """Seconds a source plays for; None means it never ends by itself."""
    if source.startswith("tone_stream://"):
        return tone_duration(source[len("tone_stream://"):])
    if source.startswith("local_stream://"):
        return None                     # music on hold: plays until it is stopped
    if source.startswith("silence_stream://"):
        ms = source[len("silence_stream://"):].split(",")[0]
        try:
            ms = int(ms)
        except ValueError:
            raise MediaError(f"bad silence spec {source!r}") from None
        return None if ms < 0 else ms / 1000.0
    if source.startswith("file_string://"):
        total = 0.0
        for part in source[len("file_string://"):].split("!"):
            d = duration(part, sounds_dir)
            if d is None:
                return None
            total += d
        return total
    path = source
    if not os.path.isabs(path) and sounds_dir:
        path = os.path.join(sounds_dir, path)
    if not os.path.isfile(path):
        raise MediaError(f"file not found: {source}")
    try:
        with wave.open(path, "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError) as exc:
        raise MediaError(f"cannot read {source}: {exc}") from None


def file_type(source):
    if "://" in source:
        return source.split("://", 1)[0]
    return None


def read_pcm(path, rate):
    """Mono 16-bit samples of a WAV at `rate` (nearest-sample resampling: good enough for tests
    and a recogniser fed by the tap; no audioop, which Python 3.13 removes)."""
    with wave.open(path, "rb") as w:
        channels, width, src_rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        frames = w.readframes(w.getnframes())
    if width != 2:
        raise MediaError(f"{path}: only 16-bit WAV is supported")
    samples = array.array("h")
    samples.frombytes(frames)
    if channels > 1:
        samples = samples[::channels]
    if src_rate == rate:
        return samples
    n = int(len(samples) * rate / src_rate)
    step = src_rate / rate
    return array.array("h", (samples[min(int(i * step), len(samples) - 1)] for i in range(n)))


class Recording:
    """One uuid_record / record target on one channel."""

    def __init__(self, channel, path, limit=None):
        self.channel = channel
        self.path = path
        self.limit = limit
        self.started = time.monotonic()
        self.wall_started = time.time()
        v = channel.variables
        ext = os.path.splitext(path)[1].lower()
        self.raw = ext in RAW_EXTENSIONS
        rate = v.get("record_sample_rate")
        default_rate = RAW_EXTENSIONS.get(ext) or int(channel.codec[1] if channel.codec else 8000)
        self.rate = int(rate) if rate and rate.isdigit() else default_rate
        self.stereo = v.get("RECORD_STEREO", "").lower() == "true"
        self.buffered = v.get("enable_file_write_buffering", "true").lower() != "false"
        self.greenlet = None
        self.fh = None
        self.written = 0          # samples written (raw tap)
        self.stopped = False
        frame = int(self.rate * FRAME_SECONDS)
        # the bug attach flushes too: every tap of fixture 12 begins with ~42 ms of fill
        self.fills = [(0, FILL_FRAMES * frame)] if self.raw else []   # (first, end) -> FILL_SAMPLE

    def audio_sync(self):
        """An application started or ended on the channel: the switch flushes the RTP read and the
        next 40 ms of the far end never reach this recording. The flush takes effect at the next
        read after the current one (fixture 12: the fill begins 20-40 ms after the prompt's
        execute, ~35 ms after PLAYBACK_STOP)."""
        if not self.raw:
            return
        frame = int(self.rate * FRAME_SECONDS)
        elapsed = int((time.monotonic() - self.started) * self.rate)
        first = (-(-elapsed // frame) + 1) * frame
        self.fills.append((first, first + FILL_FRAMES * frame))

    # --- audio source ---------------------------------------------------------------------------
    def _source(self, channel=None):
        channel = channel or self.channel
        audio = channel.audio
        if not audio:
            return None, 0
        key = (audio, self.rate)
        cache = self.channel.switch.media.pcm_cache
        if key not in cache:
            try:
                cache[key] = read_pcm(audio, self.rate)
            except Exception as exc:
                log.warning("%s: cannot read speech %s: %s", self.channel.uuid, audio, exc)
                cache[key] = array.array("h")
        # The far end sends its audio in 20 ms RTP packets, the file's first sample starting one:
        # speech begins on the packet grid, not at whatever sample the wall clock gives (that
        # phase changed what the recogniser heard from one run to the next)
        frame = int(self.rate * FRAME_SECONDS)
        offset = round((self.wall_started - channel.audio_since) * self.rate / frame) * frame
        return cache[key], offset

    def samples(self, start, count, channel=None):
        """`count` samples from sample index `start` of this recording: speech, then silence
        (what `channel`'s far end says; default the recorded channel's)."""
        src, offset = self._source(channel)
        out = array.array("h", bytes(2 * count))
        if src:
            begin = start + offset
            lo, hi = max(begin, 0), min(begin + count, len(src))
            if hi > lo:
                out[lo - begin:hi - begin] = src[lo:hi]
        if channel is None or channel is self.channel:
            for first, end in self.fills:
                lo, hi = max(first, start), min(end, start + count)
                if hi > lo:
                    out[lo - start:hi - start] = array.array("h", [FILL_SAMPLE]) * (hi - lo)
        return out

    # --- raw tap ------------------------------------------------------------------------------
    def start(self):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        if self.raw:
            self.fh = open(self.path, "wb")
            self.greenlet = gevent.spawn(self._tap)
        return self

    def _tap(self):
        frame = int(self.rate * FRAME_SECONDS)
        pending = bytearray()
        next_tick = self.started
        while not self.stopped:
            next_tick += FRAME_SECONDS
            gevent.sleep(max(0.0, next_tick - time.monotonic()))
            if self.stopped:
                break
            pending += self.samples(self.written, frame).tobytes()
            self.written += frame
            if not self.buffered or len(pending) >= BUFFERED_BYTES:
                self.fh.write(pending)
                self.fh.flush()
                pending.clear()
        if pending:
            self.fh.write(pending)

    def stop(self):
        """Close the file; returns seconds recorded."""
        if self.stopped:
            return 0.0
        self.stopped = True
        seconds = time.monotonic() - self.started
        if self.limit:
            seconds = min(seconds, self.limit)
        if self.raw:
            if self.greenlet is not None and gevent.getcurrent() is not self.greenlet:
                self.greenlet.join(timeout=1)
            if self.fh:
                self.fh.close()
            return seconds
        count = int(seconds * self.rate)
        mono = self.samples(0, count)
        with wave.open(self.path, "wb") as w:
            w.setnchannels(2 if self.stereo else 1)
            w.setsampwidth(2)
            w.setframerate(self.rate)
            if self.stereo:
                # read direction (the far end) left, write direction right: what the channel
                # hears, i.e. the bridged party's speech (silence when not bridged)
                both = array.array("h", bytes(4 * count))
                both[0::2] = mono
                peer = self.channel.switch.channels.get(self.channel.bridged_to or "")
                if peer is not None:
                    both[1::2] = self.samples(0, count, peer)
                w.writeframes(both.tobytes())
            else:
                w.writeframes(mono.tobytes())
        return seconds


class MediaManager:
    """Recordings of all channels (uuid_record start/stop, the record app)."""

    def __init__(self):
        self.pcm_cache = {}

    def start(self, channel, path, limit=None):
        rec = Recording(channel, path, limit).start()
        channel.media[path] = rec
        return rec

    def stop(self, channel, path):
        rec = channel.media.pop(path, None)
        if rec is None:
            return None
        return rec, rec.stop()

    def audio_sync(self, channel):
        """Every recording of `channel` loses the next 40 ms of its far end (Recording.audio_sync)."""
        for rec in channel.media.values():
            rec.audio_sync()

    def stop_all(self, channel):
        for path in list(channel.media):
            channel.switch.record_stop(channel, path, "success-hangup")
