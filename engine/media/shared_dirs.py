"""The directories the engine shares with FreeSWITCH on the same box, made and checked at start-up.

FreeSWITCH creates no directories (FREESWITCH.md: `record` into a missing one hangs the caller up
with DESTINATION_OUT_OF_ORDER) and runs as its own account. So the engine makes every directory
the switch writes into (recordings in progress, voicemail boxes, survey comments, the switch's XML
CDRs) group-writable with the set-group-id bit (files made there keep the directory's group), and,
when `switch.user` names the switch's account, checks that this account can write each of them.
The music directory (local_stream://moh) is read by the switch; an empty one plays silence, so
the engine puts a tone file there while it holds no audio.
"""
import array
import grp
import logging
import math
import os
import pwd
import stat
import wave
from pathlib import Path

log = logging.getLogger("hotline.dirs")

SHARED_MODE = 0o2775                 # rwxrwsr-x: the switch's group may write, new files keep the group
AUDIO_SUFFIXES = {".wav", ".mp3", ".ogg", ".flac", ".r8", ".r16"}
TONE_FILE = "hotline-hold-tone.wav"


def switch_writes(settings):
    """Every directory the switch writes into for this engine."""
    rec = Path(settings.paths.recordings)
    return [rec, rec / "voicemail", Path(settings.switch.cdr_dir)]


def ensure_dir(path):
    """Make `path` (and parents); if it is ours, give its group write access and the
    set-group-id bit (SHARED_MODE's bits, others' bits kept). Returns the problem as text, or None."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        st = path.stat()
        if st.st_uid == os.getuid():
            wanted = stat.S_IMODE(st.st_mode) | stat.S_IRWXG | stat.S_ISGID
            if wanted != stat.S_IMODE(st.st_mode):
                os.chmod(path, wanted)
    except OSError as exc:
        return f"{path}: cannot create it: {exc.strerror or exc}"
    return None


def user_can_write(path, user):
    """Can account `user` create files in `path`, judged from its owner, group and mode (the
    engine cannot ask the kernel on another account's behalf)? Returns the problem or None."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return f"switch.user {user!r} is not an account on this machine"
    st = Path(path).stat()
    if pw.pw_uid == 0:
        return None
    groups = {pw.pw_gid} | {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    if st.st_uid == pw.pw_uid:
        ok = st.st_mode & stat.S_IWUSR and st.st_mode & stat.S_IXUSR
    elif st.st_gid in groups:
        ok = st.st_mode & stat.S_IWGRP and st.st_mode & stat.S_IXGRP
    else:
        ok = st.st_mode & stat.S_IWOTH and st.st_mode & stat.S_IXOTH
    if ok:
        return None
    group = _group_name(st.st_gid)
    return (f"{path}: {user} cannot write here (owner uid {st.st_uid}, group {group}, mode "
            f"{stat.filemode(st.st_mode)}): add {user} to group {group} or run "
            f"`chgrp {_group_name(pw.pw_gid)} {path} && chmod g+ws {path}`")


def _group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def seed_music(music_dir):
    """An empty music directory makes local_stream://moh play silence: put a tone there until
    the operator adds music. Returns True when it wrote the tone."""
    music_dir = Path(music_dir)
    if any(p.suffix.lower() in AUDIO_SUFFIXES for p in music_dir.iterdir() if p.is_file()):
        return False
    rate = 8000
    samples = array.array("h")
    for i in range(4 * rate):                # 1 s of a soft 425 Hz tone, then 3 s of silence
        on = i < rate
        samples.append(int(3000 * math.sin(2 * math.pi * 425 * i / rate)) if on else 0)
    tmp = music_dir / f".{TONE_FILE}.tmp"
    with wave.open(str(tmp), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    os.chmod(tmp, 0o644)
    os.replace(tmp, music_dir / TONE_FILE)
    return True


def prepare(settings):
    """Make and check every shared directory; log what is wrong at ERROR. Returns the problems."""
    problems = []
    for d in switch_writes(settings):
        problem = ensure_dir(d)
        if problem is None and settings.switch.user:
            problem = user_can_write(d, settings.switch.user)
        if problem:
            problems.append(problem)
    music = Path(settings.switch.music_dir)
    problem = ensure_dir(music)
    if problem is None:
        try:
            if seed_music(music):
                log.warning("no music in %s: local_stream://moh plays %s until you add files",
                            music, TONE_FILE)
        except OSError as exc:
            problem = f"{music}: cannot write the hold tone: {exc.strerror or exc}"
    if problem:
        problems.append(problem)
    for p in problems:
        log.error("shared directory: %s", p)
    if not settings.switch.user:
        log.info("switch.user is not set: not checking that FreeSWITCH can write %s",
                 ", ".join(str(d) for d in switch_writes(settings)))
    return problems
