"""The hotline's one clock (engine/infra/clock.py) and the commands that read and show time
through it. A fake clock everywhere: nothing here depends on when the tests run."""
import datetime
import json
import os
import subprocess
import sys

import pytest

from engine.cdr.store import CdrStore
from engine.infra import clock as clockmod
from engine.infra.clock import Clock, TimeInputError
from tests.clifix import run_cli, write_config

UTC = datetime.timezone.utc
CST = datetime.timezone(datetime.timedelta(hours=8))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def fake_now(monkeypatch):
    """Set the wall clock the commands see: fake_now(aware datetime)."""
    def set_now(when):
        monkeypatch.setattr(clockmod, "wall_now", lambda: when)
    return set_now


# --- parsing what an operator types -----------------------------------------------------------

def test_what_an_operator_types_is_read_in_the_hotline_zone():
    now = datetime.datetime(2026, 12, 4, 1, 30, tzinfo=UTC)          # 09:30 in Shanghai
    c = Clock("Asia/Shanghai", now=lambda: now)
    assert c.parse("2026-12-04") == datetime.datetime(2026, 12, 4, tzinfo=CST)
    assert c.parse("2026-12-04 09:30") == datetime.datetime(2026, 12, 4, 9, 30, tzinfo=CST)
    assert c.parse("2026-12-04T09:30:15") == datetime.datetime(2026, 12, 4, 9, 30, 15, tzinfo=CST)
    assert c.parse("2026/12/4 9:05") == datetime.datetime(2026, 12, 4, 9, 5, tzinfo=CST)
    assert c.parse("08:00") == datetime.datetime(2026, 12, 4, 8, 0, tzinfo=CST)        # today
    assert c.parse("today") == datetime.datetime(2026, 12, 4, tzinfo=CST)
    assert c.parse(" Yesterday ") == datetime.datetime(2026, 12, 3, tzinfo=CST)
    assert c.parse("now") == now
    assert c.parse("-2h") == now - datetime.timedelta(hours=2)
    assert c.parse("-1h30m") == now - datetime.timedelta(minutes=90)
    assert c.parse("-3d") == now - datetime.timedelta(days=3)
    # an offset wins over the zone, and the result is shown in the zone
    assert c.parse("2026-12-04T00:00:00Z") == datetime.datetime(2026, 12, 4, 8, 0, tzinfo=CST)
    assert c.parse("2026-12-04T09:30:00+01:00").isoformat() == "2026-12-04T16:30:00+08:00"
    assert c.parse("2026-12-04 09:30-0500").isoformat() == "2026-12-04T22:30:00+08:00"


@pytest.mark.parametrize("text", ["", "last tuesday", "2026-13-01", "2026-02-30 10:00", "25:00",
                                  "12/04/2026", "+2h", "2026-12-04 9", "1733300000"])
def test_anything_else_is_refused_naming_the_forms(text):
    with pytest.raises(TimeInputError) as err:
        Clock().parse(text, "--since")
    message = str(err.value)
    assert message.startswith(f"--since {text!r} is not a time")
    assert "2026-12-04 09:30" in message and "today" in message and "-2h" in message


def test_days():
    now = datetime.datetime(2026, 12, 3, 16, 30, tzinfo=UTC)         # 00:30 on the 4th in Shanghai
    c = Clock("Asia/Shanghai", now=lambda: now)
    assert c.today() == datetime.date(2026, 12, 4)
    assert c.parse_day("today") == datetime.date(2026, 12, 4)
    assert c.parse_day("yesterday") == datetime.date(2026, 12, 3)
    assert c.parse_day("-7d") == datetime.date(2026, 11, 27)
    assert c.parse_day("2026-11-30") == datetime.date(2026, 11, 30)
    for bad in ("2026-11-31", "30.11.2026", "monday"):
        with pytest.raises(TimeInputError, match=r"is not a day.*; use 2026-12-04, today"):
            c.parse_day(bad, "--date")
    # the local day's bounds in UTC, as the databases store times
    assert c.day_bounds(datetime.date(2026, 12, 4)) == (datetime.datetime(2026, 12, 3, 16, 0),
                                                         datetime.datetime(2026, 12, 4, 16, 0))
    # a day of daylight saving time change is not 24 hours long
    berlin = Clock("Europe/Berlin")
    start, end = berlin.day_bounds(datetime.date(2026, 3, 29))
    assert end - start == datetime.timedelta(hours=23)


