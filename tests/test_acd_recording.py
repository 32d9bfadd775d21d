"""A queue that records every call, end to end: the agent answers, recording starts (stereo), the
call ends, RECORD_STOP reaches the engine, and the file lands in the archive with its checksum,
index row and the CDR beside it. Recordings left behind while the engine was away are archived
when it connects."""
import hashlib
import wave

import pytest

from tests.acdfix import AcdRig, agent, queue, wait_for


@pytest.fixture
def rig(tmp_path, redis_server, redis_prefix):
    r = AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001")],
               [queue("general", record="all")])
    yield r
    r.stop()


def test_a_recorded_queue_call_is_archived_stereo_with_checksum_and_index(rig, tmp_path):
    rig.login("1001", hangup_after=1.5)
    caller = rig.call()
    assert wait_for(lambda: rig.state("1001") == "in_call")
    assert caller.wait_hangup(10)
    assert wait_for(lambda: len(rig.cdrs()) == 1)
    # RECORD_STOP may reach the engine after the CDR is written: wait for the archive, not for
    # the archiver's current work (join() returned at once when RECORD_STOP had not come yet)
    assert wait_for(lambda: (rig.engine.archiver.get(caller.uuid) or {}).get("state") == "archived",
                    timeout=10), rig.engine.archiver.alarms
    row = rig.engine.archiver.get(caller.uuid)
    cdr = rig.cdrs()[0]
    assert cdr["recording"].endswith(f"{caller.uuid}.wav")
    archived = rig.settings.paths.archive / row["path"] if not row["path"].startswith("/") else row["path"]
    data = open(archived, "rb").read()
    assert hashlib.sha256(data).hexdigest() == row["sha256"]
    with wave.open(str(archived)) as w:
        assert w.getnchannels() == 2
        assert w.getframerate() == 8000      # recordings.sample_rate, not the OPUS caller's 48 kHz
        seconds = w.getnframes() / w.getframerate()
    assert abs(seconds - cdr["talk_seconds"]) < 0.5          # from the answer to the end
    assert not (rig.settings.paths.recordings / f"{caller.uuid}.wav").exists()   # moved, not copied


def test_recordings_left_while_the_engine_was_away_are_archived_on_connect(tmp_path, redis_server, redis_prefix):
    import struct
    live = tmp_path / "var" / "recordings"
    live.mkdir(parents=True)
    orphan = live / "0b4c8f5e-5c3e-4b1e-9d2a-3f1e2d3c4b5a.wav"
    with wave.open(str(orphan), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(struct.pack("<h", 0) * 2 * 8000 * 3)        # 3 s of stereo silence
    r = AcdRig(tmp_path, redis_server.url, redis_prefix, [agent("1001")], [queue("general")])
    try:
        assert wait_for(lambda: (r.engine.archiver.db is not None and
                                 r.engine.archiver.get(orphan.stem) is not None), timeout=5)
        assert r.engine.archiver.get(orphan.stem)["state"] == "archived"
        assert not orphan.exists()
    finally:
        r.stop()
