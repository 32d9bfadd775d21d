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
import json
import wave
from pathlib import Path

import gevent
from gevent import subprocess

from engine.esl import commands

log = logging.getLogger("engine.media.archive")

WAV_HEADER_BYTES = 44  # FreeSWITCH #1787: a "recorded" WAV can be a bare header
MIN_RETENTION_DAYS = 365  # public hotlines keep recordings at least 12 months
CHUNK = 1 << 20
# Pause between 1 MiB chunks of copying/hashing. sleep(0) is not enough: it lets ready greenlets
# run but not the loop's timers, so a 10 ms ticker was 150 ms late during a 115 MB copy; with a
# real 1 ms pause it stays within a few ms (+~0.1 s an hour of stereo audio).
CHUNK_PAUSE = 0.001
DATE_DIR = re.compile(r"^(\d{4})/(\d{2})/(\d{2})$")
SUSPECT_DIR = "suspect"  # <archive>/suspect/: files refused at RECORD_STOP, kept for a human
# A file holding less audio than this share of the recorded time (minus a little slack for the
# switch rounding record_seconds) is refused: FreeSWITCH #1787 and truncated writes.
MIN_AUDIO_SHARE = 0.8
AUDIO_SLACK_SECONDS = 2.0


class RecordingError(ValueError):
    """The recording is unusable (empty, truncated, unreadable); the source file is kept."""


def recording_seconds(path):
    """Duration of a recording: from the WAV header, or ffprobe for compressed formats."""
    return probe(path)["seconds"]


