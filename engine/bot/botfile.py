"""Load a bot definition (YAML) and check it: every problem as 'file:line:column: problem'.

A bot file (see ivr_flows/bots/city_hotline.yaml for a full one):

    name: city_hotline
    language: zh                      # zh: jieba segmentation; others split on spaces
    subject: 社保、医保和公积金         # what the line handles, for the off-topic answer
    voice: zh-CN-XiaoxiaoNeural       # optional TTS voice for this bot
    greeting: 您好，请问有什么可以帮您？  # or {text: ..., interruptible: false}
    asr: {mode: free|grammar, grammar: [...], hot_words: [...], no_speech_seconds: 6, vad: {...}}
    limits: {max_misses: 3,           # misses in a row (not understood, unknown, off-topic) -> human
             max_silences: 2,         # no speech this many times in a row -> after_silence
             repeat_handoff: 2,       # the same FAQ asked this many times -> human
             slot_attempts: 3,        # wrong values for one slot -> human
             on_unknown: retry,       # an in-subject question without an answer: retry | human
             after_silence: done}     # done (goodbye) | human
    matching: {answer: 0.5,           # cosine for a clear answer, if lead_ratio times the next one
               lead_ratio: 1.5,
               lead_score: 0.35,      # or this much, `margin` above the next one, and a word the
               margin: 0.03,          # next one has not (see Dialogue._decisive)
               suggest: 0.2,          # below answer, above this: offer `candidates` (3-5) questions
               candidates: 4,
               min_confidence: 0}     # recogniser confidence below this: "please say it again"
    messages: {...}                   # overrides of the defaults below (zh); required otherwise
    answers: {yes: [...], no: [...], none: [...]}   # short replies, defaults for zh
    synonyms: {医保: [医疗保险, 医保卡]}   # variants folded onto the canonical word
    words: [灵活就业, 异地就医]          # domain words jieba must keep whole
    handoff_keywords: [投诉, 举报]       # said at any time -> human
    intents:  {id: {examples: [...], keywords: [...], then: human|done|repeat|answer|task:ID,
                    answer: text}}
    faq: [{id, category, question, answer, alternates: [...], keywords: [...], then: human|done}]
    faq_files: [faq.csv, more.yaml]   # relative to the bot file; CSV columns in engine/bot/faq.py
    tasks: {id: {slots: [{name, type: id_number|phone|digits, prompt, confirm, invalid,
                          min_length, max_length}], reply: text with {slot}, then: human|done|continue}}

`load_bot(path) -> Bot` raises BotError(problems) when anything is wrong; `check_bot(path)` returns
(Bot or None, problems) for linting.
"""
import pathlib
import string
from dataclasses import dataclass, field

import jsonschema
from ruamel.yaml.error import MarkedYAMLError

from engine.infra import yamlpos
from engine.infra.schematext import describe
from engine.infra.yamlpos import plain as _plain, pos_at as _pos_at

from . import faq as faq_mod
from . import nlu, slots as slots_mod

ZH_MESSAGES = {
    "reprompt": "您好，请问您还在吗？请直接说出您要咨询的问题。",
    "not_understood": "抱歉，我没有听清楚，请您换个说法再说一遍。",
    "unknown": "抱歉，这个问题我暂时回答不了，请您换个说法试试。",
    "offer": "您想问的是不是以下问题：{choices}。请说第几个，或者按对应的数字键；都不是请说“都不是”。",
    "choice": "第{n}个，{question}",
    "none_of_them": "好的，请您换个说法，再说一遍您的问题。",
    "off_topic": "抱歉，本热线只受理{subject}方面的咨询，请问您有这方面的问题吗？",
    "handoff": "好的，正在为您转接人工服务，请稍候。",
    "handoff_misses": "抱歉没能帮到您，正在为您转接人工服务，请稍候。",
    "handoff_repeat": "看来刚才的答复没有解决您的问题，正在为您转接人工服务，请稍候。",
    "anything_else": "请问还有其他问题吗？",
    "goodbye": "感谢您的来电，再见。",
    "no_speech_goodbye": "很抱歉一直没有听到您的声音，感谢来电，再见。",
    "confirm_unclear": "请说“对”或按1确认，说“不对”或按2重新输入。",
    "slot_retry": "好的，请重新输入。",
    "slot_invalid": "您输入的号码不正确，请重新输入。",
    "slot_failed": "多次输入都没有成功，正在为您转接人工服务，请稍候。",
}
ZH_ANSWERS = {"yes": list(nlu.ZH_YES), "no": list(nlu.ZH_NO),
              "none": ["都不是", "都不对", "没有", "不是这些", "以上都不是"]}
