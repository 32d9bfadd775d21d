"""The one place that builds FreeSWITCH commands.

Every value that reaches the switch passes a validator here. Identifiers (uuids, variable names,
causes, app names, digits, numbers) are checked against strict patterns and refused with
`CommandError`; free text from outside (caller names, YAML text, SIP headers) is cleaned with
`safe_text`, which keeps letters, digits and a few harmless marks, so it can neither end the
command line (newline), split an argument list (`,` `{}` `[]` `'` `^^`), nor expand into a variable
or an API call when FreeSWITCH expands `${...}` in application arguments and channel variables.
Application arguments travel in the sendmsg body (content-type text/plain), never in a header,
so no argument can add a header to the message.
"""
import re
import unicodedata

from engine.esl.protocol import encode_command


class CommandError(ValueError):
    """A value would change the meaning of the command it was meant for."""


_UUID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,63}$")
_VARNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
_CAUSE = re.compile(r"^[A-Z][A-Z_]{1,48}$")
_APP = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_DTMF = re.compile(r"^[0-9*#A-Dw]{1,128}$")
_NUMBER = re.compile(r"^\+?[0-9*#]{1,32}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.@:+*#/=%-]{1,256}$")     # hosts, profiles, contexts, extensions
_PATH = re.compile(r"^[A-Za-z0-9_./:@%=(),;-]{1,1024}$")     # files and tone_stream:// specs
_CONF = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")
_CODEC = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,31}$")       # PCMA, opus, G722, AMR-WB, L16

# Characters free text may keep: letters and digits of any script, spaces and marks that have no
# meaning to FreeSWITCH's parsers. Everything else becomes a space.
_TEXT_MARKS = set(" .-_()@+#*/&!?~")


def _check(pattern, value, what):
    value = str(value)
    if not pattern.match(value):
        raise CommandError(f"invalid {what}: {value[:80]!r}")
    return value


def uuid(value):
    return _check(_UUID, value, "uuid")


def varname(value):
    return _check(_VARNAME, value, "variable name")


def cause(value):
    return _check(_CAUSE, value, "hangup cause")


def digits(value):
    return _check(_DTMF, value, "DTMF digits")


def number(value):
    """A dialable number (external transfer targets, extensions): digits, *, #, leading +."""
    return _check(_NUMBER, value, "number")


def codec_name(value):
    """One codec name as the switch reports it (`read_codec`: PCMA, opus, G722) for
    `absolute_codec_string`."""
    return _check(_CODEC, value, "codec name")


def token(value, what="argument"):
    return _check(_TOKEN, value, what)


def media_path(value):
    """A file path or tone/silence stream we generated ourselves; no spaces, no line breaks."""
    value = str(value)
    if ".." in value.split("/"):
        raise CommandError(f"invalid media path: {value[:80]!r}")
    return _check(_PATH, value, "media path")


def safe_text(value, max_len=128):
    """Free text (caller ID name, IVR choice, transcript snippet) made inert for the switch."""
    out = []
    for ch in str(value)[: max_len * 4]:
        cat = unicodedata.category(ch)
        if ch in _TEXT_MARKS or cat[0] in "LN":
            out.append(ch)
        else:
            out.append(" ")
    text = " ".join("".join(out).split())
    return text[:max_len]


def safe_number(value):
    """A caller ID number from the trunk, for display: keep digits, '+', '*', '#'."""
    kept = "".join(ch for ch in str(value) if ch in "0123456789+*#")
    return kept[:32]


# --- api commands (sent as `api <cmd>` or `bgapi <cmd>`) --------------------------------------

def uuid_kill(call_uuid, hangup_cause="NORMAL_CLEARING"):
    return f"uuid_kill {uuid(call_uuid)} {cause(hangup_cause)}"


def uuid_break(call_uuid, everything=False):
    """Break what the channel runs. `everything` (`all`) also flushes the channel's queued
    executes, which then never start nor complete (fixture 07 A): the engine never uses it."""
    return f"uuid_break {uuid(call_uuid)}" + (" all" if everything else "")


