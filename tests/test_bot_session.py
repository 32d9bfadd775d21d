"""The bot's call side over the simulator (real sockets): media tap, barge-in, noise, prompts that
cannot be interrupted, false interruptions, silence, hand-off. The recogniser is a fake that says
a fixed text once enough audio came (tests/botaudio.FakeBackend): what is tested here is the call
side; the real recogniser runs in test_bot_e2e.py. Caller audio is espeak-ng / sox made."""
import json
import tempfile
import time
from pathlib import Path

import gevent
import pytest

from engine.bot.services import BotServices
from engine.bot.session import BotOptions, BotSession
from engine.bot.vad import VadConfig
from engine.media.prompts import PromptRenderer
from engine.settings import TtsSettings
from tests import botaudio
from tests.botfakes import ScriptedDialogue
from tests.enginefix import Rig

pytestmark = pytest.mark.skipif(not botaudio.have_tools(), reason="espeak-ng and sox needed")

PROMPT_CACHE = Path(tempfile.gettempdir()) / "hotline-test-prompts"
AUDIO_CACHE = Path(tempfile.gettempdir()) / "hotline-test-botaudio"
GREETING = ["您好，这里是市民服务热线。", "请问您要办理什么业务？", "请说出您的问题。"]


class SwitchLog:
    """Every event as the switch emitted it and every api command it got, with the times."""

    def __init__(self, switch):
        self.events = []
        self.api = []
        switch.subscribe(self._on)
        run_api = switch.api

        def api(line):
            self.api.append((time.monotonic(), line))
            return run_api(line)
        switch.api = api

    def _on(self, headers, body):
        h = dict(headers)
        self.events.append((time.monotonic(), h.get("Event-Name"), h))

    def named(self, name, uuid=None):
        return [(t, h) for t, n, h in self.events
                if n == name and (uuid is None or h.get("Unique-ID") == uuid)]


def caller_audio(tmp_path, name, pcm):
    return botaudio.write_wav(tmp_path / f"{name}.wav", pcm)


@pytest.fixture
def audio_dir():
    AUDIO_CACHE.mkdir(exist_ok=True)
    return str(AUDIO_CACHE)


def bot_call(tmp_path, dialogue, backend, act, vad=None, no_speech=0.6, timeout=25):
    """One trunk call whose handler is a bot session; `act(ch, log)` plays the caller's part.
    Returns (session, exit, channel, cdr, switch log)."""
    box = {}
    renderer = PromptRenderer(TtsSettings(edge_enabled=False), PROMPT_CACHE)
    services = BotServices(backend, renderer, tmp_path / "live")

    def handler(call):
        call.answer()
        session = box["session"] = BotSession(
            call, dialogue, services, BotOptions(vad=vad or VadConfig(), no_speech_seconds=no_speech),
            bot_name="scripted")
        box["exit"] = session.run()
        call.hangup()

    rig = Rig(tmp_path, handler=handler, tts={"edge_enabled": False})
    log = SwitchLog(rig.switch)
    try:
        ch = rig.call()
        with gevent.Timeout(timeout):
            act(ch, log)
            ch.wait_hangup()
            while not rig.cdrs():
                gevent.sleep(0.02)
        return box["session"], box.get("exit"), ch, rig.cdrs()[0], log
    finally:
        rig.stop()


def wait_playback(ch, log, count=1):
    while len(log.named("PLAYBACK_START", ch.uuid)) < count:
        gevent.sleep(0.005)
    return log.named("PLAYBACK_START", ch.uuid)[count - 1][0]


def statuses(log, ch):
    return [h.get("Playback-Status") for _, h in log.named("PLAYBACK_STOP", ch.uuid)]


