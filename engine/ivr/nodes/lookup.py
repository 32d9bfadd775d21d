"""lookup: query a business system over HTTP, copy response fields into call variables.

Branches: ok; not_found (HTTP status in not_found_status, or an empty result when
empty_is_not_found); error (timeout, connection failure, other non-2xx, bad JSON).
urllib from the standard library: under gevent monkey-patching its sockets are cooperative.
"""
import json
import urllib.error
import urllib.request

from engine.privacy import mask_text

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
        with urllib.request.urlopen(request, timeout=p["timeout"]) as response:
            data = json.loads(response.read().decode("utf-8") or "null")
    except urllib.error.HTTPError as exc:
        if exc.code in p["not_found_status"]:
            return "not_found"
        # the URL often carries the caller's ID number: logged masked (engine.privacy)
        call.log.warning("lookup %s: HTTP %s", mask_text(url), exc.code)
        return "error"
    except (OSError, ValueError) as exc:    # timeouts, refused connections, bad JSON
        call.log.warning("lookup %s failed: %s", mask_text(url), mask_text(str(exc)))
        return "error"
    result = dotted(data, p["result"]) if p["result"] else data
    if p["empty_is_not_found"] and result in (None, _MISSING, [], {}, ""):
        return "not_found"
    for variable, path in p["fields"].items():
        value = dotted(data, path)
        if value is not _MISSING:
            call.variables[variable] = value
    return "ok"