FILEMAN_ACTIONS = ("pause", "stop")


def uuid_fileman(call_uuid, action):
    """Act on the file the channel is playing. `pause` is a TOGGLE (switch_ivr_process_fh): the
    same command resumes a paused playback; it silences the prompt without the 40 ms hole that
    ending an application makes in the media tap (fixture 12). With nothing playing it does
    nothing, and the answer does not say so: send it only for a playback seen to start."""
    if action not in FILEMAN_ACTIONS:
        raise CommandError(f"uuid_fileman action must be one of {FILEMAN_ACTIONS}, not {action!r}")
    return f"uuid_fileman {uuid(call_uuid)} {action}"


def uuid_exists(call_uuid):
    return f"uuid_exists {uuid(call_uuid)}"


def uuid_hold(call_uuid, on=True):
    """Hold the channel (its partner hears the channel's `hold_music`) or take it off hold."""
    return f"uuid_hold {uuid(call_uuid)}" if on else f"uuid_hold off {uuid(call_uuid)}"


def uuid_answer(call_uuid):
    return f"uuid_answer {uuid(call_uuid)}"


def uuid_bridge(a, b):
    return f"uuid_bridge {uuid(a)} {uuid(b)}"


def uuid_transfer(call_uuid, extension, context, dialplan="XML", both=False):
    leg = " -both" if both else ""
    return (f"uuid_transfer {uuid(call_uuid)}{leg} {token(extension, 'extension')} "
            f"{token(dialplan, 'dialplan')} {token(context, 'context')}")


def uuid_record(call_uuid, action, path, limit_seconds=None):
    if action not in ("start", "stop", "mask", "unmask"):
        raise CommandError(f"invalid uuid_record action: {action!r}")
    cmd = f"uuid_record {uuid(call_uuid)} {action} {media_path(path)}"
    if limit_seconds is not None and action == "start":
        cmd += f" {int(limit_seconds)}"
    return cmd


def media_tap_vars(sample_rate=16000):
    """Channel variables of the media tap on stock FreeSWITCH (FREESWITCH.md): the caller's audio
    only, written every 20 ms (default buffering writes 64 KB steps, 2 s late), at the ASR rate."""
    if sample_rate not in (8000, 16000):
        raise CommandError(f"media tap sample rate must be 8000 or 16000, not {sample_rate!r}")
    return [("RECORD_READ_ONLY", "true"), ("enable_file_write_buffering", "false"),
            ("RECORD_PRE_BUFFER_FRAMES", "1"), ("record_sample_rate", str(sample_rate))]


def media_tap_start(call_uuid, path, sample_rate=16000):
    """The api commands, in order, that start a call's media tap into a raw file (.r16)."""
    return ([uuid_setvar(call_uuid, name, value) for name, value in media_tap_vars(sample_rate)]
            + [uuid_record(call_uuid, "start", path)])


def media_tap_stop(call_uuid, path):
    return uuid_record(call_uuid, "stop", path)


def uuid_setvar(call_uuid, name, value):
    return f"uuid_setvar {uuid(call_uuid)} {varname(name)} {safe_text(value, 256)}"


def uuid_unsetvar(call_uuid, name):
    """uuid_setvar without a value unsets the variable (mod_commands uuid_setvar_function)."""
    return f"uuid_setvar {uuid(call_uuid)} {varname(name)}"


def bridge_pre_execute(call_uuid, app, arg):
    """An application the switch runs on the caller's leg when its next `bridge` starts, i.e.
    when the agent answered (`bridge_pre_execute_aleg_app` and `_data`, read by
    switch_ivr_multi_threaded_bridge in src/switch_ivr_bridge.c): it runs even when the engine
    that sent the bridge is gone by then. Two api commands (name, then argument)."""
    return [f"uuid_setvar {uuid(call_uuid)} bridge_pre_execute_aleg_data {media_path(arg)}",
            f"uuid_setvar {uuid(call_uuid)} bridge_pre_execute_aleg_app {_check(_APP, app, 'application')}"]