MESSAGE_KEYS = tuple(ZH_MESSAGES)
# Placeholders each message may use; anything else in braces is a mistake caught at load.
MESSAGE_FIELDS = {"offer": {"choices"}, "choice": {"n", "question"}, "off_topic": {"subject"}}
SLOT_FIELDS = {"prompt": set(), "confirm": {"value"}, "invalid": set()}

LIMIT_DEFAULTS = {"max_misses": 3, "max_silences": 2, "repeat_handoff": 2, "slot_attempts": 3,
                  "on_unknown": "retry", "after_silence": "done"}
MATCH_DEFAULTS = {"answer": 0.5, "suggest": 0.2, "margin": 0.03, "candidates": 4,
                  "min_confidence": 0.0, "lead_score": 0.35, "lead_ratio": 1.5}

_str_list = {"type": "array", "items": {"type": "string", "minLength": 1}}
_then = {"type": "string", "pattern": r"^(human|done|repeat|answer|task:[A-Za-z0-9_-]+)$",
         "description": "human, done, repeat, answer or task:<task id>"}
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "subject", "greeting"],
    "properties": {
        "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+$", "description": "letters, digits, _ . -"},
        "language": {"type": "string", "pattern": r"^[a-z]{2}(-[A-Za-z]+)?$", "description": "a language code: zh, ko, zh-CN"},
        "subject": {"type": "string", "minLength": 1},
        "comment": {"type": "string"},
        "voice": {"type": "string", "minLength": 1},
        "greeting": {"oneOf": [
            {"type": "string", "minLength": 1},
            {"type": "object", "additionalProperties": False, "required": ["text"],
             "properties": {"text": {"type": "string", "minLength": 1},
                            "interruptible": {"type": "boolean"}}}]},
        "asr": {"type": "object", "additionalProperties": False, "properties": {
            "mode": {"enum": ["free", "grammar"]},
            "grammar": _str_list, "hot_words": _str_list,
            "no_speech_seconds": {"type": "number", "exclusiveMinimum": 0},
            "vad": {"type": "object"}}},
        "limits": {"type": "object", "additionalProperties": False, "properties": {
            "max_misses": {"type": "integer", "minimum": 1},
            "max_silences": {"type": "integer", "minimum": 1},
            "repeat_handoff": {"type": "integer", "minimum": 2},
            "slot_attempts": {"type": "integer", "minimum": 1},
            "on_unknown": {"enum": ["retry", "human"]},
            "after_silence": {"enum": ["done", "human"]}}},
        "matching": {"type": "object", "additionalProperties": False, "properties": {
            "answer": {"type": "number", "minimum": 0, "maximum": 1},
            "suggest": {"type": "number", "minimum": 0, "maximum": 1},
            "margin": {"type": "number", "minimum": 0, "maximum": 1},
            "lead_score": {"type": "number", "minimum": 0, "maximum": 1},
            "lead_ratio": {"type": "number", "minimum": 1},
            "candidates": {"type": "integer", "minimum": 3, "maximum": 5},
            "min_confidence": {"type": "number", "minimum": 0, "maximum": 1}}},
        "messages": {"type": "object", "additionalProperties": False,
                     "properties": {k: {"type": "string", "minLength": 1} for k in MESSAGE_KEYS}},
        "answers": {"type": "object", "additionalProperties": False,
                    "properties": {"yes": _str_list, "no": _str_list, "none": _str_list}},
        "synonyms": {"type": "object", "additionalProperties": _str_list},
        "words": _str_list,
        "handoff_keywords": _str_list,
        "intents": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": False, "properties": {
                "examples": _str_list, "keywords": _str_list, "then": _then,
                "answer": {"type": "string", "minLength": 1}, "comment": {"type": "string"}}}},
        "faq": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["id", "category", "question", "answer"],
            "properties": {
                "id": {"type": ["string", "integer"]}, "category": {"type": "string", "minLength": 1},
                "question": {"type": "string", "minLength": 1},
                "answer": {"type": "string", "minLength": 1},
                "alternates": _str_list, "keywords": _str_list,
                "then": {"enum": ["human", "done"]}}}},
        "faq_files": _str_list,
        "tasks": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": False, "required": ["slots"], "properties": {
                "slots": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False,
                    "required": ["name", "type", "prompt", "confirm"], "properties": {
                        "name": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$",
                                 "description": "a slot name (letters, digits, _)"},
                        "type": {"enum": list(slots_mod.SLOT_TYPES)},
                        "prompt": {"type": "string", "minLength": 1},
                        "confirm": {"type": "string", "minLength": 1},
                        "invalid": {"type": "string", "minLength": 1},
                        "min_length": {"type": "integer", "minimum": 1},
                        "max_length": {"type": "integer", "minimum": 1}}}},
                "reply": {"type": "string"},
                "then": {"enum": ["human", "done", "continue"]}}}},
    },
}


