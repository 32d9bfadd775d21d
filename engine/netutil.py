"""Network helpers for the demo, the benchmarks and the tests."""
import socket


def free_port():
    """A loopback TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
