"""Issue 17 section 6, first item: when no engine takes a trunk call (engine stopped, or in its
shutdown grace) the dialplan we ship falls back to a second engine, then to a spoken "service
temporarily unavailable", and the switch-CDR import counts those calls as engine down.

The simulator behaves as mod_event_socket.c socket_function does: a refused connection makes the
socket application return and the dialplan goes on; an accepted connection that never receives
`connect` keeps the caller waiting in silence."""
import gevent
from engine.cdr.store import CdrStore
from engine.cdr.xmlcdr import ENGINE_DOWN_TAG, import_dir
from engine.esl.outbound import OutboundServer
from engine.fsconf.render import UNAVAILABLE_TARGET, render
from engine.infra.netutil import free_port
from engine.cdr.report import daily_figures, format_report
from engine.settings import default_settings
from engine.sim.switch import Switch
from tests.enginefix import Rig


def wait_for(predicate, timeout=5.0):
    with gevent.Timeout(timeout, AssertionError(f"timed out waiting for {predicate}")):
        while not predicate():
            gevent.sleep(0.01)


def _setup(tmp_path, **outbound):
    settings = default_settings(base_dir=tmp_path, env={"HOTLINE_ESL_PASSWORD": "x"},
                                outbound={"listen_port": free_port(), **outbound},
                                paths={"var_dir": str(tmp_path / "var")})
    render(settings, tmp_path / "fs")
    sw = Switch([tmp_path / "fs" / "dialplan"], conf_dir=tmp_path / "fs")
    sw.xml_cdr_dir = str(tmp_path / "fs-cdr")
    (tmp_path / "fs-cdr").mkdir()
    return settings, sw


def test_no_engine_listening_the_caller_hears_unavailable_and_the_call_is_counted(tmp_path):
    settings, sw = _setup(tmp_path)
    prompt = str((tmp_path / "fs" / UNAVAILABLE_TARGET).resolve())
    ch = sw.place_call("12345", "13800138000")
    # before the fallback the dialplan had only `socket`: the refused call ended in silence
    wait_for(lambda: "PLAYBACK_START" in ch.events)
    assert ch.variables.get("hotline_fallback") == "engine_down"
    assert ch.variables.get("socket_host") == settings.outbound.advertise_host
    assert "CHANNEL_ANSWER" in ch.events
    assert prompt in [data for app, data, _ in ch.app_log if app == "playback"]
    ch.hangup("NORMAL_CLEARING")                 # the caller hangs up mid-prompt
    assert ch.wait_hangup(5)
    store = CdrStore(f"sqlite:///{tmp_path / 'cdr.db'}", tmp_path / "spool")
    store.open()
    try:
        engine_id = f"{settings.outbound.advertise_host}:{settings.outbound.listen_port}"
        target = f"{settings.outbound.advertise_host}:{settings.outbound.listen_port}"
        wait_for(lambda: list((tmp_path / "fs-cdr").glob("a_*.cdr.xml")))
        assert import_dir(store, str(tmp_path / "fs-cdr"), set(settings.trunk.dids),
                          engine_id=engine_id, socket_target=target) == 1
        (cdr,) = store.list()
    finally:
        store.close()
    assert cdr["uuid"] == ch.uuid
    assert ENGINE_DOWN_TAG in cdr["tags"] and "from_switch_cdr" in cdr["tags"]
    assert cdr["extra"]["fallback"] == "engine_down"
    figures = daily_figures([cdr])
    assert figures["unanswered_engine_down"] == 1 and figures["offered"] == 0
    assert "engine down          1" in format_report(
        __import__("datetime").date(2026, 12, 4), "UTC", figures, None)


def test_the_prompt_plays_to_its_end_then_the_switch_hangs_up(tmp_path):
    _, sw = _setup(tmp_path)
    ch = sw.place_call("12345", "13800138000")
    assert ch.wait_hangup(15)                    # 0.5 s + ~4.2 s prompt + 2.1 s busy tone
    assert ch.variables.get("hangup_cause") == "NORMAL_TEMPORARY_FAILURE"
    assert ch.events.count("PLAYBACK_STOP") == 2            # prompt found (no FILE NOT FOUND), then tone


def test_a_standby_engine_takes_the_call_when_the_first_refuses(tmp_path):
    port = free_port()
    taken = []

    def handler(session):
        session.handshake()
        taken.append(session.uuid)
        session.execute("hangup", "NORMAL_CLEARING", timeout=5)
    standby = OutboundServer("127.0.0.1", port, handler).start()
    try:
        _, sw = _setup(tmp_path, standby=f"127.0.0.1:{port}")
        ch = sw.place_call("12345", "13800138000")
        assert ch.wait_hangup(5)
        assert taken == [ch.uuid]
        assert "PLAYBACK_START" not in ch.events and not ch.variables.get("hotline_fallback")
    finally:
        standby.stop(timeout=1)


def test_a_call_during_the_engines_shutdown_grace_hears_the_fallback(tmp_path):
    """The engine stopped accepting but kept its listening socket open: the kernel completed the
    switch's connection, the socket application waited for a `connect` that never came, and the
    caller heard silence. The engine now closes its listening socket, so the switch is refused
    and its dialplan falls back."""
    def endless(call):
        call.answer()
        while True:
            call.play(["silence_stream://1000"], interruptible=False)
    rig = Rig(tmp_path, endless, grace=10.0)
    try:
        first = rig.call("13900000001")
        wait_for(lambda: len(rig.engine.calls) == 1)
        stopping = gevent.spawn(rig.engine.shutdown)
        wait_for(lambda: not rig.engine.accepting)
        late = rig.call("13900000002")
        wait_for(lambda: "PLAYBACK_START" in late.events, timeout=3)
        assert late.variables.get("hotline_fallback") == "engine_down"
        late.hangup("NORMAL_CLEARING")
        first.hangup("NORMAL_CLEARING")
        stopping.join(timeout=10)
        assert stopping.ready()
    finally:
        rig.stop()
