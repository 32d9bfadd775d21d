"""CDRs for calls the engine did not see end: read from the switch's own mod_xml_cdr files.

If the engine dies mid-call (crash, kill -9, host trouble), its outbound sockets close, the
switch ends those calls, and no CHANNEL_HANGUP_COMPLETE ever reaches us. mod_xml_cdr still writes
`<log-dir>/<uuid>.cdr.xml` for every trunk leg (freeswitch_conf/autoload_configs/xml_cdr.conf.xml
points log-dir at settings.switch.cdr_dir). At start-up, and every few minutes, the engine imports
the files of calls to its DIDs that have no CDR yet, then moves every file it has looked at to
`done/`, so a file is read once and nothing is deleted.
"""
import logging
import os
import xml.etree.ElementTree as ET
from urllib.parse import unquote

from engine.cdr.record import cdr_from_hangup
from engine.esl.protocol import Event

log = logging.getLogger("hotline.cdr.xml")

# caller_profile element -> the event header cdr_from_hangup reads
_PROFILE_HEADERS = {"caller_id_number": "Caller-Caller-ID-Number", "caller_id_name": "Caller-Caller-ID-Name",
                    "destination_number": "Caller-Destination-Number", "context": "Caller-Context",
                    "chan_name": "Channel-Name"}


class XmlCdrError(ValueError):
    pass


def event_from_xml(text):
    """The CHANNEL_HANGUP_COMPLETE-shaped Event that an XML CDR describes."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise XmlCdrError(f"not XML: {exc}") from None
    if root.tag != "cdr":
        raise XmlCdrError(f"root element is <{root.tag}>, not <cdr>")
    headers = {}
    for var in root.find("variables") if root.find("variables") is not None else ():
        headers[f"variable_{var.tag}"] = unquote(var.text or "")
    profile = root.find("callflow/caller_profile")
    if profile is not None:
        for tag, header in _PROFILE_HEADERS.items():
            node = profile.find(tag)
            if node is not None and node.text:
                headers[header] = unquote(node.text)
    uuid = headers.get("variable_uuid") or (profile.findtext("uuid") if profile is not None else None)
    if not uuid:
        raise XmlCdrError("no call uuid in the CDR")
    headers["Unique-ID"] = unquote(uuid)
    headers["Event-Name"] = "CHANNEL_HANGUP_COMPLETE"
    headers["Hangup-Cause"] = headers.get("variable_hangup_cause", "")
    return Event(headers)


def import_dir(store, cdr_dir, dids, live_uuids=()):
    """Write CDRs for finished calls to `dids` found in cdr_dir; return how many were written.

    Files of calls still live here (`live_uuids`) are left for the next pass; files of calls that
    already have a CDR, or of other numbers, are only moved aside.
    """
    if not cdr_dir or not os.path.isdir(cdr_dir):
        return 0
    done = os.path.join(cdr_dir, "done")
    os.makedirs(done, exist_ok=True)
    written = 0
    for name in sorted(os.listdir(cdr_dir)):
        if not name.endswith(".cdr.xml"):
            continue
        path = os.path.join(cdr_dir, name)
        uuid = name[:-len(".cdr.xml")]
        if uuid in live_uuids:
            continue
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                event = event_from_xml(f.read())
        except (OSError, XmlCdrError) as exc:
            log.error("%s: cannot read switch CDR: %s (kept as %s.bad)", path, exc, name)
            _move(path, os.path.join(done, name + ".bad"))
            continue
        try:
            known = store.get(event.uuid) is not None
        except Exception as exc:          # database away: leave the files for the next pass
            log.warning("switch CDR import paused, database unavailable: %s", exc)
            return written
        if event.get("Caller-Destination-Number") in dids and not known:
            record = cdr_from_hangup(event, {"tags": ["from_switch_cdr"],
                                             "extra": {"source": "mod_xml_cdr"}})
            if store.write(record):
                log.info("[%s] CDR written from the switch's XML CDR (the engine missed its end)",
                         event.uuid)
            written += 1
        _move(path, os.path.join(done, name))
    return written


def _move(src, dst):
    try:
        os.replace(src, dst)
    except OSError as exc:
        log.error("cannot move %s aside: %s", src, exc)
