"""The `bot` IVR node: in a flow over the simulator (daemon, real sockets), its branches, the
hand-off to the flow's child with the agent's variables, the CDR's transcript; the loader's checks."""
import tempfile
import time
from pathlib import Path

import gevent
import pytest

import engine.bot.services as bot_services
from engine.ivr.loader import load_flows
from tests import botaudio
from tests.botfakes import ScriptedDialogue
from tests.enginefix import Rig

PROMPT_CACHE = Path(tempfile.gettempdir()) / "hotline-test-prompts"
AUDIO_CACHE = Path(tempfile.gettempdir()) / "hotline-test-botaudio"
pytestmark = pytest.mark.skipif(not botaudio.have_tools(), reason="espeak-ng and sox needed")

FLOW = """\
name: bots
entry: {"12345": ask}
prompts:
  to_agent: "正在为您转接人工。"
  bye: "感谢来电，再见。"
nodes:
  ask:
    type: bot
    bot: bots/scripted.yaml
    no_speech_seconds: 0.6
    children: {human: agent, done: bye, error: bye}
  agent:
    type: hangup
    prompt: to_agent
  bye:
    type: hangup
    prompt: bye
"""


def write_flows(tmp_path, flow=FLOW):
    flows = tmp_path / "flows"
    (flows / "bots").mkdir(parents=True)
    (flows / "bots" / "scripted.yaml").write_text("name: scripted\n")   # read by the fake loader
    (flows / "bots.yaml").write_text(flow)
    return flows


@pytest.fixture
def scripted(monkeypatch):
    """The node's bot file loader, dialogue and recogniser replaced by the scripted fakes."""
    made = []

    def dialogue(bot, misses_dir=None, call=None):
        d = ScriptedDialogue(["您好，请问需要什么帮助？"])
        made.append(d)
        return d
    monkeypatch.setattr(bot_services, "load_bot_file", lambda path: {"name": Path(path).stem})
    monkeypatch.setattr(bot_services, "new_dialogue", dialogue)
    return made


def run(tmp_path, flows, act, timeout=20, **rig_kw):
    rig = Rig(tmp_path, flows_dir=flows, paths_prompt_cache=PROMPT_CACHE, tts={"edge_enabled": False},
              **rig_kw)
    try:
        ch = rig.call()
        with gevent.Timeout(timeout):
            act(ch)
            ch.wait_hangup()
            while not rig.cdrs():
                gevent.sleep(0.02)
        return ch, rig.cdrs()[0]
    finally:
        rig.stop()


def steps(cdr):
    return [(s["node"], s["branch"]) for s in cdr["ivr_path"]]


def test_the_caller_asks_for_a_person_and_the_flow_takes_the_human_child(tmp_path, scripted, monkeypatch):
    monkeypatch.setattr(bot_services, "make_backend", lambda settings: botaudio.FakeBackend("상담원", "상담원"))
    AUDIO_CACHE.mkdir(exist_ok=True)
    word = botaudio.spoken("상담원", str(AUDIO_CACHE))
    wav = botaudio.write_wav(tmp_path / "agent.wav", botaudio.silence(100) + word + botaudio.silence(1000))

    def act(ch):
        while "PLAYBACK_START" not in ch.events:
            gevent.sleep(0.01)
        ch.speak(wav)

    ch, cdr = run(tmp_path, write_flows(tmp_path), act)
    assert steps(cdr) == [("bots:ask", "human"), ("bots:agent", None)]
    assert ch.variables["hotline_bot_intent"] == "human"
    assert "养老保险" in ch.variables["hotline_bot_slots"]
    bot = cdr["extra"]["bot"]
    assert bot["bot"] == "scripted" and bot["exit"] == "human"
    assert [e["text"] for e in cdr["bot_transcript"] if e["who"] == "caller"] == ["상담원"]
    assert scripted[0].calls[-1] == ("text", "상담원", 0.9)


def test_silence_ends_in_done_and_the_flow_says_goodbye(tmp_path, scripted, monkeypatch):
    monkeypatch.setattr(bot_services, "make_backend", lambda settings: botaudio.FakeBackend())
    ch, cdr = run(tmp_path, write_flows(tmp_path), lambda ch: None)
    assert steps(cdr) == [("bots:ask", "done"), ("bots:bye", None)]
    assert scripted[0].calls == [("start",), ("silence",)]
    assert cdr["extra"]["bot"]["intent"] == "no_speech"
    assert "hotline_bot_intent" not in ch.variables        # no hand-off, no agent variables


def test_without_a_recogniser_the_node_takes_error(tmp_path, scripted):
    # settings.asr.vosk_model is unset in the rig: speech input is off
    started = time.monotonic()
    ch, cdr = run(tmp_path, write_flows(tmp_path), lambda ch: None)
    assert steps(cdr) == [("bots:ask", "error"), ("bots:bye", None)]
    assert scripted == []                                  # no dialogue was started
    assert time.monotonic() - started < 10


