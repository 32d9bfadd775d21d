"""Phone numbers as people write them -> the national form the trunk dials, or InvalidNumber.

Mainland China numbering: mobiles are 11 digits 1[3-9]xxxxxxxxx; landlines are the trunk prefix 0,
an area code (010 and 02x: two digits after the 0, with 8-digit subscribers; 0[3-9]xx: three digits,
with 7- or 8-digit subscribers), then the subscriber number; `+86` / `0086` / `86` before a number
replaces that 0. Short service numbers (110, 12345, 95xxx, 400/800 numbers) are kept as they are:
the dial-block list, not this module, decides which of them may be dialled.
"""
import re
from dataclasses import dataclass

_SEPARATORS = re.compile(r"[\s\-().\u00a0\u3000\uff08\uff09\u2014]")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_BIG_CITY = re.compile(r"^0(10|2\d)(\d{8})$")            # 010 Beijing, 020-029
_CITY = re.compile(r"^0([3-9]\d\d)(\d{7,8})$")            # 0311, 0571, ...
_SERVICE = re.compile(r"^(1\d{2,4}|9[56]\d{3,6}|[48]00\d{7})$")    # 110, 12345, 95588, 4001234567


class InvalidNumber(ValueError):
    """Not a number the trunk can dial; str() says why, in words an operator can act on."""


@dataclass(frozen=True)
class Number:
    national: str          # 13800138000, 01012345678, 12345
    kind: str              # mobile | landline | service

    def __str__(self):
        return self.national


def normalise(raw, area_code=None):
    """`raw` as typed or imported ('+86 138-0013-8000', '(010) 1234 5678', '0086571...') -> Number.
    `area_code` ('010'): a local landline number given without it is completed with it."""
    text = str(raw if raw is not None else "")
    if not text.strip():
        raise InvalidNumber("empty number")
    if len(text) > 64:
        raise InvalidNumber(f"too long for a phone number ({len(text)} characters)")
    digits = _SEPARATORS.sub("", text)
    # full-width digits from spreadsheets typed with a Chinese input method
    digits = digits.translate({0xFF10 + i: ord("0") + i for i in range(10)} | {0xFF0B: ord("+")})
    if not re.fullmatch(r"\+?\d+", digits):
        bad = next((c for c in digits if not (c.isdigit() or c == "+")), "?")
        raise InvalidNumber(f"{text.strip()[:40]!r}: {bad!r} is not a digit")
    international = False
    for prefix in ("+86", "0086"):
        if digits.startswith(prefix):
            digits, international = digits[len(prefix):], True
            break
    else:
        if digits.startswith("+") or digits.startswith("00"):
            raise InvalidNumber(f"{text.strip()[:40]!r}: an international number outside China")
        if len(digits) in (12, 13) and digits.startswith("86") and _MOBILE.match(digits[2:]):
            digits, international = digits[2:], True          # 8613800138000: the + was lost
    if international:
        if _MOBILE.match(digits):
            return Number(digits, "mobile")
        digits = "0" + digits.lstrip("0")                        # +86 10 ... = 010 ...
    if _MOBILE.match(digits):
        return Number(digits, "mobile")
    if digits.startswith("0") and _MOBILE.match(digits[1:]):
        return Number(digits[1:], "mobile")                      # 013800138000: a 0 dialled before a mobile
    if _BIG_CITY.match(digits) or _CITY.match(digits):
        return Number(digits, "landline")
    if digits.startswith("0"):
        return _bad_landline(text, digits)
    if not international and _SERVICE.match(digits):
        return Number(digits, "service")
    if digits.startswith("1") and len(digits) != 11:
        raise InvalidNumber(f"{text.strip()[:40]!r}: a mobile number has 11 digits, not {len(digits)}")
    if len(digits) in (7, 8) and digits[0] in "2345678":
        if not area_code:
            raise InvalidNumber(f"{text.strip()[:40]!r}: a local number needs its area code "
                                "(or set outbound_calls.area_code)")
        return normalise(str(area_code) + digits)
    raise InvalidNumber(f"{text.strip()[:40]!r}: neither a mobile (11 digits, 1[3-9]...) nor a "
                        "landline with its area code (0xx or 0xxx)")


def _bad_landline(text, digits):
    if re.match(r"^0(10|2\d)", digits):
        need = "8 digits after the area code"
    else:
        need = "7 or 8 digits after the area code"
    raise InvalidNumber(f"{text.strip()[:40]!r}: a landline has {need} "
                        f"({len(digits)} digits in all here)")


def valid_area_code(code):
    return bool(re.fullmatch(r"0(10|2\d|[3-9]\d\d)", str(code or "")))


def lookup_forms(number):
    """The forms a number is looked up in: national (if it normalises) and its bare digits."""
    raw = "".join(ch for ch in str(number or "") if ch.isdigit())
    keys = []
    try:
        keys.append(normalise(number).national)
    except InvalidNumber:
        pass
    if raw and raw not in keys:
        keys.append(raw)
    return keys
