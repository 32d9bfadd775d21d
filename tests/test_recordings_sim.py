"""A recorded call over the simulator: uuid_record start/stop over a real ESL connection, the
RECORD_STOP event handed to the archiver, a valid stereo file of the right length in the archive
(caller left, agent right) with a matching checksum, an index row and the CDR link."""
import array
import hashlib
import wave
from pathlib import Path

import gevent
import pytest

from engine.cdr.store import CdrStore
from engine.esl import commands
from engine.media.recordings import ArchiveConfig, Archiver
from tests.simfix import parked_caller, wait_for, write_tone


def dominant_hz(samples, rate):
    crossings = sum(1 for x, y in zip(samples, samples[1:]) if (x < 0) != (y < 0))
    return crossings / 2 / (len(samples) / rate)


def test_recorded_call_ends_as_a_valid_stereo_file_in_the_archive(switch, conn, tmp_path):
    live, arch_dir = tmp_path / "recordings", tmp_path / "archive"
    db = f"sqlite:///{tmp_path}/hotline.db"
    archiver = Archiver(ArchiveConfig(archive_dir=arch_dir, live_dir=live, database_url=db)).open()
    conn.on("RECORD_STOP", archiver.on_record_stop)        # what the engine does with the event

    caller, agent = parked_caller(switch, conn, 1)[1], parked_caller(switch, conn, 2)[1]
    assert conn.api(commands.uuid_bridge(caller, agent)).startswith("+OK")
    wait_for(lambda: switch.channels[caller].bridged_to == agent)
    switch.channels[caller].speak(write_tone(tmp_path / "caller.wav", 5.0, freq=400, amplitude=9000))
    switch.channels[agent].speak(write_tone(tmp_path / "agent.wav", 5.0, freq=1000, amplitude=9000))
    path = live / f"{caller}.wav"
    assert conn.api(commands.uuid_setvar(caller, "RECORD_STEREO", "true")).startswith("+OK")
    assert conn.api(commands.uuid_record(caller, "start", str(path))) == "+OK Success\n"
    gevent.sleep(0.7)
    assert conn.api(commands.uuid_record(caller, "stop", str(path))) == "+OK Success\n"
    wait_for(lambda: any(e.name == "RECORD_STOP" for e in conn.seen))
    stop = next(e for e in conn.seen if e.name == "RECORD_STOP")
    recorded = int(stop.get("variable_record_ms")) / 1000.0
    wait_for(lambda: archiver.get(caller) is not None, timeout=10)
    archiver.join(timeout=10)

    row = archiver.get(caller)
    archived = Path(row["path"])
    assert row["state"] == "archived" and archived.parent.parent.parent.parent == arch_dir
    assert archived.name == f"{caller}.wav" and not path.exists()
    data = archived.read_bytes()
    assert row["sha256"] == hashlib.sha256(data).hexdigest() == archived.with_name(archived.name + ".sha256").read_text().split()[0]
    with wave.open(str(archived), "rb") as w:
        channels, rate, frames = w.getnchannels(), w.getframerate(), w.getnframes()
        pcm = array.array("h", w.readframes(frames))
    assert channels == 2 and row["channels"] == 2 and row["sample_rate"] == rate
    assert abs(frames / rate - recorded) <= 0.002 and row["seconds"] == pytest.approx(recorded, abs=0.002)
    assert 0.6 <= recorded <= 1.5
    left, right = pcm[0::2], pcm[1::2]
    assert dominant_hz(left, rate) == pytest.approx(400, rel=0.05)      # the caller
    assert dominant_hz(right, rate) == pytest.approx(1000, rel=0.05)    # the agent
    assert archiver.alarms == []

    # the index links to the CDR by call uuid
    store = CdrStore(db, tmp_path / "spool").open()
    store.write({"uuid": caller, "caller_number": "15550000001", "destination": "12345",
                 "recording": str(archived)})
    store.close()
    from engine.cdr.models import Cdr
    with archiver.db.bind_ctx([Cdr]):
        assert Cdr.get(Cdr.uuid == row["call_uuid"]).recording == row["path"]
    archiver.close()
