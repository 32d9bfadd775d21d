"""The media tap across application boundaries, as on the real switch (fixture 12): 40 ms of the
caller replaced by -1 samples at the start of the tap and at every start and end of an application
on the leg, whatever stops it; none at `uuid_fileman <uuid> pause`, which silences a playback that
keeps running (a toggle: a second pause resumes it)."""
import array
import time

import gevent

from tests.simfix import wait_for, write_tone
from tests.test_sim_media import parked_inbound

RATE = 16000
MS = RATE // 1000
PROMPT = "tone_stream://%(1000,0,440);loops=-1"


def start_tap(switch, ch, path):
    """Start the tap as the engine does; returns when its first sample was (monotonic clock)."""
    for name, value in (("RECORD_READ_ONLY", "true"), ("enable_file_write_buffering", "false"),
                        ("RECORD_PRE_BUFFER_FRAMES", "1"), ("record_sample_rate", "16000")):
        switch.api(f"uuid_setvar {ch.uuid} {name} {value}")
    assert switch.api(f"uuid_record {ch.uuid} start {path}") == "+OK Success\n"
    return ch.media[path].started


class Boundaries:
    """When each application started and ended on a channel, in ms of its tap."""

    def __init__(self, switch, ch):
        self.uuid, self.times = ch.uuid, []
        switch.subscribe(self._on)

    def _on(self, pairs, body):
        h = dict(pairs)
        if h.get("Unique-ID") == self.uuid and h["Event-Name"] in ("CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"):
            self.times.append(time.monotonic())

    def ms(self, tap_started):
        return [(t - tap_started) * 1000 for t in self.times]


def follows(runs, boundaries):
    """Each fill run begins 20-40 ms after its boundary (fixture 12: the flush takes effect at the
    read after the current one), on the tap's 20 ms frame grid; the event and the sync are a few
    lines of code apart in the channel's greenlet."""
    return all(b + 10 <= start <= b + 45 for (start, _), b in zip(runs, boundaries))


def stop_tap(switch, ch, path):
    switch.api(f"uuid_record {ch.uuid} stop {path}")
    return array.array("h", open(path, "rb").read())


