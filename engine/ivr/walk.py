"""A scripted call for `hotline ivr walk` and the tests: key presses in order, a fixed clock.

keys: each entry is what the caller presses at the next input: '1', '110101199003077777#' or ''
(no input: the node times out). Digits pressed during a prompt interrupt it (type-ahead) when the
prompt allows it.
"""
import datetime
import logging
import pathlib
from zoneinfo import ZoneInfo

from engine.call.port import CallGone

DEFAULT_FLOW_ZONE = "Asia/Shanghai"     # a flow's schedule without `timezone` (engine.ivr.schedule)


class ScriptedCall:
    def __init__(self, did, keys=(), at=None, caller="13800138000", uuid="walk-0001", tz=DEFAULT_FLOW_ZONE):
        self.uuid = uuid
        self.caller_id_number = caller
        self.caller_id_name = ""
        self.destination_number = did
        self.variables, self.tags, self.path = {}, [], []
        self.keys = list(keys)
        # a fixed default moment keeps scripted tests independent of the wall clock; the CLI
        # passes the hotline's now (or --at)
        self.at = at or datetime.datetime(2026, 10, 12, 10, 0, tzinfo=ZoneInfo(tz))
        self.schedule_zone = None
        self.played, self.recorded, self.transferred, self.hung_up = [], [], None, None
        self.buffer = ""
        self.log = logging.LoggerAdapter(logging.getLogger("hotline.call"), {})
        self.log.process = lambda msg, kw: (f"{self.uuid} {msg}", kw)

    def now(self):
        return self.at

    def answer(self):
        pass

    def _gone(self):
        if self.hung_up:
            raise CallGone(self.uuid)

    def play(self, sources, interruptible=True, fallback=None):
        self._gone()
        self.played.extend(str(s) for s in sources)
        if interruptible and not self.buffer and self.keys and self.keys[0]:
            self.buffer = self.keys.pop(0)      # pressed during the prompt: type-ahead
            return self.buffer[0]
        return ""

    def get_digits(self, max_digits, timeout, inter_digit_timeout, terminators="#"):
        self._gone()
        if not self.buffer:
            if not self.keys:
                raise CallGone(self.uuid)       # the script ran out: the caller hangs up
            self.buffer = self.keys.pop(0)
        got = ""
        while self.buffer and len(got) < max_digits:
            digit, self.buffer = self.buffer[0], self.buffer[1:]
            if terminators and digit in terminators:
                break
            got += digit
        return got

    def flush_digits(self):
        self.buffer = ""

    def record(self, path, max_seconds, silence_seconds=3.0, terminators="#"):
        self._gone()
        self.recorded.append(path)
        return {"path": path, "seconds": min(12.0, max_seconds)}

    def transfer_external(self, number):
        self._gone()
        self.transferred = number

    def set_channel_var(self, name, value):
        self.variables[name] = value

    def hangup(self, cause="NORMAL_CLEARING"):
        self.hung_up = cause


class TextRenderer:
    """Stands in for PromptRenderer: a path naming the text, nothing synthesised."""

    def __init__(self):
        self.rendered = []
        self.online = []            # the texts PromptRenderer would allow to go online (fixed ones)

    def render(self, text, voice=None, fixed=False):
        self.rendered.append(text)
        if fixed:
            self.online.append(text)
        return pathlib.Path("/tts") / f"{abs(hash(text)) % 10 ** 8}.wav"


def walk(flows, did, keys, at=None, overrides_path=None):
    """Run one scripted call over `flows` (files or dirs) at the aware datetime `at`. Returns
    (result, call); call.schedule_zone is the time zone of the entry flow's schedule."""
    from .runtime import IvrRuntime
    runtime = IvrRuntime(flows, TextRenderer(), overrides_path=overrides_path)
    problems = runtime.reload()
    if problems:
        from .loader import FlowError
        raise FlowError(problems)
    call = ScriptedCall(did, keys, at)
    ref = runtime.flowset.entries.get(did)
    if ref is not None:         # the zone the entry flow's schedule reads the time in
        call.schedule_zone = (runtime.flowset.flows[ref[0]].schedule or {}).get("timezone", DEFAULT_FLOW_ZONE)
    try:
        result = runtime.run(call)
    except CallGone:
        result = {"outcome": "gone"}
    return result, call
