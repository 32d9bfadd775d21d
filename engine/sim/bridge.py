"""Bridges (uuid_bridge, the bridge app) and eavesdrop, with the event order of fixtures 02 and 04.

uuid_bridge moves both parked legs out of park (UNPARK, park EXECUTE_COMPLETE) through
CS_HIBERNATE/CS_RESET/CS_SOFT_EXECUTE; each leg then shows CHANNEL_EXECUTE `uuid_bridge <other>`,
the A leg sends CHANNEL_BRIDGE and the B leg goes to CS_EXCHANGE_MEDIA. When one leg hangs up the
other is hung up one media frame later and the A leg sends CHANNEL_UNBRIDGE (unless park_after_bridge=true).
"""
import uuid as _uuid

from engine.sim import codecs
from engine.sim.channel import Hangup, ProfileClone, Transfer
from engine.sim.events import now_us

BRIDGE = "__bridge__"


def uuid_bridge(switch, a, b):
    a.transfer_to = (BRIDGE, b.uuid, "A")
    b.transfer_to = (BRIDGE, a.uuid, "B")
    # the second leg shows a clone of the first leg's profile as it was before the bridge
    # (times 0, callee not yet the partner's): fixture 02 #89, fixture 10 #78 (Other-Leg-Callee-ID-Number
    # 0000000000, no Other-Leg-Callee-ID-Name)
    a_clone = ProfileClone(a)
    a.callee_id_name, a.callee_id_number = b.caller_id_name, b.caller_id_number
    b.callee_id_name, b.callee_id_number = a.caller_id_name, a.caller_id_number
    a.new_profile(f"uuid_br:{b.uuid}")
    b.new_profile(f"uuid_br:{a.uuid}")
    # The switch links the legs before it unparks them: UNPARK and park's EXECUTE_COMPLETE
    # already carry the Other-Leg block (fixture 02).
    a.other, a.other_type = b, "originatee"
    b.other, b.other_type = a_clone, "originator"
    # switch_ivr_uuid_bridge sets the originator caller profile on the second leg: from then on
    # mod_xml_cdr (log-b-leg=false) writes no file for it
    b.originator = a.uuid
    a.wake()
    b.wake()


def bridged_session(ch, other_uuid, role):
    """Run in the channel's session greenlet after uuid_bridge interrupted its application."""
    for state in ("CS_HIBERNATE", "CS_RESET", "CS_SOFT_EXECUTE"):
        ch.set_state(state)
    other = ch.switch.channels.get(other_uuid)
    if other is not None and role == "A":
        ch.other, ch.other_type = other, "originatee"
    ch.emit("CHANNEL_EXECUTE", {"Application": "uuid_bridge", "Application-Data": other_uuid,
                                "Application-UUID": str(_uuid.uuid4())})
    if other is None or not other.alive:
        ch.kill("NORMAL_CLEARING")
        ch.check()
    _bridge_loop(ch, other, role)


def _link(ch, other, role, keep_other=False):
    ch.bridged_to = other.uuid
    if not keep_other:
        # the B leg of a `bridge` app keeps the clone of the caller's profile it was created
        # with (fixture 08 #59-#60: Other-Leg-*-Time 0 while bridged)
        ch.other = other
        ch.other_type = "originatee" if role == "A" else "originator"
    ch.times["bridged"] = now_us()
    if role != "A":
        ch.call_uuid = other.uuid
        ch.set_var("call_uuid", other.uuid)
    ch.set_var("bridge_uuid", other.uuid)
    ch.set_var("signal_bond", other.uuid)
    ch.set_var("last_bridge_to", other.uuid)


def _bridge_loop(ch, other, role):
    _link(ch, other, role, keep_other=role != "A" and ch.other is not None)
    if role == "A":
        ch.emit("CHANNEL_BRIDGE", {"Bridge-A-Unique-ID": ch.uuid, "Bridge-B-Unique-ID": other.uuid})
    else:
        ch.set_state("CS_EXCHANGE_MEDIA")
    _display_update(ch, other)
    try:
        while True:
            ch.wait(until=lambda: ch.may_run_messages() or ch.bridged_to != other.uuid or not other.alive)
            if ch.may_run_messages():
                ch.run_messages()
                continue
            break
    except (Hangup, Transfer):
        _end(ch, other, role)
        raise
    _end(ch, other, role)
    if ch.alive and ch.transfer_to is None:
        if ch.variables.get("park_after_bridge") == "true":
            ch.park_loop()
        else:
            ch.wait(ch.switch.frame_seconds)     # see _end: one media frame before it notices
            ch.kill("NORMAL_CLEARING")
            ch.check()