def test_speech_during_a_prompt_stops_it_fast_and_the_bot_hands_off(tmp_path, audio_dir):
    word = botaudio.spoken("상담원", audio_dir)
    wav = caller_audio(tmp_path, "agent", botaudio.silence(200) + word + botaudio.silence(1500))
    onset_ms = botaudio.speech_bounds(word)[0] + 200
    heard = {}

    def act(ch, log):
        wait_playback(ch, log)
        gevent.sleep(0.3)
        heard["spoke_at"] = time.monotonic()
        ch.speak(wav)

    dialogue = ScriptedDialogue(GREETING)
    session, exit_, ch, cdr, log = bot_call(tmp_path, dialogue, botaudio.FakeBackend("상담원", "상담원"), act)

    assert exit_ == "human"
    assert ("text", "상담원", 0.9) in dialogue.calls
    # the greeting was paused at once (no application ends: no hole in the tap), and ended
    # (plain uuid_break: 'break') only once the caller's utterance was over
    [barge] = session.speaker.barge_ins
    assert barge.paused_at is not None and barge.stopped_at is not None
    assert statuses(log, ch)[0] == "break"
    sent = [line for _, line in log.api if line.startswith(("uuid_fileman", "uuid_break"))]
    assert sent == [f"uuid_fileman {ch.uuid} pause", f"uuid_break {ch.uuid}"]   # never `... all`
    word_end = heard["spoke_at"] + (200 + len(word) / 32.0) / 1000.0
    assert log.named("PLAYBACK_STOP", ch.uuid)[0][0] > word_end
    # reaction from speech onset to the pause: as the engine measured it (first speech frame read
    # from the tap) and from the independent truth (when the caller's audio started + where the
    # word starts in it); the pause is answered by the switch, which sends no event for it
    true_onset = heard["spoke_at"] + onset_ms / 1000.0
    pause_at = next(t for t, line in log.api if line.startswith("uuid_fileman"))
    true_reaction_ms = (pause_at - true_onset) * 1000
    print(f"barge-in reaction: engine {barge.reaction_ms:.0f} ms, true {true_reaction_ms:.0f} ms")
    assert 0 < barge.reaction_ms < 300
    assert true_reaction_ms < 300
    # hand-off: the agent's screen variables on the caller's channel
    assert ch.variables["hotline_bot_intent"] == "human"
    assert json.loads(ch.variables["hotline_bot_slots"]) == {"id_number": "110101199003074514",
                                                             "topic": "养老保险"}
    assert ch.variables["hotline_bot_summary"] == "상담원"
    # the CDR carries the whole transcript, who said what with confidence
    bot = cdr["extra"]["bot"]
    assert bot["exit"] == "human" and bot["intent"] == "human"
    assert bot["slots"]["topic"] == "养老保险"
    who_said = [(e["who"], e["text"]) for e in cdr["bot_transcript"]]
    assert ("caller", "상담원") in who_said and who_said[0] == ("bot", GREETING[0])
    assert [e["confidence"] for e in cdr["bot_transcript"] if e["who"] == "caller"] == [0.9]
    assert bot["barge_ins"] and bot["barge_ins"][0] < 300
    # the tap was stopped and its file removed
    assert not list((tmp_path / "live").glob("*.r16"))


def test_a_noise_burst_does_not_stop_the_prompt_and_silence_ends_with_on_silence(tmp_path, audio_dir):
    burst = botaudio.noise_burst(audio_dir, 80)
    wav = caller_audio(tmp_path, "burst", botaudio.silence(100) + burst + botaudio.silence(500))

    def act(ch, log):
        wait_playback(ch, log)
        gevent.sleep(0.3)
        ch.speak(wav)

    dialogue = ScriptedDialogue(GREETING[:2])
    session, exit_, ch, cdr, log = bot_call(tmp_path, dialogue, botaudio.FakeBackend("네", "네"), act)
    assert session.speaker.barge_ins == []
    played = statuses(log, ch)
    assert played[:2] == ["done", "done"]                 # both greeting sentences played out
    assert dialogue.calls == [("start",), ("silence",)]   # the burst was not an answer
    assert exit_ == "done"
    assert cdr["extra"]["bot"]["intent"] == "no_speech"


def test_a_prompt_that_cannot_be_interrupted_plays_through_and_speech_over_it_is_ignored(tmp_path, audio_dir):
    word = botaudio.spoken("네", audio_dir)
    wav = caller_audio(tmp_path, "yes", botaudio.silence(100) + word + botaudio.silence(100))

    def act(ch, log):
        wait_playback(ch, log)
        gevent.sleep(0.2)
        ch.speak(wav)

    dialogue = ScriptedDialogue(GREETING[:2], interruptible=False)
    session, exit_, ch, cdr, log = bot_call(tmp_path, dialogue, botaudio.FakeBackend("네", "네"), act)
    assert statuses(log, ch)[:2] == ["done", "done"]
    assert session.speaker.barge_ins == []
    assert dialogue.calls == [("start",), ("silence",)]


