"""CDRs for calls the engine did not see end: read from the switch's own mod_xml_cdr files.

If the engine dies mid-call (crash, kill -9, host trouble), its outbound sockets close, the
switch ends those calls (or lets a running bridge go on), and no CHANNEL_HANGUP_COMPLETE ever
reaches us. mod_xml_cdr still writes a file per leg into settings.switch.cdr_dir. At start-up,
and every minute, the engine imports the files of its own trunk calls that have no CDR yet (or
only the provisional one it wrote while the call went on: the file completes it) and moves them to
`done/` once that CDR is committed or durably spooled, so a file is read once and nothing is
deleted; a CDR that only reached memory (the disk full) leaves its file for the next pass.

What is in that directory (fixture 11, FREESWITCH.md): with the vanilla xml_cdr.conf.xml the files
are `a_<uuid>.cdr.xml` (`prefix-a-leg=true`; `<uuid>.cdr.xml` without it) for every leg without an
originator: the trunk's inbound legs, but also every leg originated by API (consult and supervisor
legs, test calls) and, on a switch shared by several engines, other engines' calls. So the uuid
comes from the file, never from its name, and a file is imported only if it is
- a trunk leg: direction inbound, the trunk's context and SIP profile, no `hotline_role` (the
  engine's own legs carry one), dialled to one of our DIDs;
- ours: its `hotline_engine` variable (the engine sets it on every call it takes) names us, or,
  if the engine never got to set it, the dialplan's `socket` application dialled our socket.
Everything else is left where it is, untouched: it belongs to someone else. A file that is not
(yet) readable XML is left too: mod_xml_cdr writes the final name directly, so it may be half
written; it is reported once.
"""
import dataclasses
import logging
import os
import xml.etree.ElementTree as ET
from urllib.parse import unquote

from engine import privacy
from engine.cdr.record import cdr_from_hangup
from engine.cdr.store import PROVISIONAL, is_provisional
from engine.esl import commands
from engine.esl.protocol import Event

log = logging.getLogger("hotline.cdr.xml")

SUFFIX = ".cdr.xml"
# Where trunk calls arrive: the `external` SIP profile, context `public` (freeswitch_conf's
# sofia.conf.xml, dialplans/public.xml).
TRUNK_CONTEXT = "public"
TRUNK_PROFILE = "external"
ENGINE_VARIABLE = "hotline_engine"      # set by the engine on each call it takes (daemon)
QUEUE_VARIABLE = "hotline_queue"        # set on the caller's leg when it joins a queue (acd)
AGENT_VARIABLE = "hotline_agent"        # set on the caller's leg when an agent answers (acd)
ROLE_VARIABLE = "hotline_role"          # on legs the engine originates itself (consult, supervisor)
# What only the engine knows of a call: kept from its provisional CDR when the switch's file
# completes it (times, causes and billing come from the switch)
ENGINE_FIELDS = ("ivr_path", "queue", "wait_seconds", "agent", "talk_seconds", "recording",
                 "satisfaction", "bot_transcript")

# Set by the dialplan's fallback (dialplans/public.xml) when no engine took the call: the caller
# heard "service temporarily unavailable". Such a call gets a CDR tagged ENGINE_DOWN_TAG.
FALLBACK_VARIABLE = "hotline_fallback"
ENGINE_DOWN_TAG = "engine_down"

# caller_profile element -> the event header cdr_from_hangup reads
_PROFILE_HEADERS = {"caller_id_number": "Caller-Caller-ID-Number", "caller_id_name": "Caller-Caller-ID-Name",
                    "destination_number": "Caller-Destination-Number", "context": "Caller-Context",
                    "chan_name": "Channel-Name"}
_REPORTED_MAX = 1000
_reported = {}                          # unreadable file -> mtime already reported


class XmlCdrError(ValueError):
    pass


@dataclasses.dataclass
class SwitchCdr:
    """What one mod_xml_cdr file says about one leg."""
    uuid: str
    direction: str
    variables: dict         # URL-decoded
    profile: dict           # the first caller profile: the call as it arrived, before any transfer
    apps: list              # [(application, data)] of the app_log, in order

    @property
    def socket_target(self):
        """host:port the dialplan's `socket` application dialled, if it ran."""
        for app, data in self.apps:
            if app == "socket" and data.split():
                return data.split()[0]
        return None