def uuid_getvar(call_uuid, name):
    return f"uuid_getvar {uuid(call_uuid)} {varname(name)}"


def uuid_broadcast(call_uuid, path, leg="aleg"):
    if leg not in ("aleg", "bleg", "both"):
        raise CommandError(f"invalid leg: {leg!r}")
    return f"uuid_broadcast {uuid(call_uuid)} {media_path(path)} {leg}"


def uuid_send_dtmf(call_uuid, dtmf):
    return f"uuid_send_dtmf {uuid(call_uuid)} {digits(dtmf)}"


def uuid_dump(call_uuid, as_json=True):
    return f"uuid_dump {uuid(call_uuid)}" + (" json" if as_json else "")


def show_channels_json():
    return "show channels as json"


def conference(name, action, *args):
    if action not in ("list", "json_list", "kick", "hup", "mute", "unmute", "deaf", "undeaf", "count"):
        raise CommandError(f"invalid conference action: {action!r}")
    extra = "".join(" " + token(a, "conference argument") for a in args)
    return f"conference {_check(_CONF, name, 'conference name')} {action}{extra}"


class MediaValue(str):
    """A variable value that names media (ringback, hold_music): kept as a path, not made text."""


def media_var(path):
    """Mark a validated media path as a variable value; its commas (tone_stream specs) are escaped
    the way FreeSWITCH's variable blocks expect them (`\\,`)."""
    return MediaValue(media_path(path).replace(",", "\\,"))


def var_list(variables):
    """`{a=b,c=d}` for originate; names validated, values made inert and quoted."""
    if not variables:
        return ""
    parts = []
    for name, value in variables.items():
        if isinstance(value, MediaValue):
            parts.append(f"{varname(name)}={value}")
            continue
        value = value if isinstance(value, (int, float)) else safe_text(value, 256).replace(",", " ")
        parts.append(f"{varname(name)}='{value}'" if isinstance(value, str) and " " in value
                     else f"{varname(name)}={value}")
    return "{" + ",".join(parts) + "}"


def leg_var_list(variables):
    """`[a=b,c=d]`: variables of one leg of a dial string (same escaping as var_list)."""
    inner = var_list(variables)
    return "[" + inner[1:-1] + "]" if inner else ""


def dial_string(legs, variables=None):
    """`{common}[leg vars]endpoint,[leg vars]endpoint` for the bridge app: the legs ring at once.

    `legs` is a list of (endpoint from an endpoint_* builder, per-leg variables)."""
    parts = []
    for endpoint, leg_vars in legs:
        if not endpoint or any(c in endpoint for c in " \n\r{}[],"):
            raise CommandError(f"invalid endpoint: {str(endpoint)[:80]!r}")
        parts.append(leg_var_list(leg_vars) + endpoint)
    if not parts:
        raise CommandError("a dial string needs at least one leg")
    return var_list(variables) + ",".join(parts)


def uuid_recv_dtmf(call_uuid, dtmf):
    """Digits the channel treats as pressed on its own phone (eavesdrop mode keys)."""
    return f"uuid_recv_dtmf {uuid(call_uuid)} {digits(dtmf)}"


def endpoint_user(extension, domain=None):
    ext = number(extension)
    return f"user/{ext}@{token(domain, 'domain')}" if domain else f"user/{ext}"


def endpoint_sofia(profile, target):
    """`sofia/<profile>/<user>@<host:port>`: user must be a number, host a plain token."""
    user, _, host = str(target).partition("@")
    end = f"sofia/{token(profile, 'profile')}/{number(user)}"
    return end + (f"@{token(host, 'host')}" if host else "")


