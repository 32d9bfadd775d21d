"""Serving the web application: gevent's WSGI server inside the engine, with bounded connections.

Connections are bounded: at most MAX_CONNECTIONS open (MAX_PER_CLIENT from one address), each
must deliver its request within REQUEST_SECONDS; a connection over a cap is answered 503 at once
and closed, so a flood of half-open sockets neither exhausts the engine's descriptors nor locks
out a supervisor on another machine. A live-update stream (SSE, live.py) leaves those caps once
its request is in and counts against `web.max_streams` instead: 300 agents' desks hold one each.
Every write has a REQUEST_SECONDS socket timeout: a client that stops reading is cut off.
"""
import json
import logging
import socket

import gevent
from gevent.pywsgi import WSGIHandler, WSGIServer

log = logging.getLogger("hotline.web")

MAX_BODY = 64 * 1024
MAX_CONNECTIONS = 128        # open connections (the CLI and supervisors' tools open one a request)
MAX_PER_CLIENT = 32          # of those, from one address
REQUEST_SECONDS = 10.0       # to send the request line, headers and body (also the keep-alive idle)
STREAM_KEY = "hotline.stream"   # environ: callable moving the connection to the streams' count

_TOO_MANY = json.dumps({"error": "too many connections to the control API; try again"}).encode()
_TOO_MANY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                      b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_TOO_MANY), _TOO_MANY))


class _BoundedHandler(WSGIHandler):
    """A connection over a cap is answered 503 and closed; the others get REQUEST_SECONDS to send
    each request (a socket timeout for every read, and a deadline for line + headers)."""

    def handle(self):
        server, client = self.server, _client(self.client_address)
        if server.open_connections >= MAX_CONNECTIONS or server.per_client.get(client, 0) >= MAX_PER_CLIENT:
            server.refused += 1
            if server.refused == 1 or server.refused % 100 == 0:
                log.warning("control API: %d connection(s) refused over the caps (%d open, %d from %s)",
                            server.refused, server.open_connections, server.per_client.get(client, 0), client)
            try:
                self.socket.sendall(_TOO_MANY_RESPONSE)
            except OSError:
                pass
            self.socket.close()
            return
        server.open_connections += 1
        server.per_client[client] = server.per_client.get(client, 0) + 1
        self._counted, self._streaming = client, False
        try:
            self.socket.settimeout(REQUEST_SECONDS)
            super().handle()
        finally:
            self._uncount()
            if self._streaming:
                server.streams -= 1

    def _uncount(self):
        client, self._counted = self._counted, None
        if client is None:
            return
        server = self.server
        server.open_connections -= 1
        server.per_client[client] -= 1
        if not server.per_client[client]:
            del server.per_client[client]

    def _to_stream(self):
        """The application starts a live stream on this connection: it leaves the request caps for
        the streams' cap. False if that one is full."""
        server = self.server
        if self._streaming:
            return True
        if server.streams >= server.max_streams:
            return False
        self._uncount()
        self._streaming = True
        server.streams += 1
        self.close_connection = True     # one stream per connection, then closed
        return True

    def get_environ(self):
        environ = super().get_environ()
        environ[STREAM_KEY] = self._to_stream
        return environ

    def handle_one_request(self):
        self._deadline = gevent.Timeout.start_new(REQUEST_SECONDS, socket.timeout("request not received in time"))
        try:
            return super().handle_one_request()
        finally:
            self._deadline.close()

    def handle_one_response(self):
        self._deadline.close()          # the request is in; the answer may take longer (a reload)
        return super().handle_one_response()

    def _handle_client_error(self, ex):
        if isinstance(ex, OSError):     # too slow, or gone: nobody to answer
            self.close_connection = True
            return None
        return super()._handle_client_error(ex)


def _client(address):
    return address[0] if isinstance(address, tuple) and address else str(address)


class WebServer(WSGIServer):
    handler_class = _BoundedHandler

    def __init__(self, *args, max_streams=1000, **kw):
        super().__init__(*args, **kw)
        self.open_connections, self.per_client, self.refused = 0, {}, 0
        self.streams, self.max_streams = 0, max_streams


def serve(engine, host, port, tokens):
    """Build the application (app.create_app) and start serving it; returns the server (whose
    `.app` is the Flask application). No access log on stderr: requests are logged by us."""
    from engine.web.app import create_app
    app = create_app(engine, tokens)
    server = WebServer((host, port), app, log=None, error_log=log,
                       max_streams=engine.settings.web.max_streams)
    server.start()
    app.extensions["hotline"].started(server)
    log.info("web console and control API on http://%s:%s", *server.address[:2])
    return server
