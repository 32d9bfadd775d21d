"""lookup: query a business system over HTTP, copy response fields into call variables.

Branches: ok; not_found (HTTP status in not_found_status, or an empty result when
empty_is_not_found); error (timeout, connection failure, other non-2xx, bad JSON).
urllib from the standard library: under gevent monkey-patching its sockets are cooperative.

The answer comes from another system, and the caller waits on it: `timeout` bounds the whole
exchange (urllib's bounds each read only: a server sending a byte every 50 ms held a caller 20 s),
the body is read up to MAX_RESPONSE_BYTES, JSON nested too deeply is an error, and text copied
into call variables is cut to MAX_FIELD_CHARS.
"""
import json
import urllib.error
import urllib.request

import gevent

from engine.privacy import mask_text

MAX_RESPONSE_BYTES = 1024 * 1024     # a look-up answers one caller's record: a few KB
MAX_FIELD_CHARS = 1000               # a name, an address, an amount: read back to the caller

SCHEMA = {"properties": {
    "method": {"enum": ["GET", "POST"]}, "url": {"type": "string"}, "body": {"type": "string"},
    "timeout": {"type": "number", "minimum": 0.05, "maximum": 30},
    "fields": {"type": "object", "additionalProperties": {"type": "string"}},
    "result": {"type": "string", "description": "dotted path of the result checked for emptiness"},
    "not_found_status": {"type": "array", "items": {"type": "integer"}},
    "empty_is_not_found": {"type": "boolean"}, "wait_prompt": {"type": "string"}},
    "required": ["url"]}
DEFAULTS = {"method": "GET", "body": None, "timeout": 3.0, "fields": {}, "result": None,
            "not_found_status": [404], "empty_is_not_found": True, "wait_prompt": None}
BRANCHES = ("ok", "not_found", "error")
PROMPT_FIELDS = ("wait_prompt",)
_MISSING = object()


def dotted(data, path):
    for part in path.split("."):
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return _MISSING
    return data


def handle(call, node, ctx):
    p = ctx.params(node)
    if p["wait_prompt"]:
        ctx.play(call, p["wait_prompt"], interruptible=False)
    url = ctx.template(p["url"], call)
    body = ctx.template(p["body"], call).encode() if p["body"] else None
    request = urllib.request.Request(url, data=body, method=p["method"],
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with gevent.Timeout(p["timeout"], TimeoutError(f"no full answer within {p['timeout']} s")):
            with urllib.request.urlopen(request, timeout=p["timeout"]) as response:
                raw = response.read(MAX_RESPONSE_BYTES + 1)
        if len(raw) > MAX_RESPONSE_BYTES:
            raise ValueError(f"answer over {MAX_RESPONSE_BYTES // 1024} KB")
        data = json.loads(raw.decode("utf-8") or "null")
    except urllib.error.HTTPError as exc:
        if exc.code in p["not_found_status"]:
            return "not_found"
        # the URL often carries the caller's ID number: logged masked (engine.privacy)
        call.log.warning("lookup %s: HTTP %s", mask_text(url), exc.code)
        return "error"
    except RecursionError:
        call.log.warning("lookup %s failed: JSON nested too deeply", mask_text(url))
        return "error"
    except (OSError, ValueError) as exc:    # timeouts, refused connections, bad JSON, too large
        call.log.warning("lookup %s failed: %s", mask_text(url), mask_text(str(exc)))
        return "error"
    result = dotted(data, p["result"]) if p["result"] else data
    if p["empty_is_not_found"] and result in (None, _MISSING, [], {}, ""):
        return "not_found"
    for variable, path in p["fields"].items():
        value = dotted(data, path)
        if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
            call.log.warning("lookup %s: field %s cut from %d to %d characters", url, path, len(value),
                             MAX_FIELD_CHARS)
            value = value[:MAX_FIELD_CHARS]
        if value is not _MISSING:
            call.variables[variable] = value
    return "ok"
