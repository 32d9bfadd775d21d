"""The recordings archive at work: RECORD_STOP -> check -> (compress) -> archive -> index -> backup.

The lead's code calls, when the switch reports RECORD_STOP for a call recording:

    archiver = Archiver(settings)          # once; settings = engine.settings.Settings
    archiver.open()                        # tables created if missing; scan with scan_live_dir()
    archiver.on_record_stop(event)         # or archiver.finish(call_uuid, path, recorded_seconds)

Both return at once: the work runs in its own greenlet and never raises into the caller. A file
that cannot be archived raises an alarm (log ERROR, `alarms`, `alarm_hooks`): a near-empty or
truncated file is moved to `<archive>/suspect/` for a human, a full disk leaves the file where the
switch wrote it (the next start-up scan, or `retry_pending()`, archives it later).

The index (`Recording`, one row a call, linked to the CDR by call uuid) and its audit trail
(`RecordingAudit`: purge, hold, release, export, listen, suspect) live in the CDR database.
"""
import calendar
import datetime
import errno
import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import gevent
import gevent.pool
import peewee
from gevent import subprocess

from engine.cdr.models import BaseModel, JSONField, utcnow
from engine.esl import commands
from engine.infra.dbwriter import SerialisedDb
from engine.media import archive

log = logging.getLogger("hotline.recordings")

MIN_RETENTION_MONTHS = 12
UUID_NAME = re.compile(r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
                       r"\.(wav|mp3|opus|ogg)$")
ENCODERS = {"opus": ["-c:a", "libopus", "-b:a", "32k", "-f", "opus"],
            "mp3": ["-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"]}
# an archived file: <uuid>.<ext> (part 1) or <uuid>.partN.<ext> (archive.archive_path)
PART_NAME = re.compile(r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
                       r"(?:\.part(\d+))?\.(wav|mp3|opus|ogg)$")
PG_WRITE_LOCK = 0x7265_6373     # advisory lock key ('recs'): two engines creating the tables take turns


class Recording(BaseModel):
    """One archived (or suspect, or purged) recording a call. Times are naive UTC."""
    call_uuid = peewee.CharField(max_length=64, unique=True)
    path = peewee.TextField()
    sha256 = peewee.CharField(max_length=64, null=True)
    bytes = peewee.BigIntegerField(null=True)
    seconds = peewee.FloatField(null=True)
    channels = peewee.IntegerField(null=True)
    sample_rate = peewee.IntegerField(null=True)
    format = peewee.CharField(max_length=16, null=True)
    recorded_at = peewee.DateTimeField(null=True, index=True)   # the archive day directory
    archived_at = peewee.DateTimeField(default=utcnow)
    backup_path = peewee.TextField(null=True)
    legal_hold = peewee.BooleanField(default=False)
    purged_at = peewee.DateTimeField(null=True)
    state = peewee.CharField(max_length=16, default="archived", index=True)  # archived|suspect|purged
    problem = peewee.TextField(null=True)                       # why a suspect file was refused
    # further recordings of the same call (on-demand stop, then start again): [{path, sha256,
    # bytes, seconds, backup_path}], archived beside the first as <uuid>.partN.<ext>
    parts = JSONField(null=True)


class RecordingAudit(BaseModel):
    """Who did what to a recording, for the record: purge, hold, release, export, listen, suspect."""
    call_uuid = peewee.CharField(max_length=64, index=True)
    action = peewee.CharField(max_length=16)
    actor = peewee.CharField(max_length=64)
    at = peewee.DateTimeField(default=utcnow)
    detail = JSONField(null=True)


RECORDING_MODELS = [Recording, RecordingAudit]
STATES = ("archived", "suspect", "purged")


