"""`hotline fs-config render`: the FreeSWITCH configuration that goes with these engine settings.

Templates (jinja2, autoescaped: every value is XML-escaped) live in freeswitch_conf/ (vanilla
layout) and dialplans/ (one standalone `<include><context>` per file, also read by the simulator),
shipped with the package (engine.assets).
Rendered layout: freeswitch.xml, vars.xml, autoload_configs/*.xml, dialplan/*.xml, directory/*.xml.
Files that hold secrets (event-socket password, gateway password, SIP passwords) are written mode
0600; every file is written to a temporary name and renamed, so FreeSWITCH never reads half a file.
Values that become FreeSWITCH syntax (dialplan expressions, socket targets, caller ID names) go
through engine.esl.commands.
"""
import ipaddress
import os
import re
import sys
import tempfile
from pathlib import Path

import jinja2

from engine import assets
from engine.esl import commands

CONF_DIR = assets.path("freeswitch_conf")
DIALPLAN_DIR = assets.path("dialplans")
# Played by the dialplan when no engine takes a call (engine stopped or shutting down); shipped
# with the configuration so that it plays on a stock switch with no engine and no TTS.
UNAVAILABLE_PROMPT = CONF_DIR / "sounds" / "hotline_unavailable.wav"
UNAVAILABLE_TARGET = "sounds/hotline_unavailable.wav"
SECRET_FILES = {"autoload_configs/event_socket.conf.xml", "autoload_configs/sofia.conf.xml",
                "directory/default.xml"}
_EXTENSION = re.compile(r"^[0-9]{2,8}$")
_CODEC = re.compile(r"^[A-Za-z0-9_.@-]{1,32}$")
_CIDR = re.compile(r"^[0-9A-Fa-f:.]{2,45}/[0-9]{1,3}$")
_A1_HASH = re.compile(r"^[0-9a-f]{32}$")
# Samples a second of the codecs whose rate we know (G722: 16000 although its RTP clock says 8000).
CODEC_RATES = {"PCMA": 8000, "PCMU": 8000, "G729": 8000, "GSM": 8000, "ILBC": 8000, "G722": 16000,
               "OPUS": 48000}


class FsConfigError(ValueError):
    """A value cannot be rendered into a working FreeSWITCH configuration; says which and why."""


def render(settings, out_dir, agents=None, env=None) -> list:
    """Write the configuration for `settings` under out_dir; return the paths written.

    `agents` is the agents file's list (see directory/default.xml's header); None reads
    settings.files.agents if it exists. `env` supplies the agents' password_env values.
    """
    env = os.environ if env is None else env
    if agents is None:
        agents = load_agents(settings.files.agents)
    out_dir = Path(out_dir)
    context = _context(settings, agents, env, out_dir)
    jenv = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(CONF_DIR), str(DIALPLAN_DIR)]),
        autoescape=jinja2.select_autoescape(["xml"]), undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True)
    _copy(UNAVAILABLE_PROMPT, out_dir / UNAVAILABLE_TARGET)      # a sound, not a config file
    written = []
    for template, target in _templates():
        text = jenv.get_template(template).render(**context)
        path = out_dir / target
        _write(path, text, 0o600 if target in SECRET_FILES else 0o644)
        written.append(path)
    return written


def _templates():
    for path in sorted(CONF_DIR.rglob("*.xml")):
        rel = path.relative_to(CONF_DIR).as_posix()
        yield rel, rel
    for path in sorted(DIALPLAN_DIR.glob("*.xml")):
        yield path.name, f"dialplan/{path.name}"


def _context(s, agents, env, out_dir):
    out = s.outbound
    try:
        socket_data = commands.socket_arg(out.advertise_host or out.listen_host, out.listen_port)
    except commands.CommandError as exc:
        raise FsConfigError(f"outbound.advertise_host: {exc}") from None
    standby_data = _standby_socket(out.standby) if out.standby else None
    prompt = out.unavailable_prompt or (out_dir / UNAVAILABLE_TARGET).resolve()
    try:
        unavailable_prompt = commands.media_path(str(prompt))
    except commands.CommandError as exc:
        raise FsConfigError(f"outbound.unavailable_prompt: {exc}") from None
    dids = []
    for i, did in enumerate(s.trunk.dids):
        try:
            dids.append({"number": did, "regex": commands.literal_regex(did, "DID")})
        except commands.CommandError as exc:
            raise FsConfigError(f"trunk.dids[{i}]: {exc}") from None
    sw = s.switch
    if sw.rtp_end_port <= sw.rtp_start_port:
        raise FsConfigError("switch.rtp_end_port must be above switch.rtp_start_port")
    if sw.rtp_end_port - sw.rtp_start_port < 2 * sw.max_sessions:
        # Each call leg holds an RTP and an RTCP port: a short range refuses calls under load.
        raise FsConfigError(f"switch: RTP ports {sw.rtp_start_port}-{sw.rtp_end_port} cannot carry "
                            f"max_sessions {sw.max_sessions} (2 ports a session)")
    for name in ("trunk_codecs", "phone_codecs"):
        for codec in getattr(sw, name):
            if not _CODEC.match(codec):
                raise FsConfigError(f"switch.{name}: invalid codec name {codec!r}")
    _check_phone_rates(sw.phone_codecs)
    for label, cidrs in (("switch.esl_acl", sw.esl_acl), ("trunk.cidrs", s.trunk.cidrs)):
        for cidr in cidrs:
            if not _CIDR.match(cidr):
                raise FsConfigError(f"{label}: {cidr!r} is not an address/prefix like 192.0.2.0/24")
    try:
        ipaddress.ip_address(s.esl.host)
    except ValueError:
        raise FsConfigError(f"esl.host: {s.esl.host!r} becomes the event socket's listen-ip and must be "
                            "an IP address of the FreeSWITCH machine") from None
    for label, value in (("esl.password", s.esl.password), ("trunk.password", s.trunk.password)):
        _check_secret(label, value)
    return {
        "switch": sw, "esl": s.esl, "trunk": s.trunk, "outbound": out,
        "trunk_codecs": ",".join(sw.trunk_codecs), "phone_codecs": ",".join(sw.phone_codecs),
        "dids": dids, "socket_data": socket_data, "standby_socket_data": standby_data,
        "unavailable_prompt": unavailable_prompt,
        "agents": _agents(agents, s.files.agents, env),
    }