class BotError(Exception):
    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class AsrOptions:
    mode: str = "free"                 # "grammar": listen for `grammar` words only
    grammar: tuple = None
    hot_words: tuple = ()
    no_speech_seconds: float = 6.0     # no speech this long -> Dialogue.on_silence()
    vad: object = None                 # engine.bot.vad.VadConfig


@dataclass(frozen=True)
class Intent:
    id: str
    examples: tuple
    keywords: tuple
    then: str                          # human | done | repeat | answer | task:<id>
    answer: str = None


@dataclass(frozen=True)
class SlotSpec:
    name: str
    type: object                       # slots.SlotType
    prompt: str
    confirm: str                       # with {value}: the value read back digit by digit
    invalid: str


@dataclass(frozen=True)
class Task:
    id: str
    slots: tuple
    reply: str = ""
    then: str = "human"


@dataclass
class Bot:
    name: str
    path: pathlib.Path
    language: str
    subject: str
    greeting: str
    greeting_interruptible: bool
    asr: AsrOptions
    limits: dict
    matching: dict
    messages: dict
    answers: dict
    handoff_keywords: tuple
    intents: dict                      # id -> Intent
    faq: dict                          # id -> faq.FaqEntry
    tasks: dict                        # id -> Task
    tokenizer: object = None
    matcher: object = None             # nlu.Matcher over ("intent", id) and ("faq", id) keys
    human_keywords: tuple = field(default=())
    voice: str = None                  # TTS voice; None: the settings' default voice

    def entry_text(self, key):
        """The question a candidate key stands for, as offered to the caller."""
        kind, ident = key
        if kind == "faq":
            return self.faq[ident].question
        return self.intents[ident].examples[0] if self.intents[ident].examples else ident


def _fields(template):
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        return {f"<{exc}>"}


class _Checker:
    def __init__(self, path, raw):
        self.path, self.raw, self.problems = path, raw, []

    def at(self, keys, problem):
        line, col = _pos_at(self.raw, keys)
        where = ".".join(map(str, keys)) or "file"
        self.problems.append(f"{self.path}:{line}:{col}: {where}: {problem}")

    def said(self, keys, sentence):
        """A sentence that names its key itself (engine.infra.schematext)."""
        line, col = _pos_at(self.raw, keys)
        self.problems.append(f"{self.path}:{line}:{col}: {sentence}")

    def template(self, keys, text, allowed):
        unknown = sorted(_fields(text) - set(allowed))
        if unknown:
            self.at(keys, f"unknown placeholder(s) {', '.join('{%s}' % u for u in unknown)}; "
                          f"allowed: {', '.join('{%s}' % a for a in sorted(allowed)) or 'none'}")


def read_yaml(path, problems):
    try:
        return yamlpos.load(pathlib.Path(path).read_text(encoding="utf-8"))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problems.append(f"{path}:{line}:{col}: YAML: {exc.problem or exc}")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}:1:1: cannot read: {exc}")
    return None


def check_bot(path):
    """(Bot, []) or (None, problems)."""
    path = pathlib.Path(path)
    problems = []
    raw = read_yaml(path, problems)
    if problems:
        return None, problems
    if not isinstance(raw, dict):
        return None, [f"{path}:1:1: a bot file is a mapping (name, subject, greeting, intents, faq...)"]
    chk = _Checker(path, raw)
    errors = sorted(jsonschema.Draft7Validator(SCHEMA).iter_errors(_plain(raw)), key=lambda e: list(map(str, e.path)))
    for error in errors:     # in words, with "did you mean" for misspelt keys and choices
        for keys, sentence in describe(error):
            chk.said(keys, sentence)
    if errors:          # the shape is wrong: report where, and check nothing deeper
        return None, chk.problems
    data = _plain(raw)
    bot = _build(path, data, chk)
    return (None, chk.problems) if chk.problems else (bot, [])


def load_bot(path):
    bot, problems = check_bot(path)
    if problems:
        raise BotError(problems)
    return bot


