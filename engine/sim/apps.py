"""Dialplan applications, run in the channel's session greenlet.

`execute` wraps every application in CHANNEL_EXECUTE / CHANNEL_EXECUTE_COMPLETE carrying the same
Application-UUID (the sendmsg Event-UUID when given, as FREESWITCH.md describes), and always sends
the completion, also when a hangup ends the application (fixture 01: park completes after UNPARK).
Each start and end of an application syncs the channel's audio: its recordings and media tap lose
the next 40 ms of the caller (media.Recording.audio_sync; fixture 12).
"""
import logging
import os
import re
import time
import uuid as _uuid

from engine.sim import media
from engine.sim.channel import Hangup
from engine.sim.events import now_us

log = logging.getLogger("hotline.sim.apps")

APPS = {}


def app(name):
    def register(fn):
        APPS[name] = fn
        return fn
    return register


def execute(ch, name, arg="", event_uuid=None, loops=1, event_lock=False, broadcast=False):
    """Run one application. `event_lock`: sent with `event-lock: true`, so no queued message runs
    until it ends (CF_EVENT_LOCK; fixture 08 A). `broadcast`: a uuid_broadcast / hold music
    (CF_BROADCAST: uuid_break and unhold stop it rather than break it)."""
    fn = APPS.get(name)
    arg = ch.switch.expand(ch, arg or "")
    app_uuid = event_uuid or str(_uuid.uuid4())
    info = {"Application": name}
    if arg:
        info["Application-Data"] = arg
    info["Application-UUID"] = app_uuid
    if fn is None:
        ch.log.error("%s: Invalid Application %s", ch.uuid, name)
        ch.emit("CHANNEL_EXECUTE_COMPLETE", dict(info, **{"Application-Response": "INVALID APPLICATION"}))
        return
    ch.current_app = name
    # switch_core_session_exec logs every application it runs: the XML CDR's <app_log> (fixture 11)
    ch.app_log.append((name, arg or "", now_us()))
    ch.set_var("current_application", name)
    ch.set_var("current_application_data", arg or None)
    ch.emit("CHANNEL_EXECUTE", info)
    ch.switch.media.audio_sync(ch)        # fixture 12: ~40 ms of fill at every application start
    response = "_none_"
    outer = (ch.event_lock, ch.broadcasting)      # a message run inside a bridge nests
    ch.event_lock, ch.broadcasting = bool(event_lock), bool(broadcast)
    try:
        ch.stop_loops = False
        loops = int(loops or 1)
        count = 0
        while loops < 0 or count < max(loops, 1):     # loops -1: until stopped (SMF_LOOP)
            count += 1
            response = fn(ch, arg or "") or "_none_"
            if ch.stop_loops:             # uuid_break / unhold stop a looping broadcast
                break
    finally:
        ch.event_lock, ch.broadcasting = outer
        # fixture 12: after any application ends, whatever stopped it (uuid_break with or without
        # `all`, uuid_fileman stop, its natural end, even `sleep`), the switch syncs the audio
        ch.switch.media.audio_sync(ch)
        ch.set_var("current_application_response", response)
        if arg:
            ch.set_var("last_arg", arg)
        done = dict(info)
        done["Application-Response"] = response
        done["Application-UUID"] = app_uuid
        ch.emit("CHANNEL_EXECUTE_COMPLETE", done)
        if ch.hangup_after_app:
            ch.hangup_after_app = False
            ch.kill("NORMAL_CLEARING")


# --- basic --------------------------------------------------------------------------------------
@app("answer")
def _answer(ch, arg):
    ch.answer()


@app("pre_answer")
def _pre_answer(ch, arg):
    ch.pre_answer()


@app("ring_ready")
def _ring_ready(ch, arg):
    if not ch.times["progress"]:
        from engine.sim.events import now_us
        ch.times["progress"] = now_us()
        ch.emit("CHANNEL_PROGRESS")
        ch.set_callstate("RINGING")


@app("park")
def _park(ch, arg):
    ch.park_loop()


@app("echo")
def _echo(ch, arg):
    ch.wait()


@app("hangup")
def _hangup(ch, arg):
    ch.kill(arg.strip() or "NORMAL_CLEARING")
    ch.check()


def _split_assign(arg):
    name, _, value = arg.partition("=")
    return name.strip(), value


@app("set")
def _set(ch, arg):
    name, value = _split_assign(arg)
    if name:
        ch.set_var(name, value if value != "" else None)


@app("export")
def _export(ch, arg):
    name, value = _split_assign(arg)
    if name:
        ch.set_var(name, value)
        exported = [v for v in (ch.variables.get("export_vars") or "").split(",") if v]
        if name not in exported:
            exported.append(name)
        ch.set_var("export_vars", ",".join(exported))


@app("unset")
def _unset(ch, arg):
    ch.set_var(arg.strip(), None)


@app("log")
def _log(ch, arg):
    ch.log.info("%s: %s", ch.uuid, arg)


@app("info")
def _info(ch, arg):
    pass


@app("sleep")
def _sleep(ch, arg):
    try:
        ms = int(arg.strip() or 0)
    except ValueError:
        ms = 0
    ch.wait(ms / 1000.0)