def parse(text):
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise XmlCdrError(f"not XML: {exc}") from None
    if root.tag != "cdr":
        raise XmlCdrError(f"root element is <{root.tag}>, not <cdr>")
    variables = {}
    node = root.find("variables")
    for var in node if node is not None else ():
        variables.setdefault(var.tag, unquote(var.text or ""))
    # one <callflow> per caller profile, newest first (switch_ivr_generate_xml_cdr); the last one
    # is the call as the trunk delivered it (after a transfer the newest has another context)
    flows = root.findall("callflow")
    first = flows[-1].find("caller_profile") if flows else None
    # caller profile text is written raw (XML-escaped, not URL-encoded): no unquote
    profile = {child.tag: child.text or "" for child in first if len(child) == 0} if first is not None else {}
    uuid = variables.get("uuid") or profile.get("uuid")
    if not uuid:
        raise XmlCdrError("no call uuid in the CDR")
    direction = variables.get("direction") or root.findtext("channel_data/direction") or ""
    apps = [(a.get("app_name", ""), a.get("app_data", "")) for a in root.findall("app_log/application")]
    return SwitchCdr(uuid, direction, variables, profile, apps)


def event_of(cdr):
    """The CHANNEL_HANGUP_COMPLETE-shaped Event that a switch CDR describes."""
    headers = {f"variable_{name}": value for name, value in cdr.variables.items()}
    for tag, header in _PROFILE_HEADERS.items():
        if cdr.profile.get(tag):
            headers[header] = cdr.profile[tag]
    headers["Unique-ID"] = cdr.uuid
    headers["Event-Name"] = "CHANNEL_HANGUP_COMPLETE"
    headers["Hangup-Cause"] = cdr.variables.get("hangup_cause", "")
    return Event(headers)


def event_from_xml(text):
    return event_of(parse(text))


def not_a_trunk_leg(cdr, dids):
    """Why this leg is not a call from the trunk to our numbers (None: it is one)."""
    if cdr.direction != "inbound":
        return f"direction {cdr.direction or '?'}"
    if cdr.profile.get("context") != TRUNK_CONTEXT:
        return f"context {cdr.profile.get('context') or '?'}"
    profile = cdr.variables.get("sofia_profile_name")
    if profile != TRUNK_PROFILE:
        return f"SIP profile {profile or '?'}"
    if cdr.variables.get(ROLE_VARIABLE):
        return f"{ROLE_VARIABLE}={cdr.variables[ROLE_VARIABLE]}"
    if cdr.profile.get("destination_number") not in dids:
        return f"destination {cdr.profile.get('destination_number') or '?'} is not one of our numbers"
    return None


def served_by_us(cdr, engine_id, socket_target):
    """Did this engine serve the call? Its mark on the leg says so; without one (the engine died
    before setting it), the socket the dialplan dialled; a call that never reached any engine is
    ours by its DID."""
    owner = cdr.variables.get(ENGINE_VARIABLE)
    if owner:
        # uuid_setvar carried it as inert text (commands.safe_text: "host:8084" -> "host 8084")
        return engine_id is None or owner in (engine_id, commands.safe_text(engine_id, 256))
    dialled = cdr.socket_target
    if dialled and socket_target:
        return dialled == socket_target
    return True


def engine_facts(cdr):
    """Queue, agent and talk time the engine left on the caller's leg (for a CDR it never wrote)."""
    v = cdr.variables
    facts = {}
    if v.get(QUEUE_VARIABLE):
        facts["queue"] = v[QUEUE_VARIABLE]
    if v.get(AGENT_VARIABLE):
        facts["agent"] = v[AGENT_VARIABLE]
        # the switch's own bridge time: the agent talked from then until the leg ended
        bridged, ended = _int(v.get("bridge_uepoch")), _int(v.get("end_uepoch"))
        if bridged and ended and ended >= bridged:
            facts["talk_seconds"] = round((ended - bridged) / 1e6, 3)
    return facts


def engine_down(cdr):
    """No engine ever took this call: the dialplan's fallback ran and no engine marked the leg."""
    return bool(cdr.variables.get(FALLBACK_VARIABLE)) and not cdr.variables.get(ENGINE_VARIABLE)


