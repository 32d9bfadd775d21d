"""Where the supervisors' CLI finds the control API and its token (engine/control/client.py), and
what `hotline` says when a command fails: known errors in one line, a bug in one line that says so
and where its traceback is."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import cli
from engine.control.client import ClientConfigError, resolve

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path, monkeypatch):
    """No client file, no settings in the cwd, no hotline variables."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("HOTLINE_"):
            monkeypatch.delenv(name)
    return {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def client_file(env, text, mode=0o600):
    path = Path(env["XDG_CONFIG_HOME"]) / "hotline" / "client.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_options_then_variables_then_the_client_file(home):
    env = dict(home)
    with pytest.raises(ClientConfigError) as e:
        resolve(env=env)
    assert "give --api URL, set HOTLINE_API_URL, or write 'api: http://HOST:8090' in" in str(e.value)
    client_file(env, "api: http://file:8090\ntoken_env: MY_TOKEN\n")
    with pytest.raises(ClientConfigError) as e:
        resolve(env=env)
    assert "token_env: variable MY_TOKEN is not set" in str(e.value)
    env["MY_TOKEN"] = "from-file-variable"
    assert resolve(env=env) == ("http://file:8090", "from-file-variable")
    env.update(HOTLINE_API_URL="http://env:8091/", HOTLINE_TOKEN="from-env")
    assert resolve(env=env) == ("http://env:8091", "from-env")
    assert resolve("https://opt:8443", "from-option", env=env) == ("https://opt:8443", "from-option")


def test_a_client_file_with_a_token_must_be_private_and_well_formed(home):
    env = dict(home)
    path = client_file(env, "api: http://file:8090\ntoken: s3cret\n", mode=0o644)
    with pytest.raises(ClientConfigError) as e:
        resolve(env=env)
    assert f"chmod 600 {path}" in str(e.value)
    path.chmod(0o600)
    assert resolve(env=env) == ("http://file:8090", "s3cret")
    client_file(env, "api: http://file:8090\ntokn: x\n")
    with pytest.raises(ClientConfigError) as e:
        resolve(env=env)
    assert f"{path}:2:1: unknown key 'tokn'" in str(e.value)
    client_file(env, "api: ftp://file\n")
    with pytest.raises(ClientConfigError) as e:
        resolve(token="t", env=env)
    assert "expected http://HOST:PORT" in str(e.value)


def test_on_the_engines_machine_only_the_control_address_is_read_from_its_settings(home, tmp_path):
    # the settings name variables for the ESL password and other people's tokens: none is set
    settings = tmp_path / "hotline.yaml"
    settings.write_text("trunk: {dids: ['12345']}\ncontrol:\n  listen_host: 0.0.0.0\n  listen_port: 8123\n"
                        "  tokens: [{name: ops, role: admin, token_env: SOMEONE_ELSES_TOKEN}]\n", encoding="utf-8")
    assert resolve(token="mine", config=str(settings), env=home) == ("http://127.0.0.1:8123", "mine")
    (tmp_path / "etc").mkdir()
    settings.rename(tmp_path / "etc" / "hotline.yaml")             # the default place, from the cwd
    assert resolve(token="mine", env=home) == ("http://127.0.0.1:8123", "mine")
    with pytest.raises(Exception) as e:
        resolve(token="mine", config=str(tmp_path / "nope.yaml"), env=home)
    assert "nope.yaml: cannot read" in str(e.value)


def test_the_cli_without_address_or_token_says_where_to_put_them(home, monkeypatch, capsys):
    monkeypatch.setenv("HOME", home["HOME"])
    monkeypatch.setenv("XDG_CONFIG_HOME", home["XDG_CONFIG_HOME"])
    assert cli.main(["agents"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hotline: error: where is the engine's control API?") and err.count("\n") == 1
    assert cli.main(["queues", "--api", "http://127.0.0.1:1"]) == 1
    assert "no control-API token: give --token, set HOTLINE_TOKEN" in capsys.readouterr().err


def test_a_bug_is_one_line_with_where_its_traceback_is(home, tmp_path, monkeypatch, capsys):
    def broken(args):
        raise KeyError("caller\nINJECTED")
    monkeypatch.setattr("engine.privacy.cli.cmd_keygen", broken)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    assert cli.main(["privacy", "keygen"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("hotline: error: internal error (a bug, please report it): KeyError: 'caller\\nINJECTED'")
    trace = Path(err.split("traceback in ")[1].split(" (HOTLINE_DEBUG")[0])
    assert trace.parent == tmp_path and "Traceback" in trace.read_text() and "broken" in trace.read_text()
    monkeypatch.setenv("HOTLINE_DEBUG", "1")
    assert cli.main(["privacy", "keygen"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_a_known_error_names_the_file_and_exits_1(home, capsys):
    assert cli.main(["agents", "report", "--db", "sqlite:////nonexistent/dir/hotline.db"]) == 1
    err = capsys.readouterr().err
    assert err == ("hotline: error: no database at /nonexistent/dir/hotline.db (from sqlite:////nonexistent/dir/"
                   "hotline.db): give --db URL, or --config the engine's settings file (its database.url)\n")
    assert cli.main(["agents", "report", "--date", "tomorrow", "--db", "sqlite:///x.db"]) == 2
    assert "--date 'tomorrow' is not a day; use 2026-12-04" in capsys.readouterr().err
    assert not os.path.exists("x.db")


def test_the_simulator_starts_without_the_agents_sip_passwords(tmp_path):
    """`hotline sim` renders our configuration for its own phones, which never authenticate: an
    agent's unset SIP password variable is no reason to refuse (it was: exit 1)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOTLINE_")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.Popen([sys.executable, "-m", "engine", "sim", "--listen", "127.0.0.1:0",
                             "--config", str(REPO / "etc" / "hotline.yaml")],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first = proc.stdout.readline()
        assert "FreeSWITCH simulator on 127.0.0.1" in first, first + proc.stdout.read()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "Traceback" not in out
    assert list(tmp_path.iterdir()) == []
