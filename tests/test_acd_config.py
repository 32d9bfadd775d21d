"""agents.yaml / queues.yaml mistakes are refused with file:line:col and what is wrong."""
import pytest

from engine.acd.config import AcdConfigError, load_acd
from tests.acdfix import agent, queue, write_yaml


def load(tmp_path, agents, queues):
    write_yaml(tmp_path / "agents.yaml", {"agents": agents})
    write_yaml(tmp_path / "queues.yaml", {"queues": queues})
    return load_acd(tmp_path / "agents.yaml", tmp_path / "queues.yaml")


def test_skill_levels_outside_one_to_ten_are_refused(tmp_path):
    with pytest.raises(AcdConfigError) as e:
        load(tmp_path, [agent("1001", {"pension": 11})], [queue("general")])
    assert "agents[0].skills.pension: level must be 1-10; got 11" in str(e.value)
    with pytest.raises(AcdConfigError) as e:
        load(tmp_path, [agent("1001")], [queue("general", skills={"pension": 0})])
    assert "queues[0].skills.pension: minimum level must be 1-10; got 0" in str(e.value)
    config = load(tmp_path, [agent("1001", {"pension": 10})], [queue("general", skills={"pension": 1})])
    assert config.qualified(config.agents["1001"], config.queues["general"])
