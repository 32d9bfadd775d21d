"""Slot values a bot collects: ID numbers, phone numbers, digit strings — spoken or keyed.

Callers read numbers digit by digit in Mandarin ("幺三八零零幺三八零零零"), often mixing in
Arabic digits from the recogniser, spaces and filler words; DTMF callers key them and end with '#'.
`parse_digits` keeps only what is a digit (or the ID number's check letter X), so the caller's
filler never becomes part of a number, and the validators say why a value is refused so the bot
can say it.
"""
import datetime
import re

# Spoken forms of each digit: 幺 (yāo) for 1 and 洞 for 0 are how numbers are read on the phone;
# 两 for 2, 拐 for 7 and 勾 for 9 are common too. Financial forms (壹贰...) come from typed text.
_DIGIT_CHARS = {
    "0": "0零〇洞o○",
    "1": "1一幺壹",
    "2": "2二两贰",
    "3": "3三叁",
    "4": "4四肆",
    "5": "5五伍",
    "6": "6六陆",
    "7": "7七拐柒",
    "8": "8八捌",
    "9": "9九勾玖",
}
DIGIT_OF = {ch: d for d, chars in _DIGIT_CHARS.items() for ch in chars}
# The ID number's check character X: said as the letter, "叉" or "艾克斯"; keyed as '*' (the
# convention hotlines announce: "最后一位是X请按星号键").
_X_WORDS = re.compile(r"艾克斯|埃克斯|爱克斯|叉|[xX×＊*]")

READ_DIGIT = {"0": "零", "1": "幺", "2": "二", "3": "三", "4": "四", "5": "五", "6": "六",
              "7": "七", "8": "八", "9": "九", "X": "X"}

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"

SLOT_TYPES = ("id_number", "phone", "digits")


def parse_digits(text, allow_x=False):
    """The digits said or typed in `text`, in order ("幺三八 0013" -> "1380013").

    '十', '百' and such are not digits: a caller who says "一百" has not read a number digit by
    digit, and the length check that follows asks again rather than guessing.
    """
    if allow_x:
        text = _X_WORDS.sub("X", text)
    out = []
    for ch in text:
        if ch in DIGIT_OF:
            out.append(DIGIT_OF[ch])
        elif ch == "X" and allow_x:
            out.append("X")
    return "".join(out)


def id_check_char(first17):
    return ID_CHECK[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS)) % 11]


def check_id_number(value):
    """None if `value` is a valid 18-character resident ID number, else the reason (a key of the
    bot's slot messages: 'length', 'format', 'date', 'checksum')."""
    if len(value) != 18:
        return "length"
    if not value[:17].isdigit() or not (value[17].isdigit() or value[17] == "X"):
        return "format"
    try:
        born = datetime.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "date"
    if born.year < 1900 or born > datetime.date.today():
        return "date"
    if id_check_char(value[:17]) != value[17]:
        return "checksum"
    return None


def check_phone(value):
    """Mainland mobile numbers: 11 digits, 1 then 3-9."""
    if len(value) != 11:
        return "length"
    if not value.isdigit() or value[0] != "1" or value[1] not in "3456789":
        return "format"
    return None


def check_digits(value, min_len, max_len):
    if not value.isdigit():
        return "format"
    if not min_len <= len(value) <= max_len:
        return "length"
    return None


def group(value, sizes):
    """Split for reading back: phone 3-4-4, ID number 6-8-4 (area, birth date, sequence+check)."""
    out, at = [], 0
    for size in sizes:
        if at >= len(value):
            break
        out.append(value[at:at + size])
        at += size
    if at < len(value):
        out.append(value[at:])
    return out


def read_back(value, sizes=(4,)):
    """Digit by digit in Chinese characters, grouped with commas so TTS pauses between groups and
    never reads "13800138000" as one big number ("幺三八，零零幺三，八零零零")."""
    sizes = tuple(sizes) * (len(value) // max(1, sum(sizes)) + 1) if len(sizes) == 1 else sizes
    return "，".join("".join(READ_DIGIT.get(d, d) for d in part) for part in group(value, sizes))


class SlotType:
    """How one slot type is parsed, checked and read back."""

    def __init__(self, kind, min_len=1, max_len=20):
        if kind not in SLOT_TYPES:
            raise ValueError(f"unknown slot type {kind!r}; known: {', '.join(SLOT_TYPES)}")
        self.kind, self.min_len, self.max_len = kind, min_len, max_len

    @property
    def length(self):
        """Digits after which keyed input is complete without '#'."""
        return {"id_number": 18, "phone": 11}.get(self.kind, self.max_len)

    def parse(self, text):
        return parse_digits(text, allow_x=self.kind == "id_number")

    def check(self, value):
        if self.kind == "id_number":
            return check_id_number(value)
        if self.kind == "phone":
            return check_phone(value)
        return check_digits(value, self.min_len, self.max_len)

    def read_back(self, value):
        sizes = {"id_number": (6, 8, 4), "phone": (3, 4, 4)}.get(self.kind, (4,))
        return read_back(value, sizes)

    def mask(self, value):
        """For logs: enough to recognise a value, not enough to misuse an ID number."""
        if len(value) <= 4:
            return value
        return value[:3] + "*" * (len(value) - 7) + value[-4:] if len(value) > 7 else "*" * (len(value) - 2) + value[-2:]
