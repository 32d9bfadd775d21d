"""The recordings archiver: RECORD_STOP -> check -> archive -> index -> backup; suspects, full
disk, start-up scan, retention with legal hold and audit, verify, compression."""
import datetime
import errno
import hashlib
from pathlib import Path

import pytest

from engine.esl.protocol import Event
from engine.media import archive
from engine.media.recordings import ArchiveConfig, Archiver, months_before
from engine.settings import SettingsError, default_settings, load_settings
from tests.simfix import make_wav

U = ["3f2a9c1e-7b4d-4e8a-9c0f-1a2b3c4d5e6%x" % i for i in range(16)]
WHEN = datetime.datetime(2026, 10, 1, 9, 30, tzinfo=datetime.timezone.utc)


def files_under(root):
    return sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_file())


@pytest.fixture
def arch(tmp_path):
    cfg = ArchiveConfig(archive_dir=tmp_path / "archive", live_dir=tmp_path / "live",
                        database_url=f"sqlite:///{tmp_path}/hotline.db", backup_dir=tmp_path / "backup")
    a = Archiver(cfg).open()
    yield a
    a.close()


def test_finish_archives_indexes_and_backs_up_in_a_greenlet(arch, tmp_path):
    src = make_wav(tmp_path / "live" / f"{U[0]}.wav", 3.0)
    data = src.read_bytes()
    job = arch.finish(U[0], src, 3, when=WHEN)
    row = job.get(timeout=10)
    dest = tmp_path / "archive/2026/10/01" / f"{U[0]}.wav"
    assert row["path"] == str(dest) and dest.read_bytes() == data and not src.exists()
    got = arch.get(U[0])
    assert got["sha256"] == hashlib.sha256(data).hexdigest()
    assert (got["bytes"], got["seconds"], got["channels"], got["sample_rate"], got["format"], got["state"]) == \
        (len(data), 3.0, 2, 8000, "wav", "archived")
    assert got["recorded_at"] == datetime.datetime(2026, 10, 1, 9, 30)
    backup = Path(got["backup_path"])
    assert backup == tmp_path / "backup/2026/10/01" / f"{U[0]}.wav" and backup.read_bytes() == data
    assert arch.alarms == []


def test_record_stop_event_is_taken_and_taps_are_ignored(arch, tmp_path):
    src = make_wav(tmp_path / "live" / f"{U[1]}.wav", 2.0)
    ev = Event({"Event-Name": "RECORD_STOP", "Unique-ID": U[1], "Record-File-Path": str(src),
                "variable_record_ms": "2000"})
    assert arch.on_record_stop(ev).get(timeout=10)["seconds"] == 2.0
    tap = tmp_path / "live" / f"{U[2]}.r16"
    tap.write_bytes(b"\0" * 3200)
    assert arch.on_record_stop(Event({"Event-Name": "RECORD_STOP", "Unique-ID": U[2],
                                      "Record-File-Path": str(tap)})) is None
    elsewhere = make_wav(tmp_path / "voicemail" / f"{U[3]}.wav", 1)
    assert arch.on_record_stop(Event({"Event-Name": "RECORD_STOP", "Unique-ID": U[3],
                                      "Record-File-Path": str(elsewhere)})) is None
    assert tap.exists() and elsewhere.exists()


def test_44_byte_wav_goes_to_suspect_with_an_alarm_never_deleted(arch, tmp_path):
    hooked = []
    arch.alarm_hooks.append(lambda u, msg: hooked.append((u, msg)))
    src = make_wav(tmp_path / "live" / f"{U[0]}.wav", 0)
    assert src.stat().st_size == 44
    assert arch.finish(U[0], src, 95).get(timeout=10)["state"] == "suspect"
    row = arch.get(U[0])
    assert row["state"] == "suspect" and "empty recording" in row["problem"]
    kept = Path(row["path"])
    assert kept.parent == tmp_path / "archive/suspect" and kept.stat().st_size == 44 and not src.exists()
    assert len(arch.alarms) == 1 and "suspect recording" in arch.alarms[0][2]
    assert hooked and hooked[0][0] == U[0]
    assert [a["action"] for a in arch.audit_trail(U[0])] == ["suspect"]
    # a suspect file is neither verified as archive content nor purged
    assert archive.verify(tmp_path / "archive")["unindexed"] == []
    arch.purge(now=datetime.datetime(2040, 1, 1))
    assert kept.exists()


