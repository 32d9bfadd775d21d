"""ESL wire format: incremental parsing of what FreeSWITCH sends, and encoding of what we send.

Why our own parser: greenswitch URL-decodes a whole event body before splitting it into lines, so a
caller-controlled `%0A` forges headers (DEPENDENCIES.md). Here every header value is decoded on its
own, after the lines are split, and only when somebody reads it.

A message is a header block ended by an empty line, then `Content-Length` bytes of body. The parser
accepts data cut at any byte and several messages in one read, and refuses what no switch sends
(a header line without a colon, a Content-Length that is not a number) with `ProtocolError`, after
which the connection must be dropped: we cannot resynchronise a byte stream we no longer understand.
What is only too big (a caller's oversized name repeated in every event of its channel) is cut,
never a reason to drop the connection: see MAX_VALUE_BYTES and `Message.truncated`.
"""
import json
import re
from urllib.parse import unquote, unquote_to_bytes

MAX_HEADER_BYTES = 64 * 1024          # a CHANNEL_DATA block is ~7 KB; past this, blocks are cut line by line
# A caller sets its display name, and the switch takes SIP messages up to 2 MB (sofia-sip nta.c:
# `if (maxsize == 0) maxsize = 2 * 1024 * 1024`): its CHANNEL_DATA repeats the name in several
# headers, URL-encoded (9 bytes a Chinese character), so a block can reach tens of MB. A block over
# MAX_HEADER_BYTES is read line by line: each value is cut to MAX_VALUE_BYTES (at a character
# boundary) and the block kept to MAX_LONG_BLOCK_BYTES, so memory stays bounded and the call served.
MAX_VALUE_BYTES = 4096
MAX_LONG_BLOCK_BYTES = 1024 * 1024
ABSURD_BYTES = 256 * 1024 * 1024      # a header block or body beyond any switch's: not ESL, drop the link
_NAME_ALLOWANCE = 256                 # a header name and ": " before the value
MAX_BODY_BYTES = 8 * 1024 * 1024      # `show channels as json` at 1000 channels stays well below;
# a plain event over it (a caller's name of megabytes in every header) is cut as it streams by,
# any other body over it is read past and delivered empty with "body" in Message.truncated


class ProtocolError(Exception):
    """The peer sent bytes that are not ESL; the connection cannot be trusted any more."""


def _parse_header_lines(block, what):
    headers = {}
    for line in block.split("\n"):
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ProtocolError(f"{what}: header line without a name and colon: {line[:80]!r}")
        if value.startswith(" "):
            value = value[1:]
        headers[name] = value
    return headers


def _peek(block, name):
    """The raw value of header `name` in an unsplit plain header block, or None.

    The last occurrence wins, as in the full split: the switch repeats a header when it renames
    an event (fixture 01: `Event-Name: COMMAND` ... `Event-Name: PRIVATE_COMMAND`).
    """
    key = name + ": "
    start = block.rfind("\n" + key)
    if start >= 0:
        start += len(key) + 1
    elif block.startswith(key):
        start = len(key)
    else:
        return None
    end = block.find("\n", start)
    return block[start:] if end < 0 else block[start:end]


def _decode(value):
    return unquote(value) if "%" in value else value


class Message:
    """One ESL message: its outer headers (never URL-encoded) and raw body bytes."""

    __slots__ = ("headers", "body", "line", "truncated")

    def __init__(self, headers, body=b"", line=None, truncated=()):
        self.headers = headers
        self.body = body
        self.line = line      # the command line, for messages parsed with Parser(commands=True)
        self.truncated = truncated    # names of headers cut (or "...dropped") in an over-long block

    @property
    def content_type(self):
        return self.headers.get("Content-Type", "")

    @property
    def reply_text(self):
        return self.headers.get("Reply-Text", "")

    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return f"<Message {self.content_type} {len(self.body)}B>"


