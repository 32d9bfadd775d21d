"""The simulator's `bridge` app when the agent hangs up at once: the caller's side must see it.

Found by tests/test_acd_multi.py under load: an agent leg that hung up before its own session
greenlet started never woke the caller's bridge app, so the caller stayed bridged to a dead leg
(and its engine waited forever)."""
import os
import time

import gevent

from engine.sim.switch import Switch

DIALPLAN = os.path.join(os.path.dirname(__file__), "sim_dialplan")


class HangsUpAtOnce:
    """Hangs up after `yields` turns of the hub: some land after the bridge app took the answered
    leg but before the leg's own session greenlet ran."""

    def __init__(self):
        self.rang = 0

    def on_ring(self, channel):
        self.rang += 1
        channel.answer()
        for _ in range(self.rang % 4):
            gevent.sleep(0)
        channel.hangup("NORMAL_CLEARING")


def wait_for(cond, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        gevent.sleep(0.01)


def test_an_agent_leg_that_hangs_up_before_its_session_starts_ends_the_bridge():
    switch = Switch([DIALPLAN], hostname="simtest")
    switch.start("127.0.0.1", 0)
    try:
        phone = HangsUpAtOnce()
        switch.register("1001", phone)
        callers = [switch.place_call("7000", f"1380000000{i}") for i in range(8)]
        wait_for(lambda: all(c.parked for c in callers))
        for c in callers:
            c.queue_message({"app": "bridge", "arg": "user/1001"})
        wait_for(lambda: phone.rang == 8)
        wait_for(lambda: all(c.parked and c.bridged_to is None for c in callers))
        assert all(c.alive and "CHANNEL_UNBRIDGE" in c.events for c in callers)
    finally:
        switch.stop()