def test_human_without_a_child_hands_the_caller_to_an_agent(tmp_path, scripted, monkeypatch):
    monkeypatch.setattr(bot_services, "make_backend", lambda settings: botaudio.FakeBackend("상담원", "상담원"))
    flow = FLOW.replace("children: {human: agent, done: bye, error: bye}", "children: {done: bye}")
    flow = flow.replace("  agent:\n    type: hangup\n    prompt: to_agent\n", "")
    monkeypatch.setattr(ScriptedDialogue, "on_silence", lambda self: ScriptedDialogue.on_text(self, "상담원", 1.0))
    ch, cdr = run(tmp_path, write_flows(tmp_path, flow), lambda ch: None)
    assert steps(cdr)[0] == ("bots:ask", None)
    assert cdr["extra"]["ivr_outcome"] == "agent"
    assert "wanted_agent" in cdr["tags"]                   # no ACD in this rig: the apology path


def test_the_loader_checks_the_bot_file(tmp_path, scripted):
    flows = write_flows(tmp_path, FLOW.replace("bots/scripted.yaml", "bots/missing.yaml"))
    _, problems = load_flows(flows, strict=False)
    assert len(problems) == 1
    assert "bots.yaml:9:5: node 'ask': bot file bots/missing.yaml not found" in problems[0]


def test_the_loader_reports_a_bot_file_that_does_not_load(tmp_path, monkeypatch):
    def broken(path):
        raise ValueError(f"{path}:3:1: intents: must be a mapping")
    monkeypatch.setattr(bot_services, "load_bot_file", broken)
    _, problems = load_flows(write_flows(tmp_path), strict=False)
    assert len(problems) == 1 and "intents: must be a mapping" in problems[0]
    assert "node 'ask': bot file bots/scripted.yaml" in problems[0]


def test_the_shipped_city_hotline_bot_hands_off_on_zhuan_rengong(tmp_path, monkeypatch):
    """The real dialogue (ivr_flows/bots/city_hotline.yaml) behind the node; the recogniser is the
    fake (no Mandarin model here) that hears 转人工 in whatever the caller says."""
    import shutil
    repo = Path(__file__).resolve().parent.parent
    monkeypatch.setattr(bot_services, "make_backend", lambda settings: botaudio.FakeBackend("转人工", "转人工"))
    flows = write_flows(tmp_path, FLOW.replace("bots/scripted.yaml", "bots/city_hotline.yaml"))
    shutil.copy(repo / "ivr_flows" / "bots" / "city_hotline.yaml", flows / "bots" / "city_hotline.yaml")
    AUDIO_CACHE.mkdir(exist_ok=True)
    word = botaudio.spoken("상담원", str(AUDIO_CACHE))       # any speech: the fake decides the words
    wav = botaudio.write_wav(tmp_path / "speech.wav", botaudio.silence(100) + word + botaudio.silence(1000))

    def act(ch):
        while "PLAYBACK_START" not in ch.events:
            gevent.sleep(0.01)
        gevent.sleep(0.3)
        ch.speak(wav)

    ch, cdr = run(tmp_path, flows, act, timeout=30)
    assert steps(cdr) == [("bots:ask", "human"), ("bots:agent", None)]
    bot = cdr["extra"]["bot"]
    assert bot["bot"] == "city_hotline" and bot["exit"] == "human"
    assert len(bot["barge_ins"]) == 1                      # the greeting was interrupted
    assert ("caller", "转人工") in [(e["who"], e["text"]) for e in cdr["bot_transcript"]]
    assert ch.variables["hotline_bot_intent"] == bot["intent"]
    assert ch.variables["hotline_bot_summary"] == "转人工"


def test_a_bot_only_call_ends_with_the_survey_when_the_node_asks(tmp_path, scripted, monkeypatch):
    monkeypatch.setattr(bot_services, "make_backend", lambda settings: botaudio.FakeBackend())
    flow = FLOW.replace("    no_speech_seconds: 0.6\n", "    no_speech_seconds: 0.6\n    survey: true\n")
    flow = flow.replace('  bye: "感谢来电，再见。"\n', '  bye: "感谢来电，再见。"\n  survey: "请评价：满意请按1。"\n')

    def act(ch):
        while ch.events.count("PLAYBACK_START") < 3:          # greeting, goodbye, then the survey
            gevent.sleep(0.01)
        ch.press("1")

    ch, cdr = run(tmp_path, write_flows(tmp_path, flow), act)
    assert steps(cdr)[0] == ("bots:ask", "done")
    assert cdr["satisfaction"] == 1