def _build(path, data, chk):
    from .vad import VadConfig
    language = data.get("language", "zh")
    chinese = language.startswith("zh")

    messages = dict(ZH_MESSAGES) if chinese else {}
    messages.update(data.get("messages", {}))
    missing = [k for k in MESSAGE_KEYS if k not in messages]
    if missing:
        chk.at(["messages"], f"language {language!r} has no default messages: give "
                             f"{', '.join(missing)}")
    for key, text in data.get("messages", {}).items():
        chk.template(["messages", key], text, MESSAGE_FIELDS.get(key, ()))
    answers = {k: list(v) for k, v in (ZH_ANSWERS if chinese else {}).items()}
    answers.update(data.get("answers", {}))
    for key in ("yes", "no", "none"):
        if key not in answers:
            chk.at(["answers"], f"language {language!r} has no default {key!r} answers: give them")

    asr_raw = data.get("asr", {})
    vad = None
    try:
        vad = VadConfig.from_dict(asr_raw.get("vad"))
    except (ValueError, TypeError) as exc:
        chk.at(["asr", "vad"], str(exc))
    mode = asr_raw.get("mode", "free")
    grammar = tuple(asr_raw["grammar"]) if "grammar" in asr_raw else None
    if mode == "grammar" and not grammar:
        chk.at(["asr", "mode"], "grammar mode needs asr.grammar (the words callers may say)")
    if mode == "free" and grammar:
        chk.at(["asr", "grammar"], "asr.grammar is only used with mode: grammar")
    asr = AsrOptions(mode=mode, grammar=grammar, hot_words=tuple(asr_raw.get("hot_words", ())),
                     no_speech_seconds=float(asr_raw.get("no_speech_seconds", 6.0)), vad=vad)

    limits = dict(LIMIT_DEFAULTS, **data.get("limits", {}))
    matching = dict(MATCH_DEFAULTS, **data.get("matching", {}))
    if matching["suggest"] > matching["answer"]:
        chk.at(["matching", "suggest"], f"must not be above matching.answer ({matching['answer']})")

    greeting = data["greeting"]
    greeting_text = greeting if isinstance(greeting, str) else greeting["text"]
    greeting_interruptible = True if isinstance(greeting, str) else greeting.get("interruptible", True)

    tasks = {}
    for task_id, task in data.get("tasks", {}).items():
        specs, names = [], set()
        for i, slot in enumerate(task["slots"]):
            keys = ["tasks", task_id, "slots", i]
            if slot["name"] in names:
                chk.at(keys + ["name"], f"slot {slot['name']!r} appears twice in this task")
            names.add(slot["name"])
            if slot["type"] == "digits":
                lo, hi = slot.get("min_length", 1), slot.get("max_length", 20)
                if lo > hi:
                    chk.at(keys + ["min_length"], f"must not be above max_length ({hi})")
            elif "min_length" in slot or "max_length" in slot:
                chk.at(keys + ["type"], f"min_length/max_length apply to type digits only "
                                        f"({slot['type']} has a fixed length)")
            for key in ("prompt", "confirm", "invalid"):
                if key in slot:
                    chk.template(keys + [key], slot[key], SLOT_FIELDS[key])
            if "{value}" not in slot["confirm"]:
                chk.at(keys + ["confirm"], "must read the value back: put {value} in it")
            specs.append(SlotSpec(
                name=slot["name"],
                type=slots_mod.SlotType(slot["type"], slot.get("min_length", 1), slot.get("max_length", 20)),
                prompt=slot["prompt"], confirm=slot["confirm"],
                invalid=slot.get("invalid", messages.get("slot_invalid", ""))))
        reply = task.get("reply", "")
        chk.template(["tasks", task_id, "reply"], reply, names)
        tasks[task_id] = Task(id=task_id, slots=tuple(specs), reply=reply, then=task.get("then", "human"))

    intents = {}
    for intent_id, intent in data.get("intents", {}).items():
        keys = ["intents", intent_id]
        then = intent.get("then", "answer")
        if not intent.get("examples") and not intent.get("keywords"):
            chk.at(keys, "needs examples or keywords (how callers say it)")
        if then in ("human", "done", "repeat") and not intent.get("keywords"):
            chk.at(keys, f"then: {then} is acted on by keywords only (a look-alike question must "
                         f"not end the call): give keywords")
        if then == "answer" and not intent.get("answer"):
            chk.at(keys, "then: answer needs an answer text")
        if then.startswith("task:") and then[5:] not in tasks:
            chk.at(keys + ["then"], f"no task {then[5:]!r}; tasks: {', '.join(tasks) or 'none'}")
        intents[intent_id] = Intent(id=intent_id, examples=tuple(intent.get("examples", ())),
                                    keywords=tuple(intent.get("keywords", ())), then=then,
                                    answer=intent.get("answer"))
    if not any(i.then == "human" for i in intents.values()):
        chk.at(["intents"], "no intent hands off to a human (then: human): callers must be able to "
                            "ask for one")

    entries = []
    for i, item in enumerate(data.get("faq", [])):
        line, _ = _pos_at(chk.raw, ["faq", i])
        entries.append(faq_mod.FaqEntry(
            id=str(item["id"]), category=item["category"], question=item["question"],
            answer=item["answer"], alternates=tuple(item.get("alternates", ())),
            keywords=tuple(item.get("keywords", ())), then=item.get("then"),
            where=f"{path}:{line}"))
    for i, name in enumerate(data.get("faq_files", [])):
        entries.extend(_faq_file(path.parent / name, chk, ["faq_files", i]))
    faq = {}
    for entry in entries:
        if entry.id in faq:
            chk.problems.append(f"{entry.where}: faq id {entry.id!r} is also used at {faq[entry.id].where}")
        faq[entry.id] = entry
    if not faq and not any(i.then == "answer" for i in intents.values()):
        chk.at(["faq"], "the bot answers nothing: give faq entries or intents with answers")

    if chk.problems:
        return None
    tokenizer = nlu.Tokenizer(language, data.get("synonyms", {}), data.get("words", ()))
    entries_for_matcher = [(("intent", i.id), list(i.examples) + list(i.keywords)) for i in intents.values()]
    entries_for_matcher += [(("faq", e.id), list(e.phrases) + list(e.keywords)) for e in faq.values()]
    human_keywords = tuple(k for i in intents.values() if i.then == "human" for k in i.keywords)
    return Bot(name=data["name"], path=path, language=language, subject=data["subject"],
               greeting=greeting_text, greeting_interruptible=greeting_interruptible, asr=asr,
               limits=limits, matching=matching, messages=messages, answers=answers,
               handoff_keywords=tuple(data.get("handoff_keywords", ())), intents=intents, faq=faq,
               tasks=tasks, tokenizer=tokenizer, matcher=nlu.Matcher(tokenizer, entries_for_matcher),
               human_keywords=human_keywords, voice=data.get("voice"))


