"""The channel's private event queue as the real switch keeps it: `uuid_break all` flushes queued
executes, a plain break before the execute starts is lost (fixture 07); an application run with
event-lock keeps queued broadcasts waiting and `uuid_hold off` leaves them queued (fixture 08);
a held phone sends no DTMF (fixture 10)."""
import uuid as uuidlib

import gevent
from gevent.event import AsyncResult

from engine.esl import commands
from engine.esl.outbound import OutboundServer
from engine.sim.endpoints import AgentPhone
from engine.sim.scenario import AgentSpec
from tests.simfix import switch, wait_for  # noqa: F401  (fixture)

TONE = "tone_stream://%(1000,1000,660);loops=-1"      # plays until broken, as in fixtures 07/08


def on_socket(switch, body, number="15550000071"):
    """Place a trunk call whose outbound socket runs body(session, seen, channel); returns its
    result. `seen` is every event of the session in order."""
    result = AsyncResult()

    def handler(session):
        try:
            session.handshake()
            seen = []
            session.on("*", seen.append)
            session.execute("answer", timeout=5)
            result.set(body(session, seen, switch.channels[session.uuid]))
        except BaseException as exc:        # noqa: B902 - handed to the test
            result.set_exception(exc)
        finally:
            session.exit()

    server = OutboundServer("127.0.0.1", 0, handler).start()
    switch.global_vars["engine_socket"] = f"127.0.0.1:{server.address[1]}"
    try:
        switch.place_call("12345", number)
        return result.get(timeout=20)
    finally:
        server.stop()


def of(seen, name, event_uuid):
    return [e for e in seen if e.name == name and e.get("Application-UUID") == event_uuid]


def marker(session):
    """An execute queued after everything sent before it: once it completes, whatever was queued
    before it has run - or was flushed."""
    return session.execute("set", "hl_marker=1", timeout=5)


def test_07a_break_all_flushes_an_execute_not_yet_started(switch):
    def body(session, seen, ch):
        event_uuid, result = session.execute_async("playback", TONE)
        session.api(commands.uuid_break(session.uuid, everything=True))
        marker(session)
        return event_uuid, result.ready(), seen
    event_uuid, completed, seen = on_socket(switch, body)
    assert not of(seen, "CHANNEL_EXECUTE", event_uuid)
    assert not of(seen, "CHANNEL_EXECUTE_COMPLETE", event_uuid) and not completed


def test_07b_plain_break_before_the_execute_starts_is_lost(switch):
    def body(session, seen, ch):
        event_uuid, result = session.execute_async("playback", TONE)
        session.api(commands.uuid_break(session.uuid, everything=False))
        wait_for(lambda: of(seen, "CHANNEL_EXECUTE", event_uuid))
        gevent.sleep(10 * switch.frame_seconds)
        still_playing = not result.ready() and ch.current_app == "playback"
        session.api(commands.uuid_break(session.uuid, everything=False))     # now it stops
        return still_playing, result.get(timeout=5)
    still_playing, done = on_socket(switch, body)
    assert still_playing
    assert done.get("Application-Response") == "FILE PLAYED"


def test_07c_break_after_channel_execute_ends_the_playback(switch):
    def body(session, seen, ch):
        event_uuid, result = session.execute_async("playback", TONE)
        wait_for(lambda: of(seen, "CHANNEL_EXECUTE", event_uuid))
        session.api(commands.uuid_break(session.uuid, everything=False))
        return result.get(timeout=5), seen
    done, seen = on_socket(switch, body)
    assert done.get("Application-Response") == "FILE PLAYED"
    assert [e.get("Playback-Status") for e in seen if e.name == "PLAYBACK_STOP"] == ["break"]


def agent_phone(switch, extension):
    phone = AgentPhone(None, AgentSpec(extension=extension, behaviour="answer", answer_after=0.02))
    switch.register(extension, phone)
    return phone


def bridge_to(session, leg, extension, music=None):
    legvars = {"origination_uuid": leg}
    if music:
        legvars["hold_music"] = commands.media_var(music)
    return commands.dial_string([(commands.endpoint_user(extension, "127.0.0.1"), legvars)],
                                {"hangup_after_bridge": "false"})


def hold_inside_bridge(switch, event_lock):
    """Fixture 08: the socket leg bridges to a phone; uuid_hold / uuid_hold off of the phone's leg;
    the phone's leg is killed; then the next bridge is sent."""
    agent_phone(switch, "1004")
    agent_phone(switch, "1003")

    def body(session, seen, ch):
        b = str(uuidlib.uuid4())
        _, done = session.execute_async("bridge", bridge_to(session, b, "1004", TONE),
                                        event_lock=event_lock)
        wait_for(lambda: ch.bridged_to == b)
        session.api(commands.uuid_hold(b, True))
        wait_for(lambda: "CHANNEL_HOLD" in switch.channels[b].events)
        played_during_hold = wait_played(seen, within=10 * switch.frame_seconds)
        session.api(commands.uuid_hold(b, False))
        session.api(commands.uuid_kill(b))
        done.get(timeout=5)                               # the bridge ends with the agent's leg
        next_uuid, next_done = session.execute_async("bridge", bridge_to(session, str(uuidlib.uuid4()), "1003"))
        after = wait_played(seen, within=10 * switch.frame_seconds, after=seen.index(done.get()))
        next_started = wait_for_quietly(lambda: of(seen, "CHANNEL_EXECUTE", next_uuid), 10 * switch.frame_seconds)
        ch.kill()
        return played_during_hold, after, next_started
    return on_socket(switch, body, number="15550000081")


def wait_for_quietly(cond, within):
    try:
        wait_for(cond, timeout=within)
        return True
    except AssertionError:
        return False


def wait_played(seen, within, after=0):
    """The hold music executed on the caller's leg (after seen[after])?"""
    return wait_for_quietly(lambda: any(e.name == "CHANNEL_EXECUTE" and e.get("Application") == "playback"
                                        for e in seen[after:]), within)


def test_08a_hold_music_waits_behind_an_event_locked_bridge_and_blocks_the_next_execute(switch):
    played_during_hold, played_after, next_started = hold_inside_bridge(switch, event_lock=True)
    assert not played_during_hold             # the caller heard nothing during the hold
    assert played_after                       # the stale broadcast ran once the bridge ended
    assert not next_started                   # and the next bridge waits behind it


def test_08b_without_event_lock_the_bridge_plays_the_hold_music(switch):
    played_during_hold, played_after, next_started = hold_inside_bridge(switch, event_lock=False)
    assert played_during_hold and not played_after and next_started


def test_10_a_held_phone_sends_no_dtmf_until_unheld(switch):
    agent_phone(switch, "1005")

    def body(session, seen, ch):
        b = str(uuidlib.uuid4())
        session.execute_async("bridge", bridge_to(session, b, "1005", TONE))
        wait_for(lambda: ch.bridged_to == b)
        leg = switch.channels[b]
        leg.press("1")
        session.api(commands.uuid_hold(b, True))
        leg.press("*1")
        session.api(commands.uuid_hold(b, False))
        leg.press("2")
        digits = list(leg.dtmf)               # the bridge passes them on; none consumed
        ch.kill()
        return digits, list(leg.events)
    digits, events = on_socket(switch, body, number="15550000101")
    assert digits == ["1", "2"]
    hold = events.index("CHANNEL_HOLD")
    assert events[hold - 1] == "CHANNEL_CALLSTATE"

