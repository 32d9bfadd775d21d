"""What a caller hears when a queue lets them go without an agent: the queue's `exit_prompts`
(etc/queues.yaml), checked at load like every queue setting and taken again on reload."""
import types

import pytest

from engine.acd.config import AcdConfigError, load_acd
from engine.acd.exits import TEXTS, texts_for
from tests.acdfix import AcdRig, agent, queue, wait_for, write_yaml


def load(tmp_path, **prompts):
    write_yaml(tmp_path / "agents.yaml", {"agents": [agent("1001")]})
    write_yaml(tmp_path / "queues.yaml", {"queues": [queue("general", exit_prompts=prompts)]})
    return load_acd(tmp_path / "agents.yaml", tmp_path / "queues.yaml")


def test_the_defaults_are_todays_texts_and_a_queue_may_say_its_own(tmp_path):
    config = load(tmp_path)
    acd = types.SimpleNamespace(config=config)
    assert texts_for(acd, "general") == TEXTS
    config = load(tmp_path, goodbye="今天的服务已结束 {{A}}", callback="回拨{number}？按1确认")
    acd = types.SimpleNamespace(config=config)
    texts = texts_for(acd, "general")
    assert texts["goodbye"] == "今天的服务已结束 {A}" and texts["callback"] == "回拨{number}？按1确认"
    assert texts["voicemail"] == TEXTS["voicemail"]
    assert texts_for(acd, "gone-after-a-reload") == TEXTS          # never silence


@pytest.mark.parametrize("prompts,problem", [
    ({"goodbye": "  "}, "queues[0].exit_prompts.goodbye: empty"),
    ({"full": "x" * 501}, "queues[0].exit_prompts.full: 501 characters; at most 500"),
    ({"callback": "我们会回拨您"}, "queues[0].exit_prompts.callback: must say the number to call back"),
    ({"callback": "回拨{phone}"}, "unknown placeholder(s) phone; only {number}"),
    ({"goodbye": "再见{number}"}, "queues[0].exit_prompts.goodbye: unknown placeholder(s) number"),
    ({"voicemail": "留言{"}, "queues[0].exit_prompts.voicemail: Single '{' encountered"),
    ({"bye": "再见"}, "queues[0].exit_prompts.bye"),
])
def test_bad_exit_prompts_are_refused_with_where_and_why(tmp_path, prompts, problem):
    with pytest.raises(AcdConfigError) as e:
        load(tmp_path, **prompts)
    assert problem in str(e.value) and "queues.yaml:" in str(e.value)


def test_the_caller_hears_the_queues_text_and_a_reload_changes_it(tmp_path, redis_server, redis_prefix):
    queues = [queue("general", no_agents="hangup", exit_prompts={"goodbye": "第一版：请稍后再拨"})]
    rig = AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001")], queues)
    try:
        first = rig.call()
        assert wait_for(lambda: first.hangup_cause, timeout=15)
        assert "第一版：请稍后再拨" in rig.acd._prompts                  # rendered and played
        queues[0]["exit_prompts"]["goodbye"] = "第二版：请明天再拨"
        write_yaml(tmp_path / "queues.yaml", {"queues": queues})
        assert rig.acd.reload() == []
        second = rig.call()
        assert wait_for(lambda: second.hangup_cause, timeout=15)
        assert "第二版：请明天再拨" in rig.acd._prompts
    finally:
        rig.stop()
