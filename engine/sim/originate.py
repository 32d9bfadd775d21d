"""Originate: create the outbound leg, ring its target, wait for answer or failure.

Targets: `sofia/internal/<ext>@host[:port]` to one of our own extensions is a loopback SIP call,
exactly as in the fixtures (an outbound `sofia/internal/...` leg plus the inbound
`sofia/external/<cid>@127.0.0.1` leg that runs the public dialplan); the same dial string to a
registered extension, or `user/<ext>`, rings that endpoint's phone; `loopback/<ext>[/<context>]`
runs the dialplan on a loopback pair; `error/<cause>` fails at once.
"""
import time
import uuid as _uuid

from engine.sim import codecs
from engine.sim.channel import Channel, ProfileClone
from engine.sim.events import now_us


def _outbound_variables(ch, variables, profile="internal"):
    v = {"direction": "outbound", "is_outbound": "true", "uuid": ch.uuid,
         "session_id": str(ch.switch.next_session_id()), "sip_profile_name": profile,
         "video_media_flow": "disabled", "text_media_flow": "disabled", "channel_name": ch.name}
    v.update(variables)
    v.update({"originate_early_media": "true", "originate_endpoint": ch.name.split("/")[0],
              "audio_media_flow": "sendrecv", "sofia_profile_name": profile,
              "recovery_profile_name": profile, "sip_call_id": str(_uuid.uuid4()),
              "call_uuid": ch.uuid})
    return v


def _resolve(switch, endpoint):
    """(kind, extension, host, context)."""
    parts = endpoint.split("/")
    tech = parts[0]
    if tech == "user" and len(parts) > 1:
        ext, _, host = parts[1].partition("@")
        return "user", ext, host or switch.global_vars.get("domain", "127.0.0.1"), None
    if tech == "sofia" and len(parts) > 2:
        if parts[1] == "gateway":
            return "gateway", parts[-1], parts[2], None
        ext, _, host = parts[2].partition("@")
        return "sofia", ext, host, parts[1]
    if tech == "loopback" and len(parts) > 1:
        return "loopback", parts[1], "", parts[2] if len(parts) > 2 else "default"
    if tech == "error" and len(parts) > 1:
        return "error", parts[1], "", None
    return "unknown", endpoint, "", None


