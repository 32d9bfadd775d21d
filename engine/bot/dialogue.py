"""A bot's dialogue with one caller: text in, decisions out (no audio, no switch).

    dialogue = Dialogue(load_bot("ivr_flows/bots/city_hotline.yaml"), misses_dir="var/bot_misses",
                        call_uuid=call.uuid)
    turn = dialogue.start()                       # the greeting
    while not turn.exit:
        speak(turn.say, turn.interruptible); listen(turn.listen)
        turn = dialogue.on_text(text, confidence) | dialogue.on_dtmf("2") | dialogue.on_silence()
    # turn.exit: "human" (hand off with turn.intent, turn.slots, turn.transcript), "done", "error"

A Turn whose `say` is empty and `exit` None means "nothing to say, keep listening" (keyed digits
of a number still coming in).

What the caller gets, in order of precedence on every input:
1. a hand-off request ("转人工", a human intent's keywords, the bot's handoff_keywords): human, at
   any point, also in the middle of collecting a slot;
2. in a slot task: the value (digits spoken or keyed), then its confirmation, read back digit by digit;
3. after candidates were offered: a pick by number ("第二个", "2", DTMF 2) or "都不是";
4. the question itself: an intent keyword, else TF-IDF over the FAQ and intent examples: a clear
   best answer is given; a close call offers the 3-5 closest questions; a question with words the
   bot knows but no answer is "unknown" (logged; retry or human per limits.on_unknown); a question
   with none of the bot's words is off-topic (the line handles only <subject>).
Misses (not understood, unknown, off-topic, none of the candidates) in a row reach
limits.max_misses -> human. The same FAQ answered limits.repeat_handoff times -> human (the answer
did not help). No speech -> reprompt; limits.max_silences in a row -> limits.after_silence.
"""
import functools
import logging
import time
from dataclasses import dataclass, field

from . import misses as misses_mod
from . import nlu
from .botfile import Bot, BotError, check_bot, load_bot   # noqa: F401  (the package's entry points)

log = logging.getLogger("hotline.bot.dialogue")

EXITS = ("human", "done", "error")


@dataclass
class Turn:
    say: list = field(default_factory=list)     # texts to speak, in order
    interruptible: bool = True                  # caller speech may stop them (barge-in)
    listen: list = None                         # grammar words to listen for; None: free-form
    exit: str = None                            # None (go on) | "human" | "done" | "error"
    intent: str = None                          # what the caller wants: an intent id, "faq:<id>"
    slots: dict = field(default_factory=dict)   # confirmed slot values
    transcript: list = field(default_factory=list)   # [{who, text, at, confidence}]
    reason: str = None                          # why this turn: answer, offer, off_topic, ...
    candidates: list = field(default_factory=list)   # offered questions, in the order read out


