"""Mandarin readouts as Chinese text, for the IVR `say` node and for TTS input.

Numbers use cn2an (well kept, handles 零 placement and 万/亿 units); digit-by-digit
readings are done here because cn2an reads a string as one number.
"""
import datetime
import re
from decimal import Decimal, InvalidOperation

import cn2an

DIGIT_WORDS = "零一二三四五六七八九"


def number(n):
    """12345 -> 一万二千三百四十五; negative and decimals accepted (-3.5 -> 负三点五)."""
    try:
        value = Decimal(str(n).strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {n!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {n!r}")
    text = format(value, "f")
    return cn2an.an2cn(text, "low")


def digits(s, yao=False):
    """13800138000 -> 一三八零零一三八零零零; yao=True reads 1 as 幺 (as on phone lines)."""
    s = str(s).strip()
    if not s or not s.isdigit() or not s.isascii():
        raise ValueError(f"not a digit string: {s!r}")
    words = DIGIT_WORDS.replace("一", "幺") if yao else DIGIT_WORDS
    return "".join(words[int(c)] for c in s)


def money(amount):
    """Decimal('1234.50') -> 一千二百三十四元五角; rounds to the fen."""
    try:
        value = Decimal(str(amount).strip()).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise ValueError(f"not an amount of money: {amount!r}") from None
    sign = "负" if value < 0 else ""
    value = abs(value)
    yuan = int(value)
    fen_total = int((value - yuan) * 100)
    jiao, fen = divmod(fen_total, 10)
    text = sign
    if yuan or not fen_total:
        text += number(yuan) + "元"
    if jiao:
        text += DIGIT_WORDS[jiao] + "角"
    elif fen and yuan:
        text += "零"  # 一元零五分
    if fen:
        text += DIGIT_WORDS[fen] + "分"
    if not fen_total:
        text += "整"
    return text


def date(d):
    """date(2026, 10, 1), '2026-10-01' or '2026年10月1日' -> 二零二六年十月一日."""
    if isinstance(d, datetime.datetime):
        d = d.date()
    if not isinstance(d, datetime.date):
        m = re.fullmatch(r"\s*(\d{4})\s*[-/年.]\s*(\d{1,2})\s*[-/月.]\s*(\d{1,2})\s*日?\s*", str(d))
        if not m:
            raise ValueError(f"not a date: {d!r}")
        try:
            d = datetime.date(*(int(x) for x in m.groups()))
        except ValueError as exc:
            raise ValueError(f"not a date: {d!r}: {exc}") from None
    return f"{digits(str(d.year))}年{number(d.month)}月{number(d.day)}日"


def id_number(s):
    """Resident ID digits one by one; a final X is read 叉."""
    s = str(s).strip().upper()
    if not re.fullmatch(r"\d+X?", s):
        raise ValueError(f"not an ID number: {s!r}")
    text = digits(s.rstrip("X"))
    return text + "叉" if s.endswith("X") else text


def digit_runs_as_words(text, min_run=5):
    """Spell digit runs in Chinese so TTS reads them as a Mandarin caller expects:
    runs of min_run or more (phone, ID, hotline numbers) digit by digit, shorter ones as numbers.
    espeak-ng would otherwise read 13800138000 as billions."""
    def spell(m):
        run = m.group(0)
        if len(run) >= min_run or run.startswith("0"):
            return digits(run)
        return number(int(run))
    return re.sub(r"[0-9]+", spell, text)
