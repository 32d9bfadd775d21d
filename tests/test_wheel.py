"""The built wheel is complete: installed alone into a fresh virtualenv, away from the checkout,
`hotline` runs from it — help, lint of the shipped sample flows and bots, `init` of a settings
directory, and `fs-config render` of the FreeSWITCH configuration with its sound file.

The wheel is built offline (`--no-isolation`: the build backend of this virtualenv) from a copy of
the sources, so the checkout gets no build/ or egg-info. The fresh virtualenv sees the project's
dependencies through a .pth line to this virtualenv's site-packages, placed after its own, while
the wheel itself is installed with --no-deps: `engine` must then come from the wheel."""
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv", "var", "tests", "build", "dist", "*.egg-info",
                                     "__pycache__", ".pytest_cache", "docs", ".ci")


def run(cmd, cwd, env, ok=True):
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=300)
    if ok and result.returncode != 0:
        raise AssertionError(f"{cmd} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def clean_env():
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


def copy_sources(dest):
    # symlinks=True: engine/assets/* are links to the top-level directories, as in the repository
    shutil.copytree(REPO, dest, symlinks=True, ignore=NOT_SOURCES)
    return dest


def fresh_venv(venv, env, *pip_install):
    """A virtualenv of its own that sees our dependencies (a .pth after its own site-packages);
    `pip_install` arguments install hotline into it without dependencies or an index."""
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=venv.parent, env=env)
    python = venv / "bin" / "python"
    own = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], venv.parent,
              env).stdout.strip()
    shared = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(own, "zz_shared_dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(shared)))
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q",
         *pip_install], cwd=venv.parent, env=env)
    return python, Path(own)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    env = clean_env()
    src = copy_sources(tmp / "src")
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", tmp / "dist", src],
        cwd=tmp, env=env)
    (wheel,) = (tmp / "dist").glob("hotline-*.whl")
    venv = tmp / "venv"
    python, own = fresh_venv(venv, env, wheel)
    work = tmp / "elsewhere"          # not the checkout: nothing there to import by accident
    work.mkdir()
    return {"wheel": wheel, "venv": venv, "python": python, "hotline": venv / "bin" / "hotline",
            "site": own, "cwd": work, "env": env}


def test_the_wheel_holds_flows_templates_sounds_units_and_scenarios(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for name in ["engine/assets/ivr_flows/12345.yaml", "engine/assets/ivr_flows/schema.json",
                 "engine/assets/ivr_flows/bots/city_hotline.yaml", "engine/assets/ivr_flows/shared/social_insurance.yaml",
                 "engine/assets/etc/hotline.yaml", "engine/assets/etc/tickets.yaml",
                 "engine/assets/dialplans/public.xml", "engine/assets/freeswitch_conf/freeswitch.xml",
                 "engine/assets/freeswitch_conf/autoload_configs/sofia.conf.xml",
                 "engine/assets/freeswitch_conf/sounds/hotline_unavailable.wav",
                 "engine/assets/systemd/hotline.service", "engine/assets/systemd/hotline-sim.service",
                 "engine/assets/logrotate/hotline", "engine/sim/scenarios/demo.yaml",
                 "engine/sim/event_headers.json", "engine/acd/__init__.py"]:
        assert name in names
    # every file of the shipped directories, none forgotten by a package_data pattern
    for top, under in [("ivr_flows", "ivr_flows"), ("freeswitch_conf", "freeswitch_conf"),
                       ("dialplans", "dialplans"), ("etc", "etc"), ("scripts/systemd", "systemd"),
                       ("scripts/logrotate", "logrotate")]:
        for path in (REPO / top).rglob("*"):
            if path.is_file():
                assert f"engine/assets/{under}/{path.relative_to(REPO / top).as_posix()}" in names
    assert not any(name.startswith("tests/") for name in names)


def test_hotline_runs_from_the_wheel_not_the_checkout(installed):
    i = installed
    where = run([i["python"], "-c", "import engine, engine.assets as a; print(engine.__file__); "
                 "print(a.path('ivr_flows'))"], i["cwd"], i["env"]).stdout.split()
    assert Path(where[0]).is_relative_to(i["site"]), where
    assert Path(where[1]) == i["site"] / "engine" / "assets" / "ivr_flows"
    assert not Path(where[1]).is_symlink()          # real copies in the wheel
    out = run([i["hotline"], "--help"], i["cwd"], i["env"]).stdout
    for command in ("run", "init", "sim", "fs-config", "ivr"):
        assert command in out
    flows = Path(where[1])
    assert run([i["hotline"], "ivr", "lint", flows], i["cwd"], i["env"]).stdout.strip().endswith("0 errors, 0 warnings")
    run([i["hotline"], "bot", "lint", flows / "bots"], i["cwd"], i["env"])


def test_init_then_render_from_the_wheel(installed):
    i = installed
    etc = i["cwd"] / "etc-hotline"
    run([i["hotline"], "init", etc], i["cwd"], i["env"])
    # the units run the wheel's own `hotline` on the new directory's settings
    unit = (etc / "systemd" / "hotline.service").read_text()
    assert f"ExecStart={i['hotline']} run --config {etc / 'hotline.yaml'}\n" in unit
    assert run([i["hotline"], "ivr", "lint", etc / "ivr_flows"], i["cwd"], i["env"]).stdout.strip().endswith("0 errors, 0 warnings")
    again = run([i["hotline"], "init", etc], i["cwd"], i["env"], ok=False)
    assert again.returncode == 1 and "not overwriting" in again.stderr
    env = {**i["env"], "HOTLINE_ESL_PASSWORD": "wheel-test-secret",
           **{f"HOTLINE_SIP_PW_{ext}": f"sip-secret-{ext}" for ext in ("1001", "1002", "1003", "9001")}}
    out = i["cwd"] / "freeswitch"
    run([i["hotline"], "fs-config", "render", "--config", etc / "hotline.yaml", "--out", out], i["cwd"], env)
    for name in ("freeswitch.xml", "vars.xml", "autoload_configs/event_socket.conf.xml",
                 "autoload_configs/modules.conf.xml", "dialplan/public.xml", "dialplan/conference.xml",
                 "dialplan/handover.xml", "dialplan/agents.xml", "directory/default.xml"):
        assert (out / name).is_file(), name
    assert "wheel-test-secret" in (out / "autoload_configs/event_socket.conf.xml").read_text()
    wav = out / "sounds" / "hotline_unavailable.wav"
    assert wav.read_bytes() == (REPO / "freeswitch_conf/sounds/hotline_unavailable.wav").read_bytes()
    assert str(wav) in (out / "dialplan/public.xml").read_text()


def test_an_editable_install_reads_the_same_files_from_the_checkout(tmp_path):
    """scripts/setup installs with `pip install -e .`: the files come from the sources' own
    top-level directories through the engine/assets links."""
    env = clean_env()
    src = copy_sources(tmp_path / "src")
    python, _ = fresh_venv(tmp_path / "venv", env, "--no-build-isolation", "-e", src)
    where = run([python, "-c", "import engine, engine.assets as a; print(engine.__file__); "
                 "print(a.path('freeswitch_conf/sounds').resolve())"], tmp_path, env).stdout.split()
    assert Path(where[0]) == src / "engine" / "__init__.py"
    assert Path(where[1]) == src / "freeswitch_conf" / "sounds"
    lint = run([tmp_path / "venv" / "bin" / "hotline", "ivr", "lint", src / "ivr_flows"], tmp_path, env)
    assert lint.stdout.strip().endswith("0 errors, 0 warnings")