def _guarded(method):
    """A fault in the dialogue (a bug, a broken bot object) ends it with exit "error" — the IVR
    then takes the flow's error branch with the transcript so far — instead of killing the call."""
    @functools.wraps(method)
    def run(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except Exception:
            self.log.exception("dialogue failed in %s", method.__name__)
            self.exit, self.state = "error", "ended"
            return self._ended()
    return run


class _CallLog(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        return f"{self.extra['uuid']} {msg}", kwargs


class Dialogue:
    def __init__(self, bot, misses_dir=None, call_uuid=None, clock=time.time, logger=None):
        self.bot = bot
        self.misses_dir = misses_dir
        self.call_uuid = call_uuid or "-"
        self.clock = clock
        self.log = _CallLog(logger or log, {"uuid": self.call_uuid})
        self.transcript = []
        self.slots = {}
        self.intent = None              # the caller's topic (faq/task intent), kept for the agent
        self.topic = False              # self.intent is a topic (faq/task), not just a reply ("네")
        self.exit = None
        self.state = "ask"              # ask | offer | slot | confirm | ended
        self.misses = 0                 # in a row
        self.silences = 0               # in a row
        self.answered = {}              # faq id -> times answered
        self.offered = []               # candidate keys while state == "offer"
        self.offered_for = None         # the question the candidates were offered for
        self.task = None                # (Task, slot index) while collecting
        self.pending = None             # a slot value waiting for confirmation
        self.keyed = ""                 # DTMF digits of a slot value so far
        self.attempts = 0               # wrong values for the current slot
        self.last_say = []              # for "再说一遍" and reprompts
        self.msg = bot.messages

    # --- inputs ----------------------------------------------------------------------------------

    @_guarded
    def start(self):
        return self._say([self.bot.greeting], interruptible=self.bot.greeting_interruptible,
                         reason="greeting")

    @_guarded
    def on_text(self, text, confidence=None):
        text = (text or "").strip()
        if self.exit:
            return self._ended()
        self._heard(text, confidence, "speech")
        if not nlu.normalize(text):
            return self._miss("not_understood", text, self.msg["not_understood"], log_it=False)
        handoff = self._handoff_keyword(text)
        if handoff:
            self.log.info("hand-off asked (%r)", handoff)
            return self._human("handoff", reason="asked_human" if handoff in self.bot.human_keywords
                               else "handoff_keyword", meta_intent="human")
        minimum = self.bot.matching["min_confidence"]
        if confidence is not None and confidence < minimum:
            return self._miss("not_understood", text, self.msg["not_understood"], log_it=False)
        if self.state == "confirm":
            return self._confirm_text(text)
        if self.state == "slot":
            value = self._slot().type.parse(text)
            if not value and self._changes_subject(text):
                self.log.info("task %s left for another question", self.task[0].id)
                self.task, self.keyed = None, ""
                return self._understand(text)
            return self._slot_value(value)
        if self.state == "offer":
            turn = self._pick_text(text)
            if turn:
                return turn
        return self._understand(text)

    @_guarded
    def on_dtmf(self, digits):
        if self.exit:
            return self._ended()
        digits = str(digits or "")
        self._heard(digits, 1.0, "dtmf")
        turn = None
        for key in digits:
            turn = self._key(key)
            if turn.exit or turn.say:
                break           # keys after a decision belong to the next prompt: type-ahead is not kept
        return turn or self._listen()

    @_guarded
    def on_silence(self):
        if self.exit:
            return self._ended()
        self.silences += 1
        if self.silences >= self.bot.limits["max_silences"]:
            self.log.info("no speech %d times: %s", self.silences, self.bot.limits["after_silence"])
            if self.bot.limits["after_silence"] == "human":
                return self._human("handoff", reason="no_speech")
            return self._end("done", [self.msg["no_speech_goodbye"]], reason="no_speech")
        if self.state == "ask":
            return self._say([self.msg["reprompt"]], reason="reprompt")
        return self._say(self.last_say or [self.msg["reprompt"]], reason="reprompt")

    # --- understanding ---------------------------------------------------------------------------

    def _understand(self, text):
        bot = self.bot
        self.state, self.offered = "ask", []
        for intent in bot.intents.values():
            if intent.then != "human" and intent.keywords and nlu.spot_keyword(text, intent.keywords):
                return self._act(("intent", intent.id), text)
        ranked = [(key, score) for key, score in bot.matcher.rank(text) if self._matchable(key)]
        best = ranked[0] if ranked else (None, 0.0)
        second = ranked[1] if len(ranked) > 1 else (None, 0.0)
        if best[0] and self._decisive(text, best, second):
            return self._act(best[0], text)
        match = bot.matching
        if best[1] >= match["suggest"]:
            choices = [key for key, score in ranked if score > 0 and self._offerable(key)]
            choices = choices[:match["candidates"]]
            if len(choices) == 1:
                return self._act(choices[0], text)      # only one near question: answer it
            if choices:
                return self._offer(choices, text, ranked)
        if not bot.matcher.known_terms(text) or best[1] < match["suggest"] / 2:
            return self._miss("off_topic", text, self.msg["off_topic"].format(subject=bot.subject),
                              ranked=ranked)
        if bot.limits["on_unknown"] == "human":
            self._log_miss("unknown", text, ranked)
            return self._human("handoff_misses", reason="unknown")
        return self._miss("unknown", text, self.msg["unknown"], ranked=ranked)

    def _changes_subject(self, text):
        """Asked for a number, the caller said no digit but a goodbye or a question the bot can
        answer outright ("算了，我问下社保卡丢了怎么补"): follow the caller, drop the task."""
        for intent in self.bot.intents.values():
            if intent.then == "done" and nlu.spot_keyword(text, intent.keywords):
                return True
        ranked = [(k, s) for k, s in self.bot.matcher.rank(text) if self._matchable(k)]
        if not ranked:
            return False
        return self._decisive(text, ranked[0], ranked[1] if len(ranked) > 1 else (None, 0.0))

    def _decisive(self, text, best, second):
        """Answer straight away, or is it a close call? Clear: a high score well ahead of the next.
        Distinct: a fair score, ahead, and the caller said something the best entry has and the
        next has not (not just the word they share: "公积金" alone fits four questions)."""
        match = self.bot.matching
        if best[1] >= match["answer"] and best[1] >= match["lead_ratio"] * second[1]:
            return True
        if best[1] < match["lead_score"] or best[1] - second[1] < match["margin"]:
            return False
        return second[1] < match["suggest"] or bool(
            self.bot.matcher.distinguishing(text, best[0], second[0]))

    def _matchable(self, key):
        """Intents that end or redirect the dialogue (human, done, repeat) are acted on by their
        keywords only: a question that merely resembles "没有其他问题了" must not hang up."""
        kind, ident = key
        return kind == "faq" or self.bot.intents[ident].then not in ("human", "done", "repeat")

    def _offerable(self, key):
        kind, ident = key
        if kind == "faq":
            return True
        then = self.bot.intents[ident].then
        return then == "answer" or then.startswith("task:")

    def _offer(self, choices, text, ranked):
        self.state, self.offered, self.offered_for = "offer", choices, text
        listed = "；".join(self.msg["choice"].format(n=n, question=self.bot.entry_text(key))
                          for n, key in enumerate(choices, 1))
        self.log.info("unsure about %r: offering %s", text, [k[1] for k in choices])
        turn = self._say([self.msg["offer"].format(choices=listed)], reason="offer")
        turn.candidates = [self.bot.entry_text(k) for k in choices]
        return turn

    def _pick_text(self, text):
        number = nlu.pick_number(text)
        if number is not None:
            return self._pick(number)
        if nlu.spot_keyword(text, self.bot.answers["none"]):
            self._log_miss("rejected", self.offered_for, [])
            self.state, self.offered = "ask", []
            return self._miss("rejected", text, self.msg["none_of_them"], log_it=False)
        return None                # a new question instead of a pick: understood as such

    def _pick(self, number):
        if 1 <= number <= len(self.offered):
            key = self.offered[number - 1]
            self.state, self.offered = "ask", []
            return self._act(key, self.offered_for)
        return self._say(self.last_say, reason="bad_pick")

    def _act(self, key, text):
        kind, ident = key
        self.misses = 0
        self.state = "ask"
        if kind == "faq":
            entry = self.bot.faq[ident]
            self.intent, self.topic = f"faq:{ident}", True
            self.answered[ident] = self.answered.get(ident, 0) + 1
            if self.answered[ident] >= self.bot.limits["repeat_handoff"]:
                self.log.info("faq %s asked %d times: hand-off", ident, self.answered[ident])
                return self._human("handoff_repeat", reason="repeated")
            if entry.then == "human":
                return self._human(None, reason="answer", say=[entry.answer, self.msg["handoff"]])
            if entry.then == "done":
                return self._end("done", [entry.answer, self.msg["goodbye"]], reason="answer")
            return self._say([entry.answer, self.msg["anything_else"]], reason="answer")
        intent = self.bot.intents[ident]
        then = intent.then
        if then == "human":
            return self._human("handoff", reason="asked_human", meta_intent=ident)
        if then == "done":
            return self._end("done", [intent.answer or self.msg["goodbye"]], reason="goodbye",
                             meta_intent=ident)
        if then == "repeat":
            return self._say(self.last_say or [self.msg["reprompt"]], reason="repeat")
        self.intent, self.topic = ident, then.startswith("task:")
        if then.startswith("task:"):
            task = self.bot.tasks[then[5:]]
            self.task, self.attempts, self.keyed = (task, 0), 0, ""
            say = [intent.answer] if intent.answer else []
            self.state = "slot"
            return self._say(say + [task.slots[0].prompt], reason="slot")
        return self._say([intent.answer, self.msg["anything_else"]], reason="answer")

    # --- slots -----------------------------------------------------------------------------------

    def _slot(self):
        task, index = self.task
        return task.slots[index]

    def _key(self, key):
        if self.state == "slot":
            slot = self._slot()
            if key == "#":
                value, self.keyed = self.keyed, ""
                return self._slot_value(value)
            if key == "*" and slot.type.kind == "id_number":
                key = "X"
            if key.isdigit() or key == "X":
                self.keyed += key
                if len(self.keyed) >= slot.type.length:
                    value, self.keyed = self.keyed, ""
                    return self._slot_value(value)
            return self._listen()
        if self.state == "confirm":
            if key == "1":
                return self._confirmed()
            if key == "2":
                return self._reenter()
            return self._confirm_unclear()
        if self.state == "offer" and key.isdigit():
            return self._pick(int(key))
        if key == "0":          # "按0转人工" is what callers of every hotline know
            return self._human("handoff", reason="asked_human", meta_intent="human")
        return self._miss("not_understood", key, self.msg["not_understood"], log_it=False)

    def _slot_value(self, value):
        slot = self._slot()
        problem = slot.type.check(value) if value else "empty"
        if problem:
            self.attempts += 1
            self.log.info("slot %s: %s value (%s), attempt %d", slot.name, problem,
                          slot.type.mask(value), self.attempts)
            if self.attempts >= self.bot.limits["slot_attempts"]:
                return self._human("slot_failed", reason="slot_failed")
            return self._say([slot.invalid, slot.prompt], reason="slot_invalid")
        self.pending, self.state = value, "confirm"
        return self._say([slot.confirm.format(value=slot.type.read_back(value))], reason="confirm")

    def _confirm_text(self, text):
        answer = nlu.yes_no(text, self.bot.answers["yes"], self.bot.answers["no"])
        slot = self._slot()
        value = slot.type.parse(text)
        if value and len(value) >= min(slot.type.length, 6):
            return self._slot_value(value)       # the caller said the number again instead
        if answer is True:
            return self._confirmed()
        if answer is False:
            return self._reenter()
        return self._confirm_unclear()

    def _confirm_unclear(self):
        self.attempts += 1
        if self.attempts >= self.bot.limits["slot_attempts"]:
            return self._human("slot_failed", reason="slot_failed")
        slot = self._slot()
        return self._say([self.msg["confirm_unclear"],
                          slot.confirm.format(value=slot.type.read_back(self.pending))],
                         reason="confirm")

    def _reenter(self):
        self.pending, self.state, self.keyed = None, "slot", ""
        return self._say([self.msg["slot_retry"], self._slot().prompt], reason="slot")

    def _confirmed(self):
        task, index = self.task
        slot = task.slots[index]
        self.slots[slot.name] = self.pending
        self.log.info("slot %s confirmed (%s)", slot.name, slot.type.mask(self.pending))
        self.pending, self.attempts, self.keyed = None, 0, ""
        if index + 1 < len(task.slots):
            self.task, self.state = (task, index + 1), "slot"
            return self._say([task.slots[index + 1].prompt], reason="slot")
        self.task, self.state = None, "ask"
        reply = [task.reply.format(**self.slots)] if task.reply else []
        if task.then == "human":
            return self._human(None, reason="task_done", say=reply or [self.msg["handoff"]])
        if task.then == "done":
            return self._end("done", reply + [self.msg["goodbye"]], reason="task_done")
        return self._say(reply + [self.msg["anything_else"]], reason="task_done")

    # --- outcomes --------------------------------------------------------------------------------

    def _handoff_keyword(self, text):
        keywords = self.bot.human_keywords + self.bot.handoff_keywords
        return nlu.spot_keyword(text, keywords) if keywords else None

    def _miss(self, kind, text, say, ranked=(), log_it=True):
        self.misses += 1
        if log_it:
            self._log_miss(kind, text, ranked)
        if self.misses >= self.bot.limits["max_misses"]:
            self.log.info("%d misses in a row: hand-off", self.misses)
            return self._human("handoff_misses", reason="misses")
        return self._say([say], reason=kind)

    def _log_miss(self, kind, text, ranked):
        self.log.info("miss (%s): %r", kind, text)
        if not self.misses_dir or not text:
            return
        record = {"at": round(self.clock(), 3), "bot": self.bot.name, "call": self.call_uuid,
                  "lang": self.bot.language, "kind": kind, "text": text,
                  "best": [[f"{k[0]}:{k[1]}", round(s, 3)] for k, s in list(ranked)[:3]]}
        try:
            misses_mod.append(self.misses_dir, record)
        except OSError as exc:      # a full disk must not end the caller's dialogue
            self.log.error("cannot log the miss under %s: %s", self.misses_dir, exc)

    def _human(self, message, reason, say=None, meta_intent=None):
        return self._end("human", say if say is not None else [self.msg[message]], reason=reason,
                         meta_intent=meta_intent)

    def _end(self, exit_, say, reason, meta_intent=None):
        # the intent that ends the call replaces a mere reply ("네" then "아니요" ended on "no",
        # not "yes"); a topic (an FAQ, a task) stays: it is what the agent and the report want
        if meta_intent and not self.topic:
            self.intent = meta_intent
        self.exit, self.state = exit_, "ended"
        self.log.info("exit %s (%s), intent %s", exit_, reason, self.intent)
        return self._say(say, interruptible=False, reason=reason)

    def _ended(self):
        return Turn(exit=self.exit, interruptible=False, intent=self.intent, slots=dict(self.slots),
                    transcript=list(self.transcript), listen=self._grammar(), reason="ended")

    def _listen(self):
        return Turn(listen=self._grammar(), intent=self.intent, slots=dict(self.slots),
                    transcript=list(self.transcript), reason="listening")

    def _grammar(self):
        grammar = self.bot.asr.grammar
        return list(grammar) if self.bot.asr.mode == "grammar" and grammar else None

    def _heard(self, text, confidence, via):
        if text:
            self.silences = 0
        self.transcript.append({"who": "caller", "text": text, "at": round(self.clock(), 3),
                                "confidence": None if confidence is None else round(float(confidence), 3),
                                "via": via})

    def _say(self, texts, interruptible=True, reason=None):
        texts = [t for t in texts if t]
        now = round(self.clock(), 3)
        for text in texts:
            self.transcript.append({"who": "bot", "text": text, "at": now, "confidence": None})
        if texts and reason not in ("repeat", "reprompt", "bad_pick"):
            self.last_say = texts
        return Turn(say=texts, interruptible=interruptible, listen=self._grammar(), exit=self.exit,
                    intent=self.intent, slots=dict(self.slots), transcript=list(self.transcript),
                    reason=reason)
