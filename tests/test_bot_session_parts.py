"""Pieces of the bot's call side without a switch: options from a bot file, the agent-screen JSON,
voices for bots that do not speak Mandarin."""
import json

import pytest

from engine.bot.session import options_from_bot
from engine.bot.vad import VadConfig
from engine.esl import commands
from engine.media.prompts import PromptRenderer, TTSError, check_wav
from engine.settings import TtsSettings
from tests import botaudio


def test_options_come_from_the_bot_files_asr_section():
    class Asr:
        hot_words = ("社保卡",)
        no_speech_seconds = 4.5
        vad = VadConfig(min_speech_ms=200)

    class Bot:
        asr = Asr()
        language = "ko"
    opts = options_from_bot(Bot(), max_seconds=60, no_speech_seconds=None)
    assert opts.hot_words == ["社保卡"] and opts.no_speech_seconds == 4.5
    assert opts.vad.min_speech_ms == 200 and opts.language == "ko" and opts.max_seconds == 60
    # a mapping works too, and a wrong vad key is an error, not ignored
    assert options_from_bot({"asr": {"vad": {"end_silence_ms": 400}}}).vad.end_silence_ms == 400
    with pytest.raises(ValueError, match="end_silence"):
        options_from_bot({"asr": {"vad": {"end_silence": 400}}})
    assert options_from_bot(None).no_speech_seconds == 6.0


def test_slots_json_for_the_agents_screen_is_inert_and_parses():
    slots = {"id_number": "110101199003074514", "note": "a ${system(rm)} b\nInjected: 1", "n": [1, None]}
    cmd = commands.uuid_setvar_json("abc-123", "hotline_bot_slots", slots)
    assert cmd.startswith("uuid_setvar abc-123 hotline_bot_slots {")
    assert "\n" not in cmd and "$" not in cmd and "\\" not in cmd
    value = json.loads(cmd.split(" ", 3)[3])
    assert value["id_number"] == "110101199003074514" and value["n"] == [1, None]
    assert "system" in value["note"] and "{" not in value["note"]
    with pytest.raises(commands.CommandError, match="too long"):
        commands.json_text({"x": ["一二三四五六七八九十" * 20] * 20})


@pytest.mark.skipif(not botaudio.have_tools(), reason="espeak-ng and sox needed")
def test_a_korean_bot_is_spoken_by_a_korean_voice(tmp_path):
    renderer = PromptRenderer(TtsSettings(edge_enabled=False), tmp_path)
    with pytest.raises(TTSError, match="nothing speakable"):
        renderer.render("안녕하세요")                   # the Mandarin pinyin voice cannot read Hangul
    path = renderer.render("안녕하세요", espeak_voice="ko")
    assert check_wav(path) > 0.3
    with pytest.raises(TTSError, match="invalid espeak-ng voice"):
        renderer.render("你好", espeak_voice="--stdout")


def test_stale_tap_files_are_removed_at_start_up(tmp_path):
    from engine.bot.services import BotServices
    from engine.settings import default_settings
    live = tmp_path / "var" / "tmp" / "live"
    live.mkdir(parents=True)
    (live / "dead-call.r16").write_bytes(b"\0" * 640)
    (live / "keep.txt").write_text("not a tap")
    settings = default_settings(base_dir=tmp_path, paths={"var_dir": str(tmp_path / "var")})
    services = BotServices.from_settings(settings, renderer=None)
    assert services.backend is None                      # asr.vosk_model unset: speech input off
    assert services.tap_dir == live and sorted(p.name for p in live.iterdir()) == ["keep.txt"]