def endpoint_gateway(gateway, dialled):
    return f"sofia/gateway/{token(gateway, 'gateway')}/{number(dialled)}"


def endpoint_loopback(extension, context="default"):
    return f"loopback/{number(extension)}/{token(context, 'context')}"


def originate(endpoint, variables=None, app=None, app_arg="", extension=None, dialplan="XML",
              context="default", timeout=None):
    """`originate {vars}<endpoint> &app(arg)` or `... <extension> XML <context>`.

    `endpoint` must come from one of the endpoint_* builders above.
    """
    if not endpoint or any(c in endpoint for c in " \n\r{}"):
        raise CommandError(f"invalid endpoint: {str(endpoint)[:80]!r}")
    cmd = f"originate {var_list(variables)}{endpoint}"
    if app:
        arg = "" if not app_arg else _app_arg_inline(app_arg)
        cmd += f" &{_check(_APP, app, 'application')}({arg})"
    elif extension:
        cmd += f" {token(extension, 'extension')} {token(dialplan, 'dialplan')} {token(context, 'context')}"
    else:
        cmd += " &park()"
    if timeout is not None:
        cmd += f" {int(timeout)}"
    return cmd


def originate_to_socket(endpoint, variables, host, port):
    """`originate {vars}<endpoint> '&socket(<host>:<port> async full)'`: the answered leg is handed
    to the engine's outbound-socket server like a trunk call. The app is quoted because its
    argument has spaces: mod_commands splits the originate line with switch_separate_string,
    whose cleanup_separated_string keeps quoted spaces and drops the quotes (switch_utils.c).
    The ring time is the `originate_timeout` variable."""
    if not endpoint or any(c in endpoint for c in " \n\r{}'"):
        raise CommandError(f"invalid endpoint: {str(endpoint)[:80]!r}")
    return f"originate {var_list(variables)}{endpoint} '&socket({socket_arg(host, port)})'"


def _app_arg_inline(arg):
    arg = str(arg)
    if any(c in arg for c in "()\n\r ${}") or len(arg) > 512:
        raise CommandError(f"invalid inline application argument: {arg[:80]!r}")
    return arg


# --- sendmsg (outbound socket: to our own channel; inbound: `sendmsg <uuid>`) ------------------

class SendMsg:
    """A sendmsg ready to write: the first line, headers, and the body carrying the app argument."""

    __slots__ = ("line", "headers", "body")

    def __init__(self, line, headers, body=None):
        self.line, self.headers, self.body = line, headers, body

    def encode(self):
        return encode_command(self.line, self.headers, self.body)


def execute(app, arg=None, event_uuid=None, target_uuid=None, event_lock=True, loops=None):
    """`call-command: execute`; the argument goes in a text/plain body.

    Values in `arg` that came from outside must already be cleaned by the caller with safe_text /
    number / digits / media_path: FreeSWITCH expands `${...}` in application arguments.
    """
    headers = {"call-command": "execute", "execute-app-name": _check(_APP, app, "application")}
    if loops:
        headers["loops"] = str(int(loops))
    if event_lock:
        headers["event-lock"] = "true"
    if event_uuid:
        headers["Event-UUID"] = uuid(event_uuid)
    body = None
    if arg is not None and arg != "":
        arg = str(arg)
        if "\x00" in arg:
            raise CommandError("NUL byte in application argument")
        headers["content-type"] = "text/plain"
        body = arg
    line = "sendmsg" + (f" {uuid(target_uuid)}" if target_uuid else "")
    return SendMsg(line, headers, body)


def hangup(hangup_cause="NORMAL_CLEARING", target_uuid=None):
    line = "sendmsg" + (f" {uuid(target_uuid)}" if target_uuid else "")
    return SendMsg(line, {"call-command": "hangup", "hangup-cause": cause(hangup_cause)})


def set_var_arg(name, value):
    """Argument for the `set`/`export` applications: `name=value` with an inert value."""
    return f"{varname(name)}={safe_text(value, 512)}"