class Event:
    """A switch event, from `text/event-plain` or `text/event-json`.

    `event[name]` / `event.get(name)` return decoded values; decoding happens on first access
    (DEPENDENCIES.md: decoding only what is read runs at 160k events/s against 70k).
    """

    __slots__ = ("_block", "_raw_headers", "_decoded", "body", "format")

    def __init__(self, raw_headers, body="", fmt="plain", block=None):
        self._raw_headers = raw_headers
        self._block = block           # plain header text not split yet (see _from_plain)
        self._decoded = {} if fmt == "plain" else None
        self.body = body
        self.format = fmt

    @property
    def _raw(self):
        if self._raw_headers is None:
            # Split on first use only: most events reach handlers that read just the name.
            self._raw_headers = dict(line.split(": ", 1) for line in self._block.split("\n"))
            self._block = None
        return self._raw_headers

    @classmethod
    def from_message(cls, msg):
        ctype = msg.content_type
        if ctype == "text/event-plain":
            return cls._from_plain(msg.body)
        if ctype == "text/event-json":
            return cls._from_json(msg.body)
        raise ProtocolError(f"not an event: {ctype!r}")

    @classmethod
    def _from_plain(cls, data):
        text = data.decode("utf-8", "replace")
        block, _, rest = text.partition("\n\n")
        if not rest and block and block.count(": ") == block.count("\n") + 1:
            # Plain values are URL-encoded (': ' becomes %3A%20), so one ': ' per line proves
            # the block well formed; two C-level counts instead of a Python loop per header.
            return cls(None, "", "plain", block=block)
        raw = _parse_header_lines(block, "event")
        body = ""
        length = raw.get("Content-Length")
        if length is not None:
            if not length.isdigit():
                raise ProtocolError(f"event: bad inner Content-Length {length[:20]!r}")
            body = rest[: int(length)] if rest else ""
        return cls(raw, body, "plain")

    @classmethod
    def from_plain_text(cls, text):
        """Parse the body of a plain event given as text (the simulator, tests)."""
        return cls._from_plain(text.encode("utf-8"))

    @classmethod
    def _from_json(cls, data):
        try:
            obj = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ProtocolError(f"event: invalid JSON body: {exc}") from None
        if not isinstance(obj, dict):
            raise ProtocolError("event: JSON body is not an object")
        body = obj.pop("_body", "")
        raw = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in obj.items()}
        return cls(raw, body, "json")

    def get(self, name, default=None):
        if self._decoded is None:           # JSON: values are not URL-encoded
            value = self._raw.get(name, default)
            return value[:MAX_VALUE_BYTES] if isinstance(value, str) else value
        try:
            return self._decoded[name]
        except KeyError:
            pass
        if self._block is not None and len(self._decoded) < 8:
            raw = _peek(self._block, name)     # a few lookups: C-level find, no split
        else:
            raw = self._raw.get(name)
        if raw is None:
            return default
        if len(raw) > MAX_VALUE_BYTES:        # a caller's 20,000-character name: cut as in a connect reply
            raw = _cut_value(raw)
        value = self._decoded[name] = _decode(raw)
        return value

    def __getitem__(self, name):
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name):
        return name in self._raw

    def header_names(self):
        return list(self._raw)

    def headers(self):
        """All headers decoded (costly on a hot path: CDRs and dumps only)."""
        return {k: self.get(k) for k in self._raw}

    @property
    def name(self):
        return self.get("Event-Name", "")

    @property
    def subclass(self):
        return self.get("Event-Subclass", "")

    @property
    def uuid(self):
        return self.get("Unique-ID", "")

    def __repr__(self):
        return f"<Event {self.name} {self.uuid}>"


