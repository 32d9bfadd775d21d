"""Network helpers for the demo, the benchmarks and the tests."""
import socket


def engine_id(settings):
    """This engine among those attached to one switch and one ACD: stable across restarts (host
    and call port), so a restarted engine knows its own leftovers and its own calls' CDR files."""
    return f"{socket.gethostname()}:{settings.outbound.listen_port}"


def free_port():
    """A loopback TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
