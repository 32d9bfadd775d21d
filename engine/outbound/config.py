"""Settings of outbound calling (`outbound_calls:` in the settings file).

Not to be confused with `outbound:` (engine/settings.py OutboundSettings), which is the engine's
outbound *socket* server that the switch connects to for every call.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, Optional, Tuple


def setting(default=dataclasses.MISSING, *, doc="", reloadable=False, min=None, max=None, choices=(),
            min_items=0):
    """engine.settings.setting, repeated: engine/settings.py imports this module for its
    `outbound_calls` field, so this one cannot import engine.settings (an import cycle)."""
    meta = dict(doc=doc, reloadable=reloadable, min=min, max=max, choices=tuple(choices),
                min_items=min_items, derived=False)
    return dataclasses.field(default=default, metadata=meta)

# International, premium-rate and emergency numbers are never dialled out unasked. Emergency
# numbers (EMERGENCY) may be allowed for transfers only (dial_block.transfer_allow): a hotline that
# must hand a caller in danger to 110/119/120 can, but no campaign or callback ever rings them.
EMERGENCY = ("110", "119", "120", "122")


@dataclass(frozen=True)
class RetryRule:
    delay_minutes: float = setting(30.0, min=0, max=7 * 24 * 60, doc="wait before the next try")
    max_attempts: int = setting(3, min=0, max=100, doc="attempts of this result after which the "
                                "contact is given up (0 = never retried)")


@dataclass(frozen=True)
class WindowSettings:
    days: Tuple[str, ...] = setting(("mon", "tue", "wed", "thu", "fri"),
                                    doc="weekdays calls may be placed (a 调休 make-up day counts as a Monday)")
    hours: Tuple[str, ...] = setting(("09:00-12:00", "14:00-20:00"), doc="local spans, HH:MM-HH:MM")
    timezone: str = setting("Asia/Shanghai")
    cn_calendar: bool = setting(True, doc="statutory holidays and make-up working days from chinese-calendar")
    holidays: Tuple[str, ...] = setting((), doc="more closed dates, YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD")
    workdays: Tuple[str, ...] = setting((), doc="more make-up working days")


@dataclass(frozen=True)
class CampaignSettings:
    caller_id: Optional[str] = setting(None, doc="number shown to the called person; null = outbound_calls.caller_id")
    window: Optional[WindowSettings] = setting(None, doc="null = outbound_calls.window")


@dataclass(frozen=True)
class DialBlockSettings:
    prefixes: Tuple[str, ...] = setting(("00", "+", "1900"),
                                        doc="numbers starting so are never dialled (international, premium, "
                                            "service); /regex/ entries match the whole number")
    exact: Tuple[str, ...] = setting(EMERGENCY + ("112",),
                                     doc="numbers never dialled out (emergency)")
    transfer_allow: Tuple[str, ...] = setting((), doc="of those, numbers agents and IVR flows may transfer "
                                              "callers to (e.g. [\"110\", \"119\", \"120\"])")


@dataclass(frozen=True)
class BlacklistSettings:
    message: str = setting("您的来电暂时无法接通，感谢您的来电。",
                           doc="said to a blacklisted caller whose entry says `message` before the hang-up")
    queue: Optional[str] = setting(None, doc="queue for entries that say `queue`; null = the caller's own")
    priority: int = setting(-10, min=-1000, max=0, doc="queue priority of such callers (behind everyone)")


@dataclass(frozen=True)
class JobsSettings:
    """Callback jobs and campaigns inside the engine (engine/outbound/jobservice.py)."""
    enabled: bool = setting(True, doc="run the callback feed, the scheduler and the deadline checks here")
    callback_mode: str = setting("preview", choices=("preview", "auto"),
                                 doc="new callback jobs: offered to agents (preview) or dialled, then queued (auto)")
    callback_deadline_hours: float = setting(2.0, min=0.1, max=24 * 30, doc="a callback is due within this")
    callback_remind_minutes: float = setting(30.0, min=0, max=24 * 60, doc="reminder this long before the deadline")
    callback_priority: int = setting(10, min=0, max=1000, doc="queue priority of answered callbacks and campaign calls")
    claim_ttl_seconds: float = setting(60.0, min=0.5, max=3600, doc="a dead engine's contacts are dialled again "
                                       "after this (its Redis claim locks expire)")
    robot_channels: int = setting(30, min=1, max=2000, doc="robot campaign calls at once on this engine")
    agent_wait_seconds: float = setting(2.0, min=0, max=30, doc="an answered campaign customer waits this long "
                                        "for an agent before counting as abandoned (predictive)")
    tick_seconds: float = setting(1.0, min=0.05, max=60, doc="the scheduler's pace")


@dataclass(frozen=True)
class OutboundCallSettings:
    caller_id: Optional[str] = setting(None, doc="the hotline's number shown on outbound calls; null = first trunk DID")
    dial_prefix: str = setting("", doc="digits the trunk needs before every number (e.g. \"9\")")
    area_code: Optional[str] = setting(None, doc="local area code (\"010\"): lets local numbers without it be dialled")
    originate_timeout: int = setting(30, min=5, max=180, doc="seconds a number may ring before NO_ANSWER")
    trunk_channels: int = setting(500, min=1, doc="channels of the trunk (inbound and outbound together)")
    max_trunk_share: float = setting(0.3, min=0, max=1, doc="share of trunk_channels outbound calls may hold")
    max_agent_share: float = setting(0.5, min=0, max=1, doc="share of the logged-in agents outbound calls may hold")
    pause_inbound_wait: float = setting(30.0, min=0, max=3600, doc="no new dial while an inbound caller "
                                        "waits longer than this (seconds)")
    window: WindowSettings = setting(WindowSettings())
    campaigns: Dict[str, CampaignSettings] = setting(None, doc="per campaign: caller_id, window")
    retry: Dict[str, RetryRule] = setting(None, doc="per result: busy, no_answer, rejected, failed "
                                          "(counted attempts), our_fault (tries failed on our side)")
    dial_block: DialBlockSettings = setting(DialBlockSettings())
    blacklist: BlacklistSettings = setting(BlacklistSettings())
    lists_reload_seconds: float = setting(30.0, min=1, max=3600, doc="how often the engine re-reads the lists")
    jobs: JobsSettings = setting(JobsSettings())


DEFAULT_RETRY = {
    "busy": RetryRule(delay_minutes=10, max_attempts=3),
    "no_answer": RetryRule(delay_minutes=60, max_attempts=3),
    "rejected": RetryRule(delay_minutes=240, max_attempts=2),
    "failed": RetryRule(delay_minutes=30, max_attempts=2),
    # attempts that failed on our side (gateway down, our congestion) do not count against the
    # contact; this bounds them separately, so a trunk down all day does not spin forever
    "our_fault": RetryRule(delay_minutes=5, max_attempts=10),
}


def retry_rules(cfg: OutboundCallSettings):
    """DEFAULT_RETRY with the file's entries over it."""
    return {**DEFAULT_RETRY, **dict(cfg.retry or {})}


