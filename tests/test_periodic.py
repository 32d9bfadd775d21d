"""The periodic greenlet the engine's pollers share (engine/infra/periodic.py): a failing round
is said once while it repeats, the recovery once, and the loop goes on until stopped."""
import logging

from engine.infra.periodic import Periodic
from tests.simfix import wait_for

log = logging.getLogger("hotline.test.periodic")


def test_errors_said_once_the_loop_survives_and_stops(caplog):
    rounds = []

    def work():
        rounds.append(1)
        if 2 <= len(rounds) <= 4:
            raise OSError("database away")
        if len(rounds) == 6:
            raise KeyError("another")

    loop = Periodic(work, 0.001, "the test poller", log)
    caplog.set_level(logging.INFO, logger=log.name)
    assert loop.start() is loop and loop.start().running          # a second start: the same greenlet
    greenlet = loop.greenlet
    wait_for(lambda: len(rounds) >= 8, timeout=10)
    loop.stop()
    assert not loop.running and greenlet.dead                      # stopped: no more rounds
    lines = [r.getMessage() for r in caplog.records if r.name == log.name]
    assert lines == ["the test poller: OSError: database away; trying again every 0.001 s",
                     "the test poller: working again",
                     "the test poller: KeyError: 'another'; trying again every 0.001 s",
                     "the test poller: working again"]
