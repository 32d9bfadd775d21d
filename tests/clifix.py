"""What the command-line tests share: running `hotline ...` in-process, and a settings file whose
ESL password variable is unset (commands that only read must not need the switch's secret)."""
from engine import cli
from engine.settings import load_settings

UNSET = "HOTLINE_TEST_CLI_UNSET"


def run_cli(capsys, *argv):
    """`hotline ARGV...` in this process: (exit code, stdout, stderr)."""
    rc = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def write_config(tmp_path, extra=""):
    """tmp_path/hotline.yaml (var dir `var`, password variable unset) and its settings, loaded with
    the variable set as the engine would have it."""
    cfg = tmp_path / "hotline.yaml"
    cfg.write_text(f'trunk: {{dids: ["12345"]}}\nesl: {{password_env: {UNSET}}}\n'
                   f"paths: {{var_dir: var}}\n{extra}", encoding="utf-8")
    return cfg, load_settings(cfg, env={UNSET: "x"})
