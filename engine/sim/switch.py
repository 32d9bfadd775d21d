"""The simulated FreeSWITCH: channels, dialplan, event bus, ESL server, registered endpoints.

Interface agreed with the endpoints/conformance author and the lead (see the helper brief):
Switch(dialplan_dirs, password, hostname, core_uuid, sounds_dir), start(host, port) -> (host, port),
stop(), channels, place_call(...), register(ext, endpoint), unregister(ext), api(line),
subscribe(callback) / unsubscribe(callback).

Additions (additive): `global_vars=` (dialplan `${name}` / `$${name}` values, e.g. the test
dialplan's `engine_socket`, also settable later in `switch.global_vars`), `heartbeat()`,
`listener_queue_max`, `heartbeat_interval` (seconds, read when start() runs its timer),
`conf_dir=` (a rendered configuration: its modules.conf.xml and local_stream.conf.xml decide which
modules are loaded and which music streams exist; default the fixtures' vanilla switch, see
engine/sim/modules.py), `media_duration(source)`.
"""
import logging
import time
import uuid as _uuid

import gevent

from engine.sim import api as api_commands
from engine.sim import media as sim_media
from engine.sim import modules as sim_modules
from engine.sim.channel import Channel
from engine.sim.codecs import CodecConfig
from engine.sim.dialplan import Dialplan
from engine.sim.esl_server import InboundServer
from engine.sim.events import EventFactory, now_us
from engine.sim.media import MediaManager
from engine.sim.sipvars import VERSION, inbound_sip_variables
from engine.sim.throttle import (VANILLA_MAX_SESSIONS, VANILLA_SESSIONS_PER_SECOND, SessionThrottle,
                                 read_limits)

log = logging.getLogger("hotline.sim.switch")

HEARTBEAT_SECONDS = 20
# sofia-sip answers an incoming SIP message larger than NTATAG_MAXSIZE with 413 Request Too Large
# and no channel is created; mod_sofia keeps the default (libs/sofia-sip nta.c:
# `if (maxsize == 0) maxsize = 2 * 1024 * 1024;`). A caller's display name travels in the INVITE.
SIP_MAX_MESSAGE = 2 * 1024 * 1024


class SipRefused(Exception):
    """The trunk's INVITE was refused before any channel existed (the SIP status in the message)."""


