"""`hotline init DIR`: a starting settings directory for a server, from the files hotline ships.

    DIR/hotline.yaml, agents.yaml, queues.yaml, tickets.yaml    the samples, every setting listed
    DIR/ivr_flows/                                              sample flows and bots (+ schema.json)
    DIR/secrets.env                                             mode 0600: the variables to fill in
    DIR/systemd/hotline.service, hotline-sim.service            (--systemd-dir to write them there)
    DIR/logrotate/hotline                                       (--logrotate-dir likewise)

The samples are adapted to a server's layout: engine data in /var/lib/hotline (the unit's
StateDirectory=), the log file in /var/log/hotline (LogsDirectory=, rotated by the logrotate file),
flows beside the settings; the units run this installation's `hotline` on DIR/hotline.yaml.
Nothing is overwritten: when any file to write exists, init writes nothing and names them.
"""
import os
import re
import shutil
import sys
from pathlib import Path

from engine import assets

VAR_DIR = "/var/lib/hotline"           # the units' StateDirectory=hotline
LOG_FILE = "/var/log/hotline/hotline.log"   # the units' LogsDirectory=hotline, the logrotate glob
# what the shipped unit files name, replaced by this installation's paths
UNIT_EXECUTABLE = "/opt/hotline/bin/hotline"
UNIT_CONFIG_DIR = "/etc/hotline"
SETTINGS_FILES = ("hotline.yaml", "agents.yaml", "queues.yaml", "tickets.yaml")
UNITS = ("hotline.service", "hotline-sim.service")
# sample settings lines (etc/hotline.yaml, laid out for the checkout) -> a server's
SERVER_LINES = (
    (r"^  var_dir: \.\./var$", f"  var_dir: {VAR_DIR}"),
    (r"^  flows_dir: \.\./ivr_flows +(#.*)$", r"  flows_dir: ivr_flows            \1"),
    (r"^  file: null +# null = stderr$", f"  file: {LOG_FILE}   # null = stderr; rotated by /etc/logrotate.d/hotline"),
)


class InitError(Exception):
    pass


def register(subparsers):
    p = subparsers.add_parser("init", help="write a starting settings directory (samples, flows, "
                                           "secrets file, systemd units, logrotate)")
    p.add_argument("dir", help="the settings directory to create, e.g. /etc/hotline")
    p.add_argument("--systemd-dir", help="write the unit files there (e.g. /etc/systemd/system) "
                                         "instead of DIR/systemd")
    p.add_argument("--logrotate-dir", help="write the logrotate file there (e.g. /etc/logrotate.d) "
                                           "instead of DIR/logrotate")
    p.set_defaults(func=cmd_init)


def cmd_init(args):
    from engine.infra.clitext import UsageError, escaped
    if not str(args.dir).isprintable():
        raise UsageError(f"init {escaped(args.dir)}: a directory name with control characters")
    try:
        written = init(Path(args.dir), systemd_dir=args.systemd_dir, logrotate_dir=args.logrotate_dir)
    except InitError as exc:
        print(f"hotline init: {exc}", file=sys.stderr)
        return 1
    target = Path(args.dir).resolve()
    for path in written:
        print(f"  {path}")
    units = Path(args.systemd_dir or target / "systemd")
    rotate = Path(args.logrotate_dir or target / "logrotate")
    print(f"""hotline init: {len(written)} files written. Next (README.md, "Install on a server"):
  edit {target / 'hotline.yaml'} (trunk.dids, esl, redis, outbound, switch.user) and the agents and queues
  fill in {target / 'secrets.env'} (read by systemd; `hotline privacy keygen` makes HOTLINE_PII_KEY)
  hotline fs-config render --config {target / 'hotline.yaml'} --out /etc/freeswitch""")
    if not args.systemd_dir:
        print(f"  install -m 644 {units / 'hotline.service'} /etc/systemd/system/")
    if not args.logrotate_dir:
        print(f"  install -m 644 {rotate / 'hotline'} /etc/logrotate.d/hotline")
    print("  systemctl daemon-reload && systemctl enable --now hotline")
    return 0


def init(target, systemd_dir=None, logrotate_dir=None, executable=None):
    """Write the directory; return the files written. InitError (nothing written) if any exists."""
    target = Path(target).resolve()
    units_dir = Path(systemd_dir).resolve() if systemd_dir else target / "systemd"
    rotate_dir = Path(logrotate_dir).resolve() if logrotate_dir else target / "logrotate"
    flows = assets.path("ivr_flows")
    plan = {}                                                   # destination -> text or source path
    for name in SETTINGS_FILES:
        plan[target / name] = assets.path(f"etc/{name}")
    plan[target / "hotline.yaml"] = server_settings(assets.path("etc/hotline.yaml").read_text(encoding="utf-8"))
    for src in sorted(p for p in flows.rglob("*") if p.is_file()):
        plan[target / "ivr_flows" / src.relative_to(flows)] = src
    plan[target / "secrets.env"] = secrets_template(assets.path("etc/agents.yaml").read_text(encoding="utf-8"))
    exe = executable or this_executable()
    for name in UNITS:
        plan[units_dir / name] = unit_text(assets.path(f"systemd/{name}").read_text(encoding="utf-8"), exe, target)
    plan[rotate_dir / "hotline"] = assets.path("logrotate/hotline")
    existing = [str(p) for p in plan if os.path.lexists(p)]
    if existing:
        raise InitError("not overwriting what is there (move it away or choose another directory): "
                        + ", ".join(existing))
    for dest, content in plan.items():
        dest.parent.mkdir(parents=True, exist_ok=True)
        secret = dest.name == "secrets.env"
        # created, never truncated: a file that appeared meanwhile is not overwritten either
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content.read_bytes())
    return list(plan)


def server_settings(text):
    """The sample settings with a server's paths; InitError if the sample no longer has a line."""
    for pattern, replacement in SERVER_LINES:
        text, n = re.subn(pattern, replacement, text, count=1, flags=re.M)
        if n != 1:
            raise InitError(f"the shipped hotline.yaml has no line matching {pattern!r} (a broken build?)")
    return text


def secrets_template(agents_text):
    names = ["HOTLINE_ESL_PASSWORD"] + sorted(set(re.findall(r"password_env:\s*([A-Z0-9_]+)", agents_text)))
    lines = ["# Secrets of the hotline engine, read by systemd (EnvironmentFile=) before it starts the",
             "# engine as its own user: keep this file root's, mode 0600. An empty value counts as unset.",
             "# Names: esl.password_env, trunk.password_env, control.tokens[].token_env of hotline.yaml,",
             "# agents' password_env of agents.yaml (fs-config render reads them).",
             "# HOTLINE_PII_KEY: `hotline privacy keygen`; unset = callers' ID numbers are kept masked only."]
    lines += [f"{name}=" for name in names] + ["#HOTLINE_PII_KEY=", ""]
    return "\n".join(lines)


def this_executable():
    """The `hotline` script of the environment running this code (a virtualenv's bin/)."""
    beside = Path(sys.executable).parent / "hotline"
    if beside.is_file():
        return str(beside)
    found = shutil.which("hotline")
    return str(Path(found).resolve()) if found else UNIT_EXECUTABLE


def unit_text(text, executable, config_dir):
    """A shipped unit with this installation's executable and settings directory."""
    return text.replace(UNIT_EXECUTABLE, executable).replace(f"{UNIT_CONFIG_DIR}/", f"{config_dir}/")
