"""`hotline recordings ...` round trip on a settings file: list, show (with the CDR link and the
audit trail), export, hold, purge (dry run and real), verify with exit codes."""
import datetime
import json
import wave
from pathlib import Path

import pytest

from engine.cdr.store import CdrStore
from engine.media.recordings import Archiver
from tests.clifix import run_cli, write_config

U = ["5b0c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2%x" % i for i in range(8)]
UTC = datetime.timezone.utc


def make_wav(path, seconds, rate=8000):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(range(256)) * (int(seconds * rate) * 4 // 256))
    return path


@pytest.fixture
def setup(tmp_path):
    # no ESL password in the environment: reading the archive must not need the switch's secret
    cfg, settings = write_config(tmp_path, "recordings: {retention_months: 12}\n")
    arch = Archiver(settings).open()
    now = datetime.datetime.now(UTC)
    old = now - datetime.timedelta(days=400)
    for u, when, secs in ((U[0], old, 1), (U[1], old, 2), (U[2], now, 3)):
        arch.finish(u, make_wav(settings.paths.recordings / f"{u}.wav", secs), secs, when=when).get(timeout=10)
    arch.finish(U[3], make_wav(settings.paths.recordings / f"{U[3]}.wav", 0), 30, when=now).get(timeout=10)
    arch.close()
    store = CdrStore(settings.database.url, settings.paths.cdr_spool).open()
    store.write({"uuid": U[2], "caller_number": "13800138000", "destination": "12345", "queue": "general",
                 "agent": "1001", "start_time": now})
    store.close()
    return cfg, settings, now, old


def test_list_show_export_hold_purge_verify_round_trip(setup, capsys, tmp_path):
    cfg, settings, now, old = setup
    c = ("--config", str(cfg))
    rc, out, _ = run_cli(capsys, "recordings", "list", *c)
    lines = out.splitlines()
    assert rc == 0 and lines[0].split()[:3] == ["recorded", "(Asia/Shanghai)", "call_uuid"] and len(lines) == 5
    today = now.astimezone(datetime.timezone(datetime.timedelta(hours=8))).date()     # the hotline's day
    rc, out, _ = run_cli(capsys, "recordings", "list", "--json", "--date", today.isoformat(), *c)
    data = json.loads(out)
    assert rc == 0 and {d["call_uuid"]: d["state"] for d in data} == {U[2]: "archived", U[3]: "suspect"}
    assert next(d for d in data if d["call_uuid"] == U[2])["seconds"] == 3.0
    rc, _, err = run_cli(capsys, "recordings", "list", "--date", "20.11.2026", *c)
    assert rc == 2 and "is not a day; use 2026-12-04, today" in err

    rc, out, _ = run_cli(capsys, "recordings", "show", U[2], *c)
    assert rc == 0 and "13800138000 -> 12345, queue general, agent 1001" in out
    shown = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in out.splitlines()}
    assert shown["cdr"].startswith(now.astimezone(datetime.timezone(datetime.timedelta(hours=8)))
                                   .strftime("%Y-%m-%d %H:%M:%S"))       # the hotline's time
    rc, out, _ = run_cli(capsys, "recordings", "show", U[2], "--json", *c)
    data = json.loads(out)
    assert rc == 0 and data["cdr"]["caller_number"] == "13800138000" and data["recorded_at"].endswith("+08:00")
    assert f"{U[2]}.wav" in out
    rc, out, _ = run_cli(capsys, "recordings", "show", U[3], *c)
    assert "empty recording" in out and "suspect" in out and "(no CDR with this call uuid)" in out
    rc, _, err = run_cli(capsys, "recordings", "show", U[7], *c)
    assert rc == 1 and "no recording indexed" in err

    out_file = tmp_path / "copy.wav"
    rc, out, _ = run_cli(capsys, "recordings", "export", U[2], "--out", str(out_file), *c)
    assert rc == 0 and out_file.read_bytes() == Path(json.loads(run_cli(capsys, "recordings", "list", "--json", *c)[1])[2]["path"]).read_bytes()
    rc, _, err = run_cli(capsys, "recordings", "export", U[3], "--out", str(tmp_path / "x.wav"), *c)
    assert rc == 1 and "it is suspect" in err

    rc, out, _ = run_cli(capsys, "recordings", "hold", U[1], "--reason", "complaint 2026-118", *c)
    assert rc == 0 and "legal hold on" in out
    rc, out, _ = run_cli(capsys, "recordings", "purge", "--dry-run", *c)
    assert rc == 0 and f"would purge {U[0]}" in out and U[1] not in out and "1 recording(s) would purge" in out
    rc, out, _ = run_cli(capsys, "recordings", "purge", *c)
    assert rc == 0 and f"purged {U[0]}" in out and U[1] not in out
    rc, out, _ = run_cli(capsys, "recordings", "show", U[0], *c)
    assert "purged" in out and "purge " in out
    rc, out, _ = run_cli(capsys, "recordings", "show", U[1], *c)
    assert "hold" in out and "complaint 2026-118" in out

    rc, out, _ = run_cli(capsys, "recordings", "verify", *c)
    assert rc == 0 and "2 recording(s) verified, 0 problem(s)" in out
    rows = {d["call_uuid"]: d for d in json.loads(run_cli(capsys, "recordings", "list", "--json", *c)[1])}
    with open(rows[U[2]]["path"], "r+b") as f:
        f.seek(300)
        b = f.read(1)
        f.seek(300)
        f.write(bytes([b[0] ^ 0x80]))
    Path(rows[U[1]]["path"]).unlink()
    rc, out, _ = run_cli(capsys, "recordings", "verify", *c)
    assert rc == 1
    assert f"MISMATCH  {rows[U[2]]['path']}" in out and f"MISSING   {rows[U[1]]['path']}" in out
    assert "0 recording(s) verified, 2 problem(s)" in out


def test_bad_config_and_bad_uuid_are_clear_errors(setup, capsys, tmp_path):
    cfg = setup[0]
    rc, _, err = run_cli(capsys, "recordings", "list", "--config", str(tmp_path / "missing.yaml"))
    assert rc == 2 and "missing.yaml" in err
    rc, _, err = run_cli(capsys, "recordings", "hold", "../../etc", "--config", str(cfg))
    assert rc == 1 and "hold" in err


def test_every_data_printing_action_has_json(setup, capsys, tmp_path):
    cfg, settings, now, old = setup
    c = ("--config", str(cfg))
    rc, out, _ = run_cli(capsys, "recordings", "verify", "--json", *c)
    report = json.loads(out)
    assert rc == 0 and report["verified"] == 3 and report["problems"] == 0 and report["mismatch"] == []
    rc, out, _ = run_cli(capsys, "recordings", "hold", U[1], "--reason", "complaint", "--json", *c)
    row = json.loads(out)
    assert rc == 0 and row["call_uuid"] == U[1] and row["legal_hold"] is True
    assert row["recorded_at"].endswith("+08:00")                    # the hotline's zone
    rc, out, _ = run_cli(capsys, "recordings", "purge", "--dry-run", "--json", *c)
    purge = json.loads(out)
    assert rc == 0 and purge["dry_run"] is True and [r["call_uuid"] for r in purge["recordings"]] == [U[0]]
    rc, out, _ = run_cli(capsys, "recordings", "export", U[2], "--out", str(tmp_path / "c.wav"), "--json", *c)
    assert rc == 0 and json.loads(out) == {"call_uuid": U[2], "part": 1, "path": str(tmp_path / "c.wav")}
    rc, out, _ = run_cli(capsys, "recordings", "reindex", "--json", *c)
    assert rc == 0 and json.loads(out) == []