class Parser:
    """Incremental ESL message parser: feed bytes, get complete messages.

    With commands=True it parses what a client sends (the switch's side, i.e. the simulator): the
    first line of each block is the command (`sendmsg <uuid>`, `api status`), kept in `.line`, and
    a block or body over the limits drops the client, as before (nothing there is a caller's data).
    """

    def __init__(self, max_header=MAX_HEADER_BYTES, max_body=MAX_BODY_BYTES, commands=False,
                 absurd=ABSURD_BYTES):
        self.commands = commands
        self._buf = bytearray()
        self._pending = None          # headers of a message whose body is not complete yet
        self._need = 0
        self._line = None
        self.max_header = max_header
        self.max_body = max_body
        self._long = None             # _LongBlock while reading a header block over max_header
        self._skip = False            # reading past a body over max_body (delivered empty, "body" cut)
        self._cutter = None           # _LongBlock of a plain event over max_body, its values cut
        self._cut_block = None        # (header text, cut names) of that event, once complete
        self.absurd = absurd
        self._truncated = ()

    def feed(self, data):
        self._buf += data
        out = []
        buf = self._buf
        pos = 0
        while True:
            if self._pending is None:
                if self._long is not None:
                    pos, block, truncated = self._long.lines(buf, pos)
                    if block is None:
                        break
                    self._long = None
                else:
                    end = buf.find(b"\n\n", pos)
                    if (end < 0 and len(buf) - pos > self.max_header) or end - pos > self.max_header:
                        if self.commands:       # the switch's side (the simulator) drops such a client
                            raise ProtocolError(f"header block over {self.max_header} bytes")
                        self._long = _LongBlock(self.absurd)
                        continue
                    if end < 0:
                        break
                    block = bytes(buf[pos:end]).decode("utf-8", "replace")
                    pos, truncated = end + 2, ()
                block = block.lstrip("\n")  # FreeSWITCH never sends blank lines first, but be lenient
                if not block:
                    continue
                line = None
                if self.commands:
                    line, _, block = block.partition("\n")
                    line = line.rstrip("\r")
                headers = _parse_header_lines(block, "message")
                length = headers.get("Content-Length")
                if length is None and self.commands:
                    # mod_event_socket's read_packet matches the name with strcasecmp: a client's
                    # `content-length` (fixtures 07, 08, 11, 12 send it lowercase) carries a body too
                    length = next((v for k, v in headers.items() if k.lower() == "content-length"), None)
                if length is None:
                    out.append(Message(headers, b"", line, truncated))
                    continue
                if not length.isdigit():
                    raise ProtocolError(f"bad Content-Length {length[:20]!r}")
                need = int(length)
                if need > self.absurd or (self.commands and need > self.max_body):
                    raise ProtocolError(f"body of {need} bytes is over the "
                                        f"{self.max_body if self.commands else self.absurd} limit")
                self._skip = need > self.max_body       # read past it: the stream stays in step
                if self._skip and headers.get("Content-Type") == "text/event-plain":
                    # a plain event is a header block too: its values are cut as it streams by
                    self._cutter, self._cut_block = _LongBlock(self.absurd), None
                elif self._skip:
                    truncated = (*truncated, "body")
                self._pending, self._need, self._line, self._truncated = headers, need, line, truncated
            if self._skip:
                if self._cutter is not None:
                    pos = self._cut_event(buf, pos)
                    if self._cutter is not None:
                        break                   # more of the event's headers to come
                taken = min(self._need, len(buf) - pos)
                pos, self._need = pos + taken, self._need - taken
                if self._need:
                    break
                body = b""
                if self._cut_block is not None:
                    block, cut = self._cut_block
                    body, self._cut_block = (block + "\n\n").encode("utf-8"), None
                    self._truncated = (*self._truncated, *cut)
            else:
                if len(buf) - pos < self._need:
                    break
                body = bytes(buf[pos:pos + self._need])
                pos += self._need
            out.append(Message(self._pending, body, self._line, self._truncated))
            self._pending = None
        if pos:
            del buf[:pos]
        return out


    def _cut_event(self, buf, pos):
        """Feed what is here of an over-long plain event body to its _LongBlock; once its header
        block is complete, keep it in _cut_block (the rest of the body is then read past)."""
        avail = min(self._need, len(buf) - pos)
        view = bytes(buf[pos:pos + avail])
        used, block, cut = self._cutter.lines(view, 0)
        if block is None and avail == self._need:       # the body ended without a blank line
            if used < avail:
                rest = view[used:]
                limit = MAX_VALUE_BYTES + _NAME_ALLOWANCE
                self._cutter._add(rest[:limit], cut=len(rest) > limit)
            used, block, cut = avail, "\n".join(self._cutter.kept), tuple(self._cutter.cut)
        self._need -= used
        if block is not None:
            self._cut_block, self._cutter = (block, cut), None
        return pos + used


