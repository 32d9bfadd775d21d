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
