"""Settings of one hotline engine: one YAML file, one schema, errors that point at file:line:column.

The schema is the dataclasses below and nothing else: `load_settings` walks the YAML against their
type hints and `setting(...)` metadata (bounds, choices, reloadable), so a rule is written once.
Every problem stops start-up with `SettingsError("etc/hotline.yaml:12:9: esl.port: ...")`.

Secrets are never in the file: the file names the environment variable that holds them
(`esl.password_env`, `control.tokens[].token_env`) and the loaded object carries the value.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Optional, Tuple

from engine.infra import yamlpos
from ruamel.yaml.error import MarkedYAMLError, YAMLError

DEFAULT_ESL_PASSWORD = "ClueCon"   # FreeSWITCH's stock password; only with allow_default_password


class SettingsError(ValueError):
    """A setting is wrong, missing or unknown; the message names the setting and where it is."""


def setting(default=dataclasses.MISSING, *, doc: str = "", reloadable: bool = False,
            min: float | None = None, max: float | None = None, choices: tuple = (),
            min_items: int = 0, derived: bool = False, secret: bool = False):
    """One schema entry. `derived` values are computed at load time and refused in the file."""
    meta = dict(doc=doc, reloadable=reloadable, min=min, max=max, choices=tuple(choices),
                min_items=min_items, derived=derived)
    if isinstance(default, (list, dict)):
        raise TypeError("use a tuple default: settings are immutable")
    return field(default=default, metadata=meta, repr=not secret, compare=True)


# --- the schema ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class EslSettings:
    host: str = setting("127.0.0.1", doc="FreeSWITCH event socket address")
    port: int = setting(8021, min=1, max=65535)
    password_env: str = setting("HOTLINE_ESL_PASSWORD", doc="environment variable holding the password")
    allow_default_password: bool = setting(False, doc="fall back to 'ClueCon' if the variable is unset (labs only)")
    connect_timeout: float = setting(5.0, min=0.1, max=120)
    reconnect_max_delay: float = setting(10.0, min=0.1, max=600)
    password: str = setting("", derived=True, secret=True)


@dataclass(frozen=True)
class OutboundSettings:
    listen_host: str = setting("127.0.0.1", doc="where the engine's socket server listens")
    listen_port: int = setting(8084, min=1, max=65535)
    advertise_host: Optional[str] = setting(None, doc="address the dialplan's socket action dials; default listen_host")
    standby: Optional[str] = setting(None, doc="host:port of a second engine the dialplan tries when this "
                                     "one refuses the connection (stopped, shutting down); unset = none")
    unavailable_prompt: Optional[Path] = setting(
        None, doc="sound file the switch plays when no engine takes the call ('service temporarily "
                  "unavailable'), a path on the switch; default the one fs-config render writes")


@dataclass(frozen=True)
class RedisSettings:
    url: str = setting("redis://127.0.0.1:6379/0")
    prefix: str = setting("hl:", doc="key prefix: engines sharing one ACD use the same prefix")
    sentinels: Tuple[str, ...] = setting((), doc="host:port of Redis Sentinels; set = the master is the one "
                                         "they name for master_name (url gives only db and password)")
    master_name: str = setting("hotline", doc="the master's name in the sentinels' configuration")
    sentinel_password_env: Optional[str] = setting(None, doc="environment variable holding the sentinels' password")
    sentinel_password: str = setting("", derived=True, secret=True)
    dead_engine_grace: float = setting(
        30.0, min=0, max=3600, doc="seconds an engine keeps a dead engine's agents booked when their legs are "
        "on that engine's switch (not this one): time for its successor to adopt live legs")


@dataclass(frozen=True)
class DatabaseSettings:
    url: Optional[str] = setting(None, doc="default sqlite:///<var_dir>/hotline.db; postgresql://... works too")
    busy_timeout: float = setting(1.0, min=0.0, max=60, doc="seconds SQLite waits on a lock per try")
    retries: int = setting(3, min=0, max=20, doc="tries before a CDR goes to the spool file")
    spool_drain_interval: float = setting(5.0, min=0.05, max=3600)


@dataclass(frozen=True)
class PathsSettings:
    var_dir: Path = setting(Path("var"))
    recordings: Optional[Path] = setting(None, doc="default <var_dir>/recordings")
    archive: Optional[Path] = setting(None, doc="default <var_dir>/archive")
    prompt_cache: Optional[Path] = setting(None, doc="default <var_dir>/prompts")
    cdr_spool: Optional[Path] = setting(None, doc="default <var_dir>/spool")


@dataclass(frozen=True)
class RecordingsSettings:
    retention_months: int = setting(24, min=12, max=1200, doc="archive purge age; public hotlines keep 12 months at least")
    compress: str = setting("none", choices=("none", "opus", "mp3"), doc="re-encode archived recordings with ffmpeg")
    backup_dir: Optional[Path] = setting(None, doc="a second copy of every archived recording; unset = none")
    # The switch records at the channel's codec rate unless told: an OPUS caller gives 48 kHz
    # stereo, six times the size, for a voice that crossed G.711 (8 kHz) trunks and desk phones.
    sample_rate: int = setting(8000, choices=(8000, 16000, 48000),
                               doc="record_sample_rate of calls, voicemail and survey comments")
    purge_at: Optional[str] = setting("03:30", doc="daily time (HH:MM, purge_tz) the engine runs the "
                                                   "retention purge; null = only by hand")
    purge_tz: str = setting("Asia/Shanghai", doc="time zone of purge_at")


@dataclass(frozen=True)
class TtsSettings:
    edge_enabled: bool = setting(True)
    edge_voice: str = setting("zh-CN-XiaoxiaoNeural")
    edge_timeout: float = setting(3.0, min=0.1, max=60)
    edge_retry_after: float = setting(60.0, min=0, max=86400, doc="seconds to skip edge-tts after a failure")
    espeak_voice: str = setting("cmn-latn-pinyin")
    edge_for_caller_text: bool = setting(
        False, doc="also send text built from a caller's data (read-backs of ID numbers, amounts, "
                   "names) to edge-tts, an online service; off = only fixed prompts go online, "
                   "per-caller text is rendered offline by espeak-ng")


@dataclass(frozen=True)
class AsrSettings:
    vosk_model: Optional[Path] = setting(None, doc="model directory; unset disables speech input")
    sample_rate: int = setting(16000, choices=(8000, 16000))


@dataclass(frozen=True)
class TokenSettings:
    name: str = setting()
    role: str = setting(choices=("agent", "supervisor", "admin"))
    token_env: str = setting(doc="environment variable holding the token")
    agent: Optional[str] = setting(None, doc="agent id an agent token acts for")
    token: str = setting("", derived=True, secret=True)


@dataclass(frozen=True)
class ControlSettings:
    listen_host: str = setting("127.0.0.1")
    listen_port: int = setting(8090, min=1, max=65535)
    tokens: Tuple[TokenSettings, ...] = setting((), reloadable=True)


@dataclass(frozen=True)
class FilesSettings:
    flows_dir: Path = setting(Path("ivr_flows"), reloadable=True)
    agents: Path = setting(Path("agents.yaml"), reloadable=True)
    queues: Path = setting(Path("queues.yaml"), reloadable=True)
    welcome_prompt: Optional[Path] = setting(None, doc="audio file played to every caller when no IVR flow is "
                                             "configured; unset plays a short tone")


@dataclass(frozen=True)
class ShutdownSettings:
    grace_seconds: float = setting(30.0, min=0, max=3600)


@dataclass(frozen=True)
class TrunkSettings:
    dids: Tuple[str, ...] = setting(min_items=1, doc="numbers callers dial; quote them")
    gateway: str = setting("trunk", doc="sofia gateway name in the external profile")
    proxy: Optional[str] = setting(None, doc="carrier SIP address; unset renders no gateway")
    register: bool = setting(False)
    username: Optional[str] = setting(None)
    password_env: Optional[str] = setting(None)
    cidrs: Tuple[str, ...] = setting((), doc="carrier addresses allowed on the external profile")
    password: str = setting("", derived=True, secret=True)


@dataclass(frozen=True)
class SwitchSettings:
    domain: str = setting("$${local_ip_v4}", doc="SIP domain agents' phones register to")
    sip_ip: str = setting("$${local_ip_v4}")
    internal_port: int = setting(5060, min=1, max=65535)
    external_port: int = setting(5080, min=1, max=65535)
    max_sessions: int = setting(1500, min=1)
    sessions_per_second: int = setting(100, min=1)
    rtp_start_port: int = setting(16384, min=1024, max=65535)
    rtp_end_port: int = setting(32768, min=1024, max=65535)
    trunk_codecs: Tuple[str, ...] = setting(("PCMA", "PCMU", "OPUS"), min_items=1)
    phone_codecs: Tuple[str, ...] = setting(("PCMA", "PCMU"), min_items=1)
    esl_acl: Tuple[str, ...] = setting(("127.0.0.1/32",), min_items=1)
    cdr_dir: Optional[Path] = setting(None, doc="switch's own XML CDR files; default <var_dir>/fs-cdr")
    music_dir: Optional[Path] = setting(None, doc="files of local_stream://moh; default <var_dir>/music")
    user: Optional[str] = setting(None, doc="account FreeSWITCH runs as: start-up checks it can write "
                                  "the directories it shares with the engine; unset = not checked")


@dataclass(frozen=True)
class PrivacySettings:
    reveal_role: str = setting("admin", choices=("supervisor", "admin"),
                               doc="least control-API role that may see callers' ID and card numbers "
                                   "in clear (POST /v1/cdrs/<uuid>/reveal, audited)")


@dataclass(frozen=True)
class LogSettings:
    level: str = setting("INFO", reloadable=True, choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    file: Optional[Path] = setting(None, doc="unset logs to stderr")
    libraries_level: str = setting("INFO", reloadable=True, choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                                   doc="peewee, urllib3, asyncio...: their DEBUG floods the log")


from engine.outbound.config import OutboundCallSettings, check as check_outbound_calls  # noqa: E402


@dataclass(frozen=True)
class Settings:
    trunk: TrunkSettings = setting()
    esl: EslSettings = setting(EslSettings())
    outbound: OutboundSettings = setting(OutboundSettings())
    redis: RedisSettings = setting(RedisSettings())
    database: DatabaseSettings = setting(DatabaseSettings())
    paths: PathsSettings = setting(PathsSettings())
    recordings: RecordingsSettings = setting(RecordingsSettings())
    tts: TtsSettings = setting(TtsSettings())
    asr: AsrSettings = setting(AsrSettings())
    control: ControlSettings = setting(ControlSettings())
    files: FilesSettings = setting(FilesSettings())
    shutdown: ShutdownSettings = setting(ShutdownSettings())
    switch: SwitchSettings = setting(SwitchSettings())
    log: LogSettings = setting(LogSettings())
    privacy: PrivacySettings = setting(PrivacySettings())
    outbound_calls: OutboundCallSettings = setting(OutboundCallSettings())
    source: Optional[Path] = setting(None, derived=True, doc="the file these came from")
    marks: Any = field(default=None, repr=False, compare=False, metadata={"derived": True})

    def where(self, path: str) -> str:
        """'file:line:column' of a setting (or of its nearest parent), for errors raised later."""
        return _where(self.marks or {}, self.source, path)


# --- loading ------------------------------------------------------------------------------------

def load_settings(path, env=None) -> Settings:
    """Read and check the settings file; raise SettingsError naming the setting and file:line."""
    path = Path(path)
    root, marks = load_yaml(path, SettingsError)
    return _finish(root, marks, path, path.resolve().parent, env)


def default_settings(base_dir=None, env=None, **sections) -> Settings:
    """Settings for tests and the demo: schema defaults, one DID, the stock ESL password allowed.

    `sections` override whole keys per section, e.g. default_settings(paths={"var_dir": tmp}).
    """
    root = {"trunk": {"dids": ["12345"]}, "esl": {"allow_default_password": True}}
    for name, values in sections.items():
        root.setdefault(name, {}).update(values)
    return _finish(root, {}, None, Path(base_dir or os.getcwd()).resolve(), env)


def load_yaml(path: Path, error=SettingsError):
    """Parse a YAML file keeping positions: returns (data, marks {dotted path: (line, col)})."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yamlpos.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise error(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except YAMLError as exc:
        raise error(f"{path}: invalid YAML: {exc}") from None
    marks: dict = {}
    _collect_marks(data, "", marks)
    return data, marks


