"""A switch that dies under a call (issue 17 point 1): no CHANNEL_HANGUP_COMPLETE, no XML CDR file;
the engine's CDR of the call still gets an honest hangup cause, never NULL."""
from tests.acdfix import wait_for
from tests.enginefix import Rig


def test_a_call_cut_by_a_switch_crash_gets_the_cause_crash(tmp_path):
    def handler(call):
        call.answer()
        call.play(["silence_stream://-1"])          # until the call ends, whatever ends it

    rig = Rig(tmp_path, handler=handler)
    try:
        ch = rig.call()
        assert wait_for(lambda: "PLAYBACK_START" in ch.events, timeout=10)
        rig.switch.crash()
        assert wait_for(lambda: len(rig.cdrs()) == 1, timeout=20)
        [cdr] = rig.cdrs()
        assert cdr["uuid"] == ch.uuid
        assert cdr["hangup_cause"] == "CRASH" and cdr["hangup_side"] == "system"
        assert cdr["extra"]["incomplete"] is True
        assert "socket closed" in cdr["extra"]["hangup_cause_from"]
    finally:
        rig.stop()


def test_a_call_the_switch_ended_normally_keeps_the_switch_cause(tmp_path):
    def handler(call):
        call.answer()
        call.play(["silence_stream://-1"])

    rig = Rig(tmp_path, handler=handler)
    try:
        ch = rig.call()
        assert wait_for(lambda: "PLAYBACK_START" in ch.events, timeout=10)
        ch.hangup()
        assert wait_for(lambda: len(rig.cdrs()) == 1, timeout=20)
        assert rig.cdrs()[0]["hangup_cause"] == "NORMAL_CLEARING"
    finally:
        rig.stop()


def test_provisional_cdrs_the_engine_and_the_switch_both_lost_are_finished_with_crash(tmp_path):
    """The engine died (its provisional CDRs stay), and so did the switch (no XML file ever): once
    the engine talks to a switch with another Core-UUID, it finishes its own rows with CRASH."""
    from engine.cdr.orphans import CORE_UUID_KEY, SOCKET_KEY
    from engine.cdr.store import PROVISIONAL
    from engine.daemon import welcome_handler
    from tests.enginefix import SHORT_TONE

    rig = Rig(tmp_path, handler=welcome_handler(SHORT_TONE))
    try:
        store, me = rig.engine.store, rig.engine.socket_target
        cdr_dir = rig.settings.switch.cdr_dir

        def provisional(uuid, core, socket=me):
            store.write({"uuid": uuid, "caller_number": "13800138000", "destination": "12345",
                         "queue": "general", "agent": "1001", "wait_seconds": 8.5,
                         "ivr_path": [{"node": "t:start"}], "tags": ["ivr:t", PROVISIONAL],
                         "extra": {CORE_UUID_KEY: core, SOCKET_KEY: socket, "provisional_at": "agent_answer"}})

        provisional("lost-1", "dead-switch")
        provisional("other-engine", "dead-switch", socket="10.0.0.9:8084")
        provisional("same-switch", rig.switch.core_uuid)       # this switch may still report it
        provisional("file-waits", "dead-switch")
        cdr_dir.mkdir(parents=True, exist_ok=True)
        (cdr_dir / "a_file-waits.cdr.xml").write_text("<cdr/>")   # its import will complete it
        rig.engine._import_switch_cdrs()
        assert store.get("lost-1")["tags"] == ["ivr:t", PROVISIONAL]   # switch not heard from yet
        rig.switch.heartbeat()                                       # carries its Core-UUID
        assert wait_for(lambda: rig.engine.switch_core_uuid == rig.switch.core_uuid)
        rig.engine._import_switch_cdrs()
        lost = store.get("lost-1")
        assert lost["hangup_cause"] == "CRASH" and lost["hangup_side"] == "system"
        assert lost["tags"] == ["ivr:t", "switch_restarted"] and lost["end_time"] is not None
        assert (lost["agent"], lost["queue"], lost["wait_seconds"]) == ("1001", "general", 8.5)
        assert "dead-switch" in lost["extra"]["hangup_cause_from"]
        assert [e["cdr_uuid"] for e in store.outbox_take("tickets")] == ["lost-1"]
        for untouched in ("other-engine", "same-switch", "file-waits"):
            assert PROVISIONAL in store.get(untouched)["tags"]
    finally:
        rig.stop()