class _LongBlock:
    """A header block over the limit, read line by line as it arrives: each value cut to
    MAX_VALUE_BYTES, lines past MAX_LONG_BLOCK_BYTES dropped, in bounded memory."""

    def __init__(self, absurd):
        self.kept, self.size, self.cut, self.skipping = [], 0, [], False
        self.read, self.absurd = 0, absurd

    def lines(self, buf, pos):
        """(new pos, block text or None until its blank line came, names of cut headers)."""
        self.read += len(buf) - pos       # an upper bound: bytes seen again on the next call count twice
        if self.read > self.absurd:
            raise ProtocolError(f"header block over {self.absurd} bytes: no switch sends that")
        limit = MAX_VALUE_BYTES + _NAME_ALLOWANCE
        while True:
            nl = buf.find(b"\n", pos)
            if self.skipping:              # the rest of a line already cut
                if nl < 0:
                    return len(buf), None, ()
                pos, self.skipping = nl + 1, False
                continue
            if nl < 0:
                if len(buf) - pos > limit:
                    self._add(bytes(buf[pos:pos + limit]), cut=True)
                    self.skipping = True
                    return len(buf), None, ()
                return pos, None, ()
            line, pos = bytes(buf[pos:nl]), nl + 1
            if not line:
                if self.kept:
                    return pos, "\n".join(self.kept), tuple(self.cut)
                continue
            self._add(line[:limit], cut=len(line) > limit)

    def _add(self, raw, cut):
        text = raw.decode("utf-8", "replace")
        name, sep, value = text.partition(": ")
        if cut or len(value) > MAX_VALUE_BYTES:
            text = f"{name}{sep}{_cut_value(value)}"
            self.cut.append(name)
        if self.size + len(text) > MAX_LONG_BLOCK_BYTES:
            if "...dropped" not in self.cut:
                self.cut.append("...dropped")
            return
        self.kept.append(text)
        self.size += len(text) + 1


def _cut_value(value):
    """`value` (URL-encoded) cut to MAX_VALUE_BYTES without a half escape or a half character."""
    value = re.sub(r"%[0-9A-Fa-f]?$", "", value[:MAX_VALUE_BYTES])
    for _ in range(4):                  # a UTF-8 character is at most 4 escaped bytes
        try:
            unquote_to_bytes(value).decode("utf-8")
            break
        except UnicodeDecodeError:
            value = re.sub(r"%[0-9A-Fa-f]{2}$", "", value)
    return value


def encode_command(line, headers=None, body=None):
    """Bytes for one command: a first line, optional headers, optional body.

    Callers pass already validated parts (engine.esl.commands builds them); this function only
    refuses line breaks that would split one command into two.
    """
    if "\n" in line or "\r" in line:
        raise ValueError("a command line cannot contain a line break")
    parts = [line]
    if headers:
        for name, value in headers.items():
            value = str(value)
            if "\n" in name or "\r" in name or "\n" in value or "\r" in value or ":" in name:
                raise ValueError(f"unsafe header {name!r}")
            parts.append(f"{name}: {value}")
    payload = b""
    if body is not None:
        payload = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        parts.append(f"Content-Length: {len(payload)}")
    return ("\n".join(parts) + "\n\n").encode("utf-8") + payload


def encode_message(headers, body=b""):
    """Bytes for a message as the switch sends it (the simulator's side of the wire).

    Headers are written in the order given, because FreeSWITCH's order differs by message type
    (`Content-Length` first on events, after `Content-Type` on api/response); a body without a
    `Content-Length` header in `headers` gets one appended.
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    lines = [f"{name}: {value}" for name, value in headers.items()]
    if body and "Content-Length" not in headers:
        lines.append(f"Content-Length: {len(body)}")
    return ("\n".join(lines) + "\n\n").encode("utf-8") + body
