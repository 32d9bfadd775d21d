"""hotline.pid is believed only while the engine holding its lock runs `engine run`."""
import os

import pytest

from engine.infra import pidfile


def test_a_second_claim_is_refused_and_a_released_file_is_gone(tmp_path):
    path = tmp_path / "hotline.pid"
    fd = pidfile.claim(path)
    assert path.read_text() == f"{os.getpid()}\n"
    with pytest.raises(RuntimeError, match=f"another engine \\(pid {os.getpid()}\\)"):
        pidfile.claim(path)
    assert path.read_text() == f"{os.getpid()}\n"          # the refused claim did not wipe it
    pidfile.release(fd, path)
    assert not path.exists()


def test_a_locked_pid_that_is_not_an_engine_is_not_believed(tmp_path):
    path = tmp_path / "hotline.pid"
    fd = pidfile.claim(path)                                   # held by pytest, not `engine run`
    try:
        with pytest.raises(pidfile.NoEngine, match="is not a hotline engine"):
            pidfile.running_engine(path)
    finally:
        pidfile.release(fd, path)
    with pytest.raises(pidfile.NoEngine, match="no running engine"):
        pidfile.running_engine(path)


def test_is_engine_reads_the_command_line():
    assert not pidfile.is_engine(os.getpid())
    assert not pidfile.is_engine(2 ** 22 + 12345)              # no such process