def probe(path):
    """{seconds, channels, sample_rate, format} of a recording. For WAV the duration is what the
    file really holds: a header promising more frames than were written (a crash mid-call) does
    not count. Compressed formats go through ffprobe (a gevent subprocess, off the hub)."""
    path = Path(path)
    if path.suffix.lower() == ".wav":
        try:
            with wave.open(str(path), "rb") as w:
                channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
                frames = w.getnframes()
        except (wave.Error, EOFError) as exc:
            raise RecordingError(f"{path}: unreadable WAV: {exc}") from None
        held = max(0, path.stat().st_size - WAV_HEADER_BYTES) // (channels * width)
        return {"seconds": min(frames, held) / float(rate), "channels": channels,
                "sample_rate": rate, "format": "wav"}
    proc = subprocess.run(["ffprobe", "-v", "error", "-of", "json", "-show_entries",
                           "format=duration,format_name:stream=channels,sample_rate", str(path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    try:
        info = json.loads(proc.stdout.decode() or "{}")
        stream = (info.get("streams") or [{}])[0]
        return {"seconds": float(info["format"]["duration"]),
                "channels": int(stream.get("channels") or 0) or None,
                "sample_rate": int(stream.get("sample_rate") or 0) or None,
                "format": path.suffix.lstrip(".").lower()}
    except (ValueError, KeyError, TypeError):
        raise RecordingError(f"{path}: ffprobe cannot read it: {proc.stderr.decode()[-200:]}") from None


def check_recording(src, expected_seconds=None):
    """Refuse an unusable finished recording (RecordingError, source untouched); return probe()."""
    src = Path(src)
    try:
        size = src.stat().st_size
    except FileNotFoundError:
        raise RecordingError(f"{src}: no such recording") from None
    if size <= WAV_HEADER_BYTES:
        raise RecordingError(f"{src}: {size} bytes, an empty recording (kept for inspection)")
    info = probe(src)
    if info["seconds"] <= 0:
        raise RecordingError(f"{src}: no audio (kept for inspection)")
    if expected_seconds and info["seconds"] < expected_seconds * MIN_AUDIO_SHARE - AUDIO_SLACK_SECONDS:
        raise RecordingError(f"{src}: {info['seconds']:.1f} s of audio for {expected_seconds:.1f} s recorded "
                             "(kept for inspection)")
    return dict(info, bytes=size)


def archive_path(archive_root, call_uuid, when, ext, part=1):
    """YYYY/MM/DD/<uuid>.<ext>; a call recorded again (on-demand stop, then start) adds
    <uuid>.part2.<ext> ... in the first part's day directory."""
    when = when.astimezone(datetime.timezone.utc) if when.tzinfo else when
    name = f"{call_uuid}.{ext}" if part == 1 else f"{call_uuid}.part{int(part)}.{ext}"
    return Path(archive_root) / f"{when:%Y/%m/%d}" / name


def archive_recording(src, uuid, when, archive_root, expected_seconds=None, log=log, part=1):
    """Archive src for call uuid recorded at `when`; return {path, sha256, bytes, seconds}.
    expected_seconds (the recorded time the switch reported) rejects a file far shorter than it."""
    src = Path(src)
    call_uuid = commands.uuid(uuid)
    ext = src.suffix.lstrip(".").lower()
    if not re.fullmatch(r"[a-z0-9]{1,8}", ext):
        raise RecordingError(f"{src}: no usable file extension")
    info = check_recording(src, expected_seconds)
    size, seconds = info["bytes"], info["seconds"]
    dest = archive_path(archive_root, call_uuid, when, ext, part)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        existing = _sha256(dest)
        if existing != _sha256(src):
            raise RecordingError(f"{dest} already archived with different content")
        if not _sidecar(dest).exists():
            _write_sidecar(dest, existing)
        src.unlink()  # archived before a crash that left the source behind
        log.info("%s: recording already archived at %s", call_uuid, dest)
        return dict(info, path=dest, sha256=existing, bytes=dest.stat().st_size)
    sha = copy_atomic(src, dest)
    src.unlink()
    log.info("%s: archived %d bytes, %.1f s at %s", call_uuid, size, seconds, dest)
    return dict(info, path=dest, sha256=sha)


def copy_atomic(src, dest):
    """Copy src to dest with its sha256 sidecar; return the sha256. Copy-then-rename: on a full
    disk or any failure nothing half-written is left at dest, and src is never touched."""
    src, dest = Path(src), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            sha = _copy_into(inp, out)
            out.flush()
            # fsync of ~100 MB takes a few hundred ms in C: in a thread, calls keep running
            gevent.get_hub().threadpool.apply(os.fsync, (out.fileno(),))
        _write_sidecar(dest, sha)
        os.replace(tmp_name, dest)
    except BaseException:
        # full disk or any failure: nothing half-written stays behind, the source stays
        for leftover in (Path(tmp_name), _sidecar(dest)):
            leftover.unlink(missing_ok=True)
        raise
    return sha


def _copy_into(inp, out):
    digest = hashlib.sha256()
    while chunk := inp.read(CHUNK):
        digest.update(chunk)
        out.write(chunk)
        gevent.sleep(CHUNK_PAUSE)  # an hour of stereo audio is ~115 MB: let calls run between chunks
    return digest.hexdigest()


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
        if (root / SUSPECT_DIR) in side.parents:
            continue
        if not side.with_suffix("").exists():
            result["missing"].append(side.with_suffix(""))
    return result


def apply_retention(root, keep_days, now, held=(), log=log, dry_run=False):
    """Delete recordings whose day directory is older than keep_days before now (a date or
    datetime); uuids in `held` (legal hold) stay. Returns [{path, sha256, day}] of what went
    (dry_run: of what would go, deleting nothing)."""
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
        if dry_run:
            removed.append({"path": path, "sha256": sha, "day": day})
            continue
        path.unlink()
        side.unlink(missing_ok=True)
        removed.append({"path": path, "sha256": sha, "day": day})
        log.info("retention: removed %s (recorded %s, kept %d days)", path, day, keep_days)
    for day_dir in sorted({r["path"].parent for r in removed} if not dry_run else (), reverse=True):
        for d in (day_dir, day_dir.parent, day_dir.parent.parent):
            try:
                d.rmdir()  # only when empty
            except OSError:
                break
    return removed


def _archived_files(root):
    # suspect/ holds refused files for a human: neither verified nor purged
    suspect = root / SUSPECT_DIR
    return (p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
            and p.suffix != ".sha256" and suspect not in p.parents)


def sha256_of(path):
    return _sha256(path)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            gevent.sleep(CHUNK_PAUSE)
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
