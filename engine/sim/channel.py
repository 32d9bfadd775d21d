"""A simulated channel: state machine, variables, the events it emits, and what its far end can do.

One greenlet per channel plays FreeSWITCH's session thread: it runs the dialplan's applications,
then parks and runs what `sendmsg`/`uuid_broadcast` queue, and finally walks the hangup states.
Anything that interrupts an application (hangup, transfer, uuid_break, DTMF) sets a flag and wakes
the greenlet through one gevent Event, so waits never poll.

The private event queue (`messages`) is the switch's: every `sendmsg execute`, `uuid_broadcast`
and `uuid_hold`'s hold-music broadcast waits there until the session thread parses events, which a
parked channel does once per media frame, and which no application run with `event-lock: true`
does at all until it ends (switch_core_session_dequeue_private_event returns nothing while
CF_EVENT_LOCK is set; FREESWITCH.md, fixture 08 A). `uuid_break <uuid> all` flushes that queue
(switch_core_session_flush_private_events): an execute sent but not started is gone, with no
CHANNEL_EXECUTE and no CHANNEL_EXECUTE_COMPLETE ever (fixture 07 case A).
"""
import collections
import logging
import time
import uuid as _uuid

import gevent
from gevent.event import Event as GEvent

from engine.sim import cdrvars, codecs, sipvars, xmlcdr
from engine.sim.events import STATE_NUMBERS, now_us

CALLSTATE_NUMBERS = {"DOWN": 0, "DIALING": 1, "RINGING": 2, "EARLY": 3, "ACTIVE": 4, "HELD": 5,
                     "RING_WAIT": 6, "HANGUP": 7, "UNHELD": 8}



PARK = "__park__"                 # transfer_to target of uuid_park


class Hangup(Exception):
    """The channel hung up while an application was running."""


class Transfer(Exception):
    """uuid_transfer moved the channel to another extension while an application was running."""


class ProfileClone:
    """switch_caller_profile_clone of a leg's caller profile: what a leg originated by a session
    (the B leg of `bridge`) shows as its Other-Leg block (Other-Type: originator). It is the
    originator's profile as it stood when cloned, with the times of a fresh profile (all 0): fixture
    08 #42/#57 (t=0.106492, 0.127033: Other-Leg-*-Time 0 while the caller leg was answered)."""

    def __init__(self, channel):
        fields = {}
        channel._profile("", fields)
        self.uuid = channel.uuid
        self.times = {k: 0 for k in channel.times}
        self.values = {k: v for k, v in fields.items() if not k.endswith("-Time")}

    def _profile(self, prefix, fields):
        times = {"Profile-Created-Time": 0, "Channel-Created-Time": 0}
        for key, name in (("answered", "Answered"), ("progress", "Progress"),
                          ("progress_media", "Progress-Media"), ("hangup", "Hangup"),
                          ("transfer", "Transfer"), ("resurrect", "Resurrect"), ("bridged", "Bridged")):
            times[f"Channel-{name}-Time"] = self.times.get(key, 0)
        for k, v in self.values.items():
            if k == "Channel-Name":          # the times go right after the channel name, as _profile does
                fields[prefix + k] = v
                fields.update((prefix + t, str(n)) for t, n in times.items())
            elif k not in ("Profile-Index", "Transfer-Source"):
                fields[prefix + k] = v