def test_output_in_the_zone_tables_and_json():
    c = Clock("Asia/Shanghai")
    stored = datetime.datetime(2026, 12, 3, 23, 30)                 # naive = UTC, as stored
    assert c.text(stored) == "2026-12-04 07:30:00" and c.text(None) == "-"
    assert c.iso(stored) == "2026-12-04T07:30:00+08:00"
    row = {"at": stored, "day": datetime.date(2026, 12, 4), "n": 1.5,
           "history": [{"at": stored.replace(tzinfo=UTC)}], "none": None}
    assert c.jsonable(row) == {"at": "2026-12-04T07:30:00+08:00", "day": "2026-12-04", "n": 1.5,
                               "history": [{"at": "2026-12-04T07:30:00+08:00"}], "none": None}
    assert Clock("UTC").iso(stored) == "2026-12-03T23:30:00+00:00"
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Base'"):
        Clock("Mars/Base")


# --- the setting ------------------------------------------------------------------------------

def test_the_timezone_setting_and_purge_tz_following_it(tmp_path):
    from engine.settings import SettingsError
    _, s = write_config(tmp_path)
    assert s.timezone == "Asia/Shanghai" and s.recordings.purge_tz == "Asia/Shanghai"
    _, s = write_config(tmp_path, "timezone: Europe/Berlin\n")
    assert s.timezone == "Europe/Berlin" and s.recordings.purge_tz == "Europe/Berlin"
    assert clockmod.for_settings(s).name == "Europe/Berlin"
    _, s = write_config(tmp_path, "timezone: Europe/Berlin\nrecordings: {purge_tz: UTC}\n")
    assert s.recordings.purge_tz == "UTC"
    with pytest.raises(SettingsError, match=r"hotline.yaml:4:1: timezone: unknown time zone 'Beijing'"):
        write_config(tmp_path, "timezone: Beijing\n")


# --- the commands -----------------------------------------------------------------------------

@pytest.fixture
def site(tmp_path):
    """A settings file and a database with a recording and CDRs around midnight."""
    cfg, settings = write_config(tmp_path)
    from engine.media.recordings import Archiver
    from tests.test_recordings_cli import make_wav
    arch = Archiver(settings).open()
    late = datetime.datetime(2026, 12, 3, 23, 30, tzinfo=UTC)       # 07:30 on the 4th in Shanghai
    uuid = "5b0c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c30"
    arch.finish(uuid, make_wav(settings.paths.recordings / f"{uuid}.wav", 1), 1, when=late).get(timeout=10)
    arch.close()
    store = CdrStore(settings.database.url, settings.paths.cdr_spool).open()
    calls = [("a", late, "13800138000", "12345", "general", "1001", "NORMAL_CLEARING"),
             ("b", late - datetime.timedelta(hours=9), "13900001111", "12345", "general", "", "ORIGINATOR_CANCEL"),
             ("c", late + datetime.timedelta(hours=2), "01088886666", "12333", "pension", "1002", "NORMAL_CLEARING")]
    for uid, start, caller, did, queue, agent, cause in calls:
        store.write({"uuid": uid, "start_time": start, "end_time": start + datetime.timedelta(minutes=3),
                     "caller_number": caller, "destination": did, "queue": queue, "agent": agent,
                     "hangup_cause": cause})
    store.close()
    return cfg, uuid