def test_file_much_shorter_than_recorded_time_is_suspect(arch, tmp_path):
    src = make_wav(tmp_path / "live" / f"{U[0]}.wav", 2)
    arch.finish(U[0], src, 60).join(timeout=10)
    assert arch.get(U[0])["state"] == "suspect" and "2.0 s of audio for 60.0 s" in arch.get(U[0])["problem"]
    src = make_wav(tmp_path / "live" / f"{U[1]}.wav", 9.5)
    arch.finish(U[1], src, 10).join(timeout=10)        # record_seconds rounding: fine
    assert arch.get(U[1])["state"] == "archived"


def test_truncated_wav_counts_only_the_audio_it_holds(tmp_path):
    src = make_wav(tmp_path / "t.wav", 10, channels=1)
    with open(src, "r+b") as f:           # header says 10 s, the file holds 1 s (crash mid-write)
        f.truncate(44 + 8000 * 2)
    assert archive.probe(src)["seconds"] == pytest.approx(1.0)
    with pytest.raises(archive.RecordingError, match="1.0 s of audio for 10.0 s"):
        archive.check_recording(src, 10)


def test_full_disk_alarm_nothing_half_written_source_kept_then_retry(arch, tmp_path, monkeypatch):
    src = make_wav(tmp_path / "live" / f"{U[0]}.wav", 2)
    data = src.read_bytes()
    real = archive._copy_into

    def half_then_enospc(inp, out):
        out.write(inp.read(1000))         # part of the file reached the disk, then it filled up
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(archive, "_copy_into", half_then_enospc)
    assert arch.finish(U[0], src, 2).get(timeout=10) is None     # returned, did not raise
    assert src.read_bytes() == data
    assert [f for f in files_under(tmp_path / "archive")] == []
    assert "archive disk full" in arch.alarms[-1][2] and arch.get(U[0]) is None
    assert U[0] in arch.pending
    monkeypatch.setattr(archive, "_copy_into", real)
    [row] = arch.retry_pending()
    assert row["state"] == "archived" and not src.exists() and arch.pending == {}


def test_backup_failure_is_an_alarm_but_the_archive_copy_stands(arch, tmp_path, monkeypatch):
    src = make_wav(tmp_path / "live" / f"{U[0]}.wav", 1)
    real = archive.copy_atomic

    def backup_disk_full(s, d):
        if tmp_path / "backup" in Path(d).parents:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(s, d)
    monkeypatch.setattr(archive, "copy_atomic", backup_disk_full)
    row = arch.finish(U[0], src, 1, when=WHEN).get(timeout=10)
    assert row["state"] == "archived" and row["backup_path"] is None and Path(row["path"]).exists()
    assert "backup copy" in arch.alarms[-1][2]


def test_start_up_scan_archives_only_ended_calls_recordings(arch, tmp_path):
    live = tmp_path / "live"
    ended = make_wav(live / f"{U[0]}.wav", 1)
    ongoing = make_wav(live / f"{U[1]}.wav", 1)
    comment = make_wav(live / f"{U[2]}-survey.wav", 1)
    tap = live / f"{U[3]}.r16"
    tap.write_bytes(b"\0" * 320)
    voicemail = make_wav(live / "voicemail" / "q1" / f"{U[4]}.wav", 1)
    rows = arch.scan_live_dir(live, is_call_live=lambda u: u == U[1])
    assert [r["call_uuid"] for r in rows] == [U[0]]
    assert not ended.exists() and ongoing.exists() and comment.exists() and tap.exists() and voicemail.exists()
    assert arch.get(U[0])["state"] == "archived"


