"""The dial-block list: numbers never dialled out by campaigns, callbacks, flows or agents.

The settings' `outbound_calls.dial_block` (international and premium prefixes, emergency numbers,
and which of those agents and flows may still transfer callers to) plus the `block` entries of the
number lists in the database. `DialBlock.refuses(number, purpose)` is the one check.
"""
import re

from engine.outbound.numbers import lookup_forms

_active = None        # the engine's NumberLists (install()); the CLI and tests may leave it unset
_settings = None      # the engine's settings, for code that has none at hand (IVR nodes)


def install(lists, settings=None):
    """The engine's lists and settings: transfers from IVR flows and agents also see the
    database's `block` entries and the settings' dial_block."""
    global _active, _settings
    _active, _settings = lists, settings


def active():
    return _active


class DialBlock:
    """`refuses(number, purpose)` -> reason text, or None when the number may be dialled.

    purpose 'transfer' (an agent or a flow hands a caller over) may reach the settings'
    transfer_allow numbers (emergency services); every other purpose never does."""

    def __init__(self, cfg=None, lists=None):
        from engine.outbound.config import DialBlockSettings
        cfg = cfg or DialBlockSettings()
        self.prefixes, self.exact = tuple(cfg.prefixes), set(cfg.exact)
        self.transfer_allow = set(cfg.transfer_allow)
        self.lists = lists

    @classmethod
    def for_settings(cls, settings=None):
        """The engine's list: `settings` (default the installed ones) and the installed lists."""
        cfg = getattr(getattr(settings or _settings, "outbound_calls", None), "dial_block", None)
        return cls(cfg, _active)

    def refuses(self, number, purpose="outbound"):
        raw = str(number or "").strip()
        forms = [raw] + [k for k in lookup_forms(raw) if k != raw]
        for form in forms:
            if form in self.exact:
                if purpose == "transfer" and form in self.transfer_allow:
                    return None
                return f"{form} is an emergency/special number (dial_block.exact)"
        for rule in self.prefixes:
            if rule.startswith("/") and rule.endswith("/") and len(rule) > 2:
                if any(re.fullmatch(rule[1:-1], f) for f in forms):
                    return f"{raw} matches {rule} (dial_block.prefixes)"
            elif raw.startswith(rule):
                return f"{raw} starts with {rule} (dial_block.prefixes)"
        entry = self.lists.blocked_entry(raw) if self.lists is not None else None
        if entry is not None:
            return f"{raw} is on the block list ({entry['number']}{': ' + entry['reason'] if entry['reason'] else ''})"
        return None
