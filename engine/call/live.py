"""A live trunk call: the `CallPort` that IVR nodes, queues and the survey drive, over one outbound socket.

Digits are ours, not the switch's: every DTMF event of the channel goes into the call's buffer, so
a digit pressed during a prompt both stops the prompt (`uuid_break`) and counts as the first digit
of the next menu (type-ahead), and a caller who hangs up mid-prompt ends every wait with CallGone.

Interrupting (a digit, the queue's offer, the bot's barge-in) goes through one place,
`_break_current`: it breaks only an application the switch has started (its CHANNEL_EXECUTE came),
with a plain `uuid_break`, and one not started yet as soon as it starts. Never `uuid_break all`:
that flushes the channel's queued executes, which then never start nor complete (fixture 07 A),
and a break sent before the execute starts is lost (07 B). Every wait for the switch is bounded:
an execute not started within START_SECONDS is logged and the step fails (the caller goes on), and
a long one is checked with `uuid_exists` every ALIVE_CHECK_SECONDS.
"""
import collections
import datetime
import logging
import os
import time

import gevent
from gevent.event import Event as Flag

from engine.call.port import CallGone
from engine.esl import commands
from engine.esl.errors import ChannelGone, CommandFailed, ConnectionLost
from engine.esl.protocol import Event

log = logging.getLogger("hotline.call")

MAX_BUFFERED_DIGITS = 64     # a DTMF flood must not grow memory; older digits are dropped
# mod_dptools' playback ends with one of these when it cannot open its source (fixture 07 D and E:
# a missing file, an unknown local_stream) or fails while playing; it completes at once, so
# playing it again at once spins (139 executes in 3 s on a real switch)
PLAYBACK_FAILED = ("FILE NOT FOUND", "PLAYBACK ERROR")
PROMPT_FALLBACK = "tone_stream://%(300,100,480,620);loops=2"    # a short two-tone beep: "no prompt"
MUSIC_FALLBACK = "tone_stream://%(1000,3000,425);loops=-1"      # a comfort tone until interrupted
FAILED_MEDIA_PAUSE = 1.0     # seconds before going on when even the fallback tone failed
WAV_HEADER_BYTES = 44       # a recording no longer than its header holds no audio
_reported_sources = set()    # sources whose failure was logged at ERROR (once per engine)
START_SECONDS = 5.0          # a sent execute starts on the channel's next 20 ms frame; 5 s means lost
ALIVE_CHECK_SECONDS = 30.0   # while a long application runs, ask the switch whether the channel is there


class CallLog(logging.LoggerAdapter):
    """Every line of a call starts with its uuid, so one grep follows one caller."""

    def process(self, msg, kwargs):
        return f"[{self.extra['uuid']}] {msg}", kwargs