class Switch:
    def __init__(self, dialplan_dirs=(), password="ClueCon", hostname="sim", core_uuid=None,
                 sounds_dir=None, global_vars=None, conf_dir=None):
        self.password = password
        self.hostname = hostname
        self.core_uuid = core_uuid or str(_uuid.uuid4())
        self.sounds_dir = sounds_dir
        self.global_vars = {"hostname": hostname, "domain": "127.0.0.1", "local_ip_v4": "127.0.0.1"}
        self.global_vars.update(global_vars or {})
        self.dialplan = Dialplan(dialplan_dirs, self.global_vars)
        self.dialplan.on_api = lambda cmd, arg: self.emit(
            "API", {"API-Command": cmd, "API-Command-Argument": arg})
        self.factory = EventFactory(self.core_uuid, hostname)
        self.modules = set(sim_modules.VANILLA_MODULES)
        self.local_streams = {}       # name -> directory (the fixtures' switch had no sound files)
        self.gateways = None          # gateway names of the loaded sofia.conf.xml (None: not checked)
        # switch.conf.xml's core limits, enforced on every new session (engine/sim/throttle.py);
        # the vanilla values until a configuration says otherwise
        self.max_sessions = VANILLA_MAX_SESSIONS
        self.sessions_per_second = VANILLA_SESSIONS_PER_SECOND
        self.throttle = SessionThrottle()
        if conf_dir is not None:
            self.load_conf(conf_dir)
        self.media = MediaManager()
        self.channels = {}
        self.endpoints = {}
        self.pstn = {}                # number -> endpoint reached through the trunk gateway
        self.population = None        # engine.sim.pstn.Population: numbers behind the gateway
        self.sofia_calls = {}         # profile -> {"inbound": n, "outbound": n} since start
        self.listeners = []           # ESL sessions with a subscription
        self.callbacks = []           # subscribe(callback)
        self.started_at = time.time()
        self.sessions_since_startup = 0
        self.peak_sessions = 0
        # mod_xml_cdr: set xml_cdr_dir to write a file per leg as the vanilla xml_cdr.conf.xml does
        # (prefix-a-leg=true, log-b-leg=false: engine/sim/xmlcdr.py, fixture 11)
        self.xml_cdr_dir = None
        self.xml_cdr_prefix_a = True
        self.xml_cdr_log_b = False
        # codec preferences of the profiles and the directory: vanilla until load_codec_config()
        self.codecs = CodecConfig()
        self.listener_queue_max = 100_000      # events queued per ESL listener before it loses some
        self.heartbeat_interval = HEARTBEAT_SECONDS
        # A BYE between the two legs of a loopback SIP call reaches the far leg ~20 ms after the near
        # leg's hangup completes (fixtures 01, 02); until then the far leg is up and uuid_kill of it
        # answers +OK (fixtures 04, 06).
        self.sip_bye_delay = 0.02
        # A session thread notices what another thread did to its partner (a bridged leg hung up)
        # on its next media frame (20 ms ptime).
        self.frame_seconds = 0.02
        self.server = None
        self._session_id = 0
        self._heartbeat = None
        self._spawned = set()
        from engine.sim.conference import Conferences
        self.conferences = Conferences(self)

    def load_conf(self, conf_dir):
        """Modules and music streams as a switch started with this configuration has them."""
        modules = sim_modules.read_modules(str(conf_dir))
        if modules is not None:
            self.modules = set(modules)
        self.local_streams = sim_modules.read_local_streams(str(conf_dir), self.global_vars)
        from engine.sim.pstn import read_gateways
        self.gateways = read_gateways(conf_dir)
        self.load_limits(conf_dir)

    def load_limits(self, conf_dir):
        """max-sessions and sessions-per-second of the configuration's switch.conf.xml (values it
        does not set stay as they are)."""
        max_sessions, sps = read_limits(conf_dir)
        if max_sessions is not None:
            self.max_sessions = max_sessions
        if sps is not None:
            self.sessions_per_second = sps

    def media_duration(self, source):
        """Seconds `source` plays (None: until stopped); MediaError when the switch cannot open it:
        the module for its kind is not loaded, the stream is unknown, the file is missing. The
        playback then completes at once with FILE NOT FOUND (fixture 07 cases D and E)."""
        module = sim_modules.module_for(source)
        if module is not None and module not in self.modules:
            raise sim_media.MediaError(f"{source}: {module} is not loaded")
        if source.startswith("local_stream://") and not sim_modules.stream_playable(self.local_streams, source):
            raise sim_media.MediaError(f"Unknown source {source}")
        return sim_media.duration(source, self.sounds_dir)

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self, host="127.0.0.1", port=0):
        self.server = InboundServer(self, host, port)
        address = self.server.start()
        self._heartbeat = gevent.spawn(self._heartbeat_loop)
        return address

    def crash(self):
        """The switch process dies (kill -9, a segfault) with calls up. The kernel closes every
        TCP connection a dead process held, and nothing more is said on them: no CHANNEL_HANGUP,
        no disconnect notice, no CHANNEL_HANGUP_COMPLETE; the listening socket is gone too (a
        client's reconnect is refused). Nor is there a mod_xml_cdr file: FreeSWITCH writes it from
        the channel's hangup hooks (mod_xml_cdr.c my_on_reporting), which a dead process never
        runs. The channels' own greenlets may go on in this process: nobody hears them."""
        self.xml_cdr_dir = None
        if self.server is not None:
            self.server.server.stop(timeout=0)
        sessions = set(self.listeners) | set(self.server.sessions if self.server else ())
        for ch in list(self.channels.values()):
            sessions |= set(ch.destroy_holds)
        for session in sessions:
            session._abort()                # closed, not flushed: what was queued is never sent
        if self._heartbeat is not None:
            self._heartbeat.kill()

    def stop(self):
        for ch in list(self.channels.values()):
            ch.kill("SYSTEM_SHUTDOWN")
        for ch in list(self.channels.values()):
            for hold in list(ch.destroy_holds):
                hold.disconnect()
            ch.wait_hangup(2)
        if self._heartbeat is not None:
            self._heartbeat.kill()
        if self.server is not None:
            self.server.stop()
        for listener in list(self.listeners):
            listener.close()
        gevent.killall(list(self._spawned), timeout=1)

    def spawn(self, fn, *args):
        g = gevent.spawn(fn, *args)
        self._spawned.add(g)
        g.link(self._spawned.discard)
        return g

    def spawn_later(self, seconds, fn, *args):
        g = gevent.spawn_later(seconds, fn, *args)
        self._spawned.add(g)
        g.link(self._spawned.discard)
        return g

    def _heartbeat_loop(self):
        while True:
            gevent.sleep(self.heartbeat_interval)
            self.heartbeat()

    def heartbeat(self):
        up_ms = int((time.time() - self.started_at) * 1000)
        self.emit("HEARTBEAT", {
            "Event-Info": "System Ready", "Up-Time": api_commands.uptime_text(up_ms),
            "FreeSWITCH-Version": VERSION, "Uptime-msec": str(up_ms),
            "Session-Count": str(len(self.channels)), "Max-Sessions": str(self.max_sessions),
            "Session-Per-Sec": "30", "Session-Per-Sec-Last": "0", "Session-Per-Sec-Max": "0",
            "Session-Per-Sec-FiveMin": "0", "Session-Since-Startup": str(self.sessions_since_startup),
            "Session-Peak-Max": str(self.peak_sessions), "Session-Peak-FiveMin": str(self.peak_sessions),
            "Idle-CPU": "95.000000"})
        self.emit("RE_SCHEDULE", {"Task-ID": "1", "Task-Desc": "heartbeat", "Task-Group": "core",
                                  "Task-Runtime": str(int(time.time()) + HEARTBEAT_SECONDS)})

    # --- events ---------------------------------------------------------------------------------
    def emit(self, name, fields=None, body="", subclass=""):
        ev = self.factory.make(name, fields, (), body=body, subclass=subclass)
        self.dispatch(ev)
        return ev

    def dispatch(self, ev):
        for listener in list(self.listeners):
            listener.offer(ev)
        for cb in list(self.callbacks):
            try:
                cb(ev.pairs, ev.body)
            except Exception:
                log.exception("event subscriber failed")

    def add_listener(self, session):
        if session not in self.listeners:
            self.listeners.append(session)

    def remove_listener(self, session):
        if session in self.listeners:
            self.listeners.remove(session)

    def subscribe(self, callback):
        self.callbacks.append(callback)

    def unsubscribe(self, callback):
        if callback in self.callbacks:
            self.callbacks.remove(callback)

    # --- channels --------------------------------------------------------------------------------
    def next_session_id(self):
        self._session_id += 1
        return self._session_id

    def admit_session(self):
        """Whether the core may create one more session now (switch_core_session_request_uuid's
        sessions-per-second and max-sessions checks); False after logging why not, as it does."""
        refused = self.throttle.admit(self.sessions_per_second, self.max_sessions, len(self.channels))
        if refused is not None:
            log.critical("%s", refused)
            return False
        return True

    def add_channel(self, ch):
        self.channels[ch.uuid] = ch
        parts = ch.name.split("/")
        if parts[0] == "sofia" and len(parts) > 2:   # CALLS-IN / CALLS-OUT of `sofia status profile`
            calls = self.sofia_calls.setdefault(parts[1], {})
            calls[ch.direction] = calls.get(ch.direction, 0) + 1
        self.sessions_since_startup += 1
        self.peak_sessions = max(self.peak_sessions, len(self.channels))

    def channel_gone(self, ch):
        self.channels.pop(ch.uuid, None)

    def load_codec_config(self, conf_dir):
        """Negotiate codecs as a switch running the configuration rendered in conf_dir does
        (`hotline fs-config render`: the profiles' codec prefs, the directory's dial-string)."""
        self.codecs = CodecConfig.from_conf_dir(conf_dir)

    def place_call(self, destination, caller_id_number, caller_id_name="", variables=None, uuid=None,
                   network_addr="127.0.0.1", context="public", profile="external", codecs=None):
        """A call from the SIP trunk: an inbound sofia/external leg that runs the public dialplan.

        context/profile (additive): a call dialled on an agent's phone is
        place_call(dest, ext, context="agents", profile="internal", variables={"hotline_role": ...}).
        codecs (additive): what the caller's SDP offers, e.g. ("PCMA",) for a G.711 trunk; default
        the loopback callers' offer of the fixtures (OPUS first).
        """
        if len(str(caller_id_name).encode("utf-8")) + len(str(caller_id_number).encode("utf-8")) > SIP_MAX_MESSAGE:
            raise SipRefused("413 Request Too Large: the INVITE is over the 2 MB sofia-sip takes")
        if not self.admit_session():
            # mod_sofia sofia_queue_message: switch_core_session_request returns NULL -> nua_respond
            # 503 "Maximum Calls In Progress" with Retry-After 300; no channel, so no event at all
            raise SipRefused("503 Maximum Calls In Progress: the switch is over its session rate or limit")
        ch = Channel(self, f"sofia/{profile}/{caller_id_number}@{network_addr}", "inbound",
                     caller_id_number, caller_id_name or caller_id_number, destination, uuid=uuid,
                     context=context, network_addr=network_addr, username=caller_id_number)
        ports = (5080, 5060) if profile == "external" else (5060, 5060)
        ch.variables.update(inbound_sip_variables(ch, caller_id_number, ch.caller_id_name, destination,
                                                  profile, *ports))
        for k, v in (variables or {}).items():
            ch.set_var(k, v)
        ch.far_codecs = tuple(codecs) if codecs else None
        ch.codec_offer = self.codecs.inbound_prefs(profile)
        self.add_channel(ch)
        ch.set_state("CS_NEW")
        ch.start()
        return ch

    def register(self, ext, endpoint):
        self.endpoints[str(ext)] = endpoint

    def unregister(self, ext):
        self.endpoints.pop(str(ext), None)

    def pstn_endpoint(self, number):
        """Who answers `sofia/gateway/<gw>/<number>`: a phone registered for it, else the
        simulated population behind the trunk (engine.sim.pstn), else nobody (None)."""
        phone = self.pstn.get(str(number))
        if phone is None and self.population is not None:
            phone = self.population.endpoint(str(number))
        return phone

    def register_pstn(self, number, endpoint):
        """A phone outside, reached by `sofia/gateway/<gw>/<number>` (transfers, three-way calls);
        numbers not registered fail GATEWAY_DOWN."""
        self.pstn[str(number)] = endpoint

    def channel_data(self, ch, dump=False):
        """CHANNEL_DATA headers: the outbound `connect` reply (with the Channel-* caller profile)
        or `uuid_dump` (without it, from mod_commands), as fixtures 05 and 06 show."""
        fields = self.factory.core("CHANNEL_DATA")
        if dump:
            fields.update({"Event-Calling-File": "mod_commands.c",
                           "Event-Calling-Function": "uuid_dump_function",
                           "Event-Calling-Line-Number": "6495"})
        fields.update(ch.fields(channel_data=not dump))
        from engine.sim import headers
        return headers.order_headers("CHANNEL_DATA", fields, list(ch.variables.items()))

    def expand(self, ch, text):
        return self.dialplan.expand(ch, text)

    # --- commands ---------------------------------------------------------------------------------
    def api(self, command_line):
        return api_commands.run(self, command_line)

    def bgapi(self, command_line, job_uuid):
        def job():
            out = api_commands.run(self, command_line)
            cmd, _, arg = command_line.strip().partition(" ")
            self.emit("BACKGROUND_JOB", {"Job-UUID": job_uuid, "Job-Command": cmd,
                                         "Job-Command-Arg": arg}, body=out)
        self.spawn(job)

    def sendmsg(self, ch, msg, raw_command=""):
        """An ESL `sendmsg`: execute (queued for the session thread), hangup, unicast, nomedia.

        The private event is the parsed command itself: mod_event_socket's read_packet makes it
        with switch_event_create(SWITCH_EVENT_CLONE), which adds no core headers, and puts
        `Command: <line>` first, then the client's headers as sent (`content-length` included) and
        the body. Fired when consumed, it has one `Event-Name: PRIVATE_COMMAND` (fixtures 04, 05,
        07, 12); compare private_message."""
        h = msg.headers
        command = h.get("call-command", "")
        private = [("Command", raw_command)] if raw_command else []
        private += list(h.items())
        body = msg.text() if msg.body else ""
        if command == "execute":
            arg = h.get("execute-app-arg")
            content_type = next((v for k, v in h.items() if k.lower() == "content-type"), "")
            if arg is None and msg.body and "text/plain" in content_type:
                arg = msg.text()
            ch.queue_message({"app": h.get("execute-app-name", ""), "arg": arg or "",
                              "event_uuid": h.get("Event-UUID"), "loops": h.get("loops", 1),
                              "event_lock": h.get("event-lock", "").lower() == "true",
                              "private": private, "private_body": body})
        elif command == "hangup":
            if ch.kill(h.get("hangup-cause", "NORMAL_CLEARING")):
                ch.fire_private({"private": private, "private_body": body})
        else:
            ch.log.info("%s: sendmsg %s ignored", ch.uuid, command)

    def private_message(self, app, arg, loop=False):
        """The private event switch_ivr_broadcast queues (uuid_broadcast, and uuid_hold's
        hold_music to the partner). Unlike a sendmsg it is made with
        switch_event_create(SWITCH_EVENT_COMMAND) when it is queued (switch_ivr_async.c,
        switch_ivr_broadcast), so it carries a whole core block of its own, `Event-Name: COMMAND`
        with the queueing time and sequence number; when the session thread consumes it,
        switch_ivr_parse_next_event (switch_ivr.c) renames it PRIVATE_COMMAND and appends a second
        core block. Both blocks are on the wire, the COMMAND one first (fixtures 01, 08, 09, 09b,
        10 and 01's json companion); a reader taking the last `Event-Name` sees PRIVATE_COMMAND."""
        fields = self.factory.core("COMMAND")
        fields.update({"Event-Calling-File": "switch_ivr_async.c",
                       "Event-Calling-Function": "switch_ivr_broadcast",
                       "Event-Calling-Line-Number": "5732"})
        private = list(fields.items()) + [
            ("call-command", "execute"), ("execute-app-name", app), ("execute-app-arg", arg),
            ("event-lock", "true"), ("lead-frames", "5")]
        if loop:                          # SMF_LOOP
            private.append(("loops", "-1"))
        # a broadcast runs with event-lock and CF_BROADCAST; a looping one until it is stopped
        return {"app": app, "arg": arg, "loops": -1 if loop else 1, "event_lock": True, "broadcast": True,
                "private": private}

    # --- bridges, recording (used by api and apps) ---------------------------------------------------
    def record_start(self, ch, path, limit=None, record_app=False):
        rec = self.media.start(ch, path, limit)
        ch.emit("RECORD_START", {"Record-File-Path": path})
        if not record_app:
            ch.emit("MEDIA_BUG_START", {"Media-Bug-Function": "session_record", "Media-Bug-Target": path})
        return rec

    def record_stop(self, ch, path, cause="success-maxtime", record_app=False):
        stopped = self.media.stop(ch, path)
        if stopped is None:
            return False
        rec, seconds = stopped
        ch.set_var("record_seconds", int(seconds))
        ch.set_var("record_ms", int(seconds * 1000))
        ch.emit("RECORD_STOP", {"Record-File-Path": path, "Record-Completion-Cause": cause})
        if not record_app:
            ch.emit("MEDIA_BUG_STOP", {"Media-Bug-Function": "session_record", "Media-Bug-Target": path})
        return True

    def unbridge(self, ch):
        from engine.sim import bridge
        bridge.unbridge(self, ch)

    def bridge_app(self, ch, arg):
        from engine.sim import bridge
        return bridge.bridge_app(self, ch, arg)

    def eavesdrop(self, ch, target):
        from engine.sim import bridge
        return bridge.eavesdrop(self, ch, target)


def now():
    return now_us()
