"""Event header templates taken from the real switch, and the two wire encodings of an event.

FreeSWITCH writes an event's headers in a fixed order per event type: the core block (Event-Name,
Core-UUID, ..., Event-Sequence), event-specific headers, the channel block (Channel-State ...
Caller-*), the channel variables, and sometimes more event-specific headers after them
(CHANNEL_EXECUTE puts Application-* last). Rather than hand-typing that per event, the order is
read from the captured transcripts (`python -m engine.sim.headers` regenerates event_headers.json)
and the simulator fills each name from what it knows; `variable_*` marks where variables go.
"""
import json
import os
import sys
from importlib import resources
from urllib.parse import quote

DATA_FILE = str(resources.files("engine.sim") / "event_headers.json")   # shipped as package data
VARIABLES = "variable_*"

# URL-encoding as FreeSWITCH's switch_url_encode does it: bytes outside ' '..'~' and the
# SWITCH_URL_UNSAFE set (\r\n "#%&+:;<=>?@[\\]^`{|} and space) are escaped, everything else is kept
# (fixtures: `Sun,%2022%20Nov`, `%3Brport`, `'ESL%20Fixture%201'`, `%26park()`).
_SAFE = "!$'()*,/"


def event_key(name, subclass=""):
    return f"CUSTOM::{subclass}" if name == "CUSTOM" and subclass else name


def _merge(order, names):
    """Insert names not yet in `order` right after their predecessor in `names`."""
    prev = None
    for name in names:
        if name not in order:
            idx = order.index(prev) + 1 if prev is not None else 0
            order.insert(idx, name)
        prev = name


def generate(fixture_dir):
    """{event key: {"order": [...], "calling": [file, function, line]}} from the plain transcripts.

    CHANNEL_DATA (the outbound `connect` reply and `uuid_dump`) is collected too, from its
    command/reply headers and api/response bodies.
    """
    from engine.esl.protocol import Event, Parser
    from engine.sim.transcript import records
    out = {}
    for fname in sorted(os.listdir(fixture_dir)):
        if not fname.endswith(".txt") or "json-events" in fname:
            continue
        for rec in records(os.path.join(fixture_dir, fname), direction="S->C"):
            for msg in Parser().feed(rec.data):
                if msg.content_type == "text/event-plain":
                    ev = Event.from_message(msg)
                elif msg.headers.get("Event-Name") == "CHANNEL_DATA":
                    ev = Event({k: v for k, v in msg.headers.items() if k not in _REPLY_TAIL})
                elif msg.content_type == "api/response" and msg.body.startswith(b"Event-Name: CHANNEL_DATA"):
                    ev = Event.from_plain_text(msg.text().rstrip("\n") + "\n\n")
                else:
                    continue
                _collect(out, ev)
    return out


_REPLY_TAIL = ("Content-Type", "Reply-Text", "Socket-Mode", "Control")


def _collect(out, ev):
    names = []
    for name in ev.header_names():
        if name.startswith("variable_"):
            name = VARIABLES
        if name not in names and name != "Content-Length":
            names.append(name)
    entry = out.setdefault(event_key(ev.name, ev.subclass), {"order": [], "calling": [
        ev.get("Event-Calling-File", ""), ev.get("Event-Calling-Function", ""),
        ev.get("Event-Calling-Line-Number", "")], "count": 0})
    _merge(entry["order"], names)
    entry["count"] += 1


_templates = None


def templates():
    global _templates
    if _templates is None:
        with open(DATA_FILE, encoding="utf-8") as fh:
            _templates = json.load(fh)
    return _templates


def order_headers(key, fields, variables=()):
    """(name, value) pairs in the real switch's order for this event type.

    `fields` holds every header value we know; names the template lists but we lack are left out
    (the conformance suite reports them); names we have that the template does not list go before
    the variables, where event-specific headers usually sit.
    """
    tpl = templates().get(key)
    order = tpl["order"] if tpl else ["Event-Name", "Core-UUID", VARIABLES]
    out = []
    used = set()
    for name in order:
        if name == VARIABLES:
            for extra, value in fields.items():
                if extra not in used and extra not in order:
                    out.append((extra, value))
                    used.add(extra)
            out.extend(("variable_" + k, v) for k, v in variables)
            continue
        value = fields.get(name)
        if value is not None:
            out.append((name, value))
            used.add(name)
    if VARIABLES not in order:
        # the switch sends no variables on this event type (CHANNEL_STATE, CALLSTATE, ...)
        out.extend((k, v) for k, v in fields.items() if k not in used)
    return out


def encode_plain(pairs, body=""):
    """Bytes of a `text/event-plain` message (outer headers + URL-encoded inner block)."""
    lines = [f"{name}: {quote(str(value), safe=_SAFE)}" for name, value in pairs]
    if body:
        raw = body.encode("utf-8")
        lines.append(f"Content-Length: {len(raw)}")
        inner = ("\n".join(lines) + "\n\n").encode("utf-8") + raw
    else:
        inner = ("\n".join(lines) + "\n\n").encode("utf-8")
    return (f"Content-Length: {len(inner)}\nContent-Type: text/event-plain\n\n").encode() + inner


def encode_json(pairs, body=""):
    obj = {name: str(value) for name, value in pairs}
    if body:
        obj["Content-Length"] = str(len(body.encode("utf-8")))
        obj["_body"] = body
    if len(obj) < len(pairs) + (2 if body else 0):
        # a repeated name (a consumed broadcast's `Event-Name: COMMAND` block, fixture 01's json
        # companion) is written twice, as switch_event_serialize_json does
        items = list(pairs) + ([("Content-Length", str(len(body.encode("utf-8")))), ("_body", body)] if body else [])
        inner = ("{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + json.dumps(str(v), ensure_ascii=False)
                                for k, v in items) + "}").encode("utf-8")
    else:
        inner = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return (f"Content-Length: {len(inner)}\nContent-Type: text/event-json\n\n").encode() + inner


def main(argv=None):
    from engine.sim.transcript import default_fixture_dir
    argv = sys.argv[1:] if argv is None else argv
    fixture_dir = argv[0] if argv else default_fixture_dir()
    data = generate(fixture_dir)
    with open(DATA_FILE, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    print(f"{len(data)} event types written to {DATA_FILE}")


if __name__ == "__main__":
    main()