def originate(switch, endpoint, variables, timeout, originator=None, cancelled=None):
    """Returns (True, answered A-leg Channel) or (False, hangup cause).

    `originator`: the channel running a `bridge` app; if it hangs up while this leg rings, the
    leg is cancelled (ORIGINATOR_CANCEL), as the switch does. `cancelled()`: another leg of the
    same bridge answered first (LOSE_RACE)."""
    kind, ext, host, extra = _resolve(switch, endpoint)
    if kind == "user":
        # the directory's dial-string `${sofia_contact(*/<ext>@<domain>)},${verto_contact(...)}` is
        # expanded first, one API event each (fixtures 08 #40-#41, 10 #38-#39, 11 #64-#65)
        switch.emit("API", {"API-Command": "sofia_contact", "API-Command-Argument": f"*/{ext}@{host}"})
        switch.emit("API", {"API-Command": "verto_contact", "API-Command-Argument": f"{ext}@{host}"})
    if kind == "error":
        return False, ext
    if kind == "unknown":
        return False, "CHAN_NOT_IMPLEMENTED"
    if kind == "user" and switch.endpoints.get(ext) is None:
        return False, "USER_NOT_REGISTERED"     # error/user_not_registered: no session is created
    if not switch.admit_session():
        # the endpoint's outgoing_channel (mod_sofia sofia_outgoing_channel, mod_loopback
        # loopback_outgoing_channel) asks switch_core_session_request_uuid for the leg first; over
        # the rate or the limit it gets NULL and returns its initial cause
        # SWITCH_CAUSE_DESTINATION_OUT_OF_ORDER; switch_ivr_originate has no leg and keeps that
        # reason (`if (reason) *cause = reason`), mod_commands answers "-ERR DESTINATION_OUT_OF_ORDER".
        # No channel existed, so no event is sent.
        return False, "DESTINATION_OUT_OF_ORDER"
    if kind == "gateway" and switch.gateways is not None and host not in switch.gateways:
        # mod_sofia sofia_outgoing_channel: sofia_reg_find_gateway fails -> "Invalid Gateway",
        # SWITCH_CAUSE_INVALID_GATEWAY (our configuration renders a gateway only with trunk.proxy)
        return False, "INVALID_GATEWAY"
    far = switch.pstn_endpoint(ext) if kind == "gateway" else None
    if kind == "gateway" and (far is None or getattr(far, "gateway_down", False)):
        # the same function: a gateway whose status is not SOFIA_GATEWAY_UP -> "Gateway '%s' is
        # down!", SWITCH_CAUSE_GATEWAY_DOWN (a number nobody answers for: the gateway's fault)
        return False, "GATEWAY_DOWN"
    a_uuid = variables.get("origination_uuid") or str(_uuid.uuid4())
    if a_uuid in switch.channels:
        return False, "DESTINATION_OUT_OF_ORDER"
    # SWITCH_DEFAULT_CLID_NUMBER / an empty name: an API originate without them shows
    # Caller-Caller-ID-Number 0000000000 and no Caller-Caller-ID-Name (fixture 10 #40)
    cid_num = variables.get("origination_caller_id_number", "0000000000")
    cid_name = variables.get("origination_caller_id_name", "")
    endpoint_obj = switch.endpoints.get(ext) if kind in ("user", "sofia") else far
    if kind == "user":
        name = f"sofia/internal/{ext}@{host}"
    elif kind == "gateway":
        name = f"sofia/external/{ext}@{host}"
    elif kind == "loopback":
        name = f"loopback/{ext}-a"
    else:
        name = f"sofia/{extra}/{ext}@{host}"
    if originator is not None:
        # a session originates (the bridge app): the new leg's caller profile is a clone of the
        # originator's (switch_caller_profile_clone), so it keeps its username, dialplan, context,
        # source and address (fixture 08 #42: Caller-Username 15550000081, Caller-Dialplan XML,
        # Caller-Context public, Caller-Source mod_sofia, Caller-Network-Addr 127.0.0.1)
        a = Channel(switch, name, "outbound", cid_num, cid_name, ext, uuid=a_uuid, context=originator.context,
                    dialplan=originator.dialplan, source=originator.source,
                    network_addr=originator.network_addr, username=originator.username)
    else:
        a = Channel(switch, name, "outbound", cid_num, cid_name, ext, uuid=a_uuid, context="default",
                    dialplan="", source="src/switch_ivr_originate.c", network_addr="")
    a.caller_id_name = a.orig_caller_id_name = cid_name
    # switch_ivr_originate names the callee "Outbound Call" <destination> (fixtures 08 #42, 10 #40)
    a.callee_id_name, a.callee_id_number = "Outbound Call", ext
    # switch_core_session_outgoing_channel gives the new leg an originator caller profile only when
    # a session originates it (the bridge app); an API originate has none (fixture 11).
    a.originator = originator.uuid if originator is not None else None
    profile = "external" if kind == "gateway" else extra if kind == "sofia" else "internal"
    a.codec_offer = codecs.outbound_offer(switch.codecs, variables, kind, profile, originator)
    if originator is not None:
        # ... and shows it from its first event on as the Other-Leg block (fixture 08 #42)
        a.other, a.other_type = ProfileClone(originator), "originator"
    a.variables.update(_outbound_variables(a, variables))
    if kind in ("sofia", "user", "gateway"):
        from engine.sim.sipvars import outbound_sip_variables
        a.variables.update(outbound_sip_variables(a, ext, host or "127.0.0.1"))
    a.state = "CS_NONE"
    switch.add_channel(a)
    a.emit("CHANNEL_OUTGOING")
    if kind == "user":
        a.presence_id = f"{ext}@{host}"      # the directory user's presence (fixtures 08, 10, 11)
    a.set_state("CS_INIT")
    a.emit("CHANNEL_CREATE")
    a.emit("CHANNEL_ORIGINATE")
    a.set_state("CS_ROUTING")
    a.presence("CS_ROUTING", "progressing")
    a.set_state("CS_CONSUME_MEDIA")
    if endpoint_obj is not None and not getattr(endpoint_obj, "sends_ringing", True):
        # a carrier that refuses at once (486, 603, 503) or answers 183 with an announcement sends
        # no 180: no CHANNEL_PROGRESS, the leg never shows RINGING (engine.sim.pstn)
        a.endpoint = endpoint_obj
        a.network_addr = a.network_addr or "127.0.0.1"
        switch.spawn(endpoint_obj.on_ring, a)
    elif endpoint_obj is not None:
        a.endpoint = endpoint_obj
        a.times["progress"] = now_us()
        # the phone's 180 tells sofia its address (fixture 10 #47: Caller-Network-Addr from
        # CHANNEL_PROGRESS on, not on CHANNEL_OUTGOING)
        a.network_addr = a.network_addr or "127.0.0.1"
        if originator is not None:
            # switch_channel_perform_mark_ring_ready: the ring time goes to the originator's
            # profile and to the clone of it (fixture 08 #53, #56: Progress-Time of the B leg)
            originator.times["progress"] = a.other.times["progress"] = a.times["progress"]
        a.emit("CHANNEL_PROGRESS")
        a.set_callstate("RINGING")
        switch.spawn(endpoint_obj.on_ring, a)
    elif not switch.admit_session():
        # the far side of the pair is a new session too, refused by the same core check
        if kind == "sofia":
            # our own INVITE reaches our profile, which answers 503 "Maximum Calls In Progress"
            # (mod_sofia sofia_queue_message); sofia_glue_sip_cause_to_freeswitch(503) is
            # NORMAL_TEMPORARY_FAILURE for the leg that sent it
            a.kill("NORMAL_TEMPORARY_FAILURE", "recv_refuse")
            return False, "NORMAL_TEMPORARY_FAILURE"
        # mod_loopback channel_on_init: no B session -> "Failure." and the A leg never leaves
        # CS_INIT; the originate ends at its timeout (the wait below)
    else:
        # loopback SIP into our own public context (or a loopback/ pair into `extra` context)
        inbound_name = f"sofia/external/{cid_num}@127.0.0.1" if kind == "sofia" else f"loopback/{ext}-b"
        b = Channel(switch, inbound_name, "inbound", cid_num, cid_name, ext,
                    context="public" if kind == "sofia" else extra, network_addr="127.0.0.1",
                    username=cid_num, source="mod_sofia" if kind == "sofia" else "mod_loopback")
        from engine.sim.sipvars import inbound_sip_variables
        b.variables.update(inbound_sip_variables(b, cid_num, cid_name, ext))
        for k, v in variables.items():
            if k.startswith("sip_h_"):
                b.set_var(k, v)
        if kind == "sofia":         # our own SDP offer reaches the other profile (fixture 09b)
            b.far_codecs = a.codec_offer
            b.codec_offer = switch.codecs.inbound_prefs("external")
        a.sip_peer, b.sip_peer = b, a
        switch.add_channel(b)
        b.set_state("CS_NEW")
        b.start()
    def given_up():
        return (originator is not None and not originator.alive) or (cancelled is not None and cancelled())

    # An API originate (no originator) succeeds on early media too unless ignore_early_media is
    # true: switch_ivr_originate.c sets oglobals.early_ok = 1, clears it only for
    # ignore_early_media=true|ring_ready|consume (or bridge_early_media), and check_channel_status
    # takes `early_ok && CF_EARLY_MEDIA` like CF_ANSWERED. (The bridge app's case is left as it was.)
    early_ok = originator is None and str(variables.get("ignore_early_media", "")).lower() not in (
        "true", "yes", "on", "1", "ring_ready", "consume") and \
        str(variables.get("bridge_early_media", "")).lower() not in ("true", "yes", "on", "1")

    def won():
        return a.answered or (early_ok and a.early and a.alive)

    deadline = time.monotonic() + timeout
    answered = False
    try:
        while not won() and not given_up():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            # one media frame at a time: the originator's hangup is noticed within a frame
            answered = a.wait(min(left, switch.frame_seconds), until=won)
    except Exception:
        answered = False
    if not won() and a.alive and given_up():
        lost = cancelled is not None and cancelled()
        cause = "LOSE_RACE" if lost and (originator is None or originator.alive) else "ORIGINATOR_CANCEL"
        a.kill(cause, "send_cancel")
        if a.sip_peer is not None and a.sip_peer.alive:
            a.sip_peer.kill("ORIGINATOR_CANCEL", "recv_cancel")
        return False, cause
    if won():
        if originator is not None and originator.call_state == "RING_WAIT":
            # the bridge app's caller leg stops waiting as the far leg answers; it now shows that
            # leg as its originatee, and that leg's callee ID as its own (fixture 08 #56, 11 #56)
            originator.callee_id_name, originator.callee_id_number = a.callee_id_name, a.callee_id_number
            originator.other, originator.other_type = a, "originatee"
            originator.set_callstate("ACTIVE")
        if a.presence_id:
            # a user/ leg is the inner leg of mod_dptools' user endpoint: the outer
            # switch_core_session_outgoing_channel fires CHANNEL_OUTGOING again once it is answered,
            # with a new clone of the originator's profile (fixtures 08 #57, 10 #54, 11 #80)
            if originator is not None:
                a.other = ProfileClone(originator)
            a.emit("CHANNEL_OUTGOING")
        return True, a
    if a.alive and not answered:
        a.kill("NO_ANSWER" if endpoint_obj is not None else "ORIGINATOR_CANCEL", "send_cancel")
        if a.sip_peer is not None and a.sip_peer.alive:
            a.sip_peer.kill("ORIGINATOR_CANCEL", "recv_cancel")
        return False, "NO_ANSWER"
    return False, a.hangup_cause or "NORMAL_CLEARING"