def _collect_marks(node, prefix, marks):
    # ruamel positions are 0-based; we keep them 1-based. A key's mark is where its key starts.
    if isinstance(node, dict) and hasattr(node, "lc"):
        marks.setdefault(prefix, (node.lc.line + 1, node.lc.col + 1))
        for key, value in node.items():
            sub = f"{prefix}.{key}" if prefix else str(key)
            line, col = node.lc.key(key)
            marks[sub] = (line + 1, col + 1)
            _collect_marks(value, sub, marks)
    elif isinstance(node, list) and hasattr(node, "lc"):
        for i, value in enumerate(node):
            sub = f"{prefix}[{i}]"
            line, col = node.lc.item(i)
            marks[sub] = (line + 1, col + 1)
            _collect_marks(value, sub, marks)


def _where(marks, source, path):
    probe = path
    while probe and probe not in marks:
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    line, col = marks.get(probe, (1, 1))
    return f"{source or '<defaults>'}:{line}:{col}"


class SchemaBuilder:
    """Turns plain YAML data into frozen dataclasses, checking every value against the schema."""

    def __init__(self, marks, source, base_dir, error=SettingsError):
        self.marks, self.source, self.base_dir, self.error = marks, source, base_dir, error

    def fail(self, path, problem):
        raise self.error(f"{_where(self.marks, self.source, path)}: {path}: {problem}")

    def build(self, cls, data, path):
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.fail(path or cls.__name__, f"expected a mapping of settings, got {_kind(data)}")
        hints = typing.get_type_hints(cls)
        known = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("derived")}
        for key in data:
            if key not in known:
                sub = f"{path}.{key}" if path else str(key)
                near = difflib.get_close_matches(str(key), known, n=1)
                hint = f" (did you mean '{near[0]}'?)" if near else f"; known: {', '.join(known)}"
                self.fail(sub, f"unknown setting{hint}")
        values = {}
        for name, f in known.items():
            sub = f"{path}.{name}" if path else name
            if name in data:
                values[name] = self.value(hints[name], data[name], sub, f.metadata)
            elif f.default is dataclasses.MISSING:
                self.fail(sub, "required setting is missing")
            elif dataclasses.is_dataclass(hints[name]):
                values[name] = self.build(hints[name], {}, sub)   # so its defaults resolve too
            elif isinstance(f.default, Path):
                values[name] = _resolve(self.base_dir, f.default)
        return cls(**values)

    def value(self, tp, raw, path, meta):
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            if raw is None:
                return None
            tp = next(a for a in args if a is not type(None))
            return self.value(tp, raw, path, meta)
        if origin is tuple:
            if not isinstance(raw, list):
                self.fail(path, f"expected a list, got {_kind(raw)}")
            if len(raw) < meta.get("min_items", 0):
                self.fail(path, f"needs at least {meta['min_items']} item(s)")
            return tuple(self.value(args[0], item, f"{path}[{i}]", {}) for i, item in enumerate(raw))
        if origin is dict:
            # A mapping of names to values (agent skills: {pension: 8}); keys are always text.
            if not isinstance(raw, dict):
                self.fail(path, f"expected a mapping, got {_kind(raw)}")
            return types.MappingProxyType({str(k): self.value(args[1], v, f"{path}.{k}", meta)
                                           for k, v in raw.items()})
        if dataclasses.is_dataclass(tp):
            return self.build(tp, raw, path)
        value = self.scalar(tp, raw, path)
        self.check_bounds(value, path, meta)
        return value

    def scalar(self, tp, raw, path):
        if tp is bool:
            if not isinstance(raw, bool):
                self.fail(path, f"expected true or false, got {_kind(raw)}")
            return raw
        if tp is int:
            if isinstance(raw, bool) or not isinstance(raw, int):
                self.fail(path, f"expected an integer, got {_kind(raw)}")
            return int(raw)
        if tp is float:
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                self.fail(path, f"expected a number, got {_kind(raw)}")
            return float(raw)
        if tp is str:
            if isinstance(raw, (int, float)) and not isinstance(raw, bool):
                # YAML reads 01012345 as a number and drops the 0: insist on quotes.
                self.fail(path, f"expected text, got the number {raw!r}; quote it: \"{raw}\"")
            if not isinstance(raw, str):
                self.fail(path, f"expected text, got {_kind(raw)}")
            return str(raw)
        if tp is Path:
            if not isinstance(raw, str) or not raw:
                self.fail(path, f"expected a path, got {_kind(raw)}")
            return _resolve(self.base_dir, Path(raw).expanduser())
        raise TypeError(f"schema type {tp!r} at {path} is not supported")

    def check_bounds(self, value, path, meta):
        choices = meta.get("choices")
        if choices and value not in choices:
            self.fail(path, f"must be one of {', '.join(map(str, choices))}; got {value!r}")
        if meta.get("min") is not None and value < meta["min"]:
            self.fail(path, f"must be at least {meta['min']}; got {value!r}")
        if meta.get("max") is not None and value > meta["max"]:
            self.fail(path, f"must be at most {meta['max']}; got {value!r}")


