"""Follow the media tap: a raw 16-bit mono file that FreeSWITCH grows every 20 ms.

The switch writes it after `uuid_record <uuid> start /path/tap.r16` with the variables of
`commands.media_tap_vars()` (FREESWITCH.md: without enable_file_write_buffering=false it grows in
64 KB steps, 2 s of audio — far too late for a bot). We poll it every frame: a read of a local file
that the kernel already has in its page cache takes microseconds, so it is done on the hub, and
the wait between polls is a gevent sleep.
"""
import logging
import os
import time

import gevent

log = logging.getLogger("hotline.bot.tap")

READ_CHUNK = 65536


class TapError(Exception):
    """The tap file did not appear, or cannot be read."""


class Tap:
    """`frames()` yields (20 ms frame bytes, position in ms from the start, time.monotonic()
    when read), following the file as it grows until `close()`, which also removes the file."""

    def __init__(self, path, sample_rate=16000, frame_ms=20, open_timeout=2.0, log_=None):
        if sample_rate not in (8000, 16000, 32000, 48000):
            raise TapError(f"unsupported tap sample rate {sample_rate!r}")
        self.path = os.fspath(path)
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_bytes = sample_rate * frame_ms // 1000 * 2
        self.open_timeout = open_timeout
        self.log = log_ or log
        self.closed = False
        self.bytes_read = 0

    def _open(self):
        deadline = time.monotonic() + self.open_timeout
        while not self.closed:
            try:
                return os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            except FileNotFoundError:
                if time.monotonic() >= deadline:
                    raise TapError(f"media tap {self.path} did not appear within "
                                   f"{self.open_timeout:g} s (was uuid_record started?)") from None
            except OSError as exc:
                raise TapError(f"cannot open media tap {self.path}: {exc}") from None
            gevent.sleep(self.frame_ms / 1000.0)
        return None

    def frames(self):
        fd = self._open()
        if fd is None:
            return
        interval = self.frame_ms / 1000.0
        pending = bytearray()
        position = 0
        next_poll = time.monotonic()
        try:
            while not self.closed:
                while True:
                    chunk = os.read(fd, READ_CHUNK)
                    pending += chunk
                    self.bytes_read += len(chunk)
                    if len(chunk) < READ_CHUNK:
                        break
                now = time.monotonic()
                while len(pending) >= self.frame_bytes and not self.closed:
                    frame = bytes(pending[:self.frame_bytes])
                    del pending[:self.frame_bytes]
                    yield frame, position, now
                    position += self.frame_ms
                next_poll += interval
                delay = next_poll - time.monotonic()
                if delay < -interval:
                    next_poll = time.monotonic()      # fell behind (a busy hub): do not burst
                gevent.sleep(max(0.0, delay))
        except OSError as exc:
            raise TapError(f"reading media tap {self.path}: {exc}") from None
        finally:
            os.close(fd)

    def close(self):
        """Stop following and remove the file (the caller stops the recording first)."""
        self.closed = True
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.log.warning("cannot remove media tap %s: %s", self.path, exc)
