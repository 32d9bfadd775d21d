"""The directories the engine shares with FreeSWITCH: made at start-up, group-writable, checked
for the switch's account, and the music directory never left empty (issue 14 point 5)."""
import os
import pwd
import stat
import wave

from engine.media.shared_dirs import TONE_FILE, prepare, user_can_write
from engine.settings import default_settings


def settings(tmp_path, **switch):
    return default_settings(base_dir=tmp_path, env={"HOTLINE_ESL_PASSWORD": "x"},
                            paths={"var_dir": str(tmp_path / "var")}, switch=switch)


def test_every_directory_the_switch_writes_into_is_made_group_writable(tmp_path):
    s = settings(tmp_path)
    assert prepare(s) == []
    for d in (s.paths.recordings, s.paths.recordings / "voicemail", s.switch.cdr_dir):
        mode = d.stat().st_mode
        assert d.is_dir() and mode & stat.S_IWGRP and mode & stat.S_ISGID, (d, oct(mode))


def test_an_empty_music_directory_gets_a_tone_and_real_music_is_left_alone(tmp_path):
    s = settings(tmp_path)
    prepare(s)
    with wave.open(str(s.switch.music_dir / TONE_FILE), "rb") as w:
        assert w.getframerate() == 8000 and w.getnframes() > 0
    (s.switch.music_dir / TONE_FILE).unlink()
    (s.switch.music_dir / "piano.wav").write_bytes(b"RIFF")
    prepare(s)
    assert not (s.switch.music_dir / TONE_FILE).exists()


def test_a_switch_account_that_cannot_write_is_named_with_the_fix(tmp_path):
    other = next(p for p in pwd.getpwall() if p.pw_uid not in (0, os.getuid()) and p.pw_name == "nobody")
    s = settings(tmp_path, user=other.pw_name)
    problems = prepare(s)              # the directories are ours and our group's: nobody is neither
    assert len(problems) == 3 and all("nobody cannot write here" in p and "chmod g+ws" in p for p in problems)
    os.chmod(s.switch.cdr_dir, 0o2777)
    assert user_can_write(s.switch.cdr_dir, "nobody") is None
    assert "not an account" in user_can_write(s.switch.cdr_dir, "no-such-user-here")