def _kind(raw):
    if raw is None:
        return "nothing"
    if isinstance(raw, str):
        return f"the text {raw!r}"
    return {dict: "a mapping", list: "a list", bool: f"{raw!r}"}.get(type(raw), f"{type(raw).__name__} {raw!r}")


def _resolve(base_dir: Path, p: Path) -> Path:
    # Relative paths are relative to the settings file, so a deployment dir can be moved whole.
    return p if p.is_absolute() else (base_dir / p).resolve()


def _finish(root, marks, source, base_dir, env) -> Settings:
    env = os.environ if env is None else env
    builder = SchemaBuilder(marks, source, base_dir)
    s = builder.build(Settings, root, "")
    var = s.paths.var_dir
    paths = dataclasses.replace(
        s.paths,
        recordings=s.paths.recordings or var / "recordings",
        archive=s.paths.archive or var / "archive",
        prompt_cache=s.paths.prompt_cache or var / "prompts",
        cdr_spool=s.paths.cdr_spool or var / "spool",
    )
    esl = dataclasses.replace(s.esl, password=_esl_password(s.esl, env, builder))
    tokens = tuple(dataclasses.replace(t, token=_secret(env, t.token_env, f"control.tokens[{i}].token_env", builder))
                   for i, t in enumerate(s.control.tokens))
    _check_tokens(tokens, builder)
    trunk = s.trunk
    if trunk.password_env:
        trunk = dataclasses.replace(trunk, password=_secret(env, trunk.password_env, "trunk.password_env", builder))
    _check_purge_time(s.recordings, builder)
    check_outbound_calls(s.outbound_calls, builder.fail)
    rds = _redis_settings(s.redis, env, builder)
    outbound = s.outbound
    if not outbound.advertise_host:
        if outbound.listen_host in ("0.0.0.0", "::", ""):
            builder.fail("outbound.advertise_host", "required when listen_host is a wildcard address")
        outbound = dataclasses.replace(outbound, advertise_host=outbound.listen_host)
    return dataclasses.replace(
        s, paths=paths, esl=esl, trunk=trunk, outbound=outbound, redis=rds,
        control=dataclasses.replace(s.control, tokens=tokens),
        database=dataclasses.replace(s.database, url=_database_url(s.database.url, var, base_dir, builder)),
        switch=dataclasses.replace(s.switch, cdr_dir=s.switch.cdr_dir or var / "fs-cdr",
                                   music_dir=s.switch.music_dir or var / "music"),
        source=source, marks=marks,
    )


