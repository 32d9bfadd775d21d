"""CDR records as the store handles them: checked, JSON-safe, UTC times, ready for a row.

`normalize` turns what the engine hands to CdrStore.write into the form that is both spooled (JSON
lines) and written to the database; `as_dict` turns a stored row back into what get/list return.
"""
import datetime
import json

from engine import privacy
from engine.infra.clock import naive_utc, utc
from engine.cdr.models import CDR_FIELDS, FLOAT_FIELDS, INT_FIELDS, JSON_FIELDS, TIME_FIELDS

# Fields where callers' ID and card numbers turn up (keyed digits in the IVR path, the bot's
# transcript and slots, look-up data in extra, a caller name): stored masked, the clear copies only
# encrypted in extra[privacy.SEALED_KEY] (engine.privacy; revealed by `hotline cdr show --reveal`
# or the control API, audited).
PERSONAL_FIELDS = ("caller_name", "ivr_path", "bot_transcript", "extra")

HANGUP_SIDES = ("caller", "engine", "agent", "system", "")


def normalize(record) -> dict:
    """A JSON-safe copy of a CDR record. Unknown keys go to `extra`; values of the wrong type are
    kept in extra["invalid"] (as text) instead of failing the write. Only a missing uuid raises."""
    if not isinstance(record, dict):
        raise TypeError(f"a CDR record is a dict, got {type(record).__name__}")
    uuid = record.get("uuid")
    if not isinstance(uuid, str) or not uuid or len(uuid) > 64:
        raise ValueError(f"a CDR needs the call uuid (text up to 64 characters), got {uuid!r}")
    extra = dict(record.get("extra") or {}) if isinstance(record.get("extra"), dict) else {}
    if record.get("extra") is not None and not isinstance(record.get("extra"), dict):
        extra["extra"] = record["extra"]
    invalid = {}
    row = {}
    for key, value in record.items():
        if key == "extra":
            continue
        if key not in CDR_FIELDS:
            extra[str(key)] = value
            continue
        try:
            row[key] = clean(key, value)
        except (TypeError, ValueError, OverflowError):
            invalid[key] = repr(value)
            row[key] = "" if key == "hangup_side" else None
    if invalid:
        extra["invalid"] = {**extra.get("invalid", {}), **invalid}
    if extra:
        row["extra"] = json_safe(extra)
    protect_personal_data(row)
    return row


def protect_personal_data(row):
    """Mask ID and card numbers in the row's PERSONAL_FIELDS; keep their clear copies sealed."""
    sealed = privacy.protect(row, PERSONAL_FIELDS)
    if sealed:
        row["extra"] = {**(row.get("extra") or {}), privacy.SEALED_KEY: sealed}


def clean(key, value):
    if value is None:
        return "" if key == "hangup_side" else None
    if key in TIME_FIELDS:
        return iso(parse_time(value))
    if key in INT_FIELDS:
        if isinstance(value, bool):
            raise TypeError("bool")
        return int(round(float(value)))
    if key in FLOAT_FIELDS:
        if isinstance(value, bool):
            raise TypeError("bool")
        return float(value)
    if key in JSON_FIELDS:
        return json_safe(value)
    if key == "hangup_side" and value not in HANGUP_SIDES:
        raise ValueError(value)
    if not isinstance(value, str):
        raise TypeError(type(value).__name__)
    return value


def json_safe(value):
    return json.loads(json.dumps(value, ensure_ascii=False, default=jsonable))


def jsonable(obj):
    return obj.isoformat() if isinstance(obj, (datetime.datetime, datetime.date)) else str(obj)


def parse_time(value):
    """A naive UTC datetime from a datetime (naive = UTC), epoch seconds, or ISO 8601 text."""
    if isinstance(value, datetime.datetime):
        return naive(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).replace(tzinfo=None)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        return naive(datetime.datetime.fromisoformat(text))
    raise TypeError(f"not a time: {value!r}")


def naive(dt):
    """The naive UTC datetime the tables hold (engine.infra.clock: one place for time)."""
    return naive_utc(dt)


def aware(dt):
    """A stored time as an aware UTC datetime; anything else unchanged."""
    return utc(dt) if isinstance(dt, datetime.datetime) else dt


def iso(dt):
    return aware(naive(dt)).isoformat()


def db_value(key, value):
    return parse_time(value) if key in TIME_FIELDS and value is not None else value


def as_dict(row):
    out = {k: getattr(row, k) for k in CDR_FIELDS}
    for k in TIME_FIELDS + ("created_at", "updated_at"):
        out[k] = aware(getattr(row, k))
    return out


def keep_nul_text(fields):
    """PostgreSQL text cannot hold NUL: store U+FFFD in the column and the exact original text in
    extra["nul_text"] (JSON escapes NUL as \\u0000), so nothing the caller sent is lost."""
    originals = {k: v for k, v in fields.items() if isinstance(v, str) and "\x00" in v}
    if not originals:
        return
    for key, value in originals.items():
        fields[key] = value.replace("\x00", "\ufffd")
    fields["extra"] = {**(fields.get("extra") or {}), "nul_text": originals}
