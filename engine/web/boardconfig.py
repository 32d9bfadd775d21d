"""Settings of the supervisors' wallboard (section `wallboard:` of the settings file)."""
from dataclasses import dataclass
from typing import Dict

from engine.settings import setting

DEFAULT_STATE_LIMITS = {"on_break": 900.0, "wrap_up": 120.0, "in_call": 600.0, "ringing": 20.0}


@dataclass(frozen=True, kw_only=True)
class WallboardSettings:
    service_level_target: float = setting(80.0, min=0, max=100,
                                          doc="percent; a queue under it today is an alert")
    wait_alert_seconds: float = setting(60.0, min=1, max=3600, doc="a caller waiting longer is an alert")
    state_alert_seconds: Dict[str, float] = setting(
        None, doc="agent state -> seconds after which the wallboard highlights the agent")

    def state_limits(self):
        return dict(DEFAULT_STATE_LIMITS, **(self.state_alert_seconds or {}))

    def check(self, builder):
        """Problems the types cannot say: agent states that exist. (Today's figures are the local
        day of the hotline's one `timezone` setting.)"""
        from engine.acd.views import STATES
        for state in self.state_alert_seconds or {}:
            if state not in STATES:
                builder.fail(f"wallboard.state_alert_seconds.{state}",
                             f"not an agent state; states: {', '.join(STATES)}")
