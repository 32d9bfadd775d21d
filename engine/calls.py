"""A live trunk call: the `CallPort` that IVR nodes, queues and the survey drive, over one outbound socket.

Digits are ours, not the switch's: every DTMF event of the channel goes into the call's buffer, so
a digit pressed during a prompt both stops the prompt (`uuid_break`) and counts as the first digit
of the next menu (type-ahead), and a caller who hangs up mid-prompt ends every wait with CallGone.
"""
import collections
import datetime
import logging
import os
import time

import gevent
from gevent.event import Event as Flag

from engine.callapi import CallGone
from engine.esl import commands
from engine.esl.errors import ChannelGone, CommandFailed, ConnectionLost

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
        self._playing = None              # Event-UUID of an interruptible playback in progress
        self._gone = Flag()
        self._hangup_sent = False
        self._complete = Flag()           # CHANNEL_HANGUP_COMPLETE seen (lingering socket)
        self.bridge_hooks = []            # called with CHANNEL_BRIDGE / CHANNEL_UNBRIDGE events
        self._interrupt_pending = False
        self._stays_after_bridge = False
        self.record_sample_rate = None    # record_sample_rate for `record` (settings.recordings)
        session.on("DTMF", self._on_dtmf)
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
        if self._playing:
            self._playing = None
            gevent.spawn(self._break_playback)

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
        if self._playing:
            self._playing = None
            gevent.spawn(self._break_playback)

    def clear_interrupt(self):
        self._interrupt_pending = False

    def _break_playback(self):
        try:
            self.session.api(commands.uuid_break(self.uuid, everything=True), check=False)
        except ConnectionLost:
            pass

    def _run(self, app, arg=None, interruptible=False, timeout=None):
        """Execute an application and wait for its CHANNEL_EXECUTE_COMPLETE."""
        self._check()
        try:
            event_uuid, result = self.session.execute_async(app, arg)
            if interruptible:
                self._playing = event_uuid
                if self._digits or self._interrupt_pending:   # came while we were sending: stop now
                    self._playing = None
                    gevent.spawn(self._break_playback)
            return result.get(timeout=timeout)
        except (ChannelGone, ConnectionLost) as exc:
            self._gone.set()
            raise CallGone(self.uuid) from exc
        finally:
            if interruptible:
                self._playing = None

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

    def wait_gone(self, timeout=None):
        return self._gone.wait(timeout)

    def wait_complete(self, timeout=None):
        """Wait for the channel's last event (or the socket's end); True if the event came."""
        gevent.wait([self._complete, self.session.closed], timeout=timeout, count=1)
        return self._complete.is_set()


def _playback_failed(done):
    return done is not None and done.get("Application-Response") in PLAYBACK_FAILED