def test_a_recording_at_2330_utc_is_today_in_shanghai_the_next_day(site, capsys, fake_now):
    cfg, uuid = site
    fake_now(datetime.datetime(2026, 12, 4, 2, 0, tzinfo=UTC))      # 10:00 on the 4th in Shanghai
    rc, out, err = run_cli(capsys, "recordings", "list", "--date", "today", "--json", "--config", cfg)
    assert rc == 0, err
    assert [(r["call_uuid"], r["recorded_at"]) for r in json.loads(out)] == [
        (uuid, "2026-12-04T07:30:00+08:00")]
    rc, out, _ = run_cli(capsys, "recordings", "list", "--date", "yesterday", "--config", cfg)
    assert rc == 0 and out.strip() == "no recordings"
    rc, out, _ = run_cli(capsys, "recordings", "list", "--config", cfg)
    assert "2026-12-04 07:30:00" in out.splitlines()[1]


def test_cdr_list_filters_and_range(site, capsys, fake_now):
    cfg, _ = site
    fake_now(datetime.datetime(2026, 12, 4, 4, 0, tzinfo=UTC))      # 12:00 on the 4th in Shanghai

    def uuids(*argv):
        rc, out, err = run_cli(capsys, "cdr", "list", "--json", "--config", cfg, *argv)
        assert rc == 0, err
        return [d["uuid"] for d in json.loads(out)]
    assert uuids() == ["b", "a", "c"]
    assert uuids("--since", "today") == ["a", "c"]
    assert uuids("--since", "yesterday", "--until", "today") == ["b"]
    assert uuids("--since", "-3h") == ["c"]                        # 09:30 local and later
    assert uuids("--until", "2026-12-04 07:30") == ["b"]          # until is exclusive
    assert uuids("--caller", "0000111") == ["b"]                   # part of the number
    assert uuids("--agent", "1001") == ["a"]
    assert uuids("--queue", "pension") == ["c"]
    assert uuids("--did", "12345", "--cause", "normal_clearing") == ["a"]
    assert uuids("--caller", "%") == []                            # no wildcard from the command line
    assert uuids("--limit", "1") == ["b"]
    rc, out, _ = run_cli(capsys, "cdr", "list", "--config", cfg, "--agent", "nobody")
    assert rc == 0 and out.strip() == "no CDRs"
    with pytest.raises(SystemExit) as exit:
        run_cli(capsys, "cdr", "list", "--config", cfg, "--limit", "0")
    assert exit.value.code == 2 and "--limit" in capsys.readouterr().err


def test_another_hotline_zone_moves_every_command(site, capsys, fake_now, tmp_path):
    cfg, uuid = site
    cfg.write_text(cfg.read_text(encoding="utf-8") + "timezone: UTC\n", encoding="utf-8")
    fake_now(datetime.datetime(2026, 12, 4, 2, 0, tzinfo=UTC))
    rc, out, _ = run_cli(capsys, "recordings", "list", "--date", "today", "--json", "--config", cfg)
    assert json.loads(out) == []                                     # in UTC it was made on the 3rd
    rc, out, _ = run_cli(capsys, "recordings", "list", "--date", "yesterday", "--json", "--config", cfg)
    assert json.loads(out)[0]["recorded_at"] == "2026-12-03T23:30:00+00:00"
    rc, out, _ = run_cli(capsys, "cdr", "show", "a", "--config", cfg)
    shown = {k: v.strip() for k, v in (line.split(": ", 1) for line in out.splitlines())}
    assert shown["start time (UTC)"] == "2026-12-03 23:30:00"
    rc, out, _ = run_cli(capsys, "report", "daily", "--json", "--config", cfg)
    report = json.loads(out)
    assert report["date"] == "2026-12-04" and report["timezone"] == "UTC" and report["calls"] == 1
    assert report["generated_at"] == "2026-12-04T02:00:00+00:00"