@dataclass(frozen=True)
class ArchiveConfig:
    """What the archiver needs; `from_settings` reads it from engine.settings.Settings."""
    archive_dir: Path
    live_dir: Path
    database_url: str
    retention_months: int = 24
    compress: str = "none"
    backup_dir: Optional[Path] = None

    def __post_init__(self):
        if self.retention_months < MIN_RETENTION_MONTHS:
            raise ValueError(f"recordings retention of {self.retention_months} months is below the "
                             f"{MIN_RETENTION_MONTHS}-month minimum")
        if self.compress not in ("none", *ENCODERS):
            raise ValueError(f"recordings compress must be none, opus or mp3; got {self.compress!r}")

    @classmethod
    def from_settings(cls, settings):
        rec = getattr(settings, "recordings", None)
        return cls(archive_dir=Path(settings.paths.archive), live_dir=Path(settings.paths.recordings),
                   database_url=settings.database.url,
                   retention_months=getattr(rec, "retention_months", 24),
                   compress=getattr(rec, "compress", "none"),
                   backup_dir=getattr(rec, "backup_dir", None))


def months_before(day, months):
    """The same day `months` calendar months earlier (clamped to the month's last day)."""
    y, m = divmod(day.year * 12 + day.month - 1 - months, 12)
    return datetime.date(y, m + 1, min(day.day, calendar.monthrange(y, m + 1)[1]))


