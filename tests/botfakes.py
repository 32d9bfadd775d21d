"""A scripted dialogue with the interface of engine.bot.dialogue (Turn, Dialogue), for call-side tests
that must not depend on the real dialogue logic, and helpers to run a bot call over the simulator."""
import time
from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class Turn:
    say: List[str]
    interruptible: bool = True
    listen: Optional[list] = None
    exit: Optional[str] = None
    intent: Optional[str] = None
    slots: dict = field(default_factory=dict)
    transcript: list = field(default_factory=list)


class ScriptedDialogue:
    """Greets with `greeting` (interruptible or not); 상담원 -> hand-off with a slot; anything else
    -> done; silence -> done (or `silence_say` then done); DTMF -> done. Records what it was given."""

    def __init__(self, greeting, interruptible=True, listen=("네", "아니요", "상담원")):
        self.greeting = list(greeting)
        self.interruptible = interruptible
        self.listen = list(listen) if listen else None
        self.calls = []
        self.transcript = []

    def _bot(self, say, **kw):
        for text in say:
            self.transcript.append({"who": "bot", "text": text, "at": time.time(), "confidence": None})
        return Turn(say=list(say), transcript=list(self.transcript), **kw)

    def start(self):
        self.calls.append(("start",))
        return self._bot(self.greeting, interruptible=self.interruptible, listen=self.listen)

    def on_text(self, text, confidence):
        self.calls.append(("text", text, confidence))
        self.transcript.append({"who": "caller", "text": text, "at": time.time(), "confidence": confidence})
        if "상담원" in text:
            return self._bot(["好的，为您转接人工服务。"], exit="human", intent="human",
                             slots={"id_number": "110101199003074514", "topic": "养老保险"})
        return self._bot(["好的，再见。"], exit="done", intent="other")

    def on_dtmf(self, digit):
        self.calls.append(("dtmf", digit))
        return self._bot(["再见。"], exit="done")

    def on_silence(self):
        self.calls.append(("silence",))
        return self._bot(["没有听到您的声音，再见。"], exit="done", intent="no_speech")
