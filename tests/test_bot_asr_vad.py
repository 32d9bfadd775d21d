"""Voice-activity detection and endpointing (engine.bot.vad) with computed audio and a scripted
recogniser: onset and end positions, noise filtering, barge-in word minimum, timeouts."""
import gevent
import pytest

from engine.bot.vad import (FRAME_MS, EnergyDetector, Endpointer, Noise, PartialText, SpeechStart,
                            UtteranceEnd, VadConfig, frame_level)
from tests.botaudio import FakeBackend, frames, mix, silence, tone, white_noise
from tests.simfix import wait_for


def run(pcm, backend, config=None, settle=0.5):
    """Feed `pcm` frame by frame; return the events once the last utterance is concluded."""
    events = []
    ep = Endpointer(config or VadConfig(), lambda on_result: backend.start(on_result=on_result),
                    events.append)
    for n, frame in enumerate(frames(pcm)):
        ep.feed(frame, n * FRAME_MS)
    deadline = gevent.get_hub().loop.now() + settle
    while ep._finishing and gevent.get_hub().loop.now() < deadline:
        gevent.sleep(0.01)
    return [e for e in events if not isinstance(e, PartialText)], events


def test_frame_level_in_dbfs():
    assert frame_level(silence(20)) == -100.0
    assert frame_level(tone(20, dbfs=-20.0)) == pytest.approx(-20.0, abs=0.5)
    assert frame_level(tone(20, dbfs=-40.0)) == pytest.approx(-40.0, abs=0.5)


def test_onset_and_end_of_a_word():
    pcm = silence(500) + tone(300) + silence(800)
    events, _ = run(pcm, FakeBackend(text="네", final="네"))
    assert [type(e) for e in events] == [SpeechStart, UtteranceEnd]
    start, end = events
    assert start.onset_ms == 500
    assert end.onset_ms == 500 and end.end_ms == 800
    assert end.text == "네" and end.confidence == 0.9 and end.source == "final"
    assert end.barged_in and end.reason == "silence"
    # the decision came 500 ms (end_silence_ms) after speech ended, not before
    assert end.decided_at >= end.speech_end_at


def test_end_silence_is_configurable():
    pcm = silence(200) + tone(300) + silence(350) + tone(300) + silence(700)
    short, _ = run(pcm, FakeBackend(), VadConfig(end_silence_ms=300))
    long_, _ = run(pcm, FakeBackend(), VadConfig(end_silence_ms=500))
    assert [e.kind for e in short].count("utterance_end") == 2     # the 350 ms pause ends it
    ends = [e for e in long_ if e.kind == "utterance_end"]
    assert len(ends) == 1 and ends[0].onset_ms == 200
    assert 1150 <= ends[0].end_ms <= 1150 + FRAME_MS          # a frame holding the last of the tone


def test_short_burst_is_noise_not_barge_in():
    pcm = silence(400) + white_noise(80, dbfs=-6.0) + silence(600)
    events, _ = run(pcm, FakeBackend())
    assert [type(e) for e in events] == [Noise]
    assert events[0].reason == "too_short" and not events[0].barged_in
    assert events[0].speech_ms <= 100


def test_speech_without_words_is_noise_and_says_it_barged_in():
    # a cough: long enough for the VAD, but the recogniser finds no words -> resume the prompt
    events, _ = run(silence(300) + white_noise(400, dbfs=-10.0) + silence(700),
                    FakeBackend(text="", final=""))
    assert [type(e) for e in events] == [SpeechStart, Noise]
    assert events[1].reason == "no_words" and events[1].barged_in


def test_barge_in_waits_for_recognised_words_when_configured():
    backend = FakeBackend(text="상담원", final="상담원", partial_after=2 * 16000 * 450 // 1000)
    config = VadConfig(min_barge_in_words=1)
    _, all_events = run(silence(200) + tone(600) + silence(700), backend, config)
    kinds = [e.kind for e in all_events]
    assert kinds == ["partial", "speech_start", "utterance_end"]
    # without the minimum, speech_start comes first (VAD only, fastest barge-in)
    _, plain = run(silence(200) + tone(600) + silence(700), backend)
    assert [e.kind for e in plain] == ["speech_start", "partial", "utterance_end"]


def test_min_chars_filters_short_recognitions():
    events, _ = run(silence(200) + tone(400) + silence(700), FakeBackend(text="네", final="네"),
                    VadConfig(min_chars=2))
    assert [e.kind for e in events] == ["speech_start", "noise"]
    assert events[1].reason == "no_words" and events[1].text == "네"


def test_max_utterance_length_cuts():
    events, _ = run(silence(100) + tone(2000) + silence(600), FakeBackend(),
                    VadConfig(max_utterance_ms=1000))
    ends = [e for e in events if e.kind == "utterance_end"]
    assert ends[0].reason == "max_length" and ends[0].onset_ms == 100
    assert ends[0].end_ms - ends[0].onset_ms <= 1000


def test_late_final_falls_back_to_the_last_partial():
    # a partial is there: no waiting beyond final_timeout_ms, however long final_max_wait_ms is
    events, _ = run(silence(200) + tone(500) + silence(600), FakeBackend(text="아니요", final=None),
                    VadConfig(final_timeout_ms=50, final_max_wait_ms=600000), settle=5.0)
    end = events[-1]
    assert end.kind == "utterance_end" and end.text == "아니요" and end.source == "partial"
    assert end.confidence is None


def test_steady_background_noise_is_not_speech_but_speech_over_it_is():
    noise = white_noise(4000, dbfs=-42.0, seed=1)
    events, _ = run(mix(noise, tone(400, dbfs=-18.0), at_ms=2000), FakeBackend())
    starts = [e for e in events if e.kind == "speech_start"]
    assert len(starts) == 1 and abs(starts[0].onset_ms - 2000) <= 40


def test_adaptive_floor_follows_the_background():
    det = EnergyDetector(VadConfig())
    for frame in frames(white_noise(1000, dbfs=-40.0)):
        assert not det.is_speech(frame)
    assert det.floor == pytest.approx(-40.0, abs=2.0)
    for frame in frames(white_noise(600, dbfs=-70.0, seed=3)):
        det.is_speech(frame)
    assert det.floor < -55.0                                   # quieter line: floor falls fast
    assert det.is_speech(tone(20, dbfs=-30.0))


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="unknown setting.*end_silence"):
        VadConfig.from_dict({"end_silense_ms": 400})
    with pytest.raises(ValueError, match="end_silence_ms: must not be negative"):
        VadConfig(end_silence_ms=-1)
    with pytest.raises(ValueError, match="must be a number"):
        VadConfig(min_speech_ms="fast")
    assert VadConfig.from_dict({"end_silence_ms": 400}).end_silence_ms == 400


