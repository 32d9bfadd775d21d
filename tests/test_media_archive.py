import datetime
import hashlib
import os

import pytest

from engine.esl.commands import CommandError
from engine.media.archive import RecordingError, apply_retention, archive_recording, verify
from tests.simfix import make_wav

UUID = "3f2a9c1e-7b4d-4e8a-9c0f-1a2b3c4d5e6f"
WHEN = datetime.datetime(2026, 10, 1, 9, 30, tzinfo=datetime.timezone.utc)


def test_archive_moves_into_day_directory_with_checksum(tmp_path):
    (tmp_path / "live").mkdir()
    src = make_wav(tmp_path / "live" / "rec.wav", 3.0)
    data = src.read_bytes()
    info = archive_recording(src, UUID, WHEN, tmp_path / "archive")
    assert info["path"] == tmp_path / "archive/2026/10/01" / f"{UUID}.wav"
    assert info["sha256"] == hashlib.sha256(data).hexdigest()
    assert info["bytes"] == len(data) and info["seconds"] == pytest.approx(3.0, abs=0.01)
    assert info["path"].read_bytes() == data and not src.exists()
    assert (info["path"].parent / f"{UUID}.wav.sha256").read_text().startswith(info["sha256"])
    assert [p.name for p in info["path"].parent.iterdir() if p.name.startswith(".")] == []


def test_local_time_is_filed_by_utc_day(tmp_path):
    beijing = datetime.timezone(datetime.timedelta(hours=8))
    src = make_wav(tmp_path / "a.wav", 1)
    info = archive_recording(src, UUID, datetime.datetime(2026, 10, 2, 7, 0, tzinfo=beijing), tmp_path / "ar")
    assert info["path"].parent == tmp_path / "ar/2026/10/01"


def test_empty_44_byte_wav_is_refused_and_kept(tmp_path):
    src = make_wav(tmp_path / "empty.wav", 0)
    assert src.stat().st_size == 44
    with pytest.raises(RecordingError, match="empty recording"):
        archive_recording(src, UUID, WHEN, tmp_path / "archive")
    assert src.exists() and not (tmp_path / "archive").exists()


def test_file_far_shorter_than_recorded_time_is_refused(tmp_path):
    src = make_wav(tmp_path / "short.wav", 2)
    with pytest.raises(RecordingError, match="2.0 s of audio for 60.0 s"):
        archive_recording(src, UUID, WHEN, tmp_path / "archive", expected_seconds=60)
    assert src.exists()
    assert archive_recording(src, UUID, WHEN, tmp_path / "archive", expected_seconds=2.2)["seconds"] == 2


def test_bad_uuid_and_missing_or_garbled_source(tmp_path):
    src = make_wav(tmp_path / "a.wav", 1)
    with pytest.raises(CommandError):
        archive_recording(src, "../../etc/x", WHEN, tmp_path / "archive")
    with pytest.raises(RecordingError, match="no such recording"):
        archive_recording(tmp_path / "nope.wav", UUID, WHEN, tmp_path / "archive")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF" + os.urandom(200))
    with pytest.raises(RecordingError, match="unreadable WAV"):
        archive_recording(junk, UUID, WHEN, tmp_path / "archive")
    assert src.exists() and junk.exists()


def test_compressed_recording_duration_from_ffprobe(tmp_path):
    wav = make_wav(tmp_path / "a.wav", 2, channels=1)
    mp3 = tmp_path / "a.mp3"
    assert os.system(f"ffmpeg -nostdin -loglevel error -i {wav} {mp3}") == 0
    info = archive_recording(mp3, UUID, WHEN, tmp_path / "archive")
    assert info["path"].name == f"{UUID}.mp3" and info["seconds"] == pytest.approx(2, abs=0.25)  # mp3 frame padding


def test_archiving_again_is_idempotent_but_never_overwrites(tmp_path):
    archive = tmp_path / "archive"
    first = archive_recording(make_wav(tmp_path / "a.wav", 1), UUID, WHEN, archive)
    again_src = make_wav(tmp_path / "b.wav", 1)  # same bytes: a restart after a crash
    assert archive_recording(again_src, UUID, WHEN, archive)["sha256"] == first["sha256"]
    assert not again_src.exists()
    other = make_wav(tmp_path / "c.wav", 2)
    with pytest.raises(RecordingError, match="different content"):
        archive_recording(other, UUID, WHEN, archive)
    assert other.exists() and first["path"].stat().st_size == first["bytes"]


def test_full_disk_leaves_nothing_half_written(tmp_path, monkeypatch):
    src = make_wav(tmp_path / "a.wav", 1)
    real_fsync = os.fsync

    def full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        archive_recording(src, UUID, WHEN, tmp_path / "archive")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert src.exists()
    assert [p for p in (tmp_path / "archive").rglob("*") if p.is_file()] == []


def test_verify_reports_mismatch_missing_and_unindexed(tmp_path):
    archive = tmp_path / "archive"
    uuids = [f"{UUID[:-1]}{i}" for i in range(4)]
    infos = [archive_recording(make_wav(tmp_path / f"{i}.wav", 1 + i), u, WHEN, archive)
             for i, u in enumerate(uuids)]
    assert verify(archive) == {"ok": sorted(i["path"] for i in infos), "mismatch": [],
                               "missing": [], "unindexed": []}
    with open(infos[1]["path"], "r+b") as f:  # bit rot
        f.seek(100)
        f.write(b"\x00\x01")
    infos[2]["path"].unlink()
    stray = archive / "2026/10/01/stray.wav"
    make_wav(stray, 1)
    report = verify(archive)
    assert report["mismatch"] == [infos[1]["path"]]
    assert report["missing"] == [infos[2]["path"]]
    assert report["unindexed"] == [stray]
    assert report["ok"] == sorted([infos[0]["path"], infos[3]["path"]])


def test_retention_removes_only_expired_and_not_held(tmp_path):
    archive = tmp_path / "archive"
    now = datetime.datetime(2027, 10, 10, 12, 0)
    days = {"old": datetime.datetime(2026, 10, 1), "held": datetime.datetime(2026, 10, 1),
            "edge": datetime.datetime(2026, 10, 10), "new": datetime.datetime(2027, 3, 1)}
    ids = {name: f"{UUID[:-4]}{i:04d}" for i, name in enumerate(days)}
    paths = {name: archive_recording(make_wav(tmp_path / f"{name}.wav", 1), ids[name], when, archive)["path"]
             for name, when in days.items()}
    (archive / "notes").mkdir()
    (archive / "notes" / "readme.wav").write_bytes(b"x" * 100)  # outside day directories: untouched
    removed = apply_retention(archive, 365, now, held={ids["held"]})
    assert [r["path"] for r in removed] == [paths["old"]]
    assert removed[0]["day"] == datetime.date(2026, 10, 1) and len(removed[0]["sha256"]) == 64
    assert not paths["old"].exists() and not (paths["old"].parent / (paths["old"].name + ".sha256")).exists()
    assert paths["held"].exists() and paths["edge"].exists() and paths["new"].exists()
    assert (archive / "notes" / "readme.wav").exists()
    assert verify(archive)["missing"] == []
    # a later run purges the boundary day once it has expired, then removes emptied directories
    assert [r["path"] for r in apply_retention(archive, 365, now + datetime.timedelta(days=1), held=[ids["held"]])] == [paths["edge"]]
    assert not (archive / "2026/10/10").exists()


def test_retention_below_twelve_months_is_refused(tmp_path):
    with pytest.raises(ValueError, match="below the 365-day minimum"):
        apply_retention(tmp_path, 30, datetime.date(2027, 1, 1))
