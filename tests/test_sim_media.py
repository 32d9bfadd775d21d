"""Recording and the media tap of the simulated switch, and real playback durations."""
import array
import os
import time
import wave

import gevent
import pytest

from engine.sim import media
from tests.simfix import write_tone


def parked_inbound(switch):
    a = switch.api("originate {origination_caller_id_number=15550000009}"
                   "sofia/internal/7000@127.0.0.1:5080 &park()").split()[1]
    b = switch.channels[a].sip_peer
    deadline = time.monotonic() + 3
    while not b.parked and time.monotonic() < deadline:
        gevent.sleep(0.01)
    return b


def test_durations_from_spec_and_header(tmp_path):
    assert media.duration("tone_stream://%(500,500,480,620);loops=2") == 2.0
    assert media.duration("tone_stream://%(300,200,440);loops=1") == 0.5
    assert media.duration("silence_stream://250") == 0.25
    assert media.duration("silence_stream://-1") is None
    wav = write_tone(tmp_path / "t.wav", 0.3)
    assert abs(media.duration(wav) - 0.3) < 0.001
    assert abs(media.duration(f"file_string://{wav}!silence_stream://200") - 0.5) < 0.001
    with pytest.raises(media.MediaError):
        media.duration(str(tmp_path / "missing.wav"))


def test_uuid_record_writes_wav_of_the_right_length_with_speech(switch, tmp_path):
    ch = parked_inbound(switch)
    speech = write_tone(tmp_path / "speech.wav", 0.2, rate=8000)
    ch.speak(speech)
    out = str(tmp_path / "rec.wav")
    seen = []
    switch.subscribe(lambda pairs, body: seen.append(dict(pairs)["Event-Name"]))
    assert switch.api(f"uuid_record {ch.uuid} start {out}") == "+OK Success\n"
    gevent.sleep(0.5)
    assert switch.api(f"uuid_record {ch.uuid} stop {out}") == "+OK Success\n"
    assert [n for n in seen if n.startswith(("RECORD", "MEDIA_BUG"))] == [
        "RECORD_START", "MEDIA_BUG_START", "RECORD_STOP", "MEDIA_BUG_STOP"]
    with wave.open(out, "rb") as w:
        rate, frames = w.getframerate(), w.getnframes()
        data = array.array("h", w.readframes(frames))
    assert rate == 48000                              # follows the channel's codec rate (FREESWITCH.md)
    assert 0.45 <= frames / rate <= 0.65
    assert max(abs(s) for s in data[: int(0.1 * rate)]) > 1000     # the far end's speech
    assert max(abs(s) for s in data[int(0.3 * rate):]) == 0        # then silence
    assert switch.api(f"uuid_record {ch.uuid} stop {out}").startswith("-ERR")


def test_stereo_recording_and_stop_on_hangup(switch, tmp_path):
    ch = parked_inbound(switch)
    switch.api(f"uuid_setvar {ch.uuid} RECORD_STEREO true")
    out = str(tmp_path / "stereo.wav")
    switch.api(f"uuid_record {ch.uuid} start {out}")
    gevent.sleep(0.2)
    ch.hangup()
    assert ch.wait_hangup(3)
    with wave.open(out, "rb") as w:
        assert w.getnchannels() == 2 and 0.15 <= w.getnframes() / w.getframerate() <= 0.4
    assert "RECORD_STOP" in ch.events


def test_media_tap_grows_every_20ms_in_real_time(switch, tmp_path):
    ch = parked_inbound(switch)
    speech = write_tone(tmp_path / "caller.wav", 1.0, rate=8000)
    for name, value in (("RECORD_READ_ONLY", "true"), ("enable_file_write_buffering", "false"),
                        ("RECORD_PRE_BUFFER_FRAMES", "1"), ("record_sample_rate", "16000")):
        assert switch.api(f"uuid_setvar {ch.uuid} {name} {value}") == "+OK\n"
    tap = str(tmp_path / "tap.r16")
    ch.speak(speech)
    assert switch.api(f"uuid_record {ch.uuid} start {tap}") == "+OK Success\n"
    sizes = []
    t0 = time.monotonic()
    for _ in range(10):
        gevent.sleep(0.05)
        sizes.append((time.monotonic() - t0, os.path.getsize(tap)))
    switch.api(f"uuid_record {ch.uuid} stop {tap}")
    assert all(size % 640 == 0 for _, size in sizes)          # whole 20 ms frames of 16 kHz 16-bit
    assert sizes[-1][1] > sizes[0][1] > 0                      # grows while we watch
    elapsed, size = sizes[-1]
    assert abs(size / 32000.0 - elapsed) < 0.1                 # 32,000 bytes a second, real time
    data = array.array("h", open(tap, "rb").read(6400))
    assert max(abs(s) for s in data) > 1000                    # carries the caller's audio


def test_buffered_tap_grows_in_64k_steps(switch, tmp_path):
    ch = parked_inbound(switch)
    switch.api(f"uuid_setvar {ch.uuid} record_sample_rate 16000")
    tap = str(tmp_path / "slow.r16")
    switch.api(f"uuid_record {ch.uuid} start {tap}")
    gevent.sleep(0.3)
    assert os.path.getsize(tap) == 0                          # default buffering: nothing yet
    switch.api(f"uuid_record {ch.uuid} stop {tap}")
    assert os.path.getsize(tap) > 0


def test_record_app_and_playback_of_wav_take_real_time(switch, tmp_path):
    prompt = write_tone(tmp_path / "prompt.wav", 0.3)
    ch = parked_inbound(switch)
    done = []
    switch.subscribe(lambda pairs, body: done.append(time.monotonic())
                     if dict(pairs)["Event-Name"] == "CHANNEL_EXECUTE_COMPLETE"
                     and dict(pairs).get("Application") == "playback" else None)
    t0 = time.monotonic()
    switch.api(f"uuid_broadcast {ch.uuid} {prompt} aleg")
    deadline = time.monotonic() + 3
    while not done and time.monotonic() < deadline:
        gevent.sleep(0.01)
    assert done and 0.28 <= done[0] - t0 <= 0.5
    rec = str(tmp_path / "vm.wav")
    ch.queue_message({"app": "record", "arg": f"{rec} 5"})
    gevent.sleep(0.3)
    ch.press("#")
    deadline = time.monotonic() + 3
    while "RECORD_STOP" not in ch.events and time.monotonic() < deadline:
        gevent.sleep(0.01)
    with wave.open(rec, "rb") as w:
        assert 0.2 <= w.getnframes() / w.getframerate() <= 0.5
    assert ch.variables.get("playback_terminator_used") == "#"


def test_record_app_stops_after_silence_following_speech(switch, tmp_path):
    ch = parked_inbound(switch)
    ch.speak(write_tone(tmp_path / "msg.wav", 0.3))
    rec = str(tmp_path / "voicemail.wav")
    t0 = time.monotonic()
    ch.queue_message({"app": "record", "arg": f"{rec} 10 200 1"})   # 1 s of silence ends it
    deadline = time.monotonic() + 5
    while "RECORD_STOP" not in ch.events and time.monotonic() < deadline:
        gevent.sleep(0.01)
    assert 1.2 <= time.monotonic() - t0 <= 1.8                      # 0.3 s speech + 1 s silence
    with wave.open(rec, "rb") as w:
        data = array.array("h", w.readframes(w.getnframes()))
        rate = w.getframerate()
    assert max(abs(s) for s in data[: int(0.2 * rate)]) > 1000