def _faq_file(path, chk, keys):
    if not path.exists():
        chk.at(keys, f"no such file {path}")
        return []
    if path.suffix.lower() == ".csv":
        loaded = faq_mod.read_csv(path)
        chk.problems.extend(loaded.problems)
        return loaded.entries
    problems = []
    raw = read_yaml(path, problems)
    chk.problems.extend(problems)
    if problems:
        return []
    if raw is None:
        chk.problems.append(f"{path}:1:1: empty FAQ file (a list of entries, or faq: [...])")
        return []
    sub = _Checker(path, raw)
    items = raw.get("faq") if isinstance(raw, dict) else raw
    item_schema = SCHEMA["properties"]["faq"]
    errors = list(jsonschema.Draft7Validator(item_schema).iter_errors(_plain(items)))
    for error in errors:
        prefix = ["faq"] if isinstance(raw, dict) else []
        sub.at(prefix + list(error.path), error.message)
    chk.problems.extend(sub.problems)
    if errors:
        return []
    out = []
    for i, item in enumerate(_plain(items)):
        line, _ = _pos_at(raw, (["faq"] if isinstance(raw, dict) else []) + [i])
        out.append(faq_mod.FaqEntry(id=str(item["id"]), category=item["category"],
                                    question=item["question"], answer=item["answer"],
                                    alternates=tuple(item.get("alternates", ())),
                                    keywords=tuple(item.get("keywords", ())), then=item.get("then"),
                                    where=f"{path}:{line}"))
    return out


def self_check(bot, near=0.9):
    """Warnings, not errors: phrases of two entries so alike that callers asking one would be
    offered both ('file:line: warning: ...')."""
    out = []
    for entry in bot.faq.values():
        for phrase in entry.phrases:
            for key, score in bot.matcher.rank(phrase)[:3]:
                if key != ("faq", entry.id) and score >= near:
                    out.append(f"{entry.where or bot.path}: warning: faq {entry.id!r}: {phrase!r} is "
                               f"as close to {key[0]} {key[1]!r} ({score:.2f}): callers will be "
                               f"offered both; reword one")
    return out
