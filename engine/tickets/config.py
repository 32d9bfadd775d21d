"""Ticket categories, SLAs and departments: `etc/tickets.yaml`, checked like the settings file.

Every problem stops loading with `file:line:col: path: problem`. Without a file the built-in
DEFAULT_CONFIG applies (the four categories the outbox rules use, no department list).
"""
from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from engine.settings import SchemaBuilder, SettingsError, load_yaml, setting

# The category each automatic ticket kind gets (agents choose their own when they file one).
KIND_CATEGORIES = {"callback": "callback", "voicemail": "voicemail",
                   "complaint_review": "complaint_review", "agent": "consultation"}


class TicketConfigError(SettingsError):
    pass


@dataclass(frozen=True, kw_only=True)
class Category:
    label: str = setting("", doc="name shown to people, e.g. 回拨")
    sla_hours: float = setting(72.0, min=0.0001, max=24 * 365, doc="hours from creation to the due time")
    reminder_before_hours: float = setting(4.0, min=0, max=24 * 365,
                                           doc="the assignee is reminded this long before the due time")
    department: str = setting("", doc="department a new ticket of this category goes to ('' = none yet)")


@dataclass(frozen=True, kw_only=True)
class TicketConfig:
    timezone: str = setting("Asia/Shanghai", doc="local time: ticket numbers and daily counts use its days")
    departments: Tuple[str, ...] = setting((), doc="departments tickets may be assigned to; empty = any name")
    categories: Dict[str, Category] = setting(None)

    def category(self, name) -> Category:
        try:
            return self.categories[name]
        except KeyError:
            raise TicketConfigError(f"unknown ticket category {name!r}; known: "
                                    f"{', '.join(sorted(self.categories))}") from None

    def check_department(self, name):
        if not name or not name.strip():
            raise TicketConfigError("a department name is required")
        if self.departments and name not in self.departments:
            raise TicketConfigError(f"unknown department {name!r}; known: {', '.join(self.departments)}")


DEFAULT_CONFIG = TicketConfig(categories={
    "callback": Category(label="回拨", sla_hours=24, reminder_before_hours=4),
    "voicemail": Category(label="留言处理", sla_hours=24, reminder_before_hours=4),
    "complaint_review": Category(label="不满意回访", sla_hours=48, reminder_before_hours=8),
    "consultation": Category(label="咨询", sla_hours=72, reminder_before_hours=8),
})


def load_config(path: Optional[Path]) -> TicketConfig:
    """The ticket configuration from `path`; DEFAULT_CONFIG when path is None."""
    if path is None:
        return DEFAULT_CONFIG
    path = Path(path)
    root, marks = load_yaml(path, TicketConfigError)
    builder = SchemaBuilder(marks, path, path.resolve().parent, error=TicketConfigError)
    config = builder.build(TicketConfig, root, "")
    if not config.categories:
        builder.fail("categories", "at least one category is needed")
    for kind, name in KIND_CATEGORIES.items():
        if kind != "agent" and name not in config.categories:
            builder.fail("categories", f"category {name!r} is needed (automatic {kind} tickets use it)")
    for name, cat in config.categories.items():
        if cat.reminder_before_hours >= cat.sla_hours:
            builder.fail(f"categories.{name}.reminder_before_hours",
                         f"{cat.reminder_before_hours} h is not before the deadline ({cat.sla_hours} h after creation)")
        if cat.department and config.departments and cat.department not in config.departments:
            builder.fail(f"categories.{name}.department", f"{cat.department!r} is not in departments")
    if len(set(config.departments)) != len(config.departments):
        builder.fail("departments", "a department is listed twice")
    try:
        zoneinfo.ZoneInfo(config.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        builder.fail("timezone", f"unknown time zone {config.timezone!r} (e.g. Asia/Shanghai)")
    return config