def test_read_only_commands_create_nothing(tmp_path, capsys):
    cfg, _ = write_config(tmp_path)
    db = tmp_path / "var" / "hotline.db"
    for argv in (("cdr", "list"), ("cdr", "list", "--json"), ("cdr", "show", "x"),
                 ("recordings", "list"), ("recordings", "show", "x"), ("recordings", "verify"),
                 ("tickets", "list"), ("tickets", "show", "T1"), ("report", "daily")):
        rc, out, err = run_cli(capsys, *argv, "--config", cfg)
        assert rc == 1 and out == "", argv
        assert f"no database at {db} (has the engine run?)" in err and "Traceback" not in err, argv
    assert sorted(os.listdir(tmp_path)) == ["hotline.yaml"]          # no var/, no database, no spool


def test_an_empty_database_is_said_not_a_traceback(tmp_path, capsys):
    import sqlite3
    cfg, settings = write_config(tmp_path)
    (tmp_path / "var").mkdir()
    sqlite3.connect(tmp_path / "var" / "hotline.db").close()         # a database no engine wrote
    for argv, said in ((("cdr", "list"), "no CDR table yet"), (("cdr", "show", "x"), "no CDR table yet"),
                       (("recordings", "list"), "no recordings index yet"),
                       (("tickets", "list"), "no ticket tables yet"), (("report", "daily"), "no CDR table yet")):
        rc, _, err = run_cli(capsys, *argv, "--config", cfg)
        assert rc == 1 and said in err and "Traceback" not in err, (argv, err)
    import sqlite3 as s3
    tables = s3.connect(tmp_path / "var" / "hotline.db").execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == []                                               # still nothing created


def test_bad_time_input_is_exit_2_with_the_forms(site, capsys):
    cfg, _ = site
    for argv in (("cdr", "list", "--since", "next week"), ("cdr", "list", "--until", "2026-02-30"),
                 ("recordings", "list", "--date", "1.12.2026"), ("report", "daily", "--date", "someday")):
        rc, out, err = run_cli(capsys, *argv, "--config", cfg)
        assert rc == 2 and out == "" and "use 2026-12-04" in err and "Traceback" not in err, argv


