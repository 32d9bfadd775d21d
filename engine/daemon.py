"""`hotline run`: the engine process next to one FreeSWITCH.

It holds an inbound ESL connection (commands, and events the engine reconciles with), serves the
outbound socket that the dialplan's `socket` action dials for every trunk call, runs each call in
its own greenlet through the call handler (IVR, queues...), and writes one CDR per call.

Shutdown (SIGTERM) never loses a CDR: new calls are refused, calls in progress get the grace
period, the rest are hung up, and the process waits for their hangup events before it writes the
last CDRs and closes the store (whose spool keeps anything the database refused).
"""
import collections
import copy
import gc
import json
import logging
import os
import signal
import sys

import gevent
from gevent.event import Event as Flag
from gevent.lock import Semaphore

from engine import privacy
from engine.infra import offhub
from engine.call.port import CallGone
from engine.call.live import Call
from engine.cdr.orphans import CORE_UUID_KEY, SOCKET_KEY, finish_orphans
from engine.cdr.record import cdr_from_hangup
from engine.cdr.store import PROVISIONAL, CdrStore
from engine.cdr.xmlcdr import ENGINE_VARIABLE, import_dir
from engine.infra.configcheck import CHECK_MEMORY, CHECK_SECONDS, check_reload
from engine.esl import commands
from engine.esl.connection import InboundConnection
from engine.esl.outbound import OutboundServer
from engine.infra.metrics import CALLS, call_result
from engine.infra.netutil import engine_id
from engine.outbound import service as outbound

log = logging.getLogger("hotline.engine")

SWITCH_CDR_IMPORT_EVERY = 60.0   # seconds between scans of the switch's XML CDR directory
NO_AGENTS_TEXT = "人工服务暂时无法接通，请稍后再拨，感谢您的来电。"
HANGUP_WAIT = 10.0           # seconds to wait for CHANNEL_HANGUP_COMPLETE after the call ends
REINDEX_DAYS = 2             # day directories of the archive checked for unindexed files at start
RECENT_HANGUPS = 5000        # hangup events kept from the inbound connection (CDR fallback)


