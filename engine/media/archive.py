"""Recordings archive (issue 6): check a finished recording, move it to YYYY/MM/DD/<uuid>.<ext>
with its sha256, re-verify the archive, and purge what retention allows.

Each archived file gets a `<name>.sha256` sidecar (sha256sum format) so `verify` works from the
archive alone; the database index (the lead's Recording model) stores the same dict.
Copy-then-rename keeps the archive free of half-written files even on a full disk or across
file systems; the source is removed only once the archived copy is in place.
"""
import datetime
import hashlib
import logging
import os
import re
import tempfile
import wave
from pathlib import Path

from gevent import subprocess

from engine.esl import commands

log = logging.getLogger("engine.media.archive")

WAV_HEADER_BYTES = 44  # FreeSWITCH #1787: a "recorded" WAV can be a bare header
MIN_RETENTION_DAYS = 365  # public hotlines keep recordings at least 12 months
CHUNK = 1 << 20
DATE_DIR = re.compile(r"^(\d{4})/(\d{2})/(\d{2})$")


class RecordingError(ValueError):
    """The recording is unusable (empty, truncated, unreadable); the source file is kept."""


def recording_seconds(path):
    """Duration of a recording: from the WAV header, or ffprobe for compressed formats."""
    path = Path(path)
    if path.suffix.lower() == ".wav":
        try:
            with wave.open(str(path), "rb") as w:
                return w.getnframes() / float(w.getframerate())
        except (wave.Error, EOFError) as exc:
            raise RecordingError(f"{path}: unreadable WAV: {exc}") from None
    proc = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                           "-of", "default=noprint_wrappers=1:nokey=1", str(path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    try:
        return float(proc.stdout.decode().strip())
    except ValueError:
        raise RecordingError(f"{path}: ffprobe cannot read it: {proc.stderr.decode()[-200:]}") from None


def archive_path(archive_root, call_uuid, when, ext):
    when = when.astimezone(datetime.timezone.utc) if when.tzinfo else when
    return Path(archive_root) / f"{when:%Y/%m/%d}" / f"{call_uuid}.{ext}"


def archive_recording(src, uuid, when, archive_root, expected_seconds=None, log=log):
    """Archive src for call uuid recorded at `when`; return {path, sha256, bytes, seconds}.
    expected_seconds (the recorded time the switch reported) rejects a file far shorter than it."""
    src = Path(src)
    call_uuid = commands.uuid(uuid)
    ext = src.suffix.lstrip(".").lower()
    if not re.fullmatch(r"[a-z0-9]{1,8}", ext):
        raise RecordingError(f"{src}: no usable file extension")
    try:
        size = src.stat().st_size
    except FileNotFoundError:
        raise RecordingError(f"{src}: no such recording") from None
    if size <= WAV_HEADER_BYTES:
        raise RecordingError(f"{src}: {size} bytes, an empty recording (kept for inspection)")
    seconds = recording_seconds(src)
    if seconds <= 0:
        raise RecordingError(f"{src}: no audio (kept for inspection)")
    if expected_seconds and seconds < expected_seconds * 0.5 - 1:
        raise RecordingError(f"{src}: {seconds:.1f} s of audio for {expected_seconds:.1f} s recorded "
                             "(kept for inspection)")
    dest = archive_path(archive_root, call_uuid, when, ext)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        existing = _sha256(dest)
        if existing != _sha256(src):
            raise RecordingError(f"{dest} already archived with different content")
        if not _sidecar(dest).exists():
            _write_sidecar(dest, existing)
        src.unlink()  # archived before a crash that left the source behind
        log.info("%s: recording already archived at %s", call_uuid, dest)
        return {"path": dest, "sha256": existing, "bytes": dest.stat().st_size, "seconds": seconds}
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{call_uuid}.", suffix=".tmp")
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            while chunk := inp.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        sha = digest.hexdigest()
        _write_sidecar(dest, sha)
        os.replace(tmp_name, dest)
    except BaseException:
        # full disk or any failure: nothing half-written stays in the archive, the source stays
        for leftover in (Path(tmp_name), _sidecar(dest)):
            leftover.unlink(missing_ok=True)
        raise
    src.unlink()
    log.info("%s: archived %d bytes, %.1f s at %s", call_uuid, size, seconds, dest)
    return {"path": dest, "sha256": sha, "bytes": size, "seconds": seconds}


def verify(root):
    """Recompute every checksum. Returns {'ok': [...], 'mismatch': [...], 'missing': [...],
    'unindexed': [...]} of paths (missing: a sidecar whose recording is gone)."""
    root = Path(root)
    result = {"ok": [], "mismatch": [], "missing": [], "unindexed": []}
    for path in sorted(_archived_files(root)):
        side = _sidecar(path)
        if not side.exists():
            result["unindexed"].append(path)
        elif _read_sidecar(side) == _sha256(path):
            result["ok"].append(path)
        else:
            result["mismatch"].append(path)
    for side in sorted(root.rglob("*.sha256")):
        if not side.with_suffix("").exists():
            result["missing"].append(side.with_suffix(""))
    return result


def apply_retention(root, keep_days, now, held=(), log=log):
    """Delete recordings whose day directory is older than keep_days before now (a date or
    datetime); uuids in `held` (legal hold) stay. Returns [{path, sha256, day}] of what went."""
    if keep_days < MIN_RETENTION_DAYS:
        raise ValueError(f"retention of {keep_days} days is below the {MIN_RETENTION_DAYS}-day minimum")
    today = now.date() if isinstance(now, datetime.datetime) else now
    cutoff = today - datetime.timedelta(days=keep_days)
    held = set(held)
    root = Path(root)
    removed = []
    for path in sorted(_archived_files(root)):
        m = DATE_DIR.match(path.parent.relative_to(root).as_posix())
        if not m:
            continue  # not an archive day directory: never ours to delete
        day = datetime.date(*(int(x) for x in m.groups()))
        if day >= cutoff or path.name.split(".")[0] in held:
            continue
        side = _sidecar(path)
        sha = _read_sidecar(side) if side.exists() else None
        path.unlink()
        side.unlink(missing_ok=True)
        removed.append({"path": path, "sha256": sha, "day": day})
        log.info("retention: removed %s (recorded %s, kept %d days)", path, day, keep_days)
    for day_dir in sorted({r["path"].parent for r in removed}, reverse=True):
        for d in (day_dir, day_dir.parent, day_dir.parent.parent):
            try:
                d.rmdir()  # only when empty
            except OSError:
                break
    return removed


def _archived_files(root):
    return (p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
            and p.suffix != ".sha256")


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _sidecar(path):
    return path.with_name(path.name + ".sha256")


def _write_sidecar(dest, sha):
    side = _sidecar(dest)
    tmp = side.with_name("." + side.name + ".tmp")
    tmp.write_text(f"{sha}  {dest.name}\n")
    os.replace(tmp, side)


def _read_sidecar(side):
    return side.read_text().split()[0]
