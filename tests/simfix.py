"""The simulated switch for tests that drive it directly over ESL: the `switch` and `conn`
fixtures, a parked call from a phone, waiting, and the WAV files the far ends "speak"."""
import array
import math
import os
import time
import uuid
import wave
from pathlib import Path

import gevent
import pytest

from engine.esl.connection import InboundConnection
from engine.sim.switch import Switch

DIALPLAN = os.path.join(os.path.dirname(__file__), "sim_dialplan")


@pytest.fixture
def switch():
    sw = Switch([DIALPLAN], hostname="simtest")
    sw.address = sw.start("127.0.0.1", 0)
    yield sw
    sw.stop()


@pytest.fixture
def conn(switch):
    c = InboundConnection(*switch.address, "ClueCon", events=("ALL",), reconnect=False)
    c.seen = []
    c.on("*", c.seen.append)
    c.start(timeout=5)
    yield c
    c.stop()


def wait_for(cond, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        gevent.sleep(0.01)


def parked_caller(switch, conn, n):
    """Originate to 7000 as the fixtures do; returns (internal A-leg uuid, inbound B-leg uuid)."""
    a = str(uuid.uuid4())
    out = conn.api(f"originate {{origination_uuid={a},origination_caller_id_number=1555000000{n},"
                   f"origination_caller_id_name='Fixture {n}'}}sofia/internal/7000@127.0.0.1:5080 &park()")
    assert out == f"+OK {a}\n"
    b = switch.channels[a].sip_peer.uuid
    wait_for(lambda: switch.channels[b].parked and switch.channels[a].parked)
    return a, b


def write_tone(path, seconds, rate=8000, freq=440, amplitude=8000):
    """A mono 16-bit sine WAV."""
    samples = array.array("h", (int(amplitude * math.sin(2 * math.pi * freq * i / rate))
                                for i in range(int(seconds * rate))))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return str(path)


def make_wav(path, seconds, rate=8000, channels=2):
    """A WAV of the given length (a repeating byte ramp), its directory made if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(range(256)) * (int(seconds * rate) * channels * 2 // 256))
    return path