def test_a_false_interruption_resumes_the_prompt_where_it_broke_in(tmp_path, audio_dir):
    # speech-like sound (a loud tone, longer than the minimum) in which nothing is recognised
    wav = caller_audio(tmp_path, "hum", botaudio.silence(100) + botaudio.tone(400, -20)
                       + botaudio.silence(1000))

    def act(ch, log):
        wait_playback(ch, log, 2)              # during the second sentence
        gevent.sleep(0.2)
        ch.speak(wav)

    dialogue = ScriptedDialogue(GREETING)
    session, exit_, ch, cdr, log = bot_call(tmp_path, dialogue, botaudio.FakeBackend("", ""), act)
    assert len(session.speaker.barge_ins) == 1
    assert session.speaker.barge_ins[0].sentence == 1
    files = [h["Playback-File-Path"] for _, h in log.named("PLAYBACK_START", ch.uuid)]
    stops = statuses(log, ch)
    # sentence 1 paused, then un-paused where it stopped (the same playback plays on to its end),
    # then sentence 2: nothing is said twice
    assert stops[:3] == ["done", "done", "done"]
    assert len(set(files[:3])) == 3
    pauses = [line for _, line in log.api if line.startswith("uuid_fileman")]
    assert pauses == [f"uuid_fileman {ch.uuid} pause"] * 2
    assert not [line for _, line in log.api if line.startswith("uuid_break")]
    assert session.resumes == 1
    assert dialogue.calls == [("start",), ("silence",)]


def test_a_key_during_the_prompt_goes_to_the_dialogue(tmp_path):
    def act(ch, log):
        wait_playback(ch, log)
        gevent.sleep(0.1)
        ch.press("3")

    dialogue = ScriptedDialogue(GREETING)
    session, exit_, ch, cdr, log = bot_call(tmp_path, dialogue, botaudio.FakeBackend("네", "네"), act)
    assert statuses(log, ch)[0] == "break"
    assert dialogue.calls == [("start",), ("dtmf", "3")]
    assert exit_ == "done"


def test_a_caller_who_hangs_up_mid_prompt_ends_the_session_and_the_tap(tmp_path):
    def act(ch, log):
        wait_playback(ch, log)
        gevent.sleep(0.2)
        ch.hangup()

    dialogue = ScriptedDialogue(GREETING)
    session, exit_, ch, cdr, log = bot_call(tmp_path, dialogue, botaudio.FakeBackend(), act)
    assert exit_ is None                                  # run() raised CallGone to the handler
    assert cdr["extra"]["bot"]["exit"] == "gone"
    assert [e["who"] for e in cdr["bot_transcript"]] == ["bot"] * len(GREETING)
    assert session.listener.stopped and not list((tmp_path / "live").glob("*.r16"))


def test_with_a_minimum_of_recognised_characters_sound_without_words_does_not_interrupt(tmp_path):
    # the same loud hum that barges in with the VAD alone; here barge-in also needs 1 character
    wav = caller_audio(tmp_path, "hum", botaudio.silence(100) + botaudio.tone(400, -20)
                       + botaudio.silence(300))

    def act(ch, log):
        wait_playback(ch, log)
        gevent.sleep(0.2)
        ch.speak(wav)

    dialogue = ScriptedDialogue(GREETING[:2])
    session, exit_, ch, cdr, log = bot_call(tmp_path, dialogue, botaudio.FakeBackend("", ""), act,
                                            vad=VadConfig(min_barge_in_chars=1))
    assert session.speaker.barge_ins == []
    assert statuses(log, ch)[:2] == ["done", "done"]
    assert dialogue.calls == [("start",), ("silence",)]


def test_a_sentence_tts_cannot_say_is_skipped_not_the_whole_answer(tmp_path):
    dialogue = ScriptedDialogue(["안녕하세요。", "请说出您的问题。"])     # Hangul: the Mandarin voice has nothing to say
    session, exit_, ch, cdr, log = bot_call(tmp_path, dialogue, botaudio.FakeBackend(), lambda ch, log: None)
    starts = log.named("PLAYBACK_START", ch.uuid)
    assert len(starts) >= 2                     # the second greeting sentence, then the silence turn
    assert exit_ == "done" and dialogue.calls == [("start",), ("silence",)]


def test_words_the_recogniser_cannot_know_end_the_session_with_error_before_the_caller_speaks(tmp_path):
    from engine.bot.asr import AsrError

    class NoHotWords(botaudio.FakeBackend):
        def check(self, grammar=None, hot_words=None):
            raise AsrError("not in the model's vocabulary (Vosk would drop them silently): 社保")

    dialogue = ScriptedDialogue(GREETING[:1])
    session, exit_, ch, cdr, log = bot_call(tmp_path, dialogue, NoHotWords(), lambda ch, log: None)
    assert exit_ == "error"
    assert cdr["extra"]["bot"]["exit"] == "error"
    assert log.named("PLAYBACK_START", ch.uuid) == []      # the caller did not hear a bot that cannot listen
    assert not list((tmp_path / "live").glob("*.r16"))
