"""What call-handling code (IVR nodes, queue, survey, bot) may ask of a live call.

`engine.call.live.Call` implements this over the ESL outbound socket; tests implement it with fakes.
Keeping the surface this small is what lets IVR nodes be unit-tested without a switch, while the
same node code drives a real FreeSWITCH channel.

All methods block the calling greenlet only. Any method may raise `CallGone` once the caller has
hung up; node code lets it propagate (the runner turns it into the end of the walk).
"""
from typing import Protocol, Sequence


class CallGone(Exception):
    """The channel hung up (or the switch connection dropped) while we were using it."""


class CallPort(Protocol):
    uuid: str
    caller_id_number: str     # as received; untrusted text, never put into a command unescaped
    caller_id_name: str
    destination_number: str   # the DID dialled
    variables: dict           # call variables for templates and CDR (IVR `set`, `collect`, `lookup`)
    tags: list                # CDR tags
    path: list                # IVR path entries, appended by the runner
    log: object               # logging.LoggerAdapter prefixed with the call uuid

    def now(self):
        """Aware datetime of 'now' for schedule decisions (injectable clock in tests)."""

    def answer(self) -> None: ...

    def play(self, sources: Sequence[str], interruptible: bool = True, fallback: str = None) -> str:
        """Play audio sources (file paths, tone_stream://, silence_stream://) in order.

        A source the switch cannot play is logged and `fallback` (a tone) plays instead.

        With interruptible=True the first DTMF digit stops playback; that digit stays in the
        digit buffer (type-ahead) and is also returned. Returns '' when nothing was pressed.
        """

    def get_digits(self, max_digits: int, timeout: float, inter_digit_timeout: float,
                   terminators: str = "#") -> str:
        """Collect digits from the buffer (type-ahead first), then from DTMF as it arrives.

        Waits up to `timeout` seconds for the first digit and `inter_digit_timeout` between
        digits; stops at `max_digits` or a terminator (not included). Returns '' on no input.
        """

    def flush_digits(self) -> None: ...

    def record(self, path: str, max_seconds: float, silence_seconds: float = 3.0,
               terminators: str = "#") -> dict:
        """Record the caller to `path` (voicemail). Returns {'path', 'seconds'}."""

    def transfer_external(self, number: str) -> None:
        """Bridge the caller to an external number through the trunk gateway."""

    def set_channel_var(self, name: str, value: str) -> None: ...

    def hangup(self, cause: str = "NORMAL_CLEARING") -> None: ...
