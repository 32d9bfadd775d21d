"""200 concurrent trunk calls through outbound sockets, as the engine would take them."""
import os
import time

import gevent

from engine.esl.connection import InboundConnection
from engine.esl.outbound import OutboundServer
from engine.sim.switch import Switch

DIALPLAN = os.path.join(os.path.dirname(__file__), "sim_dialplan")
CALLS = 200


def test_200_concurrent_calls_over_outbound_sockets():
    switch = Switch([DIALPLAN], hostname="simload")
    # all 200 arrive in one burst: a switch whose switch.conf.xml allows that many new sessions in a
    # second (the vanilla 30, or our rendered 100, would refuse the rest with 503: test_sim_session_rate)
    switch.sessions_per_second = CALLS + 1
    address = switch.start("127.0.0.1", 0)
    answered = []
    finished = []

    def handler(session):
        session.handshake()
        session.execute("answer", timeout=10)
        answered.append(session.uuid)
        while session.hangup_event is None and session.connected:
            gevent.sleep(0.05)
        finished.append(session.uuid)
        session.exit()

    server = OutboundServer("127.0.0.1", 0, handler).start()
    switch.global_vars["engine_socket"] = f"127.0.0.1:{server.address[1]}"
    events = InboundConnection(*address, "ClueCon", events=("CHANNEL_HANGUP_COMPLETE",), reconnect=False)
    cdrs = []
    events.on("CHANNEL_HANGUP_COMPLETE", cdrs.append)
    events.start(timeout=5)
    try:
        t0 = time.monotonic()
        calls = [switch.place_call("12345", f"138{n:08d}") for n in range(CALLS)]
        deadline = time.monotonic() + 20
        while len(answered) < CALLS and time.monotonic() < deadline:
            gevent.sleep(0.05)
        setup = time.monotonic() - t0
        assert len(answered) == CALLS, f"{len(answered)} answered in {setup:.1f}s"
        assert events.api("show channels count") == f"\n{CALLS} total.\n"
        for ch in calls:
            ch.hangup()
        deadline = time.monotonic() + 20
        while (switch.channels or len(cdrs) < CALLS) and time.monotonic() < deadline:
            gevent.sleep(0.05)
        assert not switch.channels
        assert len(finished) == CALLS
        assert len({e.uuid for e in cdrs}) == CALLS
        assert all(e.get("variable_sip_hangup_disposition") == "recv_bye" for e in cdrs)
    finally:
        events.stop()
        server.stop()
        switch.stop()