RETRY_RESULTS = ("busy", "no_answer", "rejected", "failed", "our_fault")


def check(cfg: OutboundCallSettings, fail):
    """Problems the schema cannot see; `fail(path, problem)` raises with file:line (engine/settings.py)."""
    import re
    import zoneinfo

    from engine.ivr.schedule import DAYS, parse_dates, parse_hours
    from engine.outbound.numbers import valid_area_code

    def window(w, path):
        for i, day in enumerate(w.days):
            if day not in DAYS:
                fail(f"{path}.days[{i}]", f"unknown day {day!r} (use {', '.join(DAYS)})")
        for i, spec in enumerate(w.hours):
            try:
                parse_hours(spec)
            except ValueError as exc:
                fail(f"{path}.hours[{i}]", str(exc))
        for key in ("holidays", "workdays"):
            for i, spec in enumerate(getattr(w, key)):
                try:
                    parse_dates(spec)
                except ValueError as exc:
                    fail(f"{path}.{key}[{i}]", f"bad date {spec!r}: {exc}")
        try:
            zoneinfo.ZoneInfo(w.timezone)
        except (ValueError, zoneinfo.ZoneInfoNotFoundError):
            fail(f"{path}.timezone", f"unknown time zone {w.timezone!r} (e.g. Asia/Shanghai)")

    p = "outbound_calls"
    window(cfg.window, f"{p}.window")
    for name, camp in (cfg.campaigns or {}).items():
        if camp.window is not None:
            window(camp.window, f"{p}.campaigns.{name}.window")
        if camp.caller_id is not None and not re.fullmatch(r"\+?\d{3,20}", camp.caller_id):
            fail(f"{p}.campaigns.{name}.caller_id", f"digits only: {camp.caller_id!r}")
    if cfg.caller_id is not None and not re.fullmatch(r"\+?\d{3,20}", cfg.caller_id):
        fail(f"{p}.caller_id", f"digits only: {cfg.caller_id!r}")
    if not re.fullmatch(r"[0-9*#]{0,8}", cfg.dial_prefix):
        fail(f"{p}.dial_prefix", f"up to 8 digits, * or #: {cfg.dial_prefix!r}")
    if cfg.area_code is not None and not valid_area_code(cfg.area_code):
        fail(f"{p}.area_code", f"an area code is 0 then 2 or 3 digits (010, 0571): {cfg.area_code!r}")
    for name in (cfg.retry or {}):
        if name not in RETRY_RESULTS:
            fail(f"{p}.retry.{name}", f"not a result that is retried; one of {', '.join(RETRY_RESULTS)} "
                                      "(invalid numbers are never retried)")
    for i, rule in enumerate(cfg.dial_block.prefixes):
        if rule.startswith("/") and rule.endswith("/") and len(rule) > 2:
            try:
                re.compile(rule[1:-1])
            except re.error as exc:
                fail(f"{p}.dial_block.prefixes[{i}]", f"bad regex: {exc}")
        elif not rule or not re.fullmatch(r"\+?\d{0,20}", rule):
            fail(f"{p}.dial_block.prefixes[{i}]", f"digits (or /regex/): {rule!r}")
    for key in ("exact", "transfer_allow"):
        for i, number in enumerate(getattr(cfg.dial_block, key)):
            if not re.fullmatch(r"\d{1,20}", number):
                fail(f"{p}.dial_block.{key}[{i}]", f"digits only: {number!r}")
    if cfg.trunk_channels * cfg.max_trunk_share < 1 and cfg.max_trunk_share > 0:
        fail(f"{p}.max_trunk_share", f"{cfg.max_trunk_share} of {cfg.trunk_channels} channels is not one channel")