def import_dir(store, cdr_dir, dids, live_uuids=(), engine_id=None, socket_target=None):
    """Write CDRs for this engine's finished trunk calls found in cdr_dir; return how many.

    Our files of calls still live here (`live_uuids`) are left for the next pass; ours that
    already have a CDR are only moved aside; files that are not ours are not touched.
    """
    if not cdr_dir or not os.path.isdir(cdr_dir):
        return 0
    done = os.path.join(cdr_dir, "done")
    written = 0
    waiting = None                      # CDRs the store holds but the database does not have yet
    for name in sorted(os.listdir(cdr_dir)):
        path = os.path.join(cdr_dir, name)
        if not name.endswith(SUFFIX) or not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                cdr = parse(f.read())
        except (OSError, XmlCdrError) as exc:
            _report_unreadable(path, exc)
            continue
        why_not = not_a_trunk_leg(cdr, dids)
        if why_not or not served_by_us(cdr, engine_id, socket_target):
            log.debug("%s: not ours (%s), left in place", name, why_not or "another engine's call")
            continue
        if cdr.uuid in live_uuids:
            continue
        try:
            stored = store.get(cdr.uuid)
        except Exception as exc:          # database away: leave the files for the next pass
            log.warning("switch CDR import paused, database unavailable: %s", exc)
            return written
        if stored is None or is_provisional(stored):
            if waiting is None:
                waiting = store.waiting()
            if waiting.get(cdr.uuid) == "memory":
                continue                # the engine's CDR is only in memory: this file may be needed
            if waiting.get(cdr.uuid) == "final":
                # The engine's own final CDR waits in the spool: it knows more than this file (IVR
                # path, wait, agent, survey...), and an import now would make its replay look stale.
                os.makedirs(done, exist_ok=True)
                _move(path, os.path.join(done, name))
                continue
            where = store.save(completed_record(cdr, stored))
            if where == "memory":
                # Neither the database nor the spool took it: this file is the only durable copy
                # of the call. It stays for the next pass (the import is idempotent by uuid).
                log.error("[%s] switch CDR kept in place: its CDR reached neither the database nor "
                          "the spool", cdr.uuid)
                continue
            facts = engine_facts(cdr)
            if engine_down(cdr):
                log.warning("[%s] CDR written from the switch's XML CDR: no engine took this call, "
                            "the dialplan's fallback answered it (%s)%s", cdr.uuid,
                            cdr.variables.get(FALLBACK_VARIABLE), "" if where == "committed" else " (spooled)")
            else:
                log.info("[%s] CDR %s from the switch's XML CDR (the engine missed its end)%s%s", cdr.uuid,
                         "completed" if stored else "written",
                         f": queue {facts.get('queue')}, agent {facts.get('agent')}" if facts else "",
                         "" if where == "committed" else " (spooled)")
            written += 1
        os.makedirs(done, exist_ok=True)
        _move(path, os.path.join(done, name))
    return written


def completed_record(cdr, provisional=None):
    """The CDR of a call from its switch file; given the provisional row the engine wrote while
    the call went on, what the engine knew (IVR path, queue, wait, agent, tags) is kept and the
    switch adds what only it saw: the end, the hangup cause, the billed and talk time."""
    facts = engine_facts(cdr)
    extra = {"source": "mod_xml_cdr", **({"talk_from": "switch bridge time"} if "talk_seconds" in facts else {})}
    tags = ["from_switch_cdr"]
    if engine_down(cdr):
        tags.append(ENGINE_DOWN_TAG)
        extra["fallback"] = cdr.variables[FALLBACK_VARIABLE]
    info = dict(facts)
    if provisional:
        tags = [t for t in provisional.get("tags") or [] if t != PROVISIONAL] + tags
        kept = {k: v for k, v in provisional.items()
                if k in ENGINE_FIELDS and v is not None and k not in facts}
        info.update(kept)
        extra = {**(provisional.get("extra") or {}), **extra}
        extra.pop("provisional_at", None)
    return cdr_from_hangup(event_of(cdr), {**info, "tags": tags, "extra": extra})


def _report_unreadable(path, exc):
    try:
        mtime = os.path.getmtime(path)
    except OSError:
        return                          # gone meanwhile (its owner moved it)
    if _reported.get(path) == mtime:
        return
    if len(_reported) >= _REPORTED_MAX:
        _reported.clear()
    _reported[path] = mtime
    log.warning("%s: cannot read switch CDR (%s); left in place (it may still be being written, "
                "or belong to another engine)", path, exc)


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _move(src, dst):
    try:
        os.replace(src, dst)
    except OSError as exc:
        log.error("cannot move %s aside: %s", src, exc)
        return
    _mask_kept_copy(dst)


def _mask_kept_copy(path):
    """The copy kept in done/ with callers' ID and card numbers masked (engine.privacy): the leg's
    variables may hold the bot's slots (hotline_bot_slots) or look-up data in clear. Variables are
    URL-encoded: masked decoded, encoded again. A file that cannot be rewritten stays as it is."""
    from urllib.parse import quote
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError):
        return
    changed = False
    for parent in tree.getroot().iter():
        for el in parent:
            if not el.text or len(el) or len(el.text) < 16:
                continue
            encoded = parent.tag == "variables"
            value = unquote(el.text) if encoded else el.text
            masked = privacy.mask_text(value)
            if masked != value:
                el.text = quote(masked, safe="") if encoded else masked
                changed = True
    if not changed:
        return
    tmp = f"{path}.masking"
    try:
        tree.write(tmp, encoding="utf-8", xml_declaration=True)
        os.replace(tmp, path)
    except OSError as exc:
        log.error("cannot mask personal data in %s: %s", path, exc)
        if os.path.exists(tmp):
            os.unlink(tmp)