def _display_update(ch, other, bridged=True):
    """Bridging (fixture 02) and eavesdrop (fixture 04) re-send the callee ID on the SIP leg
    (CALL_UPDATE SEND; Bridged-To only for a bridge) and the phone on the far side sees an INFO
    display update (CALL_UPDATE RECV + RECV_INFO)."""
    name, number = other.caller_id_name, other.caller_id_number
    if bridged and other.direction == "outbound" and not other.cid_flipped:
        # the bridge app's B leg was never flipped: its caller ID is still the caller's, the
        # display names its callee (fixture 08 #61: "Outbound Call" <1004-...>; a flipped leg
        # sends its caller ID, fixture 10 #78)
        name, number = other.callee_id_name, other.callee_id_number
    update = {"Direction": "SEND", "Sent-Callee-ID-Name": name, "Sent-Callee-ID-Number": number}
    if bridged:
        update["Bridged-To"] = other.uuid
    ch.emit("CALL_UPDATE", update)
    peer = ch.sip_peer
    if peer is not None and peer.alive:
        peer.emit("CALL_UPDATE", {"Direction": "RECV"})
        peer.emit("RECV_INFO", {"SIP-Content-Type": "message/update_display",
                                "SIP-From-User": peer.destination_number, "SIP-From-Host": "127.0.0.1",
                                "SIP-To-User": peer.callee_id_number or peer.caller_id_number,
                                "SIP-To-Host": "127.0.0.1", "SIP-Contact-User": peer.destination_number,
                                "SIP-Contact-Host": "127.0.0.1"})


def _end(ch, other, role, kill_other=True):
    if ch.bridged_to is None and other.bridged_to is None:
        return
    ch.bridged_to = None
    if other.bridged_to == ch.uuid:
        other.bridged_to = None
        if kill_other and other.alive and other.transfer_to is None \
                and other.variables.get("park_after_bridge") != "true":
            # the partner's bridge thread notices on its next media frame; until then it is up and
            # uuid_kill of it answers +OK (fixture 04 kills both legs of a bridge back to back)
            ch.switch.spawn_later(ch.switch.frame_seconds, _hang_up_if_up, other)
        other.wake()
    if role == "A":
        ch.emit("CHANNEL_UNBRIDGE", {"Bridge-A-Unique-ID": ch.uuid, "Bridge-B-Unique-ID": other.uuid})
    elif other is not None:
        other.emit("CHANNEL_UNBRIDGE", {"Bridge-A-Unique-ID": other.uuid, "Bridge-B-Unique-ID": ch.uuid})


def _hang_up_if_up(ch):
    if ch.alive and ch.transfer_to is None and ch.variables.get("park_after_bridge") != "true":
        ch.kill("NORMAL_CLEARING")


def unbridge(switch, ch):
    """Called while a channel hangs up outside the bridge loop (defensive)."""
    other = switch.channels.get(ch.bridged_to) if ch.bridged_to else None
    ch.bridged_to = None
    if other is not None and other.bridged_to == ch.uuid:
        other.bridged_to = None
        other.wake()


