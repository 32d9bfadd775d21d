"""The one place every outbound call is placed: callbacks, campaigns, transfers out, manual dials.

    outcome = dialer.dial(DialRequest("138 0013 8000", purpose="callback", job_id="cb-17"))

Checks, in this order, each with its own refusal result: the number (`invalid`), the dial-block
list (`blocked`), do-not-call for campaigns and callbacks (`dnc`), the time window for campaigns
and callbacks (`window_closed`, with `not_before`), inbound first (`paused`). Then one originate
through the trunk gateway (engine.esl.commands), waited for within originate_timeout plus a
margin; a dial the switch never reports on is killed by its uuid and counts as our fault.

`target="engine"`: the answered leg runs `socket` to this engine's outbound-socket server like a
trunk call, carrying hotline_job / hotline_campaign / hotline_purpose, and the daemon hands it to
the handler registered for its purpose (engine.outbound.legs). `target="park"`: the answered leg
is parked and its uuid returned, for the caller to bridge.

`ignore_early_media=true` on every dial: without it an API originate returns +OK as soon as the
far end sends early media (switch_ivr_originate.c: oglobals.early_ok = 1 unless
ignore_early_media is true), and Chinese carriers play their "the number you dialled is switched
off / does not exist" announcements as early media before the 480/404: that would count as answered.
"""
import dataclasses
import datetime
import logging
import uuid as uuidlib
from typing import Optional

from engine.esl import commands
from engine.outbound import results
from engine.outbound.dialblock import DialBlock
from engine.outbound.numbers import InvalidNumber, normalise
from engine.outbound.results import RetryRules, classify
from engine.outbound.window import TimeWindow

log = logging.getLogger("hotline.outbound.dialer")

PURPOSES = ("callback", "campaign", "transfer", "manual")
TARGETS = ("engine", "park")
REPLY_MARGIN = 15.0       # seconds past originate_timeout before a silent dial counts as lost
KILL_TIMEOUT = 5.0
CONTACT_PURPOSES = ("callback", "campaign")     # DNC, window and the inbound-first gate apply


@dataclasses.dataclass
class DialRequest:
    number: str
    purpose: str = "manual"
    job_id: str = ""
    campaign: str = ""
    caller_id: Optional[str] = None        # None: the campaign's, else the hotline's number
    ticket: Optional[str] = None
    original_call: Optional[str] = None    # the inbound call this dial follows up
    variables: dict = dataclasses.field(default_factory=dict)
    target: str = "engine"
    timeout: Optional[int] = None          # None: outbound_calls.originate_timeout
    needs_agent: bool = False              # the answered call will hold an agent (gate share)
    window: Optional[TimeWindow] = None    # None: the campaign's window, else outbound_calls.window
    uuid: Optional[str] = None             # the leg's uuid, chosen by the caller (to cancel the dial)


@dataclasses.dataclass
class DialOutcome:
    uuid: Optional[str]
    answered: bool
    result: str
    hangup_cause: Optional[str]
    retry: bool
    counts_attempt: bool
    reason: str = ""                       # why refused / failed, in words
    number: str = ""                       # the national number (when it normalised)
    refused: bool = False                  # stopped by a check, the switch never saw it
    not_before: Optional[datetime.datetime] = None   # window_closed: when the window opens



def trunk_endpoint(settings, number):
    """The one dial string to an outside number: normalised (InvalidNumber says why not), the
    trunk's dial prefix, through the trunk gateway. The dialler's calls and the agents' consult and
    three-way parties (engine/acd/incall.py, whose legs must land in the call's conference) use it."""
    cfg = settings.outbound_calls
    national = normalise(number, cfg.area_code).national
    return commands.endpoint_gateway(settings.trunk.gateway, f"{cfg.dial_prefix}{national}")


