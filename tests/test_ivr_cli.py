"""hotline ivr walk / graph / schema / override / reload from the command line."""
import json
import os
import pathlib
import signal
import subprocess
import sys

import pytest

from engine.ivr.nodes import NODE_TYPES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def hotline(*args):
    return subprocess.run([sys.executable, "-m", "engine", "ivr", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


def test_walk_prints_path_and_prompts():
    out = hotline("walk", "ivr_flows", "--did", "12345", "--at", "2026-10-12 10:00", "--keys", "2,1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.startswith("12345:housing_menu") and "-> 1" in line for line in lines)
    assert "  heard: 公积金提取可通过手机App或到公积金中心窗口办理。" in lines
    assert json.loads(lines[-1])["outcome"] == "hangup"
    holiday = hotline("walk", "ivr_flows", "--did", "12345", "--at", "2026-10-01 10:00")
    assert json.loads(holiday.stdout.splitlines()[-1]) == {
        "outcome": "voicemail", "box": "general", "path": "var/voicemail/general/walk-0001.wav"}


def test_graph_svg(tmp_path):
    out = hotline("graph", "ivr_flows/shared/social_insurance.yaml", "-o", str(tmp_path / "si.svg"))
    assert out.returncode == 0, out.stderr
    svg = (tmp_path / "si.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and "pension_menu" in svg and "养老保险" in svg


def test_schema_written(tmp_path):
    out = hotline("schema", "-o", str(tmp_path / "s.json"))
    assert out.returncode == 0
    schema = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    variants = schema["properties"]["nodes"]["additionalProperties"]["oneOf"]
    assert sorted(v["properties"]["type"]["const"] for v in variants) == sorted(NODE_TYPES)


def test_schema_prints_by_default_and_equals_the_shipped_one():
    before = (pathlib.Path(ROOT) / "ivr_flows" / "schema.json").stat().st_mtime_ns
    out = hotline("schema")
    assert out.returncode == 0, out.stderr
    assert out.stdout == (pathlib.Path(ROOT) / "ivr_flows" / "schema.json").read_text(encoding="utf-8")
    assert (pathlib.Path(ROOT) / "ivr_flows" / "schema.json").stat().st_mtime_ns == before   # not rewritten


def test_schema_output_refuses_to_overwrite_without_force(tmp_path):
    target = tmp_path / "s.json"
    target.write_text("mine", encoding="utf-8")
    out = hotline("schema", "--output", str(target))
    assert out.returncode == 1 and "exists; add --force" in out.stderr
    assert target.read_text(encoding="utf-8") == "mine"
    assert hotline("schema", "--output", str(target), "--force").returncode == 0
    assert json.loads(target.read_text(encoding="utf-8"))["title"] == "hotline IVR flow"


def test_graph_refuses_a_broken_flow(tmp_path):
    flow = tmp_path / "bad.yaml"
    flow.write_text("entry: {'1': a}\nnodes:\n  a: {type: play, prompt: p, children: {next: gone}}\n", encoding="utf-8")
    out = hotline("graph", str(flow), "-o", str(tmp_path / "bad.dot"))
    assert out.returncode == 1
    assert f"{flow}:3:47: node 'a': no node 'gone' in flow 'bad'" in out.stderr
    assert not (tmp_path / "bad.dot").exists()


def test_graph_checks_the_format_before_graphviz(tmp_path):
    for name in ("flow.jpeg2", "flow"):
        out = hotline("graph", "ivr_flows/12345.yaml", "-o", str(tmp_path / name))
        assert out.returncode == 2 and "cannot tell the format" in out.stderr and ".svg, .png, .pdf or .dot" in out.stderr
        assert not (tmp_path / name).exists()


def test_graph_of_one_flow_linking_into_another(tmp_path):
    """12345 goes to the shared sub-tree: drawn alone it is not 'broken' for that."""
    out = hotline("graph", "ivr_flows/12345.yaml", "-o", str(tmp_path / "12345.dot"))
    assert out.returncode == 0, out.stderr
    assert '"12345:to_social_insurance" -> "si:si_menu"' in (tmp_path / "12345.dot").read_text(encoding="utf-8")


@pytest.fixture
def config(tmp_path):
    return str(tmp_path / "var")


def test_override_set_list_clear(tmp_path, config):
    out = hotline("override", "set", "12345", "--mode", "emergency", "--message", "系统维护", "--var-dir", config)
    assert out.returncode == 0, out.stderr
    data = json.loads((tmp_path / "var" / "ivr_overrides.json").read_text(encoding="utf-8"))
    assert data == {"12345": {"mode": "emergency", "message": "系统维护"}}
    assert hotline("override", "list", "--var-dir", config).stdout == "12345\temergency\t系统维护\n"
    assert hotline("override", "clear", "12345", "--var-dir", config).returncode == 0
    assert hotline("override", "clear", "12345", "--var-dir", config).returncode == 1


def test_reload_never_signals_a_pid_that_is_not_our_engine(tmp_path, config):
    assert hotline("reload", "--var-dir", config).returncode == 1      # no daemon: a clear error
    child = subprocess.Popen([sys.executable, "-c",
                              "import signal,sys,time\n"
                              "signal.signal(signal.SIGHUP, lambda *a: sys.exit(7))\n"
                              "print('ready', flush=True)\ntime.sleep(30)\n"], stdout=subprocess.PIPE)
    try:
        child.stdout.readline()
        (tmp_path / "var").mkdir(exist_ok=True)
        (tmp_path / "var" / "hotline.pid").write_text(str(child.pid))     # a stale file, pid reused
        out = hotline("reload", "--var-dir", config)
        assert out.returncode == 1 and "no engine holds it" in out.stderr and "nothing was signalled" in out.stderr
        assert child.poll() is None
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