class Channel:
    def __init__(self, switch, name, direction, caller_id_number, caller_id_name="",
                 destination_number="", uuid=None, context="public", dialplan="XML",
                 source="mod_sofia", network_addr="127.0.0.1", username=None):
        self.switch = switch
        self.uuid = uuid or str(_uuid.uuid4())
        self.name = name
        self.direction = direction
        self.caller_id_number = caller_id_number
        self.caller_id_name = caller_id_name or caller_id_number
        self.orig_caller_id_number = caller_id_number
        self.orig_caller_id_name = self.caller_id_name
        self.callee_id_number = ""
        self.callee_id_name = ""
        self.destination_number = destination_number
        self.context = context
        self.dialplan = dialplan
        self.source = source
        self.network_addr = network_addr
        self.username = username
        self.state = "CS_NEW"
        self.call_state = "DOWN"
        self.answered = False
        self.early = False
        self.hangup_cause = None
        self.hangup_disposition = None
        self.bridged_to = None
        self.other = None                 # channel shown in the Other-Leg-* block
        self.other_type = None            # "originator" / "originatee"
        self.display_sent = False         # the B leg of a `bridge` app sent its display update
        self.cid_flipped = False          # CF_DIALPLAN: an outbound leg's caller ID was flipped (sort_cid)
        self.sip_peer = None              # the far side of a simulated loopback SIP dialog
        self.codec = None                 # (name, rate) negotiated at answer / early media
        self.codec_offer = None           # codecs our side offers (outbound) or accepts (inbound)
        self.far_codecs = None            # codecs the far end offers (inbound) or supports (outbound)
        self.read_codec = None            # (name, rate, bit rate) while a media bug reads raw audio
        self.hangup_after_app = False     # hang up when the running app completes (conference hup)
        self.variables = {}
        self.events = []
        self.times = {"created": now_us(), "answered": 0, "progress": 0, "progress_media": 0,
                      "hangup": 0, "transfer": 0, "bridged": 0}
        self.audio = None                 # WAV the far end is "speaking" (media tap, recordings)
        self.audio_since = time.time()
        self.endpoint = None
        self.parked = False
        self.presence_id = None           # user/<ext>@<domain> legs: PRESENCE_IN on their way (presence)
        self.presence_count = 0
        self.current_app = None
        self.file_handle = None           # apps.FileHandle of the playback running (uuid_fileman)
        self.dtmf = collections.deque()   # digits not yet consumed by an application
        self.eavesdrop_modes = []          # eavesdrop mux modes this leg went through (0 1 2 3)
        self.eavesdrop_mix = []            # per mode: levels at both phones, audible (codecs.py)
        self.messages = collections.deque()   # the private event queue (see the module doc)
        self.break_flag = False           # CF_BREAK
        self.stop_loops = False           # a looping broadcast is told to stop
        self.event_lock = False           # the running application was executed with event-lock
        self.broadcasting = False         # CF_BROADCAST: the running application is a broadcast
        self.held = False                 # uuid_hold on this leg: its phone is recvonly
        self.transfer_to = None
        self.call_uuid = None             # a bridged B leg belongs to the A leg's call
        # The leg whose session originated this one (the B leg of a `bridge`, the second leg of a
        # uuid_bridge): the switch gives such a leg an originator caller profile, and mod_xml_cdr
        # with log-b-leg=false writes no file for it (fixture 11).
        self.originator = None
        self.app_log = []                 # (app, data, µs) of every application run: the CDR's app_log
        self.extension = None             # (name, number, [(app, data)]) the dialplan matched
        self.old_profiles = []            # caller profiles before transfers/uuid_bridge, newest first
        self.rdnis = ""
        self.transfer_source = ""
        self.profile_index = 1
        self.destroy_holds = set()        # lingering outbound sockets keep the channel until closed
        self.media = {}                   # path -> recorder (uuid_record)
        self.log = logging.LoggerAdapter(logging.getLogger("hotline.sim.channel"),
                                         {"uuid": self.uuid})
        self._signal = GEvent()
        self._gone = GEvent()
        self.greenlet = None

    # --- header blocks ----------------------------------------------------------------------
    def answer_state(self):
        if self.hangup_cause:
            return "hangup"
        if self.answered:
            return "answered"
        if self.early:
            return "early"
        return "ringing"

    def _profile(self, prefix, fields):
        t = self.times
        fields[prefix + "Direction"] = self.direction
        fields[prefix + "Logical-Direction"] = self.direction
        if self.username:
            fields[prefix + "Username"] = self.username
        if self.dialplan:
            fields[prefix + "Dialplan"] = self.dialplan
        # switch_caller_profile_event_set_data leaves out empty fields: an API originate without
        # origination_caller_id_name has no Caller-Caller-ID-Name (fixture 10 #40, t=0.047514)
        for name, value in (("Caller-ID-Name", self.caller_id_name), ("Caller-ID-Number", self.caller_id_number),
                            ("Orig-Caller-ID-Name", self.orig_caller_id_name),
                            ("Orig-Caller-ID-Number", self.orig_caller_id_number),
                            ("Callee-ID-Name", self.callee_id_name), ("Callee-ID-Number", self.callee_id_number)):
            if value:
                fields[prefix + name] = value
        if self.network_addr:
            fields[prefix + "Network-Addr"] = self.network_addr
        fields[prefix + "ANI"] = self.orig_caller_id_number
        if self.rdnis:
            fields[prefix + "RDNIS"] = self.rdnis
        fields[prefix + "Destination-Number"] = self.destination_number
        fields[prefix + "Unique-ID"] = self.uuid
        fields[prefix + "Source"] = self.source
        fields[prefix + "Context"] = self.context
        fields[prefix + "Channel-Name"] = self.name
        if self.transfer_source and prefix != "Other-Leg-":
            fields[prefix + "Transfer-Source"] = self.transfer_source
        if prefix != "Other-Leg-":
            fields[prefix + "Profile-Index"] = str(self.profile_index)
        fields[prefix + "Profile-Created-Time"] = str(t["created"])
        fields[prefix + "Channel-Created-Time"] = str(t["created"])
        fields[prefix + "Channel-Answered-Time"] = str(t["answered"])
        fields[prefix + "Channel-Progress-Time"] = str(t["progress"])
        fields[prefix + "Channel-Progress-Media-Time"] = str(t["progress_media"])
        fields[prefix + "Channel-Hangup-Time"] = str(t["hangup"])
        fields[prefix + "Channel-Transfer-Time"] = str(t["transfer"])
        fields[prefix + "Channel-Resurrect-Time"] = "0"
        fields[prefix + "Channel-Bridged-Time"] = str(t["bridged"])
        fields[prefix + "Channel-Last-Hold"] = "0"
        fields[prefix + "Channel-Hold-Accum"] = "0"
        fields[prefix + "Screen-Bit"] = "true"
        fields[prefix + "Privacy-Hide-Name"] = "false"
        fields[prefix + "Privacy-Hide-Number"] = "false"

    def fields(self, channel_data=False):
        f = {}
        if channel_data:
            self._profile("Channel-", f)
        f.update({"Channel-State": self.state, "Channel-Call-State": self.call_state,
                  "Channel-State-Number": str(STATE_NUMBERS[self.state]), "Channel-Name": self.name,
                  "Unique-ID": self.uuid, "Call-Direction": self.direction,
                  "Presence-Call-Direction": self.direction, "Channel-HIT-Dialplan": "true",
                  "Channel-Call-UUID": self.call_uuid or self.uuid, "Answer-State": self.answer_state()})
        if self.presence_id:
            f["Channel-Presence-ID"] = self.presence_id
        if self.hangup_cause:
            f["Hangup-Cause"] = self.hangup_cause
        if self.codec:
            name, rate = self.codec
            f.update({"Channel-Read-Codec-Name": name, "Channel-Read-Codec-Rate": rate,
                      "Channel-Read-Codec-Bit-Rate": "0", "Channel-Write-Codec-Name": name,
                      "Channel-Write-Codec-Rate": rate, "Channel-Write-Codec-Bit-Rate": "0"})
            if self.read_codec:
                f.update(zip(("Channel-Read-Codec-Name", "Channel-Read-Codec-Rate",
                              "Channel-Read-Codec-Bit-Rate"), self.read_codec))
        if self.state == "CS_NEW":
            # sofia fires the CS_NEW state before it sets the caller profile: no Caller-* block
            # (fixture 01), so a `filter Caller-Caller-ID-Number` connection never sees it (fixture 12)
            return f
        self._profile("Caller-", f)
        if self.other is not None:
            f["Other-Type"] = self.other_type or "originatee"
            self.other._profile("Other-Leg-", f)
        return f

    def emit(self, name, extra=None, body="", subclass="", prefix=()):
        fields = self.fields()
        if extra:
            fields.update(extra)
        ev = self.switch.factory.make(name, fields, list(self.variables.items()), body=body,
                                      subclass=subclass, uuid=self.uuid, prefix=prefix)
        self.events.append(name if not subclass else f"{name}::{subclass}")
        self.switch.dispatch(ev)
        return ev

    # --- state --------------------------------------------------------------------------------
    def set_state(self, state, call_state=None):
        """Enter `state`; with `call_state`, change that first (its CHANNEL_CALLSTATE comes
        before the CHANNEL_STATE, as in fixture 03's uuid_transfer)."""
        self.state = state
        if call_state is not None and call_state != self.call_state:
            self.set_callstate(call_state)
        self.emit("CHANNEL_STATE")

    def set_callstate(self, call_state):
        original = self.call_state
        self.call_state = call_state
        self.emit("CHANNEL_CALLSTATE", {"Original-Channel-Call-State": original,
                                        "Channel-Call-State-Number": str(CALLSTATE_NUMBERS[call_state])})

    def set_var(self, name, value):
        if value is None:
            self.variables.pop(name, None)
        else:
            self.variables[name] = str(value)

    def get_var(self, name):
        return self.variables.get(name)

    @property
    def alive(self):
        return self.hangup_cause is None

    def presence(self, status, call_info_state, calling=None):
        """PRESENCE_IN of a leg with a presence id (switch_channel_perform_presence); the state
        machine's check_presence sends one at routing and at hangup, answering one more
        (fixtures 08, 10, 11: user/<ext> legs)."""
        if not self.presence_id:
            return
        calling = calling or ("src/switch_core_state_machine.c", "check_presence", "521")
        self.emit("PRESENCE_IN", {
            "proto": "any", "login": "src/switch_channel.c", "from": self.presence_id, "rpid": "unknown",
            "status": status, "event_type": "presence", "alt_event_type": "dialog",
            "presence-call-info-state": call_info_state, "presence-call-direction": self.direction,
            "event_count": str(self.presence_count), "Presence-Calling-File": calling[0],
            "Presence-Calling-Function": calling[1], "Presence-Calling-Line": calling[2]})
        self.presence_count += 1

    # --- waiting ------------------------------------------------------------------------------
    def wake(self):
        self._signal.set()

    def check(self):
        if self.hangup_cause is not None:
            raise Hangup(self.hangup_cause)
        if self.transfer_to is not None:
            raise Transfer(self.transfer_to)

    def wait(self, seconds=None, until=None):
        """Sleep up to `seconds` (None: forever) or until `until()` is true; raises on hangup/transfer."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            self.check()
            if until is not None and until():
                return True
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._signal.clear()
            self._signal.wait(remaining)

    # --- media negotiation / answer ----------------------------------------------------------
    def negotiate(self):
        """The codec this leg's SDP exchange ends with (engine/sim/codecs.py), or None when the two
        sides have none in common (the switch then refuses: INCOMPATIBLE_DESTINATION)."""
        peer = self.sip_peer
        if self.direction == "outbound" and peer is not None and peer.codec:
            return peer.codec[0].upper()        # a loopback SIP call: both legs carry one codec
        offer = self.codec_offer or codecs.VANILLA_PREFS
        far = self.far_codecs or codecs.CALLER
        if self.direction == "inbound":
            return codecs.first_common(far, offer)      # generous: the caller's order
        return codecs.first_common(offer, far)          # the phone picks from our offer

    def _set_codec(self):
        if self.codec is None:
            name = self.negotiate()
            if name is None:
                # 488 Not Acceptable Here: sent by us to an inbound offer, received from the phone
                self.kill("INCOMPATIBLE_DESTINATION",
                          "send_refuse" if self.direction == "inbound" else "recv_refuse")
                return False
            iana, rate, bits = codecs.CODECS[name]
            self.codec = (iana, rate)
            self.variables.update(sipvars.media_variables(name))
            self.emit("CODEC", {"channel-read-codec-name": iana, "channel-read-codec-rate": rate,
                                "channel-read-codec-bit-rate": bits})
            self.emit("CODEC", {"Channel-Write-Codec-Name": iana, "Channel-Write-Codec-Rate": rate,
                                "Channel-Write-codec-bit-rate": bits})
        return True

    def pre_answer(self):
        if self.early or self.answered or not self.alive:
            return
        if not self._set_codec():
            return
        self.early = True
        self.times["progress_media"] = now_us()
        self.set_var("progress_media_stamp", time.strftime("%Y-%m-%d %H:%M:%S"))
        self.emit("CHANNEL_PROGRESS_MEDIA")
        self.set_callstate("EARLY")

    def answer(self):
        """Answer: the `answer` app on an inbound leg, or the far end picking up an outbound leg."""
        if self.answered or not self.alive:
            return
        if self.direction == "outbound":
            if not self._set_codec():
                return
            if self.sip_peer is not None and self.name.startswith("sofia/"):
                # our own external profile's 200 OK names the dialed number: the loopback leg's
                # callee is then the extension, which the flip makes its caller (fixture 08 #32)
                self.callee_id_name = self.callee_id_number = self.destination_number
            if self.name.startswith("sofia/") and not self.network_addr:
                self.network_addr = "127.0.0.1"      # learnt from the answer's SDP/Via
        else:
            self.pre_answer()
            if not self.alive:
                return
        self.answered = True
        self.times["answered"] = now_us()
        self.set_var("endpoint_disposition", "ANSWER")
        self.emit("CHANNEL_ANSWER")
        self.presence("answered", "active", ("src/switch_channel.c", "switch_channel_perform_mark_answered", "3906"))
        self.set_callstate("ACTIVE")
        peer = self.sip_peer
        if peer is not None and peer.direction == "outbound" and not peer.answered:
            # the 200 OK reaches the other leg after this leg's session moved on (fixture 01)
            self.switch.spawn(peer.answer)
        self.wake()

    def sort_cid(self):
        """switch_channel_sort_cid, run when the channel is given a caller extension (the apps of
        an API originate, a dialplan hunt): an outbound leg without CF_DIALPLAN flips its caller
        ID (switch_channel_flip_cid: caller and callee swap, CALL_UPDATE RECV). The B leg of a
        `bridge` is never given one, so it keeps the caller's ID and sends no CALL_UPDATE RECV
        (fixture 08 e7fd0faf: Caller-Caller-ID-Number 15550000081 after the answer, no CALL_UPDATE
        until the bridge's SEND; fixture 11 #80-#81: the API-originated leg flips before the API event)."""
        if self.direction != "outbound" or self.cid_flipped:
            return
        self.cid_flipped = True
        old_name, old_number = self.caller_id_name, self.caller_id_number
        if self.callee_id_name:
            self.variables["pre_transfer_caller_id_name"] = old_name
        if self.callee_id_number:
            self.variables["pre_transfer_caller_id_number"] = old_number
        self.caller_id_name, self.caller_id_number = self.callee_id_name, self.callee_id_number
        self.callee_id_name, self.callee_id_number = old_name, old_number
        self.variables["channel_cid_flipped"] = "yes"
        self.emit("CALL_UPDATE", {"Direction": "RECV"})

    # --- DTMF, messages, far end ---------------------------------------------------------------
    def receive_dtmf(self, digit, duration=2880, source="RTP"):
        if not self.alive:
            return
        self.emit("DTMF", {"DTMF-Digit": digit, "DTMF-Duration": str(duration), "DTMF-Source": source})
        self.set_var("last_dtmf_duration", duration)
        self.dtmf.append(digit)
        self.wake()

    def press(self, digits):
        """The far end sends RFC2833 digits, one DTMF event each. A phone put on hold
        (`uuid_hold` on its leg) was re-INVITEd sendonly, answered recvonly and sends no RTP at
        all: its key presses never reach the switch, and none come out after unhold (fixture 10)."""
        if self.held:
            self.log.info("%s: on hold (recvonly): digits %s never reach the switch", self.uuid, digits)
            return
        for digit in str(digits):
            self.receive_dtmf(digit)

    def speak(self, wav_path):
        """The far end's audio from now on (None: silence); recordings and the tap pick it up."""
        self.audio = wav_path
        self.audio_since = time.time()
        self.wake()

    def queue_message(self, message):
        self.messages.append(message)
        self.wake()

    def request_break(self, everything=False):
        """`uuid_break [all]` (mod_commands break): `all` first flushes the private event queue,
        whatever is queued in it (fixture 07 A); then a running broadcast is stopped, or else
        CF_BREAK is set. CF_BREAK stops the running application; with none running it is lost
        when the parked channel takes its next message (fixture 07 B)."""
        if everything:
            self.messages.clear()
        if self.broadcasting:
            self.stop_broadcast()
        else:
            self.break_flag = True
        self.wake()

    def stop_broadcast(self):
        """switch_channel_stop_broadcast: only a broadcast that runs stops; one still queued
        stays queued (`uuid_hold off` leaves it: fixture 08 A)."""
        if self.broadcasting:
            self.stop_loops = True
            self.break_flag = True
            self.wake()

    def may_run_messages(self):
        """Can an application's loop (bridge, conference) run queued messages now? Not while an
        application executed with event-lock runs (fixture 08 A); yes without it (08 B)."""
        return bool(self.messages) and not self.event_lock

    def transfer(self, extension, context=None, dialplan="XML"):
        context = context or self.context
        self.transfer_to = (extension, context, dialplan)
        self.new_profile(f"bl_xfer:{extension}/{context}/{dialplan}")
        self.rdnis = self.destination_number
        self.wake()

    def new_profile(self, source):
        """A transfer or uuid_bridge gives the channel a new caller profile (Profile-Index + 1)."""
        self.old_profiles.insert(0, self.profile_snapshot())
        self.times["transfer"] = now_us()
        self.transfer_source = f"{int(time.time())}:{_uuid.uuid4()}:{source}"
        self.profile_index += 1

    def profile_snapshot(self):
        """The caller profile as it stands (a `<callflow>` of the XML CDR)."""
        return {"profile_index": self.profile_index, "destination_number": self.destination_number,
                "context": self.context, "dialplan": self.dialplan, "caller_id_name": self.caller_id_name,
                "caller_id_number": self.caller_id_number, "callee_id_name": self.callee_id_name,
                "callee_id_number": self.callee_id_number, "rdnis": self.rdnis,
                "extension": self.extension, "times": dict(self.times)}

    def hangup(self, cause="NORMAL_CLEARING"):
        """The far end hangs up: BYE when answered, CANCEL (inbound) or refusal (outbound) before."""
        if self.answered:
            disposition = "recv_bye"
        else:
            disposition = "recv_cancel" if self.direction == "inbound" else "recv_refuse"
        return self.kill(cause, disposition)

    def kill(self, cause="NORMAL_CLEARING", disposition="send_bye"):
        """Start hanging up from the switch side (uuid_kill, the hangup app, a BYE from the peer)."""
        if self.hangup_cause is not None:
            return False
        self.hangup_cause = cause
        self.hangup_disposition = disposition
        self.times["hangup"] = now_us()
        self.emit("CHANNEL_HANGUP", {"Hangup-Cause": cause})
        self.wake()
        if self.greenlet is None or self.greenlet.dead:
            self.greenlet = gevent.spawn(self._finish)
        return True

    def wait_hangup(self, timeout=None):
        return self._gone.wait(timeout)

    # --- session thread -----------------------------------------------------------------------
    def start(self, apps=None, outgoing=False, bridge=None):
        """Run the session: dialplan lookup (or the given apps) and then the hangup states;
        `bridge=(uuid, how)`: straight into a bridge (the B leg of a `bridge` app, which runs no
        application and never enters CS_EXECUTE: fixture 08 e7fd0faf goes CS_CONSUME_MEDIA ->
        CS_EXCHANGE_MEDIA)."""
        self.greenlet = gevent.spawn(self._run, apps, outgoing, bridge)
        return self.greenlet

    def _run(self, apps, outgoing, bridge=None):
        from engine.sim import apps as applications
        try:
            if not outgoing:
                self.set_state("CS_INIT")
                self.emit("CHANNEL_CREATE")
                self.state = "CS_ROUTING"
                self.set_callstate("RINGING")
                self.emit("CHANNEL_STATE")
            bridge_with = bridge
            parking = False
            while True:
                try:
                    if parking:
                        # uuid_park: switch_ivr_park_session puts the channel in CS_PARK, whose
                        # state handler parks it; no park application runs (fixture 10)
                        parking = False
                        self.set_state("CS_PARK")
                        self.park_loop()
                        break
                    if bridge_with is not None:
                        self._bridged(*bridge_with)
                        self.check()
                        break
                    if apps is None:
                        if self.context not in self.switch.dialplan.contexts:
                            # FREESWITCH.md: a transfer into a context that does not exist logs
                            # this and the leg is hung up (nothing to route to)
                            self.log.error("%s: Context %s not found", self.uuid, self.context)
                        apps = self.switch.dialplan.lookup(self)
                        if apps is None:      # no extension matched: refused from CS_ROUTING
                            self.kill("NO_ROUTE_DESTINATION")
                            break
                        self.sort_cid()       # switch_channel_set_caller_extension
                        self.extension = (self.switch.dialplan.matched_name, self.destination_number,
                                          list(apps))
                    # a transferred, answered call rings again while routing (fixture 03)
                    self.set_state("CS_EXECUTE", "ACTIVE" if self.answered else None)
                    for app, arg in apps or ():
                        self.check()
                        self.run_messages()
                        applications.execute(self, app, arg)
                    self.check()
                    if not self.parked:
                        self.kill("NORMAL_CLEARING")
                    break
                except Transfer:
                    if self.hangup_cause is not None:
                        break
                    extension, context, how = self.transfer_to
                    self.transfer_to = None
                    if extension == "__bridge__":
                        bridge_with = (context, how)
                        continue
                    if extension == PARK:
                        bridge_with, parking = None, True
                        continue
                    bridge_with = None
                    self.destination_number = extension
                    self.context = context
                    apps = None
                    self.set_state("CS_ROUTING", "RINGING")
        except Hangup:
            pass
        except Exception:
            self.log.exception("%s: session failed", self.uuid)
            self.kill("NORMAL_TEMPORARY_FAILURE")
        self._finish()

    def _bridged(self, other_uuid, how):
        from engine.sim import bridge
        if how == "B-app":
            bridge.b_leg_session(self, other_uuid)
        else:
            bridge.bridged_session(self, other_uuid, how)

    def run_messages(self, media_ready=True):
        """Run queued messages. Without media (park before answer) the switch takes one message
        per 20 ms tick, parses it and drops it: no PRIVATE_COMMAND (fixtures 05/05b: the socket
        app's `answer` has none, the `playback` after it has one)."""
        from engine.sim import apps as applications
        while self.messages and self.alive:
            msg = self.messages.popleft()
            try:
                applications.execute(self, msg["app"], msg.get("arg", ""), msg.get("event_uuid"),
                                     loops=msg.get("loops", 1), event_lock=msg.get("event_lock", False),
                                     broadcast=msg.get("broadcast", False))
            finally:
                if msg.get("private") and media_ready:
                    # the switch fires the consumed message as PRIVATE_COMMAND (fixtures 01, 04, 05)
                    self.fire_private(msg)
            if not media_ready:
                return

    def fire_private(self, msg):
        """A consumed private event, fired: switch_ivr_parse_next_event sets its id to
        PRIVATE_COMMAND and appends the core block and the channel's headers after the headers the
        event already had (switch_event_prep_for_delivery, switch_channel_event_set_data). Those
        are the client's `sendmsg` headers, or a broadcast's whole COMMAND event (Switch.private_message)."""
        self.emit("PRIVATE_COMMAND", body=msg.get("private_body", ""), prefix=msg["private"])

    def park_loop(self, stop=None):
        """Park: run queued messages until hangup, transfer or `stop()` (the `park` app, socket async).

        switch_ivr_park reads a media frame, then parses the private events: a message queued now
        starts on the next frame of this channel (every `switch.frame_seconds` since it was
        created), not at once. An execute sent and then flushed by `uuid_break all` within that
        frame never runs (fixture 07 A). A break that came while parked (nothing to stop) is lost
        when the next message runs (fixture 07 B)."""
        self.parked = True
        self.emit("CHANNEL_PARK")
        try:
            while True:
                self.wait(until=lambda: bool(self.messages) or (stop is not None and stop()))
                if stop is not None and stop() and not self.messages:
                    return
                self.wait(self._to_next_frame())
                if not self.messages:
                    continue                  # flushed within the frame
                self.break_flag = False
                self.run_messages(media_ready=self.codec is not None)
        finally:
            self.parked = False
            self.emit("CHANNEL_UNPARK")

    def _to_next_frame(self):
        frame = self.switch.frame_seconds
        if frame <= 0:
            return 0
        since = (now_us() - self.times["created"]) / 1e6
        return frame - (since % frame)

    def _finish(self):
        if self.state in ("CS_HANGUP", "CS_REPORTING", "CS_DESTROY"):
            return
        self.switch.media.stop_all(self)
        if self.bridged_to:
            self.switch.unbridge(self)
        self.set_state("CS_HANGUP")
        self.set_callstate("HANGUP")
        self.presence("CS_HANGUP", "idle")
        self.set_state("CS_REPORTING")
        cdrvars.add_cdr_variables(self)
        self.emit("CHANNEL_HANGUP_COMPLETE", {"Hangup-Cause": self.hangup_cause})
        if self.switch.xml_cdr_dir:
            xmlcdr.on_reporting(self)                      # mod_xml_cdr's file, if it writes one
        for hold in list(self.destroy_holds):
            hold.channel_hungup(self)
        peer = self.sip_peer
        if peer is not None and peer.alive:
            # sofia sends the BYE at hangup (not at destroy: fixture 05's socket linger holds that);
            # the far leg hears it a little later, and is up until then
            self.switch.spawn_later(self.switch.sip_bye_delay, peer.kill, "NORMAL_CLEARING", "recv_bye")
        deadline = time.monotonic() + 3600
        while self.destroy_holds and time.monotonic() < deadline:
            self._signal.clear()
            self._signal.wait(1.0)
        self.emit("CHANNEL_DESTROY")
        self.state = "CS_DESTROY"
        self.emit("CHANNEL_STATE")
        self.switch.channel_gone(self)
        self._gone.set()

    def release_hold(self, hold):
        self.destroy_holds.discard(hold)
        self._signal.set()

    def __repr__(self):
        return f"<Channel {self.uuid} {self.name} {self.state}/{self.call_state}>"