class Archiver(SerialisedDb):
    """The recordings' archive and their index (tables in the CDR database, one connection:
    engine.infra.dbwriter). The index's statements run on their own, outside a write transaction."""
    pg_write_lock = PG_WRITE_LOCK
    lock_wait = 3.0             # seconds a locked database is waited for: the file stays, the index says so

    def __init__(self, settings_like, alarm_hooks=()):
        config = settings_like if isinstance(settings_like, ArchiveConfig) \
            else ArchiveConfig.from_settings(settings_like)
        super().__init__(config.database_url)
        self.config = config
        self.alarms = []                     # (time, call uuid, message), newest last
        self.alarm_hooks = list(alarm_hooks)  # fn(call_uuid, message)
        self.pending = {}                    # call uuid -> (path, seconds) left in place (disk full)
        self.unindexed = {}                  # archived path -> call uuid: index write failed
        self.jobs = gevent.pool.Group()

    # --- life cycle ------------------------------------------------------------------------
    def bind(self, db):
        """The tables live in the CDR database; open() creates them if missing (idempotent)."""
        db.bind(RECORDING_MODELS, bind_refs=False, bind_backrefs=False)
        return RECORDING_MODELS

    def close(self):
        self.jobs.join(timeout=60)
        super().close()

    def join(self, timeout=None):
        """Wait for archiving in progress (tests, shutdown)."""
        self.jobs.join(timeout=timeout)

    # --- RECORD_STOP -----------------------------------------------------------------------
    def on_record_stop(self, event):
        """Hand a RECORD_STOP event (engine.esl.protocol.Event) over; returns the greenlet or None.
        Tap files (.r16 ...) and files outside the live recordings directory are not ours."""
        path = event.get("Record-File-Path") or ""
        if not UUID_NAME.match(os.path.basename(path)) or \
                Path(path).resolve().parent != self.config.live_dir.resolve():
            return None
        seconds = event.get("variable_record_seconds") or ""
        ms = event.get("variable_record_ms") or ""
        recorded = int(ms) / 1000.0 if ms.isdigit() else float(seconds) if seconds.isdigit() else None
        return self.finish(event.get("Unique-ID") or UUID_NAME.match(os.path.basename(path)).group(1),
                           path, recorded)

    def finish(self, call_uuid, path, recorded_seconds, when=None):
        """Archive one finished recording in a greenlet of its own; never raises (bad input is an
        alarm). Returns the greenlet, whose value is the index row dict or None."""
        return self.jobs.spawn(self._finish_safe, call_uuid, path, recorded_seconds, when)

    def _finish_safe(self, call_uuid, path, recorded_seconds, when):
        try:
            return self.archive_now(call_uuid, path, recorded_seconds, when)
        except Exception as exc:    # noqa: BLE001 - a call's recording must never take the engine down
            if Path(path).is_file():
                # still in the live directory (the index was locked before the file moved, say):
                # the next retry_pending() archives it
                self.pending[str(call_uuid)] = (str(path), recorded_seconds)
            self.alarm(call_uuid, f"archiving {path} failed: {exc!r}")
            return None

    def archive_now(self, call_uuid, path, recorded_seconds=None, when=None):
        """The work of finish(), in the caller's greenlet; returns the index row dict or None."""
        clog = CallLog(call_uuid)
        call_uuid = commands.uuid(call_uuid)
        src = Path(path)
        when = when or datetime.datetime.now(datetime.timezone.utc)
        earlier = self.get(call_uuid)
        part = 1
        if earlier and earlier["state"] == "archived":
            part = 2 + len(earlier["parts"] or [])
            when = earlier["recorded_at"].replace(tzinfo=datetime.timezone.utc)  # same day directory
        try:
            archive.check_recording(src, recorded_seconds)
        except archive.RecordingError as exc:
            if not src.exists():
                self.alarm(call_uuid, f"recording missing at RECORD_STOP: {exc}")
                return None
            return self._suspect(call_uuid, src, str(exc), when)
        try:
            info = self._archive(call_uuid, src, recorded_seconds, when, clog, part)
        except archive.RecordingError as exc:
            return self._suspect(call_uuid, src, str(exc), when)
        except OSError as exc:
            # full disk (or a dead mount): the call goes on, the file stays in the live directory
            self.pending[call_uuid] = (str(src), recorded_seconds)
            what = "archive disk full" if exc.errno == errno.ENOSPC else "archive write failed"
            self.alarm(call_uuid, f"{what}: {exc}; {src} left in place for a later retry")
            return None
        self.pending.pop(call_uuid, None)
        backup = self._backup(call_uuid, info["path"])
        if part > 1:
            parts = (earlier["parts"] or []) + [{
                "path": str(info["path"]), "sha256": info["sha256"], "bytes": info["bytes"],
                "seconds": round(info["seconds"], 3), "backup_path": str(backup) if backup else None}]
            if not self._index_or_remember(call_uuid, info["path"], lambda: Recording.update(parts=parts)
                                           .where(Recording.call_uuid == call_uuid).execute()):
                return None
            clog.info("recording part %d archived: %s (%.1f s)", part, info["path"], info["seconds"])
            return self.get(call_uuid)
        row = dict(call_uuid=call_uuid, path=str(info["path"]), sha256=info["sha256"],
                   bytes=info["bytes"], seconds=round(info["seconds"], 3), channels=info["channels"],
                   sample_rate=info["sample_rate"], format=info["format"],
                   recorded_at=_naive(when), archived_at=utcnow(),
                   backup_path=str(backup) if backup else None, state="archived", problem=None,
                   purged_at=None, parts=None)
        if not self._index_or_remember(call_uuid, info["path"], lambda: self._upsert(row)):
            return None
        clog.info("recording archived: %s (%.1f s, %s channel(s), sha256 %s)",
                  info["path"], info["seconds"], info["channels"], info["sha256"][:12])
        return row

    def _archive(self, call_uuid, src, recorded_seconds, when, clog, part=1):
        fmt = self.config.compress
        if fmt == "none":
            return archive.archive_recording(src, call_uuid, when, self.config.archive_dir,
                                             recorded_seconds, log=clog, part=part)
        encoded = src.with_name(f".{call_uuid}.encoding.{fmt}")
        try:
            self._encode(src, encoded, fmt)
        except (OSError, archive.RecordingError) as exc:
            # the original is still good: archive it as it is rather than lose it
            encoded.unlink(missing_ok=True)
            self.alarm(call_uuid, f"compression to {fmt} failed ({exc}); archiving the original")
            return archive.archive_recording(src, call_uuid, when, self.config.archive_dir,
                                             recorded_seconds, log=clog, part=part)
        try:
            info = archive.archive_recording(encoded, call_uuid, when, self.config.archive_dir,
                                             recorded_seconds, log=clog, part=part)
        except BaseException:
            encoded.unlink(missing_ok=True)
            raise
        src.unlink()
        return info

    @staticmethod
    def _encode(src, out, fmt):
        # gevent.subprocess: ffmpeg runs while calls go on
        proc = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src),
                               *ENCODERS[fmt], str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()[-300:]
            if "No space left" in err:
                raise OSError(errno.ENOSPC, f"ffmpeg: {err}")
            raise archive.RecordingError(f"ffmpeg exit {proc.returncode}: {err}")

    def _suspect(self, call_uuid, src, problem, when):
        """Refused file: moved aside for inspection (never deleted), indexed, audited, alarmed."""
        dest_dir = self.config.archive_dir / archive.SUSPECT_DIR
        dest = dest_dir / f"{call_uuid}-{int(time.time())}{src.suffix.lower()}"
        try:
            dest_dir.mkdir(parents=True, exist_ok=True)
            _move(src, dest)
        except OSError as exc:
            self.alarm(call_uuid, f"suspect recording ({problem}) could not be moved aside ({exc}); "
                                  f"left at {src}")
            dest = src
        self.alarm(call_uuid, f"suspect recording: {problem}; kept at {dest}")
        row = dict(call_uuid=call_uuid, path=str(dest), sha256=None, bytes=dest.stat().st_size,
                   seconds=None, channels=None, sample_rate=None, format=src.suffix.lstrip(".").lower(),
                   recorded_at=_naive(when), archived_at=utcnow(), backup_path=None,
                   state="suspect", problem=problem, purged_at=None, parts=None)
        existing = self.get(call_uuid)
        if existing and existing["state"] == "archived":
            # a good recording of this call is archived already: keep its row, audit this one
            self._audit(call_uuid, "suspect", "archiver", {"path": str(dest), "problem": problem})
            return None
        self._upsert(row)
        self._audit(call_uuid, "suspect", "archiver", {"path": str(dest), "problem": problem})
        return row

    def _backup(self, call_uuid, archived):
        if not self.config.backup_dir:
            return None
        rel = Path(archived).relative_to(self.config.archive_dir)
        dest = Path(self.config.backup_dir) / rel
        try:
            archive.copy_atomic(archived, dest)
        except OSError as exc:
            self.alarm(call_uuid, f"backup copy to {dest} failed: {exc} (the archived copy is safe)")
            return None
        return dest

    def _recorded_at(self, path):
        """When an archived file was recorded, as far as the archive says: its mtime if that falls
        on its day directory's date (retention goes by the directory), else that day at 00:00."""
        mtime = _naive(datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.timezone.utc))
        day = archive.DATE_DIR.match(path.parent.relative_to(self.config.archive_dir).as_posix())
        if not day:
            return mtime
        date = datetime.date(*map(int, day.groups()))
        return mtime if mtime.date() == date else datetime.datetime.combine(date, datetime.time())

    def _backup_of(self, path):
        if not self.config.backup_dir:
            return None
        copy = Path(self.config.backup_dir) / Path(path).relative_to(self.config.archive_dir)
        return str(copy) if copy.is_file() else None

    def retry_pending(self):
        """Archive again what a full disk left in the live directory, and index what a locked or
        failing database left unindexed in the archive."""
        done = [self.archive_now(u, p, s) for u, (p, s) in list(self.pending.items())]
        for path in list(self.unindexed):
            try:
                row = self.index_file(path)
            except Exception as exc:        # noqa: BLE001 - still unavailable: the next retry
                log.warning("%s: still not indexed: %s", path, exc)
                continue
            self.unindexed.pop(path, None)
            if row:
                done.append(row)
        return done

    def _index_or_remember(self, call_uuid, path, write):
        """Run an index write for a file already in the archive. If the database will not take it
        (locked longer than we wait, failing), the file is archived but unknown to list, export,
        hold and purge: remember it for retry_pending(), alarm, and return False."""
        try:
            write()
            return True
        except (peewee.DatabaseError, peewee.InterfaceError, OSError) as exc:
            self.unindexed[str(path)] = call_uuid
            self.alarm(call_uuid, f"{path} archived but not indexed ({exc}); the index is retried")
            return False

    def reindex(self, days=None):
        """Index every archive file the index does not know (a crash or a database failure between
        the move into the archive and the index write); `days`: only the day directories of the
        last that many days (the engine's start-up pass), else the whole archive. Returns the rows
        written."""
        done = []
        for path in self.unindexed_files(days):
            try:
                row = self.index_file(path)
            except Exception as exc:        # noqa: BLE001 - one bad file must not stop the rest
                self.alarm(path.name.split(".")[0], f"{path} cannot be indexed: {exc}")
                continue
            if row:
                done.append(row)
        return done

    def unindexed_files(self, days=None):
        """Archive files that no index row (first part or later part, any state) names; `days`:
        only in the day directories of the last that many days (UTC), one index look-up a file."""
        root = self.config.archive_dir
        if days is None:
            known = set()
            for row in self.run(lambda: list(Recording.select(Recording.path, Recording.parts))):
                known.add(row.path)
                known.update(p.get("path") for p in row.parts or [] if isinstance(p, dict))
            found = [p for p in archive._archived_files(root) if PART_NAME.match(p.name) and str(p) not in known]
            return sorted(found, key=_part_order)
        today = datetime.datetime.now(datetime.timezone.utc).date()
        found = []
        for back in range(int(days) + 1):
            day_dir = root / f"{today - datetime.timedelta(days=back):%Y/%m/%d}"
            if not day_dir.is_dir():
                continue
            for path in sorted(day_dir.iterdir(), key=_part_order):
                m = PART_NAME.match(path.name)
                if not m or not path.is_file():
                    continue
                row = self.get(m.group(1))
                paths = {row["path"]} | {p.get("path") for p in row["parts"] or []} if row else set()
                if str(path) not in paths:
                    found.append(path)
                gevent.sleep(0)         # thousands of files a day: calls go on meanwhile
        return sorted(found, key=_part_order)

    def index_file(self, path):
        """The index row of one archived file, from the file itself: its sidecar checksum (computed
        if missing), its audio, its day directory. Returns the row (first part) or None."""
        path = Path(path)
        m = PART_NAME.match(path.name)
        if not m:
            raise ValueError(f"{path} is not an archived recording name")
        call_uuid, part = m.group(1), int(m.group(2) or 1)
        side = archive._sidecar(path)
        sha = archive._read_sidecar(side) if side.exists() else archive.sha256_of(path)
        if not side.exists():
            archive._write_sidecar(path, sha)
        info = archive.probe(path)
        row = self.get(call_uuid)
        if part > 1:
            if row is None:
                raise ValueError(f"{path}: part {part} of a call whose first part is not indexed")
            parts = [p for p in row["parts"] or [] if p.get("path") != str(path)]
            parts.append({"path": str(path), "sha256": sha, "bytes": path.stat().st_size,
                          "seconds": round(info["seconds"], 3), "backup_path": None})
            self.run(lambda: Recording.update(parts=parts).where(Recording.call_uuid == call_uuid).execute())
            CallLog(call_uuid).info("recording part %d indexed: %s", part, path)
            return self.get(call_uuid)
        if row and row["state"] == "archived" and row["path"] == str(path):
            return None
        new = dict(call_uuid=call_uuid, path=str(path), sha256=sha, bytes=path.stat().st_size,
                   seconds=round(info["seconds"], 3), channels=info["channels"],
                   sample_rate=info["sample_rate"], format=info["format"],
                   recorded_at=self._recorded_at(path), archived_at=utcnow(),
                   backup_path=self._backup_of(path), state="archived", problem=None,
                   purged_at=None, parts=(row or {}).get("parts") if row and row["state"] == "archived" else None)
        self._upsert(new)
        self._audit(call_uuid, "index", "archiver", {"path": str(path), "sha256": sha,
                                                     "why": "archived but not indexed"})
        CallLog(call_uuid).info("recording indexed from the archive: %s", path)
        return new

    # --- start-up scan ---------------------------------------------------------------------
    def scan_live_dir(self, live_dir=None, is_call_live=lambda call_uuid: False):
        """Archive recordings in the live directory whose calls have ended (the engine was down
        at their RECORD_STOP). Only `<uuid>.<wav|mp3|opus|ogg>` files at the top level: taps,
        survey comments and voicemail are not call recordings. Returns the rows archived."""
        live = Path(live_dir or self.config.live_dir)
        done = []
        if not live.is_dir():
            return done
        for path in sorted(live.iterdir()):
            m = UUID_NAME.match(path.name)
            if not m or not path.is_file() or is_call_live(m.group(1)):
                continue
            when = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.timezone.utc)
            log.info("start-up scan: %s was left behind by an ended call; archiving it", path)
            row = self._finish_safe(m.group(1), path, None, when)
            if row:
                done.append(row)
        return done

    # --- retention, hold, export, verify ---------------------------------------------------
    def purge(self, now=None, dry_run=False, actor="retention"):
        """Remove recordings older than the retention period, except those on legal hold; each
        removal (archive copy and backup copy) gets an audit row. Returns what went (or would)."""
        now = now or datetime.datetime.now(datetime.timezone.utc)
        today = now.date() if isinstance(now, datetime.datetime) else now
        keep_days = (today - months_before(today, self.config.retention_months)).days
        held = {r.call_uuid for r in self.run(
            lambda: list(Recording.select(Recording.call_uuid).where(Recording.legal_hold == True)))}  # noqa: E712
        removed = archive.apply_retention(self.config.archive_dir, keep_days, today, held=held,
                                          log=log, dry_run=dry_run)
        out = []
        for item in removed:
            call_uuid = item["path"].name.split(".")[0]
            row = self.get(call_uuid)
            backups = {p["path"]: p["backup_path"] for p in (row and row["parts"]) or []}
            if row:
                backups[row["path"]] = row["backup_path"]
            entry = {"call_uuid": call_uuid, "path": str(item["path"]), "sha256": item["sha256"],
                     "day": item["day"].isoformat(), "backup_path": backups.get(str(item["path"]))}
            out.append(entry)
            if dry_run:
                continue
            if entry["backup_path"]:
                Path(entry["backup_path"]).unlink(missing_ok=True)
                archive._sidecar(Path(entry["backup_path"])).unlink(missing_ok=True)
            if row and row["path"] == entry["path"]:
                self.run(lambda: Recording.update(state="purged", purged_at=utcnow())
                         .where(Recording.call_uuid == call_uuid).execute())
            self._audit(call_uuid, "purge", actor,
                        dict(entry, retention_months=self.config.retention_months))
        return out

    def hold(self, call_uuid, release=False, actor="cli", reason=None):
        """Put a recording on legal hold (or release it); the purge skips held recordings."""
        call_uuid = commands.uuid(call_uuid)
        row = self.get(call_uuid)
        if row is None:
            raise KeyError(f"no recording indexed for call {call_uuid}")
        if row["state"] == "purged":
            raise ValueError(f"the recording of call {call_uuid} was purged on {row['purged_at']}")
        self.run(lambda: Recording.update(legal_hold=not release)
                 .where(Recording.call_uuid == call_uuid).execute())
        self._audit(call_uuid, "release" if release else "hold", actor, {"reason": reason})
        return self.get(call_uuid)

    def export(self, call_uuid, out, actor="cli", part=1):
        """Copy an archived recording (or a later part of it) out after checking it against its
        indexed sha256."""
        call_uuid = commands.uuid(call_uuid)
        row = self._archived_part(call_uuid, part)
        src, out = Path(row["path"]), Path(out)
        if out.exists():
            raise FileExistsError(f"{out} exists; not overwriting it")
        sha = archive.copy_atomic(src, out)
        archive._sidecar(out).unlink(missing_ok=True)   # the caller asked for one file
        if sha != row["sha256"]:
            out.unlink()
            raise ValueError(f"{src} does not match its indexed sha256 (run verify); not exported")
        self._audit(call_uuid, "export", actor, {"out": str(out.resolve()), "sha256": sha, "part": part})
        return out

    def listen(self, call_uuid, actor="cli", part=1, reason=None):
        """The bytes of an archived recording (or a later part), checked against its indexed
        sha256, for someone to listen to; who listened, when and why gets an audit row first."""
        call_uuid = commands.uuid(call_uuid)
        row = self._archived_part(call_uuid, part)
        data = Path(row["path"]).read_bytes()
        if hashlib.sha256(data).hexdigest() != row["sha256"]:
            raise ValueError(f"{row['path']} does not match its indexed sha256 (run verify)")
        self._audit(call_uuid, "listen", actor, {"part": part, "sha256": row["sha256"], "reason": reason})
        return data

    def _archived_part(self, call_uuid, part):
        row = self.get(call_uuid)
        if row is None or row["state"] != "archived":
            raise KeyError(f"no archived recording for call {call_uuid}"
                           + (f" (it is {row['state']})" if row else ""))
        parts = [row] + (row["parts"] or [])
        if not 1 <= part <= len(parts):
            raise KeyError(f"call {call_uuid} has {len(parts)} recording part(s), not {part}")
        row = parts[part - 1]
        if not Path(row["path"]).exists():
            raise FileNotFoundError(f"{row['path']} is missing from the archive (run verify)")
        return row

    def verify(self):
        """Recompute every checksum: the archive's sidecars and the index. Returns the archive's
        report plus 'index_missing' (indexed archived files that are gone), 'index_mismatch' and
        'not_indexed' (archive files no index row names: `reindex()` adds them)."""
        report = archive.verify(self.config.archive_dir)
        report["index_missing"], report["index_mismatch"] = [], []
        # archived files the index does not know: list, export, hold and purge cannot see them
        report["not_indexed"] = self.unindexed_files()
        bad = set(report["mismatch"])
        for row in self.list(state="archived"):
            for item in [row] + (row["parts"] or []):
                path = Path(item["path"])
                if not path.exists():
                    report["index_missing"].append(path)
                elif path not in bad and archive.sha256_of(path) != item["sha256"]:
                    report["index_mismatch"].append(path)
        return report

    # --- index -----------------------------------------------------------------------------
    def get(self, call_uuid):
        row = self.run(lambda: Recording.get_or_none(Recording.call_uuid == call_uuid))
        return _row_dict(row) if row else None

    def list(self, day=None, state=None):
        def query():
            q = Recording.select().order_by(Recording.recorded_at, Recording.id)
            if day is not None:
                start = datetime.datetime.combine(day, datetime.time())
                q = q.where((Recording.recorded_at >= start)
                            & (Recording.recorded_at < start + datetime.timedelta(days=1)))
            if state is not None:
                q = q.where(Recording.state == state)
            return [_row_dict(r) for r in q]
        return self.run(query)

    def audit_trail(self, call_uuid=None):
        def query():
            q = RecordingAudit.select().order_by(RecordingAudit.id)
            if call_uuid:
                q = q.where(RecordingAudit.call_uuid == call_uuid)
            return [{"call_uuid": a.call_uuid, "action": a.action, "actor": a.actor,
                     "at": a.at, "detail": a.detail} for a in q]
        return self.run(query)

    def _upsert(self, row):
        def write():
            with self.db.atomic():
                n = Recording.update(**{k: v for k, v in row.items() if k != "call_uuid"}) \
                    .where(Recording.call_uuid == row["call_uuid"]).execute()
                if not n:
                    Recording.create(**row)
        self.run(write)

    def _audit(self, call_uuid, action, actor, detail):
        self.run(lambda: RecordingAudit.create(call_uuid=call_uuid, action=action,
                                               actor=str(actor)[:64], detail=detail))

    # --- alarms ----------------------------------------------------------------------------
    def alarm(self, call_uuid, message):
        CallLog(call_uuid).error("ALARM recordings: %s", message)
        self.alarms.append((time.time(), call_uuid, message))
        del self.alarms[:-1000]
        for hook in self.alarm_hooks:
            try:
                hook(call_uuid, message)
            except Exception:       # noqa: BLE001 - a broken hook must not hide the alarm
                log.exception("recordings alarm hook %r failed", hook)


class CallLog(logging.LoggerAdapter):
    """The call's uuid in front of every line, as everywhere in the engine."""

    def __init__(self, call_uuid):
        super().__init__(log, {})
        self.call_uuid = str(call_uuid)[:64]

    def process(self, msg, kwargs):
        return f"{self.call_uuid}: {msg}", kwargs


def _move(src, dest):
    try:
        os.replace(src, dest)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        archive.copy_atomic(src, dest)      # another file system: copy, then drop the source
        archive._sidecar(dest).unlink(missing_ok=True)
        os.unlink(src)


def _part_order(path):
    m = PART_NAME.match(path.name)
    return (m.group(1), int(m.group(2) or 1)) if m else (path.name, 0)


def _naive(when):
    if when.tzinfo:
        when = when.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return when


def _row_dict(row):
    return {f: getattr(row, f) for f in Recording._meta.sorted_field_names if f != "id"}


__all__ = ["Archiver", "ArchiveConfig", "Recording", "RecordingAudit", "months_before"]