@app("transfer")
def _transfer(ch, arg):
    parts = arg.split()
    if parts:
        ch.transfer(parts[0], parts[2] if len(parts) > 2 else None)
        ch.check()


# --- playback and digits -----------------------------------------------------------------------
class FileHandle:
    """The file a playback is playing, as `uuid_fileman` finds it (switch_ivr_get_file_handle)."""

    def __init__(self, source):
        self.source = source
        self.paused = False       # SWITCH_FILE_PAUSE: the prompt goes silent, time stands still
        self.done = False         # SWITCH_FILE_DONE: `uuid_fileman stop`


def play(ch, source, terminators="", any_digit_breaks=False):
    """Play one source for its real duration. Returns "done", "break" or the terminator pressed.
    While `uuid_fileman <uuid> pause` holds it, the playback stays running and silent and its time
    does not advance; uuid_break and DTMF still end it, as switch_ivr_play_file checks CF_BREAK and
    digits at the top of its loop before the pause (switch_ivr_play_say.c)."""
    try:
        seconds = ch.switch.media_duration(source)
    except media.MediaError as exc:
        ch.log.error("%s: %s", ch.uuid, exc)
        return "error"
    ftype = media.file_type(source)
    info = {"Playback-File-Path": source}
    if ftype:
        info = {"Playback-File-Type": ftype, "Playback-File-Path": source}
    ch.break_flag = False
    fh = ch.file_handle = FileHandle(source)
    ch.emit("PLAYBACK_START", info)
    played = 0.0
    status = "done"
    result = "done"

    def interrupted():
        if ch.break_flag:
            return True
        if ch.dtmf and (any_digit_breaks or ch.dtmf[0] in terminators):
            return True
        return False
    try:
        while True:
            if fh.done:
                break
            if fh.paused:
                ch.wait(until=lambda: interrupted() or fh.done or not fh.paused)
            else:
                remaining = None if seconds is None else seconds - played
                began = time.monotonic()
                finished = not ch.wait(remaining, until=lambda: interrupted() or fh.done or fh.paused)
                played += time.monotonic() - began
                if finished:
                    break
            if interrupted():
                status = "break"
                if ch.break_flag:
                    result = "break"
                    ch.break_flag = False
                elif not any_digit_breaks:
                    result = ch.dtmf.popleft()
                else:
                    result = "digit"
                break
    except Hangup:
        status = "break"
        raise
    finally:
        ch.file_handle = None
        if seconds is not None:
            played = min(played, seconds)
        samples = int(played * 48000)
        ch.variables.update({"playback_last_offset_pos": str(samples), "playback_seconds": str(int(played)),
                             "playback_ms": str(int(played * 1000)), "playback_samples": str(samples)})
        ch.emit("PLAYBACK_STOP", dict(info, **{"Playback-Status": status}))
    return result


@app("playback")
def _playback(ch, arg):
    source = arg.strip()
    terminators = ch.variables.get("playback_terminators", "")
    if terminators == "none":
        terminators = ""
    result = play(ch, source, terminators)
    if result == "error":
        return "FILE NOT FOUND"
    if result not in ("done", "break"):
        ch.set_var("playback_terminator_used", result)
    return "FILE PLAYED"


def collect_digits(ch, min_digits, max_digits, timeout_ms, terminators, digit_timeout_ms):
    """Digits from the buffer and the far end: first within timeout, then within digit_timeout."""
    got = ""
    wait_s = timeout_ms / 1000.0
    while len(got) < max_digits:
        if not ch.dtmf and not ch.wait(wait_s, until=lambda: bool(ch.dtmf)):
            break
        digit = ch.dtmf.popleft()
        if digit in terminators:
            ch.set_var("read_terminator_used", digit)
            break
        got += digit
        wait_s = digit_timeout_ms / 1000.0
    return got


def _int(value, default):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@app("play_and_get_digits")
def _play_and_get_digits(ch, arg):
    # <min> <max> <tries> <timeout> <terminators> <file> <invalid_file> <var> <regexp> <digit_timeout> <failure_ext>
    p = arg.split(" ")
    min_d, max_d, tries = _int(p[0], 1), _int(p[1] if len(p) > 1 else None, 1), _int(p[2] if len(p) > 2 else None, 1)
    timeout = _int(p[3] if len(p) > 3 else None, 5000)
    terminators = p[4] if len(p) > 4 else "#"
    if terminators == "none":
        terminators = ""
    prompt = p[5] if len(p) > 5 else ""
    invalid = p[6] if len(p) > 6 else ""
    var = p[7] if len(p) > 7 else "pagd_input"
    regexp = p[8] if len(p) > 8 else ""
    digit_timeout = _int(p[9] if len(p) > 9 else None, timeout)
    failure = p[10] if len(p) > 10 else ""
    for attempt in range(max(tries, 1)):
        if prompt and not ch.dtmf:
            play(ch, prompt, any_digit_breaks=True)
        got = collect_digits(ch, min_d, max_d, timeout, terminators, digit_timeout)
        ok = min_d <= len(got) <= max_d
        if ok and regexp:
            ok = re.fullmatch(regexp, got) is not None
        if ok:
            ch.set_var(var, got)
            ch.set_var("read_result", "success")
            return "_none_"
        if got:
            ch.set_var(var + "_invalid", got)
        if invalid and invalid != "silence_stream://0" and attempt + 1 < tries:
            play(ch, invalid, any_digit_breaks=True)
    ch.set_var(var, None)
    ch.set_var("read_result", "timeout")
    if failure:
        parts = failure.split()
        ch.transfer(parts[0], parts[2] if len(parts) > 2 else None)
        ch.check()
    return "_none_"


