"""A greenlet doing one round of work now and then every `interval` seconds, until stopped.

    loop = Periodic(consumer.drain, 2.0, "ticket outbox consumer", log).start()
    loop.stop()

A round that raises (the database or Redis away) does not end the loop: the error is logged once
while it repeats (not every round), the recovery once, and the next round tries again. stop()
kills the greenlet wherever it is (a transaction in progress is rolled back by its own `with`).
"""
import gevent


class Periodic:
    def __init__(self, work, interval, what, log):
        self.work = work            # fn() -> anything: one round
        self.interval = interval    # seconds between the end of a round and the next
        self.what = what            # the log lines' subject
        self.log = log
        self.greenlet = None

    @property
    def running(self):
        return self.greenlet is not None and not self.greenlet.dead

    def start(self):
        if self.greenlet is None:
            self.greenlet = gevent.spawn(self._loop)
        return self

    def stop(self):
        if self.greenlet is not None:
            self.greenlet.kill()
            self.greenlet = None

    def _loop(self):
        failing = None              # the last error's text: said once, not every round
        while True:
            try:
                self.work()
                if failing:
                    self.log.info("%s: working again", self.what)
                failing = None
            except Exception as exc:      # noqa: BLE001 - the database or Redis away: next round
                text = f"{type(exc).__name__}: {exc}"
                if text != failing:
                    self.log.error("%s: %s; trying again every %g s", self.what, text, self.interval)
                failing = text
            gevent.sleep(self.interval)


class Looping:
    """start()/stop() for a class whose work runs in `self.loop` (a Periodic)."""
    loop: Periodic

    def start(self):
        self.loop.start()
        return self

    def stop(self):
        self.loop.stop()