def play_and_get_digits_arg(min_digits, max_digits, tries, timeout_ms, terminators, file,
                            invalid_file, var_name, regex, digit_timeout_ms):
    for v in (min_digits, max_digits, tries, timeout_ms, digit_timeout_ms):
        if not isinstance(v, int) or v < 0:
            raise CommandError(f"invalid play_and_get_digits number: {v!r}")
    if terminators and not re.match(r"^[0-9*#]{1,4}$|^none$", terminators):
        raise CommandError(f"invalid terminators: {terminators!r}")
    if any(c in regex for c in " \n\r${}"):
        raise CommandError(f"invalid digits regex: {regex!r}")
    return (f"{min_digits} {max_digits} {tries} {timeout_ms} {terminators or 'none'} "
            f"{media_path(file)} {media_path(invalid_file)} {varname(var_name)} {regex} {digit_timeout_ms}")


def record_arg(path, max_seconds, silence_threshold=200, silence_seconds=3):
    """Argument for the `record` application: `<path> <limit s> <silence threshold> <silence hits s>`."""
    for v in (max_seconds, silence_threshold, silence_seconds):
        if not isinstance(v, (int, float)) or v < 0:
            raise CommandError(f"invalid record number: {v!r}")
    return f"{media_path(path)} {int(max_seconds)} {int(silence_threshold)} {int(silence_seconds)}"


# --- rendered configuration (engine/fsconf/render.py) ------------------------------------------------

def literal_regex(text, what="number"):
    """An anchored dialplan `expression` matching exactly `text` (DIDs may hold + * . etc.).

    re.escape output is also valid PCRE (a backslash before punctuation is always literal there).
    Control characters and `$` + `{` (FreeSWITCH variable expansion) are refused.
    """
    text = str(text)
    if not text or any(unicodedata.category(ch)[0] == "C" or ch.isspace() for ch in text) or "{" in text:
        raise CommandError(f"invalid {what} for a dialplan expression: {text[:80]!r}")
    return "^" + re.escape(text) + "$"


def socket_arg(host, port):
    """Data of the dialplan's `socket` application: the engine's outbound socket, async, full control."""
    if not isinstance(port, int) or not 0 < port < 65536:
        raise CommandError(f"invalid socket port: {port!r}")
    # An IPv6 host needs no brackets: the socket application splits host:port at the last colon.
    return f"{token(host, 'socket host')}:{port} async full"


def json_text(value, max_len=2048):
    """A small JSON document (a bot's slots for the agent's screen) made inert for the switch: every
    string inside goes through safe_text, so no `$`, quote, backslash or line break survives and
    nothing can expand; the JSON punctuation itself means nothing to uuid_setvar. Too long is an
    error, not a silent cut (a cut JSON document would not parse on the agent's screen)."""
    import json

    def clean(v):
        if isinstance(v, dict):
            return {safe_text(k, 64): clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if v is None or isinstance(v, (bool, int, float)):
            return v
        return safe_text(v, 256)
    text = json.dumps(clean(value), ensure_ascii=False, separators=(",", ":"))
    if len(text) > max_len:
        raise CommandError(f"JSON value too long for a channel variable ({len(text)} > {max_len})")
    return text


def uuid_setvar_json(call_uuid, name, value):
    """uuid_setvar with a JSON value built by json_text (uuid_setvar does not expand variables)."""
    return f"uuid_setvar {uuid(call_uuid)} {varname(name)} {json_text(value)}"


def xml_locate_context(name):
    """`xml_locate dialplan context name <ctx>`: the context's XML, or "can't find anything"
    (mod_commands.c xml_locate_function)."""
    return f"xml_locate dialplan context name {token(name, 'dialplan context')}"


def module_exists(name):
    """`module_exists <mod>`: "true" or "false" (mod_commands.c module_exists_function)."""
    return f"module_exists {token(name, 'module name')}"