class Engine:
    def __init__(self, settings, call_handler=None, clock=None, acd=None, tickets=True):
        self.settings = settings
        self.run_tickets = tickets          # the outbox consumer and SLA checker (tests may leave them out)
        self.tickets = None
        self.clock = clock
        self.calls = {}                                   # uuid -> Call, live calls
        self.finished = Flag()                            # set when shutdown completed
        self.accepting = True
        self._idle = Flag()
        self._idle.set()
        self._importer = None
        self._retention = None              # the daily recordings purge (engine.media.retention)
        self.retention = None
        self._reloading = Semaphore()
        self._importing = Semaphore()
        self.reload_limits = (CHECK_SECONDS, CHECK_MEMORY)   # the reload checker's time and memory
        self._recent_hangups = collections.OrderedDict()  # uuid -> CHANNEL_HANGUP_COMPLETE (inbound)
        self.cdrs_written = 0
        self.watchers = []            # callables (kind, key): a call came or went (web/live.py)
        s = settings
        self.engine_id = engine_id(s)
        # host:port our socket application dials (as fsconf renders it): the switch's CDR file of a
        # call we served names it in its app_log
        self.socket_target = commands.socket_arg(s.outbound.advertise_host or s.outbound.listen_host,
                                                 s.outbound.listen_port).split()[0]
        self.store = CdrStore(s.database.url, s.paths.cdr_spool, retries=s.database.retries,
                              busy_timeout=s.database.busy_timeout,
                              drain_interval=s.database.spool_drain_interval)
        self.esl = InboundConnection(s.esl.host, s.esl.port, s.esl.password,
                                     events=("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "BACKGROUND_JOB",
                                             "HEARTBEAT", "DTMF", "RECORD_STOP"),
                                     backoff_max=s.esl.reconnect_max_delay,
                                     connect_timeout=s.esl.connect_timeout)
        self.esl.on("CHANNEL_HANGUP_COMPLETE", self._remember_hangup)
        self.switch_core_uuid = None
        self.esl.on("HEARTBEAT", self._note_core_uuid)
        self.esl.connected_hooks.append(self._on_esl_connected)
        from engine.fsconf.check import SwitchCheck
        self.switch_check = SwitchCheck(self.esl)     # contexts and modules we rely on, at connect
        from engine.media.recordings import Archiver
        self.archiver = Archiver(settings, alarm_hooks=[self._recording_alarm])
        self.esl.on("RECORD_STOP", self.archiver.on_record_stop)
        # the ACD's owner id is this process's own (netutil.instance_id), not the slot's
        self.acd = acd if acd is not None else make_acd(settings, self.esl)
        if self.acd is not None:
            for name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "DTMF"):
                self.esl.on(name, self.acd.on_esl_event)
        if self.acd is not None:
            self.acd.switch_check = self.switch_check
        self.call_handler = call_handler or default_call_handler(settings, self.acd)
        self.server = OutboundServer(s.outbound.listen_host, s.outbound.listen_port, self._serve_call)

    # --- life cycle -------------------------------------------------------------------------
    def start(self, wait_for_switch=False):
        for d in (self.settings.paths.var_dir, self.settings.paths.cdr_spool):
            os.makedirs(d, exist_ok=True)
        from engine.media.shared_dirs import prepare
        self.dir_problems = prepare(self.settings)      # what the switch writes into, made and checked
        self.store.open()
        self.store.start()
        try:
            self.archiver.open()
            # files a crash or a database failure left in the archive without an index row
            gevent.spawn(self._quietly, self.archiver.reindex, days=REINDEX_DAYS)
        except Exception as exc:
            # recordings wait in the live directory; the next start-up scan archives them
            log.error("recording archive index not available: %s", exc)
        self._import_switch_cdrs()          # calls that ended while we were not running
        if self.run_tickets:
            self._start_tickets()
        self._importer = gevent.spawn(self._import_loop)
        self._retention = self._start_retention()
        outbound.for_engine(self)           # its lists load in the background; dialer, gate, legs
        self.server.start()
        from engine.web.server import serve
        self.control_tokens = self.settings.control.tokens
        try:
            self.control = serve(self, self.settings.control.listen_host, self.settings.control.listen_port,
                                 lambda: self.control_tokens)
        except OSError as exc:
            # calls matter more than the supervisors' API: run without it, loudly
            log.error("control API not started on %s:%s: %s", self.settings.control.listen_host,
                      self.settings.control.listen_port, exc)
            self.control = None
        # The outbound server serves calls even while the inbound connection is still retrying:
        # a switch restart must not stop the calls it sends us.
        self.esl.start(wait=wait_for_switch, timeout=self.settings.esl.connect_timeout)
        if self.acd is not None:
            self.acd.start()
        self.outbound_jobs = self._start_outbound_jobs()
        log.info("engine up: outbound socket %s:%s, switch %s:%s, %s",
                 *self.server.address[:2], self.settings.esl.host, self.settings.esl.port,
                 _redact(self.settings.database.url))
        return self

    def not_ready(self):
        """None when the engine has all it needs to serve calls, else what it waits for (systemd's
        READY=1 waits for this): its call port listens once start() returned, the switch's event
        socket must be logged in and, with an ACD, Redis must answer."""
        if not self.esl.up.is_set():
            return f"waiting for the switch's event socket at {self.settings.esl.host}:{self.settings.esl.port}"
        if self.acd is not None:
            from engine.acd.outage import ERRORS as REDIS_ERRORS
            try:
                self.acd.store.r.ping()
            except REDIS_ERRORS as exc:
                return f"waiting for Redis: {exc}"
        return None

    def shutdown(self, grace=None):
        """Refuse new calls, let calls finish for `grace` s, end the rest, write every CDR."""
        if not self.accepting:
            self.finished.wait()
            return
        grace = self.settings.shutdown.grace_seconds if grace is None else grace
        self.accepting = False
        self.server.stop_accepting()
        if getattr(self, "outbound_jobs", None) is not None:
            self.outbound_jobs.runner.stop_dialling()      # calls going on finish, no new dial
        log.info("shutting down: %d calls in progress, grace %.1f s", len(self.calls), grace)
        self._idle.wait(grace)
        for call in list(self.calls.values()):
            call.log.info("ending call: engine shutting down")
            call.hangup("SYSTEM_SHUTDOWN")
        if not self._idle.wait(HANGUP_WAIT + 5):
            log.error("%d calls did not end in time; their CDRs are written from what we know",
                      len(self.calls))
        self.server.stop(timeout=1)
        if getattr(self, "control", None) is not None:
            self.control.stop(timeout=1)
            self.control.application.extensions["hotline"].stop()
        if getattr(self, "outbound_jobs", None) is not None:
            # the attempts of the calls just ended write their results; any left are reaped later
            self.outbound_jobs.stop(wait=HANGUP_WAIT)
        if self.acd is not None:
            self.acd.stop()
        if self._importer is not None:
            self._importer.kill(block=False)
        if self._retention is not None:
            self._retention.kill(block=False)
        self.archiver.close()               # archiving in progress finishes first
        if self.tickets is not None:
            self.tickets.stop()
        self.esl.stop()
        self.store.stop()
        self.store.close()
        log.info("engine stopped: %d CDRs written", self.cdrs_written)
        self.finished.set()

    def reload(self, settings=None):
        """SIGHUP: re-read what can change without a restart (IVR flows, agents and queues,
        control API tokens)."""
        if settings is not None:
            self.control_tokens = settings.control.tokens
        reload = getattr(self.call_handler, "reload", None)
        if reload is None and self.acd is None:
            log.info("reload: nothing reloadable in this configuration")
            return []
        with self._reloading:           # one at a time: a second request waits for the first
            # checked first in a bounded process: a hostile file costs that process, not the hub
            problems = check_reload(settings or self.settings, *self.reload_limits)
            if not problems:
                problems = list(reload() if reload else [])
                if self.acd is not None:
                    problems += self.acd.reload()
        if problems:
            log.error("reload refused, running version kept:\n%s", "\n".join(map(str, problems)))
        else:
            log.info("reload done")
        return problems

    # --- calls ------------------------------------------------------------------------------
    def _serve_call(self, session):
        if not self.accepting:
            session.close("shutting down")
            return
        session.handshake()
        call = Call(session, gateway=self.settings.trunk.gateway, clock=self.clock)
        call.record_sample_rate = self.settings.recordings.sample_rate
        if call.uuid in self.calls:
            call.log.error("duplicate session for a live call; refusing it")
            session.exit()
            return
        self.calls[call.uuid] = call
        self._changed()
        self._note_core_uuid(session.channel)
        call.checkpoint_hooks.append(self._provisional_cdr)
        self._idle.clear()
        gevent.spawn(self._mark_call, call)
        call.log.info("call from %r <%s> to %s", call.caller_id_name, call.caller_id_number,
                      call.destination_number)
        try:
            # an outbound leg to its handler, a blacklisted caller to the blacklist; else the IVR
            (outbound.for_engine(self).handler_for(call) or self.call_handler)(call)
        except CallGone:
            call.log.info("caller hung up")
        except Exception:
            call.log.exception("call handler failed; ending the call")
        finally:
            try:
                self._finish_call(call)
            finally:
                self.calls.pop(call.uuid, None)
                self._changed()
                self._recent_hangups.pop(call.uuid, None)    # if it came while the CDR was written
                if not self.calls:
                    self._idle.set()

    def _changed(self):
        for watch in self.watchers:
            watch("engine", "")

    def _finish_call(self, call):
        if not call.gone:
            call.hangup()
        call.wait_complete(HANGUP_WAIT)
        call.cdr_final = True               # no provisional CDR from here on
        # popped either way: kept after the call, each (~12 KB) would stay until 5,000 more calls
        remembered = self._recent_hangups.pop(call.uuid, None)
        event = call.session.hangup_event or remembered
        info = {"ivr_path": call.path, "tags": call.tags, **call.info}
        if call.ended_by:
            info.setdefault("hangup_side", call.ended_by)
        if event is None:
            call.log.warning("no CHANNEL_HANGUP_COMPLETE seen; CDR written from the channel data")
            event = call.session.channel
            info.setdefault("extra", {})["incomplete"] = True
            if switch_vanished(call.session):
                # The socket closed without the switch ever saying the channel ended: no
                # CHANNEL_HANGUP, no disconnect notice, no CHANNEL_HANGUP_COMPLETE. The switch (or
                # the host under it) died with the call. CRASH is the cause FreeSWITCH itself
                # gives a channel whose session thread crashed (switch_core_state_machine.c:
                # switch_channel_hangup(session->channel, SWITCH_CAUSE_CRASH); switch_types.h
                # SWITCH_CAUSE_CRASH = 500, named "CRASH" in switch_channel.c's cause table); a
                # NULL cause would say "unknown" where we know the switch went away.
                info["hangup_cause"] = "CRASH"
                info.setdefault("hangup_side", "system")
                info["extra"]["hangup_cause_from"] = "engine: the switch's socket closed mid-call"
                call.log.error("the switch vanished mid-call (socket closed, no hangup event): "
                               "hangup cause CRASH")
        record = cdr_from_hangup(event, info)
        where = self.store.save(record)
        if where == "committed":
            call.log.info("CDR written: %s, %ss billed", record.get("hangup_cause"), record.get("billsec"))
        else:
            call.log.warning("CDR %s: database unavailable", "spooled" if where == "spooled"
                             else "kept in memory (spool disk full too)")
        self.cdrs_written += 1
        CALLS.labels(call_result(record)).inc()

    def _provisional_cdr(self, call, why):
        """A CDR of the call so far (queue join, agent answer, transfer), tagged provisional: if
        the engine dies now, the switch-CDR import completes it with the end and the cause instead
        of writing a row that knows nothing of the IVR path, queue, wait or agent. Written off the
        caller's greenlet (it may be an event path); the final CDR always wins (CdrStore)."""
        if getattr(call, "cdr_final", False) or self.store.db is None:
            return
        info = {"ivr_path": call.path, "tags": list(call.tags) + [PROVISIONAL], **call.info}
        # which switch carried the call and which engine served it: if both die, the next start
        # finishes the row (engine.cdr.orphans)
        info["extra"] = {**(info.get("extra") or {}), "provisional_at": why,
                         CORE_UUID_KEY: call.session.channel.get("Core-UUID"),
                         SOCKET_KEY: self.socket_target}
        record = copy.deepcopy(cdr_from_hangup(call.session.channel, info))
        for key in ("end_time", "duration", "billsec", "hangup_cause", "hangup_side"):
            record.pop(key, None)           # the call has not ended: say nothing of its end
        gevent.spawn(self.store.save, record)

    def _start_retention(self):
        """The daily recordings purge (recordings.purge_at; null = by hand only)."""
        rec = self.settings.recordings
        if not rec.purge_at:
            return None
        from engine.media.retention import RetentionSchedule
        self.retention = RetentionSchedule(self.archiver, rec.purge_at, rec.purge_tz)
        return gevent.spawn(self.retention.run)

    # --- the switch's own CDR files -----------------------------------------------------------
    def _mark_call(self, call):
        """Our id on the caller's leg: on a switch shared by several engines, the leg's CDR file
        then says whose call it was (engine.cdr.xmlcdr)."""
        try:
            self.esl.api(commands.uuid_setvar(call.uuid, ENGINE_VARIABLE, self.engine_id))
        except Exception as exc:            # the file still names our socket in its app_log
            call.log.info("engine id not set on the leg: %s", exc)

    def _import_switch_cdrs(self):
        # Listing, reading and parsing the files happen in a worker thread (engine.infra.offhub): on the
        # hub they stalled every call for seconds. One import at a time: two would both find a file.
        with self._importing:
            try:
                written = offhub.run(import_dir, offhub.OnHub(self.store), self.settings.switch.cdr_dir,
                                     set(self.settings.trunk.dids), live_uuids=set(self.calls),
                                     engine_id=self.engine_id, socket_target=self.socket_target)
            except Exception:
                log.exception("switch CDR import failed; will retry")
                return 0
            try:
                offhub.run(finish_orphans, offhub.OnHub(self.store), self.switch_core_uuid,
                           self.socket_target, self.settings.switch.cdr_dir, live_uuids=set(self.calls))
            except Exception:
                log.exception("finishing provisional CDRs failed; will retry")
            return written

    def _note_core_uuid(self, event):
        """The Core-UUID of the switch we talk to now (a new one at each start of the switch)."""
        core = event.get("Core-UUID")
        if core:
            self.switch_core_uuid = core

    def _import_loop(self):
        while True:
            gevent.sleep(SWITCH_CDR_IMPORT_EVERY)
            self._import_switch_cdrs()
            # a full disk left recordings behind, or a locked database left them unindexed
            if self.archiver.pending or self.archiver.unindexed:
                gevent.spawn(self._quietly, self.archiver.retry_pending)

    # --- callbacks and campaigns -----------------------------------------------------------
    def _start_outbound_jobs(self):
        if not self.settings.outbound_calls.jobs.enabled:
            return None
        from engine.outbound.jobservice import OutboundJobs
        try:
            return OutboundJobs(self).start()
        except Exception as exc:          # Redis unreachable, no dialler: calls in go on
            log.error("callbacks and campaigns not running: %s", exc)
            return None

    # --- tickets ----------------------------------------------------------------------------
    def _start_tickets(self):
        """CDR outbox -> tickets (callbacks, voicemail, complaint reviews) and SLA reminders. A
        broken tickets.yaml is logged and the engine runs on: the outbox keeps every row, so the
        tickets are made once the file is fixed and the engine restarted."""
        from engine.tickets.service import TicketService
        try:
            self.tickets = TicketService(self.settings, hooks=[self._ticket_notice]).start()
        except Exception as exc:
            log.error("tickets not running: %s", exc)
            self.tickets = None

    @staticmethod
    def _ticket_notice(action, ticket):
        level = logging.WARNING if action == "escalate" else logging.INFO
        log.log(level, "ticket %s (%s, %s): %s", ticket.get("number"), ticket.get("category"),
                ticket.get("department") or "no department", action)

    # --- recordings -------------------------------------------------------------------------
    def _recording_alarm(self, call_uuid, message):
        log.error("[%s] RECORDING ALARM: %s", call_uuid, message)

    def _scan_recordings(self):
        """Recordings left in the live directory by calls that ended while we were away."""
        try:
            reply = self.esl.api(commands.show_channels_json())
            live = {row.get("uuid") for row in (json.loads(reply or "{}").get("rows") or [])}
        except Exception as exc:
            log.warning("recordings scan skipped: cannot list the switch's channels (%s)", exc)
            return
        live |= set(self.calls)
        rows = self._quietly(self.archiver.scan_live_dir, is_call_live=lambda u: u in live) or []
        if rows:
            log.info("archived %d recording(s) left from calls that ended while we were away", len(rows))

    @staticmethod
    def _quietly(fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except Exception:
            log.exception("%s failed", getattr(fn, "__name__", fn))
            return None

    # --- inbound connection -----------------------------------------------------------------
    def _remember_hangup(self, event):
        if event.uuid in self.calls:
            self._recent_hangups[event.uuid] = event
            while len(self._recent_hangups) > RECENT_HANGUPS:
                self._recent_hangups.popitem(last=False)

    def _on_esl_connected(self, conn):
        log.info("switch connected (%d time%s)", conn.connects, "" if conn.connects == 1 else "s")
        gevent.spawn(self._scan_recordings)
        gevent.spawn(self._quietly, self.switch_check.run)
        if conn.connects > 1:               # we were cut off: calls may have ended unseen
            gevent.spawn(self._import_switch_cdrs)


def switch_vanished(session):
    """The outbound socket closed and the switch never said the channel was hanging up."""
    return session.closed.ready() and not session.hungup and session.hangup_event is None


def make_acd(settings, esl, engine_id=None):
    """The ACD when agents and queues files exist (they name who takes calls); else None."""
    if not (settings.files.agents.is_file() and settings.files.queues.is_file()):
        log.info("no ACD: %s or %s missing; callers who want a person hear an apology",
                 settings.files.agents, settings.files.queues)
        return None
    from engine.acd.audit import AuditLog
    from engine.acd.service import Acd
    from engine.media.prompts import PromptRenderer
    renderer = PromptRenderer(settings.tts, settings.paths.prompt_cache)
    audit = AuditLog(settings.database.url).open()
    return Acd(settings, esl, renderer=renderer, audit=audit, engine_id=engine_id)


def default_call_handler(settings, acd=None):
    """The IVR flows of settings.files.flows_dir; without any, answer, greet and hang up (or queue
    every caller to the first queue when there is an ACD but no flow)."""
    flows_dir = settings.files.flows_dir
    if not flows_dir.is_dir() or not any(flows_dir.glob("*.yaml")):
        if acd is not None:
            return queue_handler(acd)
        return welcome_handler(settings.files.welcome_prompt)
    from engine.ivr.runtime import IvrRuntime
    from engine.media.prompts import PromptRenderer
    renderer = PromptRenderer(settings.tts, settings.paths.prompt_cache)
    runtime = IvrRuntime(flows_dir, renderer,
                         overrides_path=str(settings.paths.var_dir / "ivr_overrides.json"),
                         voicemail_dir=str(settings.paths.recordings / "voicemail"))
    runtime.acd = acd
    from engine.bot.services import BotServices
    runtime.bot = BotServices.from_settings(settings, renderer)     # the `bot` node's recogniser, tap dir
    problems = runtime.reload()            # renders every static prompt before the first call
    if problems:
        raise SystemExit("IVR flows have errors:\n" + "\n".join(map(str, problems)))

    no_agents = renderer.render(NO_AGENTS_TEXT, fixed=True)

    def handle(call):
        call.answer()
        result = runtime.run(call)
        call.info.setdefault("extra", {})["ivr_outcome"] = result.get("outcome")
        if result.get("outcome") in ("agent", "fallback") and acd is not None:
            _to_queue(acd, call, acd.default_queue())
        elif result.get("outcome") in ("agent", "fallback"):
            # Queues arrive with the ACD; until then the caller is told, never just cut off,
            # and the CDR says a person was wanted (the ticket module can call back).
            call.tags.append("wanted_agent")
            call.play([str(no_agents)], interruptible=False)
    handle.reload = runtime.reload
    handle.runtime = runtime            # robot follow-up calls run their flow here (engine/outbound)
    return handle


def _to_queue(acd, call, queue_name):
    from engine.acd.exits import run_exit
    outcome = acd.serve(call, queue_name)
    if outcome == "error" and not call.gone:
        # no queue to wait in (Redis down, a queue missing): an apology, never silence
        run_exit(acd, call, "hangup", queue_name)
    elif outcome not in ("done", "transferred", "error"):
        run_exit(acd, call, outcome, queue_name)


def queue_handler(acd):
    """No IVR flows: every caller goes straight to the first queue."""
    def handle(call):
        call.answer()
        _to_queue(acd, call, acd.default_queue())
    handle.reload = lambda: []
    return handle


def welcome_handler(prompt):
    """Answer, play one prompt (or a short tone), hang up."""
    source = str(prompt) if prompt else "tone_stream://%(400,200,440);loops=1"

    def handle(call):
        call.answer()
        call.play([source], interruptible=True)
        call.hangup()
    return handle


def _redact(url):
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


# --- CLI ----------------------------------------------------------------------------------------

def register(subparsers):
    p = subparsers.add_parser("run", help="run the engine next to a FreeSWITCH")
    from engine.infra.clitext import add_option, default_config
    add_option(p, "--config", default=default_config())
    p.set_defaults(func=_cmd_run)


# Libraries whose DEBUG drowns the engine's (peewee logs every SQL statement): they follow
# log.libraries_level, not log.level
CHATTY_LIBRARIES = ("peewee", "urllib3", "asyncio", "websockets", "aiohttp", "edge_tts", "jieba",
                    "PIL", "matplotlib", "charset_normalizer")


def setup_logging(settings):
    handler = (logging.FileHandler(settings.log.file) if settings.log.file
               else logging.StreamHandler(sys.stderr))
    from engine.infra.logformat import OneLineFormatter
    handler.setFormatter(OneLineFormatter())     # text from outside never starts a line of its own
    root = logging.getLogger()
    root.handlers[:] = [handler]
    privacy.install_log_masking(root.handlers)     # no ID or card number in clear in the log
    set_levels(settings)


def set_levels(settings):
    logging.getLogger().setLevel(settings.log.level)
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(settings.log.libraries_level)


def _cmd_run(args):
    from engine.settings import SettingsError, load_settings
    try:
        settings = load_settings(args.config)
    except (SettingsError, OSError) as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    try:
        privacy.check_key()
    except privacy.PrivacyError as exc:
        print(f"hotline: {exc}", file=sys.stderr)
        return 2
    try:
        engine = Engine(settings).start()
    except (OSError, SystemExit) as exc:
        print(f"hotline: cannot start: {exc}", file=sys.stderr)
        return 2
    # What start-up made lives as long as the process (modules, settings, the 200,000 lists of
    # pypinyin's dictionary the desk's knowledge base loads): out of the collector's sight, so a
    # full collection under load scans the calls' objects only, not a 100-270 ms stall of the hub
    # that every call and live update waits out (scripts/bench_web measured it)
    gc.collect()
    gc.freeze()
    from engine.infra import pidfile
    pid_file = settings.paths.var_dir / "hotline.pid"
    try:
        pid_fd = pidfile.claim(pid_file)        # held until exit: proves to the CLI we are the engine
    except RuntimeError as exc:
        print(f"hotline: cannot start: {exc}", file=sys.stderr)
        engine.shutdown(grace=0)
        return 2

    def reload():
        try:
            new = load_settings(args.config)
        except Exception as exc:   # a broken file must never take the running engine down
            log.error("reload: settings not reloaded: %s", exc)
            return
        set_levels(new)
        engine.reload(new)

    from engine.infra.sdnotify import Notifier
    service = Notifier.start(engine.not_ready)     # systemd: READY=1 once not_ready() says so

    def stop():
        service.stopping(f"stopping: {len(engine.calls)} calls in progress")
        engine.shutdown()

    gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(stop))
    gevent.signal_handler(signal.SIGINT, lambda: gevent.spawn(stop))
    gevent.signal_handler(signal.SIGHUP, lambda: gevent.spawn(reload))
    engine.finished.wait()
    pidfile.release(pid_fd, pid_file)
    return 0