def test_ivr_walk_reads_at_in_the_hotline_zone_and_shows_the_flow_zone(tmp_path):
    def walk(*argv):
        return subprocess.run([sys.executable, "-m", "engine", "ivr", "walk", "ivr_flows", "--did", "12345", *argv],
                              capture_output=True, text=True, cwd=ROOT, timeout=60)
    cfg, _ = write_config(tmp_path, "timezone: Europe/Berlin\n")
    # 03:00 in Berlin is 10:00 in Shanghai (the flow's schedule zone): business hours on a Monday
    out = walk("--at", "2026-10-12 04:00", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first == ("at 2026-10-12 04:00:00 (Europe/Berlin) = 2026-10-12 10:00:00 in the flow's "
                     "schedule zone (Asia/Shanghai)")
    assert "schedule   -> business" in out.stdout
    # the same wall time read in Shanghai is 04:00 there: closed
    out = walk("--at", "2026-10-12T04:00:00+08:00", "--config", str(cfg))
    assert "schedule   -> closed" in out.stdout
    out = walk("--at", "tomorrow", "--config", str(cfg))
    assert out.returncode == 2 and "--at 'tomorrow' is not a time; use" in out.stderr
    assert "Traceback" not in out.stderr
    out = walk("--at", "10:00", "--config", str(tmp_path / "missing.yaml"))
    assert out.returncode == 2 and "missing.yaml" in out.stderr


def test_durations_ago_are_values_not_options(site, capsys, fake_now):
    """argparse takes a word starting with '-' for an option: `--since -2h` and `--date -1d` must
    reach the clock."""
    cfg, uuid = site
    fake_now(datetime.datetime(2026, 12, 5, 2, 0, tzinfo=UTC))      # 10:00 on the 5th in Shanghai
    rc, out, err = run_cli(capsys, "recordings", "list", "--date", "-1d", "--json", "--config", cfg)
    assert rc == 0 and [r["call_uuid"] for r in json.loads(out)] == [uuid], err
    rc, out, err = run_cli(capsys, "cdr", "list", "--since", "-1d1h", "--json", "--config", cfg)
    assert rc == 0 and [d["uuid"] for d in json.loads(out)] == ["c"], err
    rc, out, err = run_cli(capsys, "report", "daily", "--date", "-1d", "--json", "--config", cfg)
    assert rc == 0 and json.loads(out)["date"] == "2026-12-04", err


def test_the_data_commands_share_flag_names_and_metavars():
    import argparse

    from engine.cli import build_parser
    parser = build_parser()

    def actions(*path):
        p = parser
        for name in path:
            sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
            p = sub.choices[name]
        return {a.option_strings[0]: a for a in p._actions if a.option_strings}
    for path in (("cdr", "list"), ("cdr", "show"), ("recordings", "list"), ("recordings", "show"),
                 ("tickets", "list"), ("tickets", "show"), ("report", "daily")):
        opts = actions(*path)
        assert "--json" in opts and "--config" in opts, path
        assert opts["--config"].metavar == "FILE", path              # clitext.OPTIONS: FILE everywhere
    cdr = actions("cdr", "list")
    assert (cdr["--since"].metavar, cdr["--until"].metavar, cdr["--limit"].metavar) == ("TIME", "TIME", "N")
    assert actions("recordings", "list")["--date"].metavar == "DAY"
    assert actions("report", "daily")["--date"].metavar == "DAY"
    assert actions("tickets", "list")["--limit"].metavar == "N"
    assert actions("ivr", "walk")["--at"].metavar == "TIME"


def test_event_moments_in_a_cdr_are_times_not_epoch_floats(tmp_path, capsys):
    cfg, settings = write_config(tmp_path)
    at = datetime.datetime(2026, 12, 4, 1, 2, 3, 500000, tzinfo=UTC)
    store = CdrStore(settings.database.url, settings.paths.cdr_spool).open()
    # what the ACD puts on a call (engine/acd/incall.py): moments as epoch seconds
    store.write({"uuid": "t1", "start_time": at, "transfers": [{"to": "1002", "how": "blind", "at": at.timestamp()}],
                 "parties": [{"role": "consult", "at": at.timestamp()}]})
    store.close()
    rc, out, _ = run_cli(capsys, "cdr", "show", "t1", "--json", "--config", cfg)
    extra = json.loads(out)["extra"]
    assert rc == 0 and extra["transfers"] == [{"to": "1002", "how": "blind", "at": "2026-12-04T09:02:03.500000+08:00"}]
    assert extra["parties"][0]["at"] == "2026-12-04T09:02:03.500000+08:00"
    rc, out, _ = run_cli(capsys, "cdr", "list", "--json", "--config", cfg)
    assert json.loads(out)[0]["extra"]["transfers"][0]["at"] == "2026-12-04T09:02:03.500000+08:00"
    rc, out, _ = run_cli(capsys, "cdr", "show", "t1", "--config", cfg)
    assert '"at": "2026-12-04T09:02:03.500000+08:00"' in out


def test_ivr_walk_json():
    out = subprocess.run([sys.executable, "-m", "engine", "ivr", "walk", "ivr_flows", "--did", "12345",
                          "--at", "2026-10-12T02:00:00Z", "--keys", "2,1", "--json", "--config", "/nonexistent.yaml"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 2 and "nonexistent.yaml" in out.stderr      # an explicit --config must load
    out = subprocess.run([sys.executable, "-m", "engine", "ivr", "walk", "ivr_flows", "--did", "12345",
                          "--at", "2026-10-12T02:00:00Z", "--keys", "2,1", "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    data = json.loads(out.stdout)
    assert out.returncode == 0 and data["at"] == "2026-10-12T10:00:00+08:00"
    assert data["path"][1]["branch"] == "business" and data["result"]["outcome"] == "hangup"
    assert data["heard"] and data["schedule_timezone"] == "Asia/Shanghai"
