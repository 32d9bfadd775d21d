"""Issue 17 section 5: the retention purge runs on a schedule inside the daemon (it ran only by
hand), never removes a recording under legal hold, and listening to a recording is audited."""
import datetime
import subprocess
import sys
from pathlib import Path

import gevent
import pytest

from engine.media.recordings import Archiver
from engine.media.retention import ACTOR, RetentionSchedule, next_run
from engine.settings import SettingsError, default_settings
from tests.simfix import make_wav
from tests.test_recordings import arch  # noqa: F401  (the archive fixture)

U = ["5e1f0c2a-7b4d-4e8a-9c0f-1a2b3c4d5e6%x" % i for i in range(4)]
OLD = datetime.datetime(2024, 1, 9, tzinfo=datetime.timezone.utc)
UTC = datetime.timezone.utc


def _archive(arch, tmp_path, uuid, when=OLD):
    return arch.finish(uuid, make_wav(tmp_path / "live" / f"{uuid}.wav", 1), 1, when=when).get(timeout=10)


def test_next_run_is_the_next_local_time_of_day():
    at = datetime.datetime(2026, 12, 4, 19, 29, tzinfo=UTC)           # 03:29 in Shanghai
    assert next_run(at, "03:30", "Asia/Shanghai") == datetime.datetime(2026, 12, 4, 19, 30, tzinfo=UTC)
    assert next_run(at.replace(minute=30), "03:30", "Asia/Shanghai") == \
        datetime.datetime(2026, 12, 5, 19, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        next_run(at, "3:30am", "Asia/Shanghai")


def test_settings_refuse_a_bad_purge_time(tmp_path):
    with pytest.raises(SettingsError, match="purge_at"):
        default_settings(base_dir=tmp_path, env={"HOTLINE_ESL_PASSWORD": "x"},
                         recordings={"purge_at": "25:00"})
    s = default_settings(base_dir=tmp_path, env={"HOTLINE_ESL_PASSWORD": "x"})
    assert (s.recordings.purge_at, s.recordings.purge_tz) == ("03:30", "Asia/Shanghai")


def test_the_schedule_purges_at_its_time_and_keeps_what_is_on_legal_hold(arch, tmp_path):
    for u in U[:3]:
        _archive(arch, tmp_path, u)
    arch.hold(U[1], actor="legal", reason="court order 7")
    clock = {"now": datetime.datetime(2026, 12, 4, 19, 0, tzinfo=UTC)}      # 03:00 Shanghai

    def sleep(seconds):
        if sched.runs:          # the fake clock would reach the next day's run at once: stop here
            raise gevent.GreenletExit
        clock["now"] += datetime.timedelta(seconds=seconds)
        gevent.sleep(0)
    sched = RetentionSchedule(arch, "03:30", "Asia/Shanghai", now=lambda: clock["now"], sleep=sleep)
    runner = gevent.spawn(sched.run)
    try:
        with gevent.Timeout(10):
            while not sched.runs:
                gevent.sleep(0.01)
    finally:
        runner.kill()
    (when, purged), = sched.runs
    assert when >= datetime.datetime(2026, 12, 4, 19, 30, tzinfo=UTC) and purged == 2
    assert arch.get(U[0])["state"] == "purged" and arch.get(U[2])["state"] == "purged"
    held = arch.get(U[1])
    assert held["state"] == "archived" and Path(held["path"]).exists() and Path(held["backup_path"]).exists()
    assert [a["actor"] for a in arch.audit_trail(U[0])] == [ACTOR]


def test_a_purge_that_cannot_read_the_holds_deletes_nothing(arch, tmp_path, monkeypatch):
    _archive(arch, tmp_path, U[0])
    arch.hold(U[0], actor="legal")
    _archive(arch, tmp_path, U[1])
    real = arch.run
    calls = {"n": 0}

    def failing_first(fn, write=False):
        calls["n"] += 1
        if calls["n"] == 1:
            import peewee
            raise peewee.OperationalError("disk I/O error")
        return real(fn, write)
    monkeypatch.setattr(arch, "run", failing_first)
    sched = RetentionSchedule(arch, "03:30", "Asia/Shanghai")
    now = datetime.datetime(2026, 12, 4, 19, 30, tzinfo=UTC)
    sched.now = lambda: now
    assert sched.run_once() == now + datetime.timedelta(hours=1)          # tried again in an hour
    monkeypatch.setattr(arch, "run", real)
    assert all(Path(arch.get(u)["path"]).exists() for u in U[:2])
    assert "disk I/O error" in sched.runs[0][1]


def test_the_engine_runs_the_schedule(tmp_path):
    from tests.enginefix import Rig
    rig = Rig(tmp_path, recordings={"purge_at": "03:30"})
    try:
        assert rig.engine.retention is not None and rig.engine.retention.at == "03:30"
        assert not rig.engine._retention.dead
    finally:
        rig.stop()
    off = Rig(tmp_path / "off", recordings={"purge_at": None})
    try:
        assert off.engine.retention is None
    finally:
        off.stop()


def test_listening_is_checked_and_audited(arch, tmp_path):
    row = _archive(arch, tmp_path, U[0], when=datetime.datetime(2026, 12, 1, tzinfo=UTC))
    data = arch.listen(U[0], actor="alice", reason="complaint 42")
    assert data == Path(row["path"]).read_bytes()
    (audit,) = arch.audit_trail(U[0])
    assert (audit["action"], audit["actor"], audit["detail"]["reason"]) == ("listen", "alice", "complaint 42")
    Path(row["path"]).write_bytes(data[:-10] + b"\0" * 10)            # tampered with
    with pytest.raises(ValueError, match="sha256"):
        arch.listen(U[0], actor="bob")
    assert len(arch.audit_trail(U[0])) == 1


def test_cli_listen_writes_the_audio_and_audits(tmp_path):
    config = tmp_path / "hotline.yaml"
    config.write_text(f"trunk: {{dids: ['12345']}}\npaths: {{var_dir: {tmp_path / 'var'}}}\n")
    from engine.settings import load_settings
    a = Archiver(load_settings(config, env={"HOTLINE_ESL_PASSWORD": "x"})).open()
    try:
        row = _archive(a, tmp_path, U[2], when=datetime.datetime(2026, 12, 1, tzinfo=UTC))
    finally:
        a.close()
    import os
    out = subprocess.run([sys.executable, "-m", "engine", "recordings", "listen", U[2], "--config", str(config),
                          "--reason", "quality check"], capture_output=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.returncode == 0, out.stderr
    assert out.stdout == Path(row["path"]).read_bytes()
    a = Archiver(load_settings(config, env={"HOTLINE_ESL_PASSWORD": "x"})).open()
    try:
        assert [x["action"] for x in a.audit_trail(U[2])] == ["listen"]
    finally:
        a.close()
