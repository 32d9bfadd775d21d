"""The two-command path: scripts/setup is idempotent and quick, scripts/test and .ci/run keep
pytest's exit code (and 'no tests collected' is a failure)."""
import os
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(cmd, cwd, timeout=300):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_setup_twice_from_another_directory_second_run_has_nothing_to_do(tmp_path):
    first = run([str(REPO / "scripts/setup")], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    t0 = time.monotonic()
    second = run([str(REPO / "scripts/setup")], cwd=tmp_path)
    elapsed = time.monotonic() - t0
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stderr
    assert elapsed < 2.0, f"setup took {elapsed:.2f} s with nothing to do"
    assert (REPO / ".venv/bin/hotline").exists()


def test_scripts_test_keeps_pytest_exit_code(tmp_path):
    (tmp_path / "test_fails.py").write_text("def test_no():\n    assert 1 == 2\n")
    (tmp_path / "test_passes.py").write_text("def test_yes():\n    assert 1 == 1\n")
    common = ["-p", "no:cacheprovider", "-q"]
    failed = run([str(REPO / "scripts/test"), str(tmp_path / "test_fails.py"), *common], cwd=tmp_path)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    passed = run([str(REPO / "scripts/test"), str(tmp_path / "test_passes.py"), *common], cwd=tmp_path)
    assert passed.returncode == 0, passed.stdout + passed.stderr


def test_ci_run_fails_when_no_test_is_collected(tmp_path):
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    result = run([str(REPO / ".ci/run"), str(tmp_path), "-k", "no_such_test_anywhere",
                  "-p", "no:cacheprovider", "-q"], cwd=tmp_path)
    assert result.returncode == 5, result.stdout + result.stderr
