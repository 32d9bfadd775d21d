"""A scripted ESL peer for connection tests: plays a switch that misbehaves on purpose.

Conformance with the real switch is the simulator's job; this peer exists to send what no
switch should (garbage, truncated bodies, 10 MB bodies) and to drop connections at chosen moments.
"""
import gevent
from gevent.server import StreamServer

from engine.esl.protocol import Parser, encode_message


class PeerConn:
    def __init__(self, sock):
        self.sock = sock
        self.parser = Parser(commands=True)
        self.pending = []

    def send(self, headers, body=b""):
        self.sock.sendall(encode_message(headers, body))

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv_command(self, timeout=5):
        with gevent.Timeout(timeout):
            while not self.pending:
                data = self.sock.recv(65536)
                if not data:
                    return None
                self.pending.extend(self.parser.feed(data))
        return self.pending.pop(0)

    def reply(self, text):
        self.send({"Content-Type": "command/reply", "Reply-Text": text})

    def api_response(self, body):
        self.send({"Content-Type": "api/response", "Content-Length": len(body.encode())}, body)

    def event(self, headers, body=""):
        lines = "".join(f"{k}: {v}\n" for k, v in headers.items())
        if body:
            lines += f"Content-Length: {len(body.encode())}\n\n{body}"
        else:
            lines += "\n"
        data = lines.encode()
        self.send({"Content-Length": len(data), "Content-Type": "text/event-plain"}, data)

    def authenticate(self, password="ClueCon"):
        self.send({"Content-Type": "auth/request"})
        cmd = self.recv_command()
        if cmd is None or cmd.line != f"auth {password}":
            self.reply("-ERR invalid")
            return False
        self.reply("+OK accepted")
        return True

    def close(self):
        self.sock.close()


class ScriptedPeer:
    """Runs `script(conn, n)` for the n-th connection (0-based)."""

    def __init__(self, script):
        self.script = script
        self.count = 0
        self.server = StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()
        self.port = self.server.address[1]

    def _handle(self, sock, address):
        n = self.count
        self.count += 1
        conn = PeerConn(sock)
        try:
            self.script(conn, n)
        except (OSError, gevent.Timeout):
            pass
        finally:
            sock.close()

    def stop(self):
        self.server.stop(timeout=1)
