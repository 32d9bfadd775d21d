"""Agents and queues: `etc/agents.yaml` and `etc/queues.yaml`, checked like the settings file.

Every problem stops loading with `file:line:col: path: problem`, so a reload with a typo keeps the
running configuration (the ACD swaps a whole new `AcdConfig` or nothing).
"""
from __future__ import annotations

import dataclasses
import re
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from engine.acd.exits import TEXTS as EXIT_TEXTS
from engine.settings import SchemaBuilder, SettingsError, load_yaml, setting

BREAK_REASONS = ("rest", "meal", "meeting", "training")
STRATEGIES = ("longest-idle", "round-robin", "fewest-calls", "least-talk-time", "skill-level",
              "ring-all", "random")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
EXTENSION = re.compile(r"^[0-9]{2,8}$")


class AcdConfigError(SettingsError):
    pass


@dataclass(frozen=True, kw_only=True)
class Agent:
    id: str = setting(doc="stable agent id (work number)")
    name: str = setting("")
    extension: str = setting(doc="SIP extension of the desk phone")
    skills: Dict[str, int] = setting(None, doc="skill -> level 1-10")
    groups: Tuple[str, ...] = setting(())
    role: str = setting("agent", choices=("agent", "supervisor"))
    max_no_answer: int = setting(3, min=1, max=20, doc="missed offers in a row before not-ready")
    wrapup_seconds: Optional[float] = setting(None, min=0, max=3600, doc="overrides the queue's")
    # the phone's SIP password, for the switch's directory (engine/fsconf/render.py renders it)
    password_env: Optional[str] = setting(None, doc="environment variable holding the SIP password")
    a1_hash: Optional[str] = setting(None, doc="or md5(ext:domain:password), 32 hex digits")


@dataclass(frozen=True, kw_only=True)
class Overflow:
    after_seconds: float = setting(300.0, min=1, max=7200, doc="max wait")
    action: str = setting("voicemail", choices=("queue", "voicemail", "callback", "hangup", "branch"))
    target: str = setting("", doc="queue name for action queue")


@dataclass(frozen=True, kw_only=True)
class Announce:
    every_seconds: float = setting(45.0, min=0.5, max=600, doc="seconds between announcements (the first comes after at most 3 s)")
    position: bool = setting(True)
    expected_wait: bool = setting(True)
    message: str = setting("", doc="periodic message text (TTS) or audio file, played after the position")


@dataclass(frozen=True, kw_only=True)
class ExitPrompts:
    """What a caller hears when the queue lets them go without an agent (text spoken by TTS)."""
    voicemail: str = setting(EXIT_TEXTS["voicemail"], doc="before the voicemail beep")
    callback: str = setting(EXIT_TEXTS["callback"], doc="the callback offer; {number} is the caller's "
                            "number read digit by digit")
    callback_ok: str = setting(EXIT_TEXTS["callback_ok"], doc="after the caller accepted a callback")
    goodbye: str = setting(EXIT_TEXTS["goodbye"], doc="nobody could take the call")
    full: str = setting(EXIT_TEXTS["full"], doc="the queue is at max_length")


EXIT_PROMPT_MAX = 500       # characters: a prompt longer than this is a pasted document


@dataclass(frozen=True, kw_only=True)
class Queue:
    name: str = setting()
    skills: Dict[str, int] = setting(None, doc="required skill -> minimum level")
    strategy: str = setting("longest-idle", choices=STRATEGIES)
    ring_timeout: float = setting(15.0, min=1, max=120)
    retry_delay: float = setting(1.0, min=0, max=60, doc="pause before offering the caller to the next agent")
    wrapup_seconds: float = setting(30.0, min=0, max=3600)
    max_length: int = setting(100, min=1, max=10000)
    no_agents: str = setting("wait", choices=("wait", "voicemail", "callback", "hangup", "branch"),
                             doc="when no agent of the queue is logged in")
    overflow: Overflow = setting(Overflow())
    announce: Announce = setting(Announce())
    music: str = setting("local_stream://moh", doc="music on hold source")
    exit_key: str = setting("", doc="a key that leaves the queue (to exit_action)")
    exit_action: str = setting("voicemail", choices=("voicemail", "callback", "branch"))
    vip_numbers: Tuple[str, ...] = setting(())
    vip_priority: int = setting(10, min=1, max=100)
    repeat_caller_hours: float = setting(24.0, min=0, max=720,
                                         doc="a caller back within this time goes to the last agent first")
    service_level_seconds: float = setting(20.0, min=1, max=600)
    caller_id: str = setting("name", choices=("name", "header", "both"),
                             doc="how the agent's phone shows the IVR choice")
    record: str = setting("all", choices=("all", "none", "on_demand"))
    survey: bool = setting(True)
    exit_prompts: ExitPrompts = setting(ExitPrompts())