def test_retention_purges_only_what_it_should_with_audit_and_hold(arch, tmp_path):
    live = tmp_path / "live"
    now = datetime.datetime(2028, 10, 10, 12, 0, tzinfo=datetime.timezone.utc)
    days = {U[0]: datetime.datetime(2026, 10, 9, tzinfo=datetime.timezone.utc),    # 24 months + 1 day
            U[1]: datetime.datetime(2026, 10, 9, tzinfo=datetime.timezone.utc),    # same, on hold
            U[2]: datetime.datetime(2026, 10, 10, tzinfo=datetime.timezone.utc),   # exactly 24 months
            U[3]: datetime.datetime(2028, 1, 1, tzinfo=datetime.timezone.utc)}
    for u, when in days.items():
        arch.finish(u, make_wav(live / f"{u}.wav", 1), 1, when=when).get(timeout=10)
    arch.hold(U[1], actor="legal")
    before = files_under(tmp_path / "archive")
    dry = arch.purge(now=now, dry_run=True)
    assert [d["call_uuid"] for d in dry] == [U[0]] and files_under(tmp_path / "archive") == before
    assert arch.audit_trail(U[0]) == []
    gone = arch.purge(now=now, actor="nightly")
    assert [g["call_uuid"] for g in gone] == [U[0]]
    assert not Path(gone[0]["path"]).exists() and not Path(gone[0]["backup_path"]).exists()
    row = arch.get(U[0])
    assert row["state"] == "purged" and row["purged_at"] is not None
    [audit] = arch.audit_trail(U[0])
    assert audit["action"] == "purge" and audit["actor"] == "nightly"
    assert audit["detail"]["sha256"] == gone[0]["sha256"] and audit["detail"]["retention_months"] == 24
    assert all(Path(arch.get(u)["path"]).exists() for u in (U[1], U[2], U[3]))
    # releasing the hold lets the next purge take it; the boundary day goes one day later
    arch.hold(U[1], release=True, actor="legal")
    assert [g["call_uuid"] for g in arch.purge(now=now + datetime.timedelta(days=1))] == [U[1], U[2]]
    assert [a["action"] for a in arch.audit_trail(U[1])] == ["hold", "release", "purge"]
    with pytest.raises(ValueError, match="purged"):
        arch.hold(U[0])
    with pytest.raises(KeyError):
        arch.hold(U[9])


def test_retention_below_twelve_months_is_refused(tmp_path):
    with pytest.raises(ValueError, match="below the 12-month minimum"):
        ArchiveConfig(archive_dir=tmp_path, live_dir=tmp_path, database_url="sqlite:///x", retention_months=11)
    cfg = tmp_path / "hotline.yaml"
    cfg.write_text('trunk: {dids: ["12345"]}\nesl: {allow_default_password: true}\n'
                   "recordings:\n  retention_months: 6\n")
    with pytest.raises(SettingsError, match=r"hotline.yaml:4:\d+: recordings.retention_months: must be at least 12"):
        load_settings(cfg, env={})
    s = default_settings(base_dir=tmp_path)
    assert ArchiveConfig.from_settings(s).retention_months == 24
    assert months_before(datetime.date(2028, 2, 29), 12) == datetime.date(2027, 2, 28)