def _redis_settings(rds, env, builder):
    from engine.infra.redisconn import parse_sentinels
    for i, entry in enumerate(rds.sentinels):
        try:
            parse_sentinels([entry])
        except ValueError as exc:
            builder.fail(f"redis.sentinels[{i}]", str(exc))
    if rds.sentinel_password_env:
        return dataclasses.replace(rds, sentinel_password=_secret(
            env, rds.sentinel_password_env, "redis.sentinel_password_env", builder))
    return rds


def _check_purge_time(rec, builder):
    import zoneinfo
    from engine.media.retention import parse_hhmm
    if rec.purge_at is not None:
        try:
            parse_hhmm(rec.purge_at)
        except ValueError as exc:
            builder.fail("recordings.purge_at", str(exc))
    try:
        zoneinfo.ZoneInfo(rec.purge_tz)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        builder.fail("recordings.purge_tz", f"unknown time zone {rec.purge_tz!r}")


def _secret(env, name, path, builder):
    value = env.get(name)
    if not value:
        builder.fail(path, f"environment variable {name} is not set")
    return value


def _esl_password(esl, env, builder):
    if env.get(esl.password_env):
        return env[esl.password_env]
    if esl.allow_default_password:
        return DEFAULT_ESL_PASSWORD
    builder.fail("esl.password_env", f"environment variable {esl.password_env} is not set "
                 "(set it, or esl.allow_default_password: true in a lab)")


