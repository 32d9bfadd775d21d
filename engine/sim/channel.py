"""A simulated channel: state machine, variables, the events it emits, and what its far end can do.

One greenlet per channel plays FreeSWITCH's session thread: it runs the dialplan's applications,
then parks and runs what `sendmsg`/`uuid_broadcast` queue, and finally walks the hangup states.
Anything that interrupts an application (hangup, transfer, uuid_break, DTMF) sets a flag and wakes
the greenlet through one gevent Event, so waits never poll.
"""
import collections
import logging
import time
import uuid as _uuid

import gevent
from gevent.event import Event as GEvent

from engine.sim import cdrvars, sipvars, xmlcdr
from engine.sim.events import STATE_NUMBERS, now_us

CALLSTATE_NUMBERS = {"DOWN": 0, "DIALING": 1, "RINGING": 2, "EARLY": 3, "ACTIVE": 4, "HELD": 5,
                     "RING_WAIT": 6, "HANGUP": 7, "UNHELD": 8}



class Hangup(Exception):
    """The channel hung up while an application was running."""


class Transfer(Exception):
    """uuid_transfer moved the channel to another extension while an application was running."""


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
        self.sip_peer = None              # the far side of a simulated loopback SIP dialog
        self.codec = None
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
        self.current_app = None
        self.file_handle = None           # apps.FileHandle of the playback running (uuid_fileman)
        self.dtmf = collections.deque()   # digits not yet consumed by an application
        self.eavesdrop_modes = []          # eavesdrop mux modes this leg went through (0 1 2 3)
        self.messages = collections.deque()
        self.break_flag = False
        self.stop_loops = False
        self.transfer_to = None
        self.call_uuid = None             # a bridged B leg belongs to the A leg's call
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
        fields[prefix + "Caller-ID-Name"] = self.caller_id_name
        fields[prefix + "Caller-ID-Number"] = self.caller_id_number
        fields[prefix + "Orig-Caller-ID-Name"] = self.orig_caller_id_name
        fields[prefix + "Orig-Caller-ID-Number"] = self.orig_caller_id_number
        if self.callee_id_number:
            fields[prefix + "Callee-ID-Name"] = self.callee_id_name
            fields[prefix + "Callee-ID-Number"] = self.callee_id_number
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
        self._profile("Caller-", f)
        if self.other is not None:
            f["Other-Type"] = self.other_type or "originatee"
            self.other._profile("Other-Leg-", f)
        return f

    def emit(self, name, extra=None, body="", subclass=""):
        fields = self.fields()
        if extra:
            fields.update(extra)
        ev = self.switch.factory.make(name, fields, list(self.variables.items()), body=body,
                                      subclass=subclass, uuid=self.uuid)
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
    def _set_codec(self):
        if self.codec is None:
            self.codec = ("opus", "48000")
            self.variables.update(sipvars.media_variables())
            self.emit("CODEC", {"channel-read-codec-name": "opus", "channel-read-codec-rate": "48000",
                                "channel-read-codec-bit-rate": "0"})
            self.emit("CODEC", {"Channel-Write-Codec-Name": "opus", "Channel-Write-Codec-Rate": "48000",
                                "Channel-Write-codec-bit-rate": "0"})

    def pre_answer(self):
        if self.early or self.answered or not self.alive:
            return
        self._set_codec()
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
            self._set_codec()
            if self.name.startswith("sofia/") and not self.network_addr:
                self.network_addr = "127.0.0.1"      # learnt from the answer's SDP/Via
        else:
            self.pre_answer()
        self.answered = True
        self.times["answered"] = now_us()
        self.set_var("endpoint_disposition", "ANSWER")
        self.emit("CHANNEL_ANSWER")
        self.set_callstate("ACTIVE")
        if self.direction == "outbound":
            # switch_channel_flip_cid: the answered outbound leg now shows the far end as caller
            self.callee_id_name, self.callee_id_number = self.caller_id_name, self.caller_id_number
            self.caller_id_name = self.caller_id_number = self.destination_number
            self.variables.update({"pre_transfer_caller_id_name": self.callee_id_name,
                                   "pre_transfer_caller_id_number": self.callee_id_number,
                                   "channel_cid_flipped": "yes"})
            self.emit("CALL_UPDATE", {"Direction": "RECV"})
        peer = self.sip_peer
        if peer is not None and peer.direction == "outbound" and not peer.answered:
            # the 200 OK reaches the other leg after this leg's session moved on (fixture 01)
            self.switch.spawn(peer.answer)
        self.wake()

    # --- DTMF, messages, far end ---------------------------------------------------------------
    def receive_dtmf(self, digit, duration=2880, source="RTP"):
        if not self.alive:
            return
        self.emit("DTMF", {"DTMF-Digit": digit, "DTMF-Duration": str(duration), "DTMF-Source": source})
        self.set_var("last_dtmf_duration", duration)
        self.dtmf.append(digit)
        self.wake()

    def press(self, digits):
        """The far end sends RFC2833 digits, one DTMF event each."""
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
        self.break_flag = True
        if everything:
            self.stop_loops = True
            self.messages = collections.deque(m for m in self.messages if m.get("app") != "playback")
        self.wake()

    def transfer(self, extension, context=None, dialplan="XML"):
        context = context or self.context
        self.transfer_to = (extension, context, dialplan)
        self.new_profile(f"bl_xfer:{extension}/{context}/{dialplan}")
        self.rdnis = self.destination_number
        self.wake()

    def new_profile(self, source):
        """A transfer or uuid_bridge gives the channel a new caller profile (Profile-Index + 1)."""
        self.times["transfer"] = now_us()
        self.transfer_source = f"{int(time.time())}:{_uuid.uuid4()}:{source}"
        self.profile_index += 1

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
    def start(self, apps=None, outgoing=False):
        """Run the session: dialplan lookup (or the given apps) and then the hangup states."""
        self.greenlet = gevent.spawn(self._run, apps, outgoing)
        return self.greenlet

    def _run(self, apps, outgoing):
        from engine.sim import apps as applications
        try:
            if not outgoing:
                self.set_state("CS_INIT")
                self.emit("CHANNEL_CREATE")
                self.state = "CS_ROUTING"
                self.set_callstate("RINGING")
                self.emit("CHANNEL_STATE")
            bridge_with = None
            while True:
                try:
                    if bridge_with is not None:
                        self._bridged(*bridge_with)
                        self.check()
                        break
                    if apps is None:
                        apps = self.switch.dialplan.lookup(self)
                        if apps is None:      # no extension matched: refused from CS_ROUTING
                            self.kill("NO_ROUTE_DESTINATION")
                            break
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
                                     loops=msg.get("loops", 1))
            finally:
                if msg.get("private") and media_ready:
                    # the switch fires the consumed message as PRIVATE_COMMAND (fixtures 01, 04, 05)
                    self.emit("PRIVATE_COMMAND", msg["private"])
            if not media_ready:
                return

    def park_loop(self, stop=None):
        """Park: run queued messages until hangup, transfer or `stop()` (the `park` app, socket async)."""
        self.parked = True
        self.emit("CHANNEL_PARK")
        try:
            while True:
                self.wait(until=lambda: bool(self.messages) or (stop is not None and stop()))
                if stop is not None and stop() and not self.messages:
                    return
                self.run_messages(media_ready=self.codec is not None)
        finally:
            self.parked = False
            self.emit("CHANNEL_UNPARK")

    def _finish(self):
        if self.state in ("CS_HANGUP", "CS_REPORTING", "CS_DESTROY"):
            return
        self.switch.media.stop_all(self)
        if self.bridged_to:
            self.switch.unbridge(self)
        self.set_state("CS_HANGUP")
        self.set_callstate("HANGUP")
        self.set_state("CS_REPORTING")
        cdrvars.add_cdr_variables(self)
        self.emit("CHANNEL_HANGUP_COMPLETE", {"Hangup-Cause": self.hangup_cause})
        if self.switch.xml_cdr_dir and self.direction == "inbound":
            xmlcdr.write(self, self.switch.xml_cdr_dir)     # mod_xml_cdr, log-b-leg=false
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