def test_verify_detects_a_flipped_byte_and_a_missing_file(arch, tmp_path):
    rows = [arch.finish(u, make_wav(tmp_path / "live" / f"{u}.wav", 1 + i), 1 + i, when=WHEN).get(timeout=10)
            for i, u in enumerate(U[:3])]
    clean = arch.verify()
    assert len(clean["ok"]) == 3 and not any(clean[k] for k in ("mismatch", "missing", "index_missing",
                                                                 "index_mismatch"))
    with open(rows[0]["path"], "r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0x01]))
    Path(rows[1]["path"]).unlink()
    report = arch.verify()
    assert report["mismatch"] == [Path(rows[0]["path"])]
    assert report["missing"] == [Path(rows[1]["path"])] and report["index_missing"] == [Path(rows[1]["path"])]
    assert report["ok"] == [Path(rows[2]["path"])]
    # a file and its sidecar replaced together still disagree with the index
    p = Path(rows[2]["path"])
    make_wav(p, 5)
    archive._write_sidecar(p, archive.sha256_of(p))
    assert arch.verify()["index_mismatch"] == [p]


def test_export_checks_the_checksum_and_is_audited(arch, tmp_path):
    row = arch.finish(U[0], make_wav(tmp_path / "live" / f"{U[0]}.wav", 1), 1, when=WHEN).get(timeout=10)
    out = arch.export(U[0], tmp_path / "out.wav", actor="alice")
    assert out.read_bytes() == Path(row["path"]).read_bytes() and not (tmp_path / "out.wav.sha256").exists()
    assert arch.audit_trail(U[0])[-1]["action"] == "export" and arch.audit_trail(U[0])[-1]["actor"] == "alice"
    with pytest.raises(FileExistsError):
        arch.export(U[0], out)
    with open(row["path"], "r+b") as f:
        f.seek(100)
        f.write(b"\xff\xfe")
    with pytest.raises(ValueError, match="does not match"):
        arch.export(U[0], tmp_path / "out2.wav")
    assert not (tmp_path / "out2.wav").exists()


@pytest.mark.parametrize("fmt", ["opus", "mp3"])
def test_compression_keeps_channels_and_length(tmp_path, fmt):
    cfg = ArchiveConfig(archive_dir=tmp_path / "archive", live_dir=tmp_path / "live",
                        database_url=f"sqlite:///{tmp_path}/h.db", compress=fmt)
    arch = Archiver(cfg).open()
    src = make_wav(tmp_path / "live" / f"{U[0]}.wav", 3)
    wav_bytes = src.stat().st_size
    row = arch.finish(U[0], src, 3, when=WHEN).get(timeout=30)
    assert row["format"] == fmt and row["path"].endswith(f"{U[0]}.{fmt}") and row["channels"] == 2
    assert row["seconds"] == pytest.approx(3, abs=0.2) and row["bytes"] < wav_bytes / 3
    assert not src.exists() and files_under(tmp_path / "live") == []
    assert archive.sha256_of(row["path"]) == row["sha256"]
    arch.close()


def test_failed_compression_archives_the_original(tmp_path, monkeypatch):
    cfg = ArchiveConfig(archive_dir=tmp_path / "archive", live_dir=tmp_path / "live",
                        database_url=f"sqlite:///{tmp_path}/h.db", compress="opus")
    arch = Archiver(cfg).open()
    monkeypatch.setitem(__import__("engine.media.recordings", fromlist=["ENCODERS"]).ENCODERS,
                        "opus", ["-c:a", "no-such-encoder", "-f", "opus"])
    row = arch.finish(U[0], make_wav(tmp_path / "live" / f"{U[0]}.wav", 1), 1, when=WHEN).get(timeout=30)
    assert row["format"] == "wav" and "compression to opus failed" in arch.alarms[-1][2]
    assert files_under(tmp_path / "live") == []
    arch.close()


def test_bad_input_never_raises_into_the_caller(arch, tmp_path):
    assert arch.finish("../../etc/passwd", tmp_path / "x.wav", 1).get(timeout=5) is None
    assert "archiving" in arch.alarms[-1][2]
    assert arch.finish(U[0], tmp_path / "live" / "gone.wav", 1).get(timeout=5) is None
    assert "missing" in arch.alarms[-1][2]


def test_a_call_recorded_again_keeps_every_part(arch, tmp_path):
    """On-demand recording stopped and started again: the same live path twice, two RECORD_STOPs."""
    live = tmp_path / "live" / f"{U[0]}.wav"
    first = arch.finish(U[0], make_wav(live, 2), 2, when=WHEN).get(timeout=10)
    later = WHEN + datetime.timedelta(days=1)             # the call ran past midnight
    row = arch.finish(U[0], make_wav(live, 3), 3, when=later).get(timeout=10)
    assert arch.alarms == [] and row["path"] == first["path"] and row["seconds"] == 2.0
    [part2] = row["parts"]
    assert part2["path"] == str(tmp_path / "archive/2026/10/01" / f"{U[0]}.part2.wav") and part2["seconds"] == 3.0
    assert Path(part2["backup_path"]).read_bytes() == Path(part2["path"]).read_bytes()
    out = arch.export(U[0], tmp_path / "p2.wav", part=2)
    assert archive.sha256_of(out) == part2["sha256"]
    with pytest.raises(KeyError, match="2 recording part"):
        arch.export(U[0], tmp_path / "p3.wav", part=3)
    Path(part2["path"]).unlink()
    assert arch.verify()["index_missing"] == [Path(part2["path"])]
    make_wav(Path(part2["path"]), 3)                      # put it back for the purge
    gone = arch.purge(now=datetime.datetime(2029, 1, 1, tzinfo=datetime.timezone.utc))
    assert sorted(g["path"] for g in gone) == sorted([first["path"], part2["path"]])
    assert not Path(part2["backup_path"]).exists() and arch.get(U[0])["state"] == "purged"