def _standby_socket(target):
    host, _, port = str(target).rpartition(":")
    try:
        return commands.socket_arg(host, int(port))
    except (ValueError, commands.CommandError) as exc:
        raise FsConfigError(f"outbound.standby: {target!r} is not host:port of an engine ({exc})") from None


def _check_phone_rates(phone_codecs):
    """Every desk-phone leg (agents, supervisors) is pinned to phone_codecs; they must share one
    sample rate. Eavesdrop mixes a supervisor's audio into the agent's leg without resampling: a
    supervisor at 48 kHz over an agent at 8 kHz is nearly silent in whisper and barge (fixture 09b)."""
    rates = {c: CODEC_RATES[c.upper()] for c in phone_codecs if c.upper() in CODEC_RATES}
    if len(set(rates.values())) > 1:
        listed = ", ".join(f"{c} {r} Hz" for c, r in rates.items())
        raise FsConfigError(f"switch.phone_codecs: {listed} mix sample rates; a supervisor's phone "
                            "could then negotiate another rate than the agent's and whisper/barge "
                            "would be inaudible (eavesdrop does not resample): list codecs of one rate")


def _check_secret(label, value):
    # FreeSWITCH expands $${...} and ${...} while reading its configuration.
    if value and ("${" in value or any(ord(c) < 32 for c in value)):
        raise FsConfigError(f"{label}: contains '${{' or a control character, which FreeSWITCH would mangle")


# --- agents -----------------------------------------------------------------------------------

def load_agents(path):
    """The agents file's list, [] when the file does not exist."""
    from engine.settings import load_yaml
    path = Path(path)
    if not path.exists():
        return []
    data, _ = load_yaml(path, FsConfigError)
    if isinstance(data, dict):
        data = data.get("agents")
    if data is None:
        return []
    if not isinstance(data, list):
        raise FsConfigError(f"{path}: expected a list of agents (or agents: [...])")
    return data


def _agents(raw, source, env):
    out, seen = [], set()
    for i, a in enumerate(raw):
        where = f"{source}: agents[{i}]"
        if not isinstance(a, dict):
            raise FsConfigError(f"{where}: expected a mapping with extension, name, password_env")
        ext = a.get("extension")
        if not isinstance(ext, str) or not _EXTENSION.match(ext):
            raise FsConfigError(f"{where}.extension: expected 2-8 digits in quotes, got {ext!r}")
        if ext in seen:
            raise FsConfigError(f"{where}.extension: {ext} is listed twice")
        seen.add(ext)
        role = a.get("role", "agent")
        if role not in ("agent", "supervisor"):
            raise FsConfigError(f"{where}.role: agent or supervisor, got {role!r}")
        a1_hash, password = a.get("a1_hash"), ""
        if a1_hash is not None:
            if not isinstance(a1_hash, str) or not _A1_HASH.match(a1_hash):
                raise FsConfigError(f"{where}.a1_hash: expected 32 lowercase hex digits")
        else:
            var = a.get("password_env")
            if not isinstance(var, str) or not var:
                raise FsConfigError(f"{where}: needs password_env (or a1_hash) for the phone's SIP password")
            password = env.get(var)
            if not password:
                raise FsConfigError(f"{where}.password_env: environment variable {var} is not set")
            _check_secret(f"{where}.password_env ({var})", password)
        name = commands.safe_text(a.get("name") or f"Agent {ext}", 64)
        out.append({"extension": ext, "name": name, "role": role, "a1_hash": a1_hash, "password": password})
    return out


# --- files ------------------------------------------------------------------------------------

def _copy(src, path):
    """A shipped binary file (the fallback prompt) written as _write writes text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(src.read_bytes())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def _write(path, text, mode):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- CLI --------------------------------------------------------------------------------------

def register(subparsers):
    from engine.infra.clitext import add_option, default_config
    parser = subparsers.add_parser("fs-config", help="the FreeSWITCH configuration for these settings")
    sub = parser.add_subparsers(dest="fs_command", metavar="ACTION", required=True)
    rend = sub.add_parser("render", help="write freeswitch.xml and the files it includes into a directory")
    rend.add_argument("--out", required=True, metavar="DIR",
                      help="directory, e.g. /etc/freeswitch (files there are replaced)")
    add_option(rend, "--config", default=default_config())
    add_option(rend, "--json")
    rend.set_defaults(func=cmd_render)


def cmd_render(args):
    import json
    from engine.settings import load_settings
    settings = load_settings(args.config)           # SettingsError / FsConfigError: hotline: error: ...
    paths = render(settings, args.out)
    if args.json:
        print(json.dumps({"out": str(args.out), "files": [str(p) for p in paths]}, ensure_ascii=False, indent=1))
        return 0
    for p in paths:
        print(p)
    print(f"hotline fs-config: {len(paths)} files written; start FreeSWITCH with "
          f"-conf {args.out} (or copy them over its conf directory), then `hotline run`", file=sys.stderr)
    return 0