def test_with_no_partial_text_the_final_is_waited_for_instead_of_dropping_the_utterance():
    """No partial text by final_timeout_ms: the endpointer keeps waiting for the final (up to
    final_max_wait_ms) and concludes as soon as it comes. The recogniser is late by construction,
    not by a clock: the test releases the final only after the endpointer's first timeout has run
    (its timer is armed before the test's own sleep, so it fires first whatever the load)."""
    def conclude(config):
        backend = FakeBackend(text="", final="상담원", hold_final=True)
        events = []
        ep = Endpointer(config, lambda on_result: backend.start(on_result=on_result), events.append)
        for n, frame in enumerate(frames(silence(200) + tone(500) + silence(600))):
            ep.feed(frame, n * FRAME_MS)
        stream = backend.streams[-1]
        assert stream.finished                                  # the utterance is over
        gevent.sleep(0)                                         # the endpointer starts waiting
        gevent.sleep(3 * config.final_timeout_ms / 1000.0)      # ...and its first timeout runs out
        return ep, events, stream

    ep, events, stream = conclude(VadConfig(final_timeout_ms=100, final_max_wait_ms=600000))
    assert [e.kind for e in events] == ["speech_start"] and ep._finishing    # still waiting
    stream.release_final()
    wait_for(lambda: not ep._finishing, timeout=5)              # at once, not after 600 s
    end = events[-1]
    assert end.kind == "utterance_end" and end.text == "상담원" and end.source == "final"

    ep, events, stream = conclude(VadConfig(final_timeout_ms=100, final_max_wait_ms=100))
    assert [e.kind for e in events] == ["speech_start", "noise"]   # the old behaviour, when configured so
    assert not ep._finishing
    stream.release_final()
    gevent.sleep(0)
    assert [e.kind for e in events] == ["speech_start", "noise"]   # a final after that is ignored


def lost(ms):
    """What the switch writes into the tap for audio it dropped (fixture 12): -1 samples."""
    return b"\xff\xff" * (16 * ms)


def test_lost_audio_is_concealed_for_the_recogniser_with_the_last_real_frame():
    word = tone(300, freq=300)
    pcm = silence(200) + word[:2 * 16 * 120] + lost(40) + word[2 * 16 * 160:] + silence(700)
    backend = FakeBackend()
    events, _ = run(pcm, backend)
    assert [type(e) for e in events] == [SpeechStart, UtteranceEnd]
    [stream] = backend.streams
    assert stream.fed == 2 * 16 * (200 + 300 + 500)      # pre-roll + the word + silence: nothing cut
    fed = b"".join(stream.chunks)
    assert b"\xff\xff" * 16 not in fed                    # no -1 run reached the recogniser
    frame = 2 * 16 * FRAME_MS
    at = 2 * 16 * 200 + 2 * 16 * 120                      # where the loss was, in what was fed
    assert fed[at:at + frame] == fed[at - frame:at] == fed[at + frame:at + 2 * frame]


def test_lost_audio_is_neither_speech_nor_silence():
    # 100 ms of tone and 60 ms lost: not enough speech to confirm an onset (140 ms)
    events, _ = run(silence(300) + tone(100) + lost(60) + silence(600), FakeBackend())
    assert [type(e) for e in events] == [Noise]
    # 300 ms of silence + 400 ms lost inside an utterance: the 500 ms end-of-speech silence has
    # not passed, so the words after the loss belong to the same utterance
    pcm = silence(200) + tone(300) + silence(300) + lost(400) + tone(300) + silence(700)
    events, _ = run(pcm, FakeBackend())
    assert [type(e) for e in events] == [SpeechStart, UtteranceEnd]
    assert events[1].end_ms == 200 + 300 + 300 + 400 + 300


def test_the_fill_at_the_start_of_the_tap_leaves_the_noise_floor_alone():
    # taken as audio, the fill (-90 dBFS) would set the floor far below the line's hiss, and the
    # hiss would be "speech"; the floor starts from the first real frame instead
    pcm = lost(40) + white_noise(400, dbfs=-45.0) + tone(300, dbfs=-20.0) + silence(700)
    events, _ = run(pcm, FakeBackend())
    assert [type(e) for e in events] == [SpeechStart, UtteranceEnd]
    assert events[0].onset_ms == 440
