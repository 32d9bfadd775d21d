"""The bot's `human` exit on the strict simulator with an ACD: the caller asks for a person over the
bot's prompt (a barge-in: the prompt is paused, then ended), hears the hand-off sentence, joins the
queue while an agent is free, and the agent's phone rings and answers every time; the CDR holds the
agent and the bot's transcript. On a real switch this reached agent 1001 in 1 call of 6 (a break
that flushed the queue's execute, and the barge-in shares that exposure)."""
import gevent
import pytest

import engine.bot.services as bot_services
from tests import botaudio
from tests.acdfix import AcdRig, agent, queue, wait_for
from tests.test_bot_session_node import AUDIO_CACHE, FLOW, PROMPT_CACHE, scripted, write_flows  # noqa: F401

pytestmark = pytest.mark.skipif(not botaudio.have_tools(), reason="espeak-ng and sox needed")

# the `human` branch has no child: the caller goes to an agent as the IVR's 'agent' outcome does
HAND_OFF_FLOW = FLOW.replace("children: {human: agent, done: bye, error: bye}",
                             "children: {done: bye, error: bye}").replace(
    "  agent:\n    type: hangup\n    prompt: to_agent\n", "")


@pytest.fixture
def rig(tmp_path, redis_server, redis_prefix, monkeypatch, scripted):    # noqa: F811
    monkeypatch.setattr(bot_services, "make_backend",
                        lambda settings: botaudio.FakeBackend("상담원", "상담원"))
    r = AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001")],
               [queue("general", ring_timeout=5)], flows_dir=write_flows(tmp_path, HAND_OFF_FLOW),
               paths_prompt_cache=PROMPT_CACHE, tts={"edge_enabled": False})
    r.scripted = scripted
    yield r
    r.stop()


def test_a_bot_hand_off_with_a_free_agent_always_rings_the_agent(rig, tmp_path):
    AUDIO_CACHE.mkdir(exist_ok=True)
    word = botaudio.spoken("상담원", str(AUDIO_CACHE))
    wav = botaudio.write_wav(tmp_path / "agent.wav", botaudio.silence(100) + word + botaudio.silence(900))
    rig.login("1001", hangup_after=0.3)
    # the caller speaks at different moments of the greeting: inside its playback and around the
    # end of it, where the next execute is on its way
    delays = (0.1, 0.5, 1.0, 1.6, 2.2)
    for n, delay in enumerate(delays, 1):
        assert rig.wait_state("1001", "available", timeout=5), rig.state("1001")
        ch = rig.call(f"1380013800{n}")
        with gevent.Timeout(25):
            while "PLAYBACK_START" not in ch.events:
                gevent.sleep(0.01)
            gevent.sleep(delay)
            ch.speak(wav)
            assert wait_for(lambda: rig.phones["1001"].rings == n, timeout=15), \
                f"call {n} (speech {delay} s into the greeting): the agent never rang"
            ch.wait_hangup()
        assert wait_for(lambda: len(rig.cdrs()) == n, timeout=10)
    cdrs = rig.cdrs()
    assert rig.phones["1001"].answered == len(delays)
    for cdr in cdrs:
        assert cdr["agent"] == "1001" and cdr["queue"] == "general"
        assert cdr["extra"]["bot"]["exit"] == "human"
        assert [e["text"] for e in cdr["bot_transcript"] if e["who"] == "caller"] == ["상담원"]
        assert cdr["bot_transcript"][0]["who"] == "bot"
