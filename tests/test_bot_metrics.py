"""The bot's recognition latency reaches /metrics' registry (engine.infra.metrics) when a caller
speaks to a bot over the simulator."""
import gevent
import pytest

from engine.infra import metrics
from tests import botaudio
from tests.botfakes import ScriptedDialogue
from tests.test_bot_session import GREETING, bot_call, caller_audio, wait_playback

pytestmark = pytest.mark.skipif(not botaudio.have_tools(), reason="espeak-ng and sox needed")


def count(name):
    return metrics.REGISTRY.get_sample_value(name) or 0


def test_a_recognised_utterance_is_timed(tmp_path):
    import tempfile
    from pathlib import Path
    audio_dir = Path(tempfile.gettempdir()) / "hotline-test-botaudio"
    audio_dir.mkdir(exist_ok=True)
    word = botaudio.spoken("상담원", str(audio_dir))
    wav = caller_audio(tmp_path, "agent", botaudio.silence(200) + word + botaudio.silence(1500))
    before = count("hotline_bot_recognition_seconds_count")

    def act(ch, log):
        wait_playback(ch, log)
        gevent.sleep(0.3)
        ch.speak(wav)

    dialogue = ScriptedDialogue(GREETING)
    _, exit_, _, _, _ = bot_call(tmp_path, dialogue, botaudio.FakeBackend("상담원", "상담원"), act)
    assert exit_ == "human"
    assert count("hotline_bot_recognition_seconds_count") == before + 1
    assert count("hotline_bot_recognition_seconds_sum") >= 0
