"""Callers' personal data (PIPL): find resident ID and bank card numbers, mask them, keep the clear
form only encrypted.

- `find(text)`: spans of resident ID numbers (18 characters, ISO 7064 MOD 11-2 checksum) and bank
  card numbers (16-19 digits, Luhn), keyed (`3301...`) or spoken (`三三零一...`, as the bot's
  transcript writes them); a number inside a longer run of digits is not one.
- `mask_text(text)`: `3301**********1234` (first 4 and last 4 kept) for each one found.
- `seal(value)` / `unseal(token)`: JSON encrypted with Fernet (AES-128-CBC + HMAC-SHA256, the
  `cryptography` package) under the key in HOTLINE_PII_KEY (`hotline privacy keygen` makes one).
  Without a key nothing is sealed: the masked form is all that is kept (and a warning says so once).
- `protect(fields, names)`: masks the named fields of a record in place and returns the sealed
  clear copies of the ones that changed (what the CDR keeps in extra["pii_sealed"]).
- `MaskingFilter`: a logging filter that masks every log line (lookup URLs, digits, transcripts).
"""
import json
import logging
import os
import re

KEY_ENV = "HOTLINE_PII_KEY"
SEALED_KEY = "pii_sealed"            # in a CDR's extra: the clear copies of the masked fields

log = logging.getLogger("hotline.privacy")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
# Spoken digits (ASR output, Mandarin read-backs) map one character to one digit, so spans found in
# the translated text are the spans of the original.
_SPOKEN = str.maketrans("零〇洞一幺壹二两贰三叁四肆五伍六陆七柒八捌九玖", "00011122233445566778899")
# A run of 16-19 digits (the last of an ID may be X), single spaces allowed between them (the
# Mandarin recogniser writes words apart: "三 三 零 一 ..."), not inside a longer run.
_CANDIDATE = re.compile(r"(?<![0-9])[0-9](?: ?[0-9]){14,18}(?: ?[0-9Xx])(?![0-9])")
_UNSPACED = re.compile(r"(?<![0-9])[0-9]{15,18}[0-9Xx](?![0-9])")
_warned_no_key = False


class PrivacyError(Exception):
    """The clear form cannot be had: no key, a wrong key, or a damaged token."""


def id_number_valid(value):
    value = value.upper()
    if not re.fullmatch(r"[0-9]{17}[0-9X]", value):
        return False
    total = sum(int(c) * w for c, w in zip(value[:17], _ID_WEIGHTS))
    return "10X98765432"[total % 11] == value[17]


def luhn_valid(digits):
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def find(text):
    """[(start, end, kind)] of the ID and card numbers in text (kind: "id" or "card")."""
    if not isinstance(text, str) or len(text) < 16:
        return []
    plain = text.translate(_SPOKEN)
    spans = []
    for m in _CANDIDATE.finditer(plain):
        kind = _kind(m.group().replace(" ", ""))
        if kind:
            spans.append((m.start(), m.end(), kind))
        elif " " in m.group():
            # a spaced run that is no number as a whole may hold one unspaced ("<ID> 5 tries")
            for sub in _UNSPACED.finditer(m.group()):
                kind = _kind(sub.group())
                if kind:
                    spans.append((m.start() + sub.start(), m.start() + sub.end(), kind))
    return spans


def _kind(value):
    if len(value) == 18 and id_number_valid(value):
        return "id"
    if value.isdigit() and 16 <= len(value) <= 19 and luhn_valid(value):
        return "card"
    return None


def mask_number(value):
    """`3301**********1234`: what anyone may see of an ID or card number (the first 4 and last 4
    characters; separators between them are dropped)."""
    chars = [c for c in value if c != " "]
    return "".join(chars[:4]) + "*" * (len(chars) - 8) + "".join(chars[-4:])


def mask_text(text):
    """text with every ID and card number masked; anything else unchanged."""
    spans = find(text)
    if not spans:
        return text
    out, last = [], 0
    for start, end, _ in spans:
        out.append(text[last:start])
        out.append(mask_number(text[start:end]))
        last = end
    out.append(text[last:])
    return "".join(out)


def mask_value(value):
    """A JSON-like value (dicts, lists, text) with every string masked; a new object."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {k: mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(v) for v in value]
    return value


# --- encryption ------------------------------------------------------------------------------

def new_key():
    from cryptography.fernet import Fernet
    return Fernet.generate_key().decode("ascii")


def _fernet(env=None):
    key = (os.environ if env is None else env).get(KEY_ENV)
    if not key:
        return None
    from cryptography.fernet import Fernet
    try:
        return Fernet(key.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise PrivacyError(f"{KEY_ENV} is not a key made by `hotline privacy keygen` "
                           "(32 bytes, URL-safe base64)") from None


def check_key(env=None):
    """Start-up check: a bad key is an error, a missing one a warning (clear forms are dropped)."""
    if _fernet(env) is None:
        log.warning("%s is not set: personal data (ID and card numbers) is stored masked only; its "
                    "clear form is not kept", KEY_ENV)


def seal(value, env=None):
    """Encrypted JSON of value, or None without a key (then the clear form is not kept)."""
    global _warned_no_key
    f = _fernet(env)
    if f is None:
        if not _warned_no_key:
            _warned_no_key = True
            log.warning("%s is not set: clear personal data is dropped, only the masked form is kept",
                        KEY_ENV)
        return None
    return f.encrypt(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8")).decode("ascii")


def unseal(token, env=None):
    from cryptography.fernet import InvalidToken
    f = _fernet(env)
    if f is None:
        raise PrivacyError(f"{KEY_ENV} is not set: the clear form cannot be read")
    try:
        return json.loads(f.decrypt(str(token).encode("ascii")).decode("utf-8"))
    except (InvalidToken, UnicodeEncodeError, ValueError):
        raise PrivacyError(f"cannot decrypt with this {KEY_ENV} (another key, or a damaged record)") from None


def protect(fields, names, env=None):
    """Mask fields[name] for each name in place; the sealed clear copies of the changed ones (or
    None when nothing changed or there is no key)."""
    clear = {}
    for name in names:
        value = fields.get(name)
        if value is None:
            continue
        masked = mask_value(value)
        if masked != value:
            clear[name] = value
            fields[name] = masked
    return seal(clear, env) if clear else None


def reveal(fields, sealed, env=None):
    """fields with the clear copies from `sealed` put back (a new dict)."""
    clear = unseal(sealed, env)
    return {**fields, **clear}


# --- logs --------------------------------------------------------------------------------------

class MaskingFilter(logging.Filter):
    """Masks ID and card numbers in every record's message before any handler formats it."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:           # a broken format: let logging report it as usual
            return True
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def install_log_masking(handlers):
    for handler in handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
