"""FakeCall (CallPort with scripted key presses and a fixed clock), a fake renderer, flow helpers."""
import datetime
import json
import textwrap
from zoneinfo import ZoneInfo

import gevent.pywsgi

from engine.ivr.walk import ScriptedCall, TextRenderer

SHANGHAI = ZoneInfo("Asia/Shanghai")


class FakeCall(ScriptedCall):
    pass


FakeRenderer = TextRenderer


def at(text):
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


def cn_id(first17):
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return first17 + "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights)) % 11]


def write_flow(tmp_path, text, name="flow.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


class BizServer:
    """A local business system: /pension/contributions?id=... answers from `records`."""

    def __init__(self, records, delay=0.0):
        self.records, self.delay, self.requests = records, delay, []
        self.server = gevent.pywsgi.WSGIServer(("127.0.0.1", 0), self.app, log=None, error_log=None)
        self.server.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def app(self, environ, start_response):
        from urllib.parse import parse_qs
        query = parse_qs(environ.get("QUERY_STRING", ""))
        self.requests.append((environ["PATH_INFO"], query))
        if self.delay:
            gevent.sleep(self.delay)
        ident = (query.get("id") or [""])[0]
        if ident == "500":
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"boom"]
        if ident == "badjson":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b"{not json"]
        if ident not in self.records:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "not found"}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"data": self.records[ident]}).encode()]

    def stop(self):
        self.server.stop()
