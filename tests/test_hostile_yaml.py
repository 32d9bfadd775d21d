"""Hostile YAML in every file we load: aliases ("billion laughs"), deep nesting, size.

A 2 KB file of nested aliases froze the engine past 1.3 GiB (issue 17, section 4): the tree it
composes is tiny, but every walk over it (plain copies, schema checks, position marks) expands
it. Each loader must refuse such a file with `file:line:col: problem`, never expand or crash.
"""
import shutil
from pathlib import Path

import pytest

from engine.acd.config import AcdConfigError, load_acd
from engine.bot.botfile import check_bot
from engine.ivr.loader import load_flows
from engine.settings import SettingsError, load_settings
from engine.tickets.config import TicketConfigError, load_config

REPO = Path(__file__).resolve().parent.parent


def laughs(levels, width=9):
    """`levels` nested aliases of `width` each: width**levels strings once expanded."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


BOMB = laughs(9)          # 9**9 = 387 million strings: ~1.2 KB of text
SMALL_BOMB = laughs(2)    # 81 strings: loads in no time when aliases are allowed
DEEP = "x: " + "[" * 20_000 + "]" * 20_000 + "\n"


def test_bomb_is_small():
    assert len(BOMB) < 2048


@pytest.mark.parametrize("text, said", [(SMALL_BOMB, "alias *l0 refused"), (BOMB, "alias *l0 refused"),
                                        (DEEP, "nested deeper than")])
def test_flow_file(tmp_path, text, said):
    path = tmp_path / "flow.yaml"
    path.write_text("name: t\nentry: {'100': m}\nnodes: {m: {type: hangup}}\n" + text)
    _, problems = load_flows([path], strict=False)
    assert any(p.startswith(f"{path}:") and said in p for p in problems), problems


@pytest.mark.parametrize("text, said", [(SMALL_BOMB, "alias *l0 refused"), (DEEP, "nested deeper than")])
def test_bot_file(tmp_path, text, said):
    path = tmp_path / "bot.yaml"
    path.write_text((REPO / "ivr_flows/bots/city_hotline.yaml").read_text() + text)
    bot, problems = check_bot(path)
    assert bot is None and any(said in p for p in problems), problems


@pytest.mark.parametrize("text, said", [(SMALL_BOMB, "alias *l0 refused"), (DEEP, "nested deeper than")])
def test_settings_file(tmp_path, text, said):
    path = tmp_path / "hotline.yaml"
    path.write_text((REPO / "etc/hotline.yaml").read_text() + text)
    with pytest.raises(SettingsError) as info:
        load_settings(path, env={"HOTLINE_ESL_PASSWORD": "x"})
    assert str(info.value).startswith(f"{path}:") and said in str(info.value)


@pytest.mark.parametrize("which", ["agents", "queues"])
def test_agents_and_queues_files(tmp_path, which):
    for name in ("agents", "queues"):
        shutil.copy(REPO / f"etc/{name}.yaml", tmp_path / f"{name}.yaml")
    path = tmp_path / f"{which}.yaml"
    path.write_text(path.read_text() + SMALL_BOMB)
    with pytest.raises(AcdConfigError) as info:
        load_acd(tmp_path / "agents.yaml", tmp_path / "queues.yaml")
    assert str(info.value).startswith(f"{path}:") and "alias *l0 refused" in str(info.value)


def test_tickets_file(tmp_path):
    path = tmp_path / "tickets.yaml"
    path.write_text((REPO / "etc/tickets.yaml").read_text() + SMALL_BOMB)
    with pytest.raises(TicketConfigError) as info:
        load_config(path)
    assert "alias *l0 refused" in str(info.value)


def test_too_many_values_are_refused(tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text("name: t\nentry: {'100': m}\nnodes: {m: {type: hangup}}\nx: ["
                    + ",".join(["1"] * 250_000) + "]\n")
    _, problems = load_flows([path], strict=False)
    assert any("more than 200000 values" in p for p in problems), problems


def test_shipped_files_still_load():
    flows, problems = load_flows([REPO / "ivr_flows"], strict=False)
    assert problems == [] and flows.flows
    load_acd(REPO / "etc/agents.yaml", REPO / "etc/queues.yaml")
    load_config(REPO / "etc/tickets.yaml")