class Call:
    """One caller's channel, seen through its outbound ESL session."""

    def __init__(self, session, gateway="trunk", clock=None, logger=None):
        self.session = session
        ch = session.channel
        self.uuid = session.uuid
        self.caller_id_number = ch.get("Caller-Caller-ID-Number", "")
        self.caller_id_name = ch.get("Caller-Caller-ID-Name", "")
        self.destination_number = ch.get("Caller-Destination-Number", "")
        self.variables = {}
        self.tags = []
        self.path = []
        self.info = {}                    # CDR fields that handlers fill: queue, agent, recording...
        self.gateway = gateway
        self.clock = clock or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self.log = CallLog(logger or log, {"uuid": self.uuid})
        self.started = time.monotonic()
        self.ended_by = ""                # 'engine' when we hung up first
        self._digits = collections.deque(maxlen=MAX_BUFFERED_DIGITS)
        self._digit_arrived = Flag()
        self._playing = None              # (Event-UUID, started Flag) of an interruptible execute
        self._abandoned = set()           # Event-UUIDs given up as lost: broken if they start late
        self._gone = Flag()
        self._hangup_sent = False
        self._complete = Flag()           # CHANNEL_HANGUP_COMPLETE seen (lingering socket)
        self.bridge_hooks = []            # called with CHANNEL_BRIDGE / CHANNEL_UNBRIDGE events
        self._interrupt_pending = False
        self._stays_after_bridge = False
        self.record_sample_rate = None    # record_sample_rate for `record` (settings.recordings)
        self.checkpoint_hooks = []        # fn(call, why): the daemon writes a provisional CDR
        session.on("DTMF", self._on_dtmf)
        session.on("CHANNEL_EXECUTE", self._on_execute)
        session.on("CHANNEL_BRIDGE", self._on_bridge)
        session.on("CHANNEL_UNBRIDGE", self._on_bridge)
        session.on("CHANNEL_HANGUP", self._on_hangup)
        session.on("CHANNEL_HANGUP_COMPLETE", self._on_hangup)

    # --- state ------------------------------------------------------------------------------
    @property
    def gone(self):
        return self._gone.is_set() or not self.session.connected

    def now(self):
        return self.clock()

    def _check(self):
        if self.gone:
            raise CallGone(self.uuid)

    def _on_hangup(self, event):
        if self.ended_by == "" and event.name == "CHANNEL_HANGUP":
            self.ended_by = "caller"
        self._gone.set()
        self._digit_arrived.set()
        if event.name == "CHANNEL_HANGUP_COMPLETE":
            self._complete.set()

    def _on_dtmf(self, event):
        digit = event.get("DTMF-Digit", "")
        if len(digit) != 1 or digit not in "0123456789*#ABCD":
            self.log.warning("ignoring DTMF %r", digit[:8])
            return
        self._digits.append(digit)
        self._digit_arrived.set()
        self._break_current()

    def _on_execute(self, event):
        event_uuid = event.get("Application-UUID", "")
        if event_uuid in self._abandoned:
            # given up as lost, and started after all: it must not run on under the next step
            self._abandoned.discard(event_uuid)
            self.log.warning("execute %s (%s) started late: breaking it", event_uuid,
                             event.get("Application", "?"))
            gevent.spawn(self._send_break, None)

    def _on_bridge(self, event):
        for hook in list(self.bridge_hooks):
            try:
                hook(event)
            except Exception:
                self.log.exception("bridge hook failed")

    def interrupt(self):
        """Stop the interruptible playback in progress (or the next one, if it has not started):
        the queue uses it to take a caller off hold music for an agent or an announcement."""
        self._interrupt_pending = True
        self._break_current()

    def clear_interrupt(self):
        self._interrupt_pending = False

    def _break_current(self):
        """Break the interruptible execute in progress: now if the switch has started it, else
        the moment its CHANNEL_EXECUTE arrives (a break sent before that is lost: fixture 07 B)."""
        playing, self._playing = self._playing, None
        if playing is None:
            return
        event_uuid, started = playing
        if started.is_set():
            gevent.spawn(self._send_break, event_uuid)
        else:
            started.rawlink(lambda _: gevent.spawn(self._send_break, event_uuid))

    def _send_break(self, event_uuid):
        """A plain `uuid_break` while that execution runs (None: whatever runs now)."""
        if event_uuid is not None and not self.session.running(event_uuid):
            return                        # completed meanwhile: a break now would hit the next one
        try:
            self.session.api(commands.uuid_break(self.uuid, everything=False), check=False)
        except ConnectionLost:
            pass

    def _run(self, app, arg=None, interruptible=False, timeout=None):
        """Execute an application and wait for its CHANNEL_EXECUTE_COMPLETE. An interruptible one
        asked to stop before it was sent is not sent at all (returns None)."""
        self._check()
        if interruptible and (self._digits or self._interrupt_pending):
            return None
        try:
            event_uuid, result = self.session.execute_async(app, arg)
            started = self.session.started(event_uuid)
            if interruptible:
                self._playing = (event_uuid, started)
                if self._digits or self._interrupt_pending:   # came while we were sending
                    self._break_current()
            return self._await(app, event_uuid, started, result, timeout)
        except (ChannelGone, ConnectionLost) as exc:
            self._gone.set()
            raise CallGone(self.uuid) from exc
        finally:
            if interruptible:
                self._playing = None

    def _await(self, app, event_uuid, started, result, timeout=None):
        """The completion of one execution, every wait bounded (see the module doc)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        first = START_SECONDS if deadline is None else min(START_SECONDS, max(0.0, timeout))
        gevent.wait([started, result], timeout=first, count=1)
        if not started.is_set() and not result.ready():
            if deadline is not None and time.monotonic() >= deadline:
                raise gevent.Timeout(timeout)
            return self._lost(app, event_uuid)
        while True:
            wait = ALIVE_CHECK_SECONDS
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            try:
                return result.get(timeout=wait)
            except gevent.Timeout:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                if not self._exists():
                    self.log.error("%s still running but the channel is gone", app)
                    raise ChannelGone(f"{self.uuid}: not on the switch any more")

    def _exists(self):
        try:
            return self.session.api(commands.uuid_exists(self.uuid), check=False).strip() == "true"
        except CommandFailed:
            return False

    def _lost(self, app, event_uuid):
        """An execute the switch never started: fail this step and go on, never wait forever."""
        self.session.forget(event_uuid)
        if not self._exists():
            raise ChannelGone(f"{self.uuid}: not on the switch any more")
        self._abandoned.add(event_uuid)
        self.log.error("%s (execute %s) not started within %.0f s: lost; going on",
                       app, event_uuid, START_SECONDS)
        return Event({"Event-Name": "CHANNEL_EXECUTE_COMPLETE", "Application": app,
                      "Application-UUID": event_uuid, "Application-Response": "-ERR not started"})

    # --- CallPort ---------------------------------------------------------------------------
    def answer(self):
        self._run("answer")

    def play(self, sources, interruptible=True, fallback=PROMPT_FALLBACK):
        """Play each source; one the switch cannot play is an error, logged once, and `fallback`
        (a tone: MUSIC_FALLBACK for music) plays instead, so callers never sit in silence and a
        loop around play() never re-executes a failing playback at once."""
        if isinstance(sources, str):
            sources = [sources]
        for source in sources:
            if interruptible and self._digits:
                return self._digits[0]
            done = self._run("playback", commands.media_path(source), interruptible=interruptible)
            if _playback_failed(done) and not self.gone:
                self._play_fallback(source, done, fallback, interruptible)
        self._check()
        return self._digits[0] if (interruptible and self._digits) else ""

    def _play_fallback(self, source, done, fallback, interruptible):
        why = done.get("Application-Response")
        level = logging.DEBUG if source in _reported_sources else logging.ERROR
        if len(_reported_sources) < 1000:
            _reported_sources.add(source)
        self.log.log(level, "the switch cannot play %s (%s): playing a tone instead", source, why)
        if fallback and fallback != source:
            done = self._run("playback", fallback, interruptible=interruptible)
            if not _playback_failed(done):
                return
            self.log.error("the fallback tone failed too (%s)", done.get("Application-Response"))
        self._gone.wait(FAILED_MEDIA_PAUSE)          # never re-executed at once by a loop

    def get_digits(self, max_digits, timeout, inter_digit_timeout, terminators="#"):
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < max_digits:
            while self._digits:
                digit = self._digits.popleft()
                if digit in terminators:
                    return "".join(got)
                got.append(digit)
                if len(got) >= max_digits:
                    return "".join(got)
                deadline = time.monotonic() + inter_digit_timeout
            self._check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._digit_arrived.clear()
            if not self._digits:
                self._digit_arrived.wait(remaining)
        self._check()
        return "".join(got)

    def flush_digits(self):
        self._digits.clear()

    def record(self, path, max_seconds, silence_seconds=3.0, terminators="#"):
        """Record the caller into `path`. The switch makes no directories (a missing one hangs the
        caller up), so ours is made first. Returns {"path", "seconds"}; path is None when no file
        was written (nothing then points at a message that does not exist)."""
        from engine.media.shared_dirs import ensure_dir
        problem = ensure_dir(os.path.dirname(os.path.abspath(path)))
        if problem:
            self.log.error("not recording: %s", problem)
            return {"path": None, "seconds": 0.0}
        self.set_channel_var("playback_terminators", terminators or "none")
        if self.record_sample_rate:
            self.set_channel_var("record_sample_rate", self.record_sample_rate)
        done = self._run("record", commands.record_arg(path, max_seconds, 200, silence_seconds))
        seconds = done.get("variable_record_seconds") or "0"
        try:
            seconds = float(seconds)
        except ValueError:
            seconds = 0.0
        if not os.path.isfile(path) or os.path.getsize(path) <= WAV_HEADER_BYTES:
            self.log.error("the switch wrote no message to %s", path)
            return {"path": None, "seconds": 0.0}
        return {"path": path, "seconds": seconds}

    def transfer_external(self, number):
        done = self._run("bridge", commands.endpoint_gateway(self.gateway, number))
        self.info["transfer"] = number
        return done.get("variable_bridge_hangup_cause") or done.get("variable_originate_disposition", "")

    def bridge(self, dial_string, timeout=None):
        """Run the bridge app (commands.dial_string); returns its CHANNEL_EXECUTE_COMPLETE event
        when the bridge ends or fails. The socket stays ours: the caller comes back afterwards."""
        if not self._stays_after_bridge:
            # a dialplan may have set hangup_after_bridge=true; we decide after each bridge
            self.set_channel_var("hangup_after_bridge", "false")
            self._stays_after_bridge = True
        return self._run("bridge", dial_string, timeout=timeout)

    def conference(self, name, profile="default"):
        """Join conference `name` (three-way calls, consults); returns when this caller leaves it."""
        return self._run("conference", f"{commands.token(name, 'conference')}@{commands.token(profile, 'profile')}")

    def set_channel_var(self, name, value):
        self._run("set", commands.set_var_arg(name, value))

    def hangup(self, cause="NORMAL_CLEARING"):
        if self.gone or self._hangup_sent:
            return
        self._hangup_sent = True
        self.ended_by = self.ended_by or "engine"
        try:
            self.session.hangup(cause)
        except CommandFailed as exc:
            self.log.warning("hangup refused: %s", exc)

    def checkpoint(self, why):
        """A point that matters in the call (queue join, agent answer, transfer): the daemon
        writes a provisional CDR, so a crash now loses at most what happens after it. Never
        blocks or raises: it runs on event paths."""
        for hook in list(self.checkpoint_hooks):
            try:
                hook(self, why)
            except Exception:       # noqa: BLE001 - a CDR snapshot must never break the call
                self.log.exception("provisional CDR (%s) failed", why)

    def wait_gone(self, timeout=None):
        return self._gone.wait(timeout)

    def wait_complete(self, timeout=None):
        """Wait for the channel's last event (or the socket's end); True if the event came."""
        gevent.wait([self._complete, self.session.closed], timeout=timeout, count=1)
        return self._complete.is_set()


def checkpoint(call, why):
    """call.checkpoint(why) for a Call; a no-op for stand-ins (the IVR walker, tests' fakes)."""
    mark = getattr(call, "checkpoint", None)
    if mark is not None:
        mark(why)


def _playback_failed(done):
    return done is not None and done.get("Application-Response") in PLAYBACK_FAILED
