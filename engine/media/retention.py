"""The recordings retention purge on a schedule: once a day at recordings.purge_at (local time in
recordings.purge_tz), inside the daemon; `hotline recordings purge` still runs it by hand.

The purge itself is Archiver.purge: recordings older than retention_months go, each with an audit
row; a recording on legal hold never goes. If the hold list cannot be read (database away) the
purge raises before deleting anything; the schedule logs it and tries again an hour later.
"""
import datetime
import logging
import re
import zoneinfo

import gevent

log = logging.getLogger("hotline.recordings.retention")

ACTOR = "retention schedule"
RETRY_AFTER = 3600.0            # seconds, after a failed purge
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def parse_hhmm(text):
    """(hour, minute) of 'HH:MM'; ValueError otherwise."""
    m = _HHMM.match(str(text or ""))
    if not m:
        raise ValueError(f"{text!r} is not a time of day like 03:30")
    return int(m.group(1)), int(m.group(2))


def next_run(now, at, tz):
    """The first `at` (HH:MM in tz) strictly after `now` (an aware datetime), as UTC."""
    hour, minute = parse_hhmm(at)
    local = now.astimezone(zoneinfo.ZoneInfo(tz))
    run = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if run <= local:
        run = (local + datetime.timedelta(days=1)).replace(hour=hour, minute=minute, second=0,
                                                           microsecond=0)
    return run.astimezone(datetime.timezone.utc)


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class RetentionSchedule:
    """run() loops for ever: wait for the next purge time, purge, log what went."""

    def __init__(self, archiver, at, tz, now=_utcnow, sleep=gevent.sleep, max_nap=60.0):
        parse_hhmm(at)
        zoneinfo.ZoneInfo(tz)
        self.archiver, self.at, self.tz = archiver, at, tz
        self.now, self.sleep, self.max_nap = now, sleep, max_nap
        self.runs = []                  # (when, number purged or the error text), for health views

    def run(self):
        due = next_run(self.now(), self.at, self.tz)
        log.info("recordings retention purge scheduled daily at %s %s; next %s", self.at, self.tz,
                 due.isoformat())
        while True:
            # short naps against the wall clock: a suspended host or a clock step never skips a day
            while self.now() < due:
                self.sleep(min(self.max_nap, max(0.0, (due - self.now()).total_seconds())))
            due = self.run_once()

    def run_once(self):
        """Purge now; returns when the next purge is due."""
        started = self.now()
        try:
            gone = self.archiver.purge(now=started, actor=ACTOR)
        except Exception as exc:        # noqa: BLE001 - the schedule must survive a bad night
            log.error("recordings retention purge failed, nothing deleted after the failure: %s; "
                      "trying again in %.0f min", exc, RETRY_AFTER / 60)
            self.runs.append((started, str(exc)))
            return started + datetime.timedelta(seconds=RETRY_AFTER)
        self.runs.append((started, len(gone)))
        del self.runs[:-30]
        log.info("recordings retention purge: %d recording(s) removed (retention %d months, legal "
                 "holds kept)", len(gone), self.archiver.config.retention_months)
        return next_run(started, self.at, self.tz)