@dataclass(frozen=True, kw_only=True)
class AgentsFile:
    break_reasons: Tuple[str, ...] = setting(BREAK_REASONS)
    agents: Tuple[Agent, ...] = setting(())


@dataclass(frozen=True, kw_only=True)
class QueuesFile:
    queues: Tuple[Queue, ...] = setting(())


@dataclass(frozen=True, kw_only=True)
class AcdConfig:
    agents: Dict[str, Agent]
    queues: Dict[str, Queue]
    break_reasons: Tuple[str, ...]

    def by_extension(self, extension):
        for agent in self.agents.values():
            if agent.extension == extension:
                return agent
        return None

    def qualified(self, agent, queue):
        """An agent serves a queue when every required skill is at or above its minimum."""
        return all(agent.skills.get(skill, 0) >= level for skill, level in queue.skills.items())


def _build(path, cls, error):
    """(loaded dataclass, the builder: its fail() points later checks at file:line too)."""
    root, marks = load_yaml(Path(path), error)
    builder = SchemaBuilder(marks, path, Path(path).resolve().parent, error=error)
    return builder.build(cls, root, ""), builder


def _check_levels(builder, where, skills, what):
    for skill, level in (skills or {}).items():
        if not 1 <= level <= 10:
            builder.fail(f"{where}.skills.{skill}", f"{what} must be 1-10; got {level}")


def load_acd(agents_path, queues_path) -> AcdConfig:
    agents_file, ab = _build(agents_path, AgentsFile, AcdConfigError)
    queues_file, qb = _build(queues_path, QueuesFile, AcdConfigError)
    agents, extensions = {}, {}
    for i, a in enumerate(agents_file.agents):
        where = f"agents[{i}]"
        if not NAME.match(a.id):
            ab.fail(f"{where}.id", f"{a.id!r}: letters, digits, _ . - only (1-64)")
        if a.id in agents:
            ab.fail(f"{where}.id", f"agent {a.id} is defined twice")
        if not EXTENSION.match(a.extension):
            ab.fail(f"{where}.extension", f"{a.extension!r}: 2-8 digits")
        if a.extension in extensions:
            ab.fail(f"{where}.extension", f"extension {a.extension} already belongs to agent {extensions[a.extension]}")
        _check_levels(ab, where, a.skills, "level")
        agents[a.id] = _with_skills(a)
        extensions[a.extension] = a.id
    queues = {}
    for i, q in enumerate(queues_file.queues):
        where = f"queues[{i}]"
        if not NAME.match(q.name):
            qb.fail(f"{where}.name", f"{q.name!r}: letters, digits, _ . - only (1-64)")
        if q.name in queues:
            qb.fail(f"{where}.name", f"queue {q.name} is defined twice")
        _check_levels(qb, where, q.skills, "minimum level")
        if q.exit_key and (len(q.exit_key) != 1 or q.exit_key not in "0123456789*#"):
            qb.fail(f"{where}.exit_key", f"one key 0-9 * #; got {q.exit_key!r}")
        _check_exit_prompts(qb, where, q.exit_prompts)
        queues[q.name] = _with_skills(q)
    for i, q in enumerate(queues_file.queues):
        if q.overflow.action == "queue":
            if q.overflow.target not in queues:
                qb.fail(f"queues[{i}].overflow.target", f"no queue named {q.overflow.target!r}")
            if q.overflow.target == q.name:
                qb.fail(f"queues[{i}].overflow.target", "a queue cannot overflow into itself")
    return AcdConfig(agents=agents, queues=queues, break_reasons=agents_file.break_reasons)


def _check_exit_prompts(builder, where, prompts):
    import string
    for field in dataclasses.fields(ExitPrompts):
        text = getattr(prompts, field.name)
        at = f"{where}.exit_prompts.{field.name}"
        if not text.strip():
            builder.fail(at, "empty: the caller would hear nothing (leave it out for the default)")
        if len(text) > EXIT_PROMPT_MAX:
            builder.fail(at, f"{len(text)} characters; at most {EXIT_PROMPT_MAX}")
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
        except ValueError as exc:
            builder.fail(at, f"{exc} (write a brace as {{{{ or }}}})")
        allowed = {"number"} if field.name == "callback" else set()
        if names - allowed:
            builder.fail(at, f"unknown placeholder(s) {', '.join(sorted(names - allowed))}; "
                         + ("only {number}" if allowed else "none here (write a brace as {{ or }})"))
        if field.name == "callback" and "number" not in names:
            builder.fail(at, "must say the number to call back: put {number} in it")


def _with_skills(obj):
    return dataclasses.replace(obj, skills=obj.skills if obj.skills is not None else types.MappingProxyType({}))