def bridge_app(switch, ch, arg):
    """The `bridge` application: originate the B leg, bridge on answer, return when it ends."""
    from engine.sim import api
    variables, dial = api.split_vars(arg.strip())
    variables.setdefault("origination_caller_id_number", ch.caller_id_number)
    variables.setdefault("origination_caller_id_name", ch.caller_id_name)
    timeout = int(variables.get("call_timeout") or ch.variables.get("call_timeout") or 60)
    # the caller leg waits in RING_WAIT while the far leg is originated; the far leg's answer
    # sets it back to ACTIVE (originate.originate; fixture 08 #39/#56, 11 #39/#56)
    call_state = ch.call_state
    ch.set_callstate("RING_WAIT")
    ok, result = _originate_legs(switch, ch, variables, dial, timeout)
    if ch.alive and ch.call_state == "RING_WAIT":
        # no fixture shows a failed bridge; the wait is over, so the leg is what it was before
        ch.set_callstate(call_state)
    if not ok:
        ch.set_var("originate_disposition", result)
        ch.set_var("DIALSTATUS", result)
        ch.set_var("originate_failed_cause", result)
        return "_none_"
    b = result
    ch.set_var("originate_disposition", "SUCCESS")
    ch.set_var("DIALSTATUS", "SUCCESS")
    if not ch.answered:
        ch.answer()
    # if the B leg hangs up before its own session runs (which would wake us), its end still does
    b._gone.rawlink(lambda _: ch.wake())
    b.start(outgoing=True, bridge=(ch.uuid, "B-app"))
    try:
        _link(ch, b, "A")
        ch.emit("CHANNEL_BRIDGE", {"Bridge-A-Unique-ID": ch.uuid, "Bridge-B-Unique-ID": b.uuid})
        _pre_execute(ch)
        # switch_ivr_multi_threaded_bridge sends INDICATE_BRIDGE to the B leg first, then to the
        # caller leg, whose bridge thread sends its display on its first media frame: the B leg's
        # CALL_UPDATE SEND, then the caller leg's and its far phone's (fixture 08 #60-#63)
        ch.wait(1.0, until=lambda: b.display_sent or not b.alive)
        ch.wait(switch.frame_seconds)
        if b.alive and ch.bridged_to == b.uuid:
            _display_update(ch, b)
        while True:
            # a `bridge` sent with event-lock (the engine's) runs nothing queued until it ends:
            # uuid_hold's music broadcast waits, then plays after it (fixture 08 A; 08 B without)
            ch.wait(until=lambda: ch.may_run_messages() or ch.bridged_to != b.uuid or not b.alive)
            if ch.may_run_messages():
                ch.run_messages()
                continue
            break
    finally:
        _end(ch, b, "A")
    return "_none_"


def _pre_execute(ch):
    """`bridge_pre_execute_aleg_app`/`_data` of the A leg run on it once the B leg answered and
    the bridge starts: switch_ivr_multi_threaded_bridge copies them to `bridge_pre_execute_app`,
    which audio_bridge_thread executes on the A leg (src/switch_ivr_bridge.c). The engine uses it
    to have the switch itself start a queue's recording, even if the engine is down by then."""
    name = ch.variables.get("bridge_pre_execute_aleg_app")
    if name:
        ch.set_var("bridge_pre_execute_app", name)
        ch.set_var("bridge_pre_execute_data", ch.variables.get("bridge_pre_execute_aleg_data"))
    name = ch.variables.get("bridge_pre_execute_app")
    if name:
        from engine.sim import apps
        apps.execute(ch, name, ch.variables.get("bridge_pre_execute_data") or "")


def _split_legs(dial):
    """`[a=1]user/1001,[b=2]user/1002` -> [({'a': '1'}, 'user/1001'), ...] (commas inside [] kept)."""
    legs, cur, depth = [], "", 0
    for c in dial:
        if c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
        if c == "," and depth == 0:
            legs.append(cur)
            cur = ""
            continue
        cur += c
    legs.append(cur)
    out = []
    for leg in legs:
        leg = leg.strip()
        leg_vars = {}
        if leg.startswith("["):
            from engine.sim import api
            end = leg.index("]")
            leg_vars, _ = api.split_vars("{" + leg[1:end] + "}")
            leg = leg[end + 1:]
        out.append((leg_vars, leg))
    return out


def _originate_legs(switch, ch, variables, dial, timeout):
    """Ring every leg of a comma dial string at once; the first to answer wins, the rest are
    cancelled with LOSE_RACE (one leg: a plain originate)."""
    import gevent
    from engine.sim import originate
    legs = _split_legs(dial)
    if len(legs) == 1:
        leg_vars, endpoint = legs[0]
        leg_timeout = int(leg_vars.get("leg_timeout") or timeout)
        return originate.originate(switch, endpoint, {**variables, **leg_vars}, leg_timeout, originator=ch)
    winner = []

    def ring(leg_vars, endpoint):
        leg_timeout = int(leg_vars.get("leg_timeout") or timeout)
        ok, result = originate.originate(switch, endpoint, {**variables, **leg_vars}, leg_timeout,
                                         originator=ch, cancelled=lambda: bool(winner))
        if ok:
            if winner:                     # answered in the same frame as another: too late
                result.kill("LOSE_RACE")
                return False, "LOSE_RACE"
            winner.append(result)
        return ok, result

    jobs = [gevent.spawn(ring, v, e) for v, e in legs]
    gevent.joinall(jobs)
    if winner:
        return True, winner[0]
    causes = [j.value[1] for j in jobs if j.value and not j.value[0]]
    if not ch.alive:
        return False, "ORIGINATOR_CANCEL"
    for preferred in ("NO_ANSWER", "USER_BUSY", "CALL_REJECTED"):
        if preferred in causes:
            return False, preferred
    return False, causes[0] if causes else "NO_ANSWER"