def _check_tokens(tokens, builder):
    seen = {}
    for i, t in enumerate(tokens):
        if t.token in seen:
            builder.fail(f"control.tokens[{i}].token_env", f"same token as control.tokens[{seen[t.token]}]")
        seen[t.token] = i
        if t.role == "agent" and not t.agent:
            builder.fail(f"control.tokens[{i}].agent", "an agent token must name its agent")


def _database_url(url, var_dir, base_dir, builder):
    if url is None:
        return f"sqlite:///{var_dir / 'hotline.db'}"
    scheme = url.split(":", 1)[0]
    if scheme not in ("sqlite", "postgresql", "postgres"):
        builder.fail("database.url", f"unsupported database {scheme!r}; use sqlite:/// or postgresql://")
    if scheme == "sqlite":
        if not url.startswith("sqlite:///"):
            builder.fail("database.url", "SQLite URLs take three slashes: sqlite:///relative.db or sqlite:////abs.db")
        rest = url[len("sqlite:///"):]
        if rest != ":memory:" and not rest.startswith("/"):
            return f"sqlite:///{_resolve(base_dir, Path(rest))}"
    return url


# --- reload -------------------------------------------------------------------------------------

class SettingsDiff(NamedTuple):
    reloadable: tuple      # changed setting paths SIGHUP may apply
    restart_required: tuple  # changed setting paths that only take effect after a restart


def reloadable_diff(old: Settings, new: Settings) -> SettingsDiff:
    """Which settings changed between two loads, split by whether a reload may apply them."""
    hot, cold = [], []
    _diff(old, new, "", False, hot, cold)
    return SettingsDiff(tuple(hot), tuple(cold))


def _diff(old, new, path, reloadable, hot, cold):
    for f in dataclasses.fields(old):
        if not f.compare or f.name == "source":
            continue
        sub = f"{path}.{f.name}" if path else f.name
        a, b = getattr(old, f.name), getattr(new, f.name)
        if a == b:
            continue
        live = reloadable or f.metadata.get("reloadable", False)
        if dataclasses.is_dataclass(a) and not live:
            _diff(a, b, sub, live, hot, cold)
        else:
            (hot if live else cold).append(sub)


def schema_paths(cls=Settings, prefix="") -> list:
    """Every setting path a file may hold (used to keep etc/hotline.yaml's documentation complete)."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.metadata.get("derived"):
            continue
        sub = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.extend(schema_paths(tp, sub))
        else:
            out.append(sub)
    return out
