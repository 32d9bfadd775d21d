"""Following the media tap (engine.bot.tap): a file the switch grows every 20 ms."""
import os
import time

import gevent
import pytest

from engine.bot.tap import Tap, TapError
from engine.esl import commands
from tests.botaudio import silence, tone, write_progressively


def test_frames_follow_a_growing_file_in_real_time(tmp_path):
    path = tmp_path / "tap.r16"
    pcm = silence(100) + tone(300) + silence(100)            # 25 frames
    writer = gevent.spawn(write_progressively, path, pcm)
    tap = Tap(path)
    got = []
    started = time.monotonic()
    for frame, position, at in tap.frames():
        got.append((frame, position, at - started))
        if len(got) == 25:
            break
    writer.join()
    assert b"".join(f for f, _, _ in got) == pcm             # every byte, in order, nothing lost
    assert [p for _, p, _ in got] == list(range(0, 500, 20))
    # each frame arrives soon after the writer wrote it (frame n is complete at (n+1)*20 ms)
    delays = [at - (n + 1) * 0.020 for n, (_, _, at) in enumerate(got)]
    assert max(delays) < 0.060, delays
    assert got[-1][2] > 0.4                                   # followed, not read at the end


def test_partial_frames_wait_for_the_rest(tmp_path):
    path = tmp_path / "tap.r16"
    path.write_bytes(b"\x01\x00" * 100)                       # 200 of 640 bytes
    tap = Tap(path)
    it = tap.frames()
    reader = gevent.spawn(lambda: next(it))
    gevent.sleep(0.06)
    assert not reader.ready()
    with open(path, "ab") as f:
        f.write(b"\x02\x00" * 220)
    frame, position, _ = reader.get(timeout=1)
    assert len(frame) == 640 and frame[:2] == b"\x01\x00" and frame[-2:] == b"\x02\x00"
    assert position == 0


def test_close_stops_and_removes_the_file(tmp_path):
    path = tmp_path / "tap.r16"
    path.write_bytes(silence(40))
    tap = Tap(path)
    seen = []

    def follow():
        for frame, _, _ in tap.frames():
            seen.append(frame)

    g = gevent.spawn(follow)
    gevent.sleep(0.1)
    tap.close()
    g.join(timeout=1)
    assert g.ready() and g.successful()
    assert len(seen) == 2
    assert not path.exists()


def test_missing_file_is_a_clear_error(tmp_path):
    tap = Tap(tmp_path / "never.r16", open_timeout=0.1)
    with pytest.raises(TapError, match="did not appear within 0.1 s"):
        next(tap.frames())


def test_tap_appearing_late_is_followed(tmp_path):
    path = tmp_path / "late.r16"
    gevent.spawn_later(0.1, path.write_bytes, silence(20))
    frame, position, _ = next(Tap(path, open_timeout=1).frames())
    assert len(frame) == 640 and position == 0


def test_media_tap_commands():
    cmds = commands.media_tap_start("abc-123", "/var/tmp/hotline/tap/abc-123.r16")
    assert cmds == ["uuid_setvar abc-123 RECORD_READ_ONLY true",
                    "uuid_setvar abc-123 enable_file_write_buffering false",
                    "uuid_setvar abc-123 RECORD_PRE_BUFFER_FRAMES 1",
                    "uuid_setvar abc-123 record_sample_rate 16000",
                    "uuid_record abc-123 start /var/tmp/hotline/tap/abc-123.r16"]
    assert commands.media_tap_stop("abc-123", "/t/a.r16") == "uuid_record abc-123 stop /t/a.r16"
    with pytest.raises(commands.CommandError):
        commands.media_tap_start("abc-123", "/t/a.r16\nuuid_kill x")
    with pytest.raises(commands.CommandError):
        commands.media_tap_vars(44100)
