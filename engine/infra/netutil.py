"""Network helpers for the demo, the benchmarks and the tests."""
import socket
import uuid


def engine_id(settings):
    """This engine among those attached to one switch and one ACD: stable across restarts (host
    and call port), so a restarted engine knows its own leftovers and its own calls' CDR files."""
    return f"{socket.gethostname()}:{settings.outbound.listen_port}"


def instance_id(settings):
    """This process: its slot (engine_id) and a token of its own. What it reserves in the shared
    ACD carries this id, so a process restarted in the same slot never takes a dead predecessor's
    reservations for its own (it asks the switch about their legs instead)."""
    return f"{engine_id(settings)}#{uuid.uuid4().hex[:8]}"


def slot_of(instance):
    """The slot part of an instance id (the id itself when it has no token)."""
    return instance.partition("#")[0]


def free_port():
    """A loopback TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
