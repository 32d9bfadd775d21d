"""Reader for the raw ESL transcripts captured from a real FreeSWITCH (our copy: tests/fixtures/esl).

Format (fixtures README): `### <C->S|S->C> [<conn>] t=+<s> len=<N>` then exactly N raw bytes, one
newline, `### END`; `### NOTE ...` lines are annotations. Used by the conformance suite, the parser
tests and the replay benchmark, so all three read the same bytes the same way.
"""
import os
import re
from dataclasses import dataclass

_RECORD = re.compile(rb"^### (C->S|S->C) \[([^\]]+)\] t=\+([0-9.]+) len=(\d+)(?: truncated-from=\d+)?\n", re.M)
_NOTE = re.compile(rb"^### NOTE t=\+([0-9.]+) (.*)$", re.M)


@dataclass
class Record:
    direction: str      # "C->S" (client sent) or "S->C" (switch sent)
    conn: str           # connection name, e.g. "control", "events-plain", "outbound-socket"
    t: float            # seconds since capture start
    data: bytes         # the raw bytes


@dataclass
class Note:
    t: float
    text: str


def default_fixture_dir():
    """Our copy of the transcripts (tests/fixtures/esl, kept in the repository so a fresh clone
    runs every test), unless HOTLINE_ESL_FIXTURES names another directory."""
    here = os.path.dirname(os.path.abspath(__file__))
    override = os.environ.get("HOTLINE_ESL_FIXTURES", "")
    if override:
        if not os.path.isdir(override):
            raise FileNotFoundError(f"HOTLINE_ESL_FIXTURES={override!r} is not a directory")
        return os.path.normpath(override)
    return os.path.normpath(os.path.join(here, "..", "..", "tests", "fixtures", "esl"))


def read_transcript(path):
    """Records and notes of one transcript file, in capture order."""
    with open(path, "rb") as fh:
        data = fh.read()
    items = []
    pos = 0
    while True:
        m = _RECORD.search(data, pos)
        if not m:
            break
        for note in _NOTE.finditer(data, pos, m.start()):
            items.append(Note(float(note.group(1)), note.group(2).decode("utf-8", "replace")))
        start = m.end()
        n = int(m.group(4))
        raw = data[start:start + n]
        if data[start + n:start + n + 9] != b"\n### END\n" and data[start + n:start + n + 8] != b"\n### END":
            raise ValueError(f"{path}: record at byte {m.start()} does not end with ### END")
        items.append(Record(m.group(1).decode(), m.group(2).decode(), float(m.group(3)), raw))
        pos = start + n
    for note in _NOTE.finditer(data, pos):
        items.append(Note(float(note.group(1)), note.group(2).decode("utf-8", "replace")))
    return items


def records(path, conn=None, direction=None):
    return [r for r in read_transcript(path) if isinstance(r, Record)
            and (conn is None or r.conn == conn) and (direction is None or r.direction == direction)]


def stream(path, conn, direction="S->C"):
    """The bytes one side of one connection carried, concatenated (for replay)."""
    return b"".join(r.data for r in records(path, conn, direction))