def b_leg_session(ch, other_uuid):
    """The B leg of a `bridge` app: exchange media until the bridge ends."""
    other = ch.switch.channels.get(other_uuid)
    if other is None:
        ch.kill("NORMAL_CLEARING")
        ch.check()
    # already in CS_CONSUME_MEDIA from the originate, so the bridge's CS_CONSUME_MEDIA fires
    # nothing; CS_EXCHANGE_MEDIA does (fixture 08 #59)
    ch.set_state("CS_EXCHANGE_MEDIA")
    _link(ch, other, "B", keep_other=True)
    _display_update(ch, other)
    ch.display_sent = True
    try:
        ch.wait(until=lambda: ch.bridged_to != other.uuid or not other.alive)
    finally:
        # the A leg's `bridge` app returns and its dialplan (or the engine) goes on, unless
        # it asked for hangup_after_bridge
        _end(ch, other, "B", kill_other=other.variables.get("hangup_after_bridge") == "true")
    if ch.alive and ch.transfer_to is None:
        ch.kill("NORMAL_CLEARING")
        ch.check()


def eavesdrop(switch, ch, target_uuid):
    """`eavesdrop <uuid>`: a media bug on the target until either side hangs up."""
    target = switch.channels.get(target_uuid)
    if target is None or not target.alive:
        ch.log.error("%s: eavesdrop target %s not found", ch.uuid, target_uuid)
        return "_none_"
    if not ch.answered:
        ch.answer()
    bug = {"Media-Bug-Function": "eavesdrop", "Media-Bug-Target": target.uuid}
    target.emit("MEDIA_BUG_START", bug)
    ch.set_var("eavesdrop_target", target.uuid)
    # The eavesdropper reads the mixed audio as L16 at its own rate (its read codec changes, a
    # CODEC event: fixture 09b shows L16/48000 on an OPUS supervisor eavesdropping on a PCMA leg)
    # and its phone is told whom it listens to; it carries no Other-Leg block (fixture 04).
    codecs.push_l16(ch)
    _display_update(ch, target, bridged=False)
    # Who hears the eavesdropper (switch_ivr_eavesdrop_session): ED_MUX_READ mixes it into what
    # the target reads, i.e. what the target's bridged partner hears; ED_MUX_WRITE into what the
    # target is sent, i.e. the target's own phone. Variables set the start, digits change it when
    # eavesdrop_enable_dtmf is true: 1 read, 2 write, 3 both, 0 listen only, * leaves.
    # The mix is byte for byte, at the eavesdropper's rate into the target's frames: at another
    # rate than the target's the supervisor is nearly silent (codecs.eavesdrop_mix, fixture 09b).
    rate = ch.codec[1] if ch.codec else "48000"
    target_rate = target.codec[1] if target.codec else rate
    read = ch.variables.get("eavesdrop_whisper_aleg") == "true"
    write = ch.variables.get("eavesdrop_whisper_bleg") == "true"
    ch.eavesdrop_modes = [("3" if read and write else "1" if read else "2" if write else "0")]
    ch.eavesdrop_mix = [codecs.eavesdrop_mix(ch.eavesdrop_modes[0], rate, target_rate)]
    dtmf = ch.variables.get("eavesdrop_enable_dtmf") == "true"
    try:
        while True:
            # the media bug notices the target's end on its next frame
            ch.wait(ch.switch.frame_seconds, until=lambda: not target.alive or (dtmf and bool(ch.dtmf)))
            if not target.alive:
                break
            if not (dtmf and ch.dtmf):
                continue
            digit = ch.dtmf.popleft()
            if digit == "*":
                break
            if digit in "0123":
                ch.eavesdrop_modes.append(digit)
                ch.eavesdrop_mix.append(codecs.eavesdrop_mix(digit, rate, target_rate))
    finally:
        if target.state not in ("CS_DESTROY",):
            target.emit("MEDIA_BUG_STOP", bug)
        codecs.pop_l16(ch)                # back to the call's codec, even while hanging up
    return "_none_"
