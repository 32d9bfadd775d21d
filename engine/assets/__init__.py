"""Files the engine ships beside its code, read through importlib.resources.

    ivr_flows/        sample flows, bots, schema.json      etc/        sample settings files
    freeswitch_conf/  FreeSWITCH templates (+ sounds/)     dialplans/  dialplan templates
    systemd/          unit files                           logrotate/  the log rotation file

The repository keeps each of them once, at its top (`ivr_flows/`, `etc/`, `scripts/systemd/`...):
in a checkout the entries here are symlinks to those directories, and a built wheel holds real
copies under `engine/assets/` (setup.cfg's package_data), so a checkout, an editable install and
an installed wheel all read them the same way: `assets.path("ivr_flows")`.
"""
from importlib import resources
from pathlib import Path


def path(name: str) -> Path:
    """The file or directory `name` (e.g. "freeswitch_conf/sounds") shipped with the engine.

    A Path, not only a Traversable: jinja2's loader, rglob and shutil.copytree need one. pip
    installs wheels unpacked, so the package's files are always on disk."""
    root = resources.files(__name__)
    if not isinstance(root, Path):
        raise RuntimeError(f"hotline's files are not on disk ({root!r}): install the wheel with pip")
    found = root / name
    if not found.exists():
        raise FileNotFoundError(f"{found}: missing from this hotline installation (a broken build?)")
    return found
