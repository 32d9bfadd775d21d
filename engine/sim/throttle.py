"""The switch core's admission control for new sessions: `sessions-per-second` and `max-sessions`
of switch.conf.xml, applied the way FreeSWITCH applies them.

Every session the core creates passes switch_core_session_request_uuid (src/switch_core_session.c):

    sps = --runtime.sps;
    if (sps <= 0) { "Throttle Error! %d"; return NULL; }
    if ((count + 1) > session_manager.session_limit) { "Over Session Limit! %d"; return NULL; }

(unless the caller passes SOF_NO_LIMITS, which neither mod_sofia nor mod_loopback do for a call's
legs). The counter is refilled once a second by the timer thread (src/switch_time.c
SWITCH_MODULE_RUNTIME_FUNCTION(softtimer_runtime): every 1000 ms `runtime.sps = runtime.sps_total`,
logging "Over Session Rate of %d!" if it had run out). The decrement comes first and `<= 0`
refuses, so a window admits sessions_per_second - 1 sessions, and a refused request uses up the
counter too. Stock values: switch.conf.xml's max-sessions 1000 and sessions-per-second 30
(the vanilla conf/vanilla/autoload_configs/switch.conf.xml).
"""
import os
import time
import xml.etree.ElementTree as ET

VANILLA_MAX_SESSIONS = 1000
VANILLA_SESSIONS_PER_SECOND = 30


def read_limits(conf_dir):
    """(max_sessions, sessions_per_second) of a configuration's autoload_configs/switch.conf.xml;
    None for a value the file does not set (or without that file)."""
    path = os.path.join(str(conf_dir), "autoload_configs", "switch.conf.xml")
    if not os.path.isfile(path):
        return None, None
    found = {}
    for param in ET.parse(path).getroot().iter("param"):
        name, value = param.get("name"), param.get("value")
        if name in ("max-sessions", "sessions-per-second") and value and value.strip().isdigit():
            found[name] = int(value)
    return found.get("max-sessions"), found.get("sessions-per-second")


class SessionThrottle:
    """runtime.sps and its once-a-second refill. `clock` (monotonic seconds) is injectable so a
    test can put a burst inside one window and then step past it."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._window_start = None
        self._left = None
        self.refused = 0          # sessions refused since start (either limit)

    def admit(self, sessions_per_second, max_sessions, session_count):
        """None when the core creates the session, else the reason it logs refusing it."""
        now = self.clock()
        if self._window_start is None or now - self._window_start >= 1.0:
            # the timer thread refills on its own 1 s tick, not aligned to any call
            whole = 0 if self._window_start is None else int(now - self._window_start)
            self._window_start = now if self._window_start is None else self._window_start + whole
            self._left = sessions_per_second
        self._left -= 1
        if self._left <= 0:
            self.refused += 1
            return f"Throttle Error! {session_count}"
        if session_count + 1 > max_sessions:
            self.refused += 1
            return f"Over Session Limit! {max_sessions}"
        return None
