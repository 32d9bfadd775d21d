"""Build a CDR record from the switch's CHANNEL_HANGUP_COMPLETE event (plus what the engine knows).

The switch is the truth for times and the hangup cause: its `variable_*_uepoch` stamps (microseconds
since the epoch, 0 = never happened), `variable_duration` / `variable_billsec`, `Hangup-Cause`.
Which side hung up comes from `variable_sip_hangup_disposition`: `recv_*` means the caller's side
sent BYE/CANCEL; `send_*` means the switch ended the leg, which for our trunk legs is the engine's
doing (the engine passes hangup_side in call_info when it knows better: 'agent', 'system').
Caller number and name are stored exactly as received, hostile text included.
"""
import datetime

from engine.cdr.models import CDR_FIELDS

_CALLER_DISPOSITIONS = ("recv_bye", "recv_cancel")
_ENGINE_DISPOSITIONS = ("send_bye", "send_cancel", "send_refuse")
_CALLER_CAUSES = ("ORIGINATOR_CANCEL",)    # the caller gave up before answer (no SIP disposition on some paths)


def cdr_from_hangup(event, call_info=None) -> dict:
    """The CDR record (a dict for CdrStore.write) of the channel this event describes.

    `event` is an engine.esl.protocol.Event, normally CHANNEL_HANGUP_COMPLETE; a CHANNEL_DATA event
    works as a fallback (times missing from it are filled from the clock). Known keys of
    `call_info` (ivr_path, tags, queue, agent, hangup_side, ...) override what the event says;
    other keys go to `extra`.
    """
    get = event.get
    start = _time(get("variable_start_uepoch"), get("variable_start_epoch")) \
        or _time(get("Caller-Channel-Created-Time"), None)
    answer = _time(get("variable_answer_uepoch"), get("variable_answer_epoch")) \
        or _time(get("Caller-Channel-Answered-Time"), None)
    end = _time(get("variable_end_uepoch"), get("variable_end_epoch")) \
        or _time(get("Caller-Channel-Hangup-Time"), None)
    if end is None:         # not a hangup event: the call is ending now
        end = datetime.datetime.now(datetime.timezone.utc)
    cause = get("Hangup-Cause") or get("variable_hangup_cause") or None
    disposition = get("variable_sip_hangup_disposition") or ""
    record = {
        "uuid": event.uuid or get("Channel-Call-UUID") or get("variable_uuid"),
        "caller_number": get("Caller-Caller-ID-Number"),
        "caller_name": get("Caller-Caller-ID-Name"),
        "destination": get("Caller-Destination-Number"),
        "start_time": start,
        "answer_time": answer,
        "end_time": end,
        "duration": _int(get("variable_duration"), _seconds(start, end)),
        "billsec": _int(get("variable_billsec"), _seconds(answer, end) if answer else 0),
        "hangup_cause": cause,
        "hangup_side": hangup_side(disposition, cause),
    }
    extra = {k: v for k, v in (("sip_hangup_disposition", disposition),
                               ("hangup_cause_q850", get("variable_hangup_cause_q850")),
                               ("context", get("Caller-Context")),
                               ("sip_call_id", get("variable_sip_call_id"))) if v}
    for key, value in (call_info or {}).items():
        if key == "extra" and isinstance(value, dict):
            extra.update(value)
        elif key in CDR_FIELDS:
            record[key] = value
        else:
            extra[key] = value
    if extra:
        record["extra"] = extra
    return record


def hangup_side(disposition, cause):
    if disposition in _CALLER_DISPOSITIONS or cause in _CALLER_CAUSES:
        return "caller"
    if disposition in _ENGINE_DISPOSITIONS:
        return "engine"
    return ""


def _time(usec, sec):
    """UTC datetime from a microsecond stamp (preferred) or a seconds stamp; '0'/absent = None."""
    for value, scale in ((usec, 1_000_000), (sec, 1)):
        try:
            number = int(value)
        except (TypeError, ValueError):
            continue
        if number > 0:
            return datetime.datetime.fromtimestamp(number / scale, datetime.timezone.utc)
    return None


def _int(value, fallback):
    try:
        return int(value)
    except (TypeError, ValueError):
        return fallback


def _seconds(a, b):
    return int((b - a).total_seconds()) if a and b else None