class Dialer:
    def __init__(self, settings, esl, lists=None, gate=None, clock=None):
        self.settings = settings
        self.cfg = settings.outbound_calls
        self.esl = esl
        self.lists = lists
        self.gate = gate
        self.clock = clock or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self.retry_rules = RetryRules.from_settings(self.cfg)
        self.default_window = TimeWindow.from_settings(self.cfg.window)
        self._windows = {}
        self.live = set()                  # uuids of our legs not yet hung up
        self.lists_required = False        # the engine's dialer: no contact dial without the lists
        if hasattr(esl, "on"):
            esl.on("CHANNEL_HANGUP_COMPLETE", self._on_hangup)

    # --- configuration ------------------------------------------------------------------------
    def window_for(self, campaign):
        camp = (self.cfg.campaigns or {}).get(campaign or "")
        if camp is None or camp.window is None:
            return self.default_window
        if campaign not in self._windows:
            self._windows[campaign] = TimeWindow.from_settings(camp.window)
        return self._windows[campaign]

    def caller_id_for(self, campaign):
        camp = (self.cfg.campaigns or {}).get(campaign or "")
        if camp is not None and camp.caller_id:
            return camp.caller_id
        return self.cfg.caller_id or self.settings.trunk.dids[0]

    # --- the checks ---------------------------------------------------------------------------
    def check(self, req):
        """(DialOutcome refusal, None) or (None, national number): every check, nothing dialled."""
        if req.purpose not in PURPOSES:
            raise ValueError(f"purpose {req.purpose!r}: one of {', '.join(PURPOSES)}")
        if req.target not in TARGETS:
            raise ValueError(f"target {req.target!r}: one of {', '.join(TARGETS)}")
        try:
            number = normalise(req.number, self.cfg.area_code).national
        except InvalidNumber as exc:
            return self._refuse("invalid", str(exc), ""), None
        why = DialBlock(self.cfg.dial_block, self.lists).refuses(
            number, "transfer" if req.purpose == "transfer" else "outbound")
        if why:
            return self._refuse("blocked", why, number), None
        contact = req.purpose in CONTACT_PURPOSES
        if contact and self.lists is None and self.lists_required:
            return self._refuse("paused", "the do-not-call list is not loaded (database unavailable)",
                                number, retry=True), None
        if contact and self.lists is not None and self.lists.is_dnc(number, req.campaign):
            return self._refuse("dnc", f"{number} asked not to be called", number), None
        if contact:
            window = req.window or self.window_for(req.campaign)
            now = self.clock()
            closes = window.closes_at(now)
            ring = datetime.timedelta(seconds=int(req.timeout or self.cfg.originate_timeout))
            if closes is None or closes < now + ring:
                # closed, or it would still ring after the window closes: no call outside it, ever
                opens = window.next_open(closes if closes is not None else now)
                if opens is not None and closes is not None and opens <= closes:
                    opens = window.next_open(closes + datetime.timedelta(minutes=1))
                why = "outside the calling window" if closes is None else \
                    f"the window closes at {closes.strftime('%H:%M')}, before the ring could end"
                out = self._refuse("window_closed", why + (f"; opens {opens.isoformat(timespec='minutes')}"
                                                           if opens else "; never opens"),
                                   number, retry=opens is not None)
                out.not_before = opens
                return out, None
        if contact and self.gate is not None:
            try:
                why = self.gate.check(needs_agent=req.needs_agent)
            except Exception as exc:            # Redis away: inbound may be waiting unseen
                why = f"inbound first: the queues cannot be read ({exc})"
            if why:
                return self._refuse("paused", why, number, retry=True), None
        return None, number

    @staticmethod
    def _refuse(result, reason, number, retry=False):
        return DialOutcome(uuid=None, answered=False, result=result, hangup_cause=None, retry=retry,
                           counts_attempt=False, reason=reason, number=number, refused=True)

    # --- the dial -----------------------------------------------------------------------------
    def command(self, req, number, leg_uuid):
        """The originate line for a checked request."""
        cfg = self.cfg
        timeout = int(req.timeout or cfg.originate_timeout)
        caller_id = commands.safe_number(req.caller_id or self.caller_id_for(req.campaign)) or "anonymous"
        variables = {name: value for name, value in (req.variables or {}).items()}
        variables.update({
            "origination_uuid": leg_uuid,
            "origination_caller_id_number": caller_id,
            "origination_caller_id_name": caller_id,
            "originate_timeout": timeout,
            "ignore_early_media": "true",
            "hotline_purpose": req.purpose,
        })
        for name, value in (("hotline_job", req.job_id), ("hotline_campaign", req.campaign),
                            ("hotline_ticket", req.ticket), ("hotline_original_call", req.original_call)):
            if value:
                variables[name] = value
        endpoint = trunk_endpoint(self.settings, number)
        if req.target == "engine":
            out = self.settings.outbound
            return commands.originate_to_socket(endpoint, variables, out.advertise_host or out.listen_host,
                                                out.listen_port), timeout
        return commands.originate(endpoint, variables), timeout

    def dial(self, req):
        refusal, number = self.check(req)
        if refusal is not None:
            log.info("dial %s (%s %s) refused: %s: %s", req.number, req.purpose, req.job_id or "-",
                     refusal.result, refusal.reason)
            return refusal
        leg = req.uuid or str(uuidlib.uuid4())
        cmd, timeout = self.command(req, number, leg)
        prefix = f"[{leg}] "
        log.info("%sdialling %s for %s %s (campaign %s, target %s)", prefix, number, req.purpose,
                 req.job_id or "-", req.campaign or "-", req.target)
        if self.gate is not None and req.purpose in CONTACT_PURPOSES:
            # the check above saw a free channel; another dial (or engine) may have taken it since
            try:
                why = None if self.gate.reserve_leg(leg) else \
                    f"inbound first: outbound holds its {self.gate.trunk_limit} trunk channels"
            except Exception as exc:         # Redis away: no budget to check against
                why = f"inbound first: the gate cannot be asked ({exc})"
            if why:
                log.info("dial %s (%s %s) refused: paused: %s", number, req.purpose, req.job_id or "-", why)
                return self._refuse("paused", why, number, retry=True)
        elif self.gate is not None:
            self._quiet(self.gate.leg_started, leg)     # transfers and manual dials: counted, not limited
        self.live.add(leg)
        try:
            reply = (self.esl.bgapi(cmd).get(timeout=timeout + REPLY_MARGIN) or "").strip()
        except Exception as exc:              # gevent.Timeout, connection lost, -ERR on bgapi itself
            reply = None
            log.error("%sno answer from the switch to the originate (%s): killing the leg", prefix,
                      type(exc).__name__ if not str(exc) else exc)
            self._kill(leg)
        if reply and reply.startswith("+OK"):
            log.info("%s%s answered", prefix, number)
            return DialOutcome(uuid=leg, answered=True, result=results.ANSWERED, hangup_cause=None,
                               retry=False, counts_attempt=True, number=number)
        self._ended(leg)
        # `-ERR <CAUSE>` (mod_commands' originate: "-ERR %s\n", switch_channel_cause2str); any other
        # reply (a usage text) means our command was wrong: no cause, our fault
        words = reply.split() if reply and reply.startswith("-ERR") else []
        cause = words[1] if len(words) > 1 else None
        result, retry, counts = classify(False, cause)
        log.info("%s%s not answered: %s -> %s", prefix, number, cause or "no reply", result)
        return DialOutcome(uuid=leg, answered=False, result=result, hangup_cause=cause, retry=retry,
                           counts_attempt=counts, reason=reply or "the switch did not report on the dial",
                           number=number)

    def next_due(self, outcome, attempts, now=None):
        """When to try this contact again after `outcome` (None: never); `attempts` as
        RetryRules.next_due counts them."""
        if not outcome.retry:
            return None
        if outcome.result == "window_closed":
            return outcome.not_before
        if outcome.result == "paused":
            return (now or self.clock()) + datetime.timedelta(minutes=1)
        return self.retry_rules.next_due(outcome.result, attempts, now or self.clock())

    # --- legs ---------------------------------------------------------------------------------
    def _kill(self, leg):
        try:
            self.esl.api(commands.uuid_kill(leg, "ORIGINATOR_CANCEL"), timeout=KILL_TIMEOUT, check=False)
        except Exception as exc:
            log.warning("[%s] could not kill the lost dial: %s", leg, exc)

    def _on_hangup(self, event):
        if event.uuid in self.live:
            self._ended(event.uuid)

    def _ended(self, leg):
        self.live.discard(leg)
        if self.gate is not None:
            self._quiet(self.gate.leg_ended, leg)

    @staticmethod
    def _quiet(fn, *args):
        try:
            fn(*args)
        except Exception as exc:          # Redis away: the gate's own TTL cleans up
            log.warning("outbound gate bookkeeping failed: %s", exc)
