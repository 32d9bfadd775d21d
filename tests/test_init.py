"""`hotline init DIR`: a server's starting settings directory from the files hotline ships."""
import stat
import subprocess
from pathlib import Path

from engine import cli
from engine.install.cli import init
from engine.ivr.loader import load_flows
from engine.settings import load_settings

REPO = Path(__file__).resolve().parent.parent


def test_init_writes_settings_for_a_server_that_load_and_lint(tmp_path, capsys):
    etc = tmp_path / "etc-hotline"
    assert cli.main(["init", str(etc)]) == 0
    assert "systemctl daemon-reload" in capsys.readouterr().out
    for name in ("agents.yaml", "queues.yaml", "tickets.yaml"):
        assert (etc / name).read_bytes() == (REPO / "etc" / name).read_bytes()
    s = load_settings(etc / "hotline.yaml", env={"HOTLINE_ESL_PASSWORD": "x"})
    assert s.paths.var_dir == Path("/var/lib/hotline")          # the unit's StateDirectory=
    assert s.log.file == Path("/var/log/hotline/hotline.log")   # LogsDirectory=, the logrotate glob
    assert s.files.flows_dir == etc / "ivr_flows"
    assert s.files.agents == etc / "agents.yaml"
    flows, problems = load_flows([s.files.flows_dir], strict=False)
    assert problems == [] and flows
    secrets = etc / "secrets.env"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    names = [line.split("=")[0] for line in secrets.read_text().splitlines() if line and line[0] != "#"]
    assert names == ["HOTLINE_ESL_PASSWORD", "HOTLINE_SIP_PW_1001", "HOTLINE_SIP_PW_1002",
                     "HOTLINE_SIP_PW_1003", "HOTLINE_SIP_PW_9001"]
    assert (etc / "logrotate" / "hotline").read_bytes() == (REPO / "scripts/logrotate/hotline").read_bytes()


def test_units_name_this_installation_and_pass_systemd_analyze(tmp_path):
    etc, units = tmp_path / "etc", tmp_path / "units"
    exe = tmp_path / "bin" / "hotline"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    init(etc, systemd_dir=units, executable=str(exe))
    engine_unit = (units / "hotline.service").read_text()
    assert f"ExecStart={exe} run --config {etc}/hotline.yaml\n" in engine_unit
    assert f"EnvironmentFile={etc}/secrets.env\n" in engine_unit
    for line in ("Type=notify", "Restart=always", "WatchdogSec=30", "StateDirectory=hotline",
                 "LogsDirectory=hotline"):
        assert f"\n{line}\n" in engine_unit
    assert f"ExecStart={exe} sim --listen 127.0.0.1:8021 --config {etc}/hotline.yaml --scenario demo\n" \
        in (units / "hotline-sim.service").read_text()
    assert not (etc / "systemd").exists()
    # systemd's own checker (systemd is part of the machine): syntax, directives, executables
    result = subprocess.run(["systemd-analyze", "verify", str(units / "hotline.service"),
                             str(units / "hotline-sim.service")], capture_output=True, text=True)
    assert result.returncode == 0 and result.stderr == "", result.stderr


def test_init_overwrites_nothing(tmp_path, capsys):
    etc = tmp_path / "etc"
    (etc / "ivr_flows").mkdir(parents=True)
    (etc / "ivr_flows" / "12345.yaml").write_text("mine\n")
    assert cli.main(["init", str(etc)]) == 1
    err = capsys.readouterr().err
    assert "not overwriting" in err and str(etc / "ivr_flows" / "12345.yaml") in err
    assert (etc / "ivr_flows" / "12345.yaml").read_text() == "mine\n"
    assert sorted(p.name for p in etc.rglob("*")) == ["12345.yaml", "ivr_flows"]   # nothing else written


def test_the_shipped_scenario_is_found_by_name():
    from engine.sim.cli import scenario_path
    from engine.sim.scenario import load_scenario
    assert load_scenario(scenario_path("demo")).callers
    assert scenario_path("no-such-scenario") == "no-such-scenario"     # left to fail as a path