def fill_runs(samples):
    """(start ms, length ms) of every run of -1 samples of at least 5 ms."""
    runs, start = [], None
    for i, s in enumerate(list(samples) + [0]):
        if s == -1 and start is None:
            start = i
        elif s != -1 and start is not None:
            if i - start >= 5 * MS:
                runs.append((start // MS, (i - start) // MS))
            start = None
    return runs


def speaking(ch, tmp_path, seconds=6.0):
    """The caller speaks a continuous tone: every sample not replaced is loud."""
    ch.speak(write_tone(tmp_path / "voice.wav", seconds, rate=16000, freq=1000))


def playback_starts(ch):
    return ch.events.count("PLAYBACK_START")


def test_the_tap_starts_with_40_ms_of_fill_and_then_carries_the_caller(switch, tmp_path):
    ch = parked_inbound(switch)
    speaking(ch, tmp_path)
    tap = str(tmp_path / "tap.r16")
    start_tap(switch, ch, tap)
    gevent.sleep(0.4)
    samples = stop_tap(switch, ch, tap)
    assert fill_runs(samples) == [(0, 40)]
    assert max(samples[40 * MS:]) > 4000 and samples[:40 * MS] == array.array("h", [-1]) * (40 * MS)


def test_a_playback_start_and_its_end_by_uuid_break_each_cost_40_ms(switch, tmp_path):
    for stop in ("uuid_break {uuid} all", "uuid_break {uuid}"):
        ch = parked_inbound(switch)
        speaking(ch, tmp_path)
        tap = str(tmp_path / f"tap-{len(stop)}.r16")
        boundaries = Boundaries(switch, ch)
        t0 = start_tap(switch, ch, tap)
        gevent.sleep(0.3)
        assert switch.api(f"uuid_broadcast {ch.uuid} {PROMPT} aleg") == "+OK Message sent\n"
        wait_for(lambda: playback_starts(ch) == 1)
        gevent.sleep(0.5)
        switch.api(stop.format(uuid=ch.uuid))
        wait_for(lambda: "PLAYBACK_STOP" in ch.events)
        gevent.sleep(0.3)
        runs = fill_runs(stop_tap(switch, ch, tap))
        assert [length for _, length in runs] == [40, 40, 40], (stop, runs)
        assert follows(runs[1:], boundaries.ms(t0)), (runs, boundaries.ms(t0))
        ch.hangup()


def test_a_prompt_that_ends_by_itself_costs_40_ms_at_its_end_too(switch, tmp_path):
    ch = parked_inbound(switch)
    speaking(ch, tmp_path)
    tap = str(tmp_path / "tap.r16")
    boundaries = Boundaries(switch, ch)
    t0 = start_tap(switch, ch, tap)
    gevent.sleep(0.2)
    switch.api(f"uuid_broadcast {ch.uuid} tone_stream://%(300,0,440) aleg")
    wait_for(lambda: "PLAYBACK_STOP" in ch.events)
    gevent.sleep(0.2)
    runs = fill_runs(stop_tap(switch, ch, tap))
    assert [length for _, length in runs] == [40, 40, 40]
    assert follows(runs[1:], boundaries.ms(t0)) and runs[2][0] - runs[1][0] >= 280


def test_fileman_pause_silences_the_prompt_without_a_gap_and_a_second_pause_resumes_it(switch, tmp_path):
    ch = parked_inbound(switch)
    speaking(ch, tmp_path)
    tap = str(tmp_path / "tap.r16")
    boundaries = Boundaries(switch, ch)
    t0 = start_tap(switch, ch, tap)
    gevent.sleep(0.2)
    switch.api(f"uuid_broadcast {ch.uuid} tone_stream://%(600,0,440) aleg")
    wait_for(lambda: playback_starts(ch) == 1)
    gevent.sleep(0.3)
    assert switch.api(f"uuid_fileman {ch.uuid} pause") == "+OK\n"
    paused = time.monotonic()
    gevent.sleep(0.5)                                   # paused: the 600 ms prompt would have ended
    assert "PLAYBACK_STOP" not in ch.events and ch.file_handle.paused
    assert switch.api(f"uuid_fileman {ch.uuid} resume") == "+OK\n"     # no such verb: still paused
    gevent.sleep(0.1)
    assert "PLAYBACK_STOP" not in ch.events and ch.file_handle.paused
    assert switch.api(f"uuid_fileman {ch.uuid} pause") == "+OK\n"       # toggled back: plays on
    held = time.monotonic() - paused
    wait_for(lambda: "PLAYBACK_STOP" in ch.events)
    assert 590 <= int(ch.variables["playback_ms"]) <= 600               # all of it, once
    gevent.sleep(0.2)
    runs = fill_runs(stop_tap(switch, ch, tap))
    assert [length for _, length in runs] == [40, 40, 40]               # start of tap, prompt start, end
    assert follows(runs[1:], boundaries.ms(t0))                         # nothing at the pauses
    assert runs[2][0] - runs[1][0] >= 600 + held * 1000 - 20


def test_a_paused_playback_ends_with_uuid_break_or_fileman_stop(switch, tmp_path):
    ch = parked_inbound(switch)
    stops = []
    switch.subscribe(lambda pairs, body: stops.append(dict(pairs).get("Playback-Status"))
                     if dict(pairs)["Event-Name"] == "PLAYBACK_STOP" else None)
    for command, status in (("uuid_break {uuid}", "break"), ("uuid_fileman {uuid} stop", "done")):
        switch.api(f"uuid_broadcast {ch.uuid} {PROMPT} aleg")
        wait_for(lambda: ch.file_handle is not None)
        switch.api(f"uuid_fileman {ch.uuid} pause")
        sent = time.monotonic()
        switch.api(command.format(uuid=ch.uuid))
        wait_for(lambda: ch.file_handle is None)
        took = time.monotonic() - sent
        assert stops[-1] == status
        if "fileman" in command:
            assert took >= 0.2                          # fixture 12: PLAYBACK_STOP ~260 ms later


def test_fileman_with_nothing_playing_answers_ok_and_changes_nothing(switch, tmp_path):
    ch = parked_inbound(switch)
    assert switch.api(f"uuid_fileman {ch.uuid} pause") == "+OK\n"
    switch.api(f"uuid_broadcast {ch.uuid} tone_stream://%(200,0,440) aleg")
    wait_for(lambda: "PLAYBACK_STOP" in ch.events)      # the earlier pause did not hold it
    assert switch.api("uuid_fileman 00000000-0000-0000-0000-000000000000 pause").startswith("-ERR")
    assert switch.api(f"uuid_fileman {ch.uuid}").startswith("-USAGE")