@app("read")
def _read(ch, arg):
    # <min> <max> <file> <var> <timeout> <terminators>
    p = arg.split(" ")
    min_d, max_d = _int(p[0], 1), _int(p[1] if len(p) > 1 else None, 1)
    prompt = p[2] if len(p) > 2 else ""
    var = p[3] if len(p) > 3 else "read_input"
    timeout = _int(p[4] if len(p) > 4 else None, 5000)
    terminators = p[5] if len(p) > 5 else "#"
    if prompt and not ch.dtmf:
        play(ch, prompt, any_digit_breaks=True)
    got = collect_digits(ch, min_d, max_d, timeout, terminators, timeout)
    ch.set_var(var, got if len(got) >= min_d else None)
    ch.set_var("read_result", "success" if len(got) >= min_d else "timeout")


# --- recording -------------------------------------------------------------------------------------
@app("record")
def _record(ch, arg):
    # <path> [<time_limit_secs>] [<silence_thresh>] [<silence_hits>]
    p = arg.split()
    if not p:
        return "_none_"
    limit = _int(p[1] if len(p) > 1 else None, 0) or None
    threshold = _int(p[2] if len(p) > 2 else None, 0)
    silence_hits = _int(p[3] if len(p) > 3 else None, 0)
    terminators = ch.variables.get("playback_terminators", "*#")
    directory = os.path.dirname(os.path.abspath(p[0]))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        # FREESWITCH.md: `record` into a directory that does not exist hangs the channel up with
        # DESTINATION_OUT_OF_ORDER; the switch creates no directories (no RECORD_START either)
        ch.log.error("%s: Error opening %s", ch.uuid, p[0])
        ch.kill("DESTINATION_OUT_OF_ORDER")
        ch.check()
    rec = ch.switch.record_start(ch, p[0], limit, record_app=True)
    cause = "success-maxtime"

    def terminator():
        return bool(ch.dtmf) and ch.dtmf[0] in terminators

    ends_at = time.monotonic() + limit if limit else None
    try:
        while True:
            waits = []
            if ends_at is not None:
                waits.append(ends_at - time.monotonic())
            if threshold and silence_hits:
                # stops that long after the caller's speech ends (or after the start, if the
                # caller never says anything)
                waits.append(speech_end(ch, rec.wall_started) + silence_hits - time.time())
            if waits and min(waits) <= 0:
                if ends_at is None or ends_at - time.monotonic() > 0:
                    cause = "success-silence"
                break
            if ch.wait(min(waits) if waits else None, until=terminator):
                ch.set_var("playback_terminator_used", ch.dtmf.popleft())
                cause = "success-terminator"
                break
    except Hangup:
        cause = "success-hangup"
        raise
    finally:
        ch.switch.record_stop(ch, p[0], cause, record_app=True)


@app("record_session")
def _record_session(ch, arg):
    """`record_session <path> [<limit>]` (mod_dptools): a media bug recording the channel from now
    until it hangs up (or uuid_record stop); it returns at once, like uuid_record start."""
    p = arg.split()
    if not p:
        return "_none_"
    limit = _int(p[1] if len(p) > 1 else None, 0) or None
    ch.switch.record_start(ch, p[0], limit)
    return "_none_"


def speech_end(ch, since):
    """Wall time at which the far end's current speech ends (`since` if it says nothing)."""
    if not ch.audio:
        return since
    try:
        length = media.duration(ch.audio) or 0.0
    except media.MediaError:
        return since
    return max(since, ch.audio_since + length)


# --- bridging, conferences, eavesdrop, outbound socket -----------------------------------------------
@app("bridge")
def _bridge(ch, arg):
    return ch.switch.bridge_app(ch, arg)


@app("conference")
def _conference(ch, arg):
    return ch.switch.conferences.join(ch, arg)


@app("eavesdrop")
def _eavesdrop(ch, arg):
    return ch.switch.eavesdrop(ch, arg.strip())


@app("userspy")
def _userspy(ch, arg):
    """`userspy <ext>@<domain>`: eavesdrop on whatever call the agent's phone is bridged to."""
    ext = arg.strip().split("@")[0]
    marker = f"/{ext}@"

    def target():
        for other in list(ch.switch.channels.values()):
            if other is not ch and marker in other.name and other.bridged_to:
                return other
        return None
    while True:
        ch.wait(until=lambda: target() is not None)
        ch.switch.eavesdrop(ch, target().uuid)


@app("socket")
def _socket(ch, arg):
    from engine.sim import esl_server
    return esl_server.run_socket_app(ch, arg)
