"""Questions a bot could not answer: appended as JSON lines, listed grouped by similarity.

One file per bot, `<dir>/<bot name>.misses.jsonl`; each line
{"at": epoch, "bot": name, "call": uuid, "lang": "zh", "kind": "unknown|off_topic|rejected|
not_understood", "text": what the caller said, "best": [[entry id, score], ...]}.
A line is written with one O_APPEND write, so calls (and engine processes) sharing the file never
interleave half lines. Administrators read the groups with `hotline bot misses` and add FAQ entries
for the biggest ones.
"""
import json
import logging
import os
import pathlib
from collections import Counter

from engine import privacy

from . import nlu

log = logging.getLogger("hotline.bot.misses")

SUFFIX = ".misses.jsonl"


def append(directory, record):
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    record = privacy.mask_value(record)           # what the caller said may hold an ID number
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(directory / f"{record['bot']}{SUFFIX}", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read(directory, bot=None):
    """Records from every misses file in `directory` (or only `bot`'s), and the bad lines found
    ('file:line: problem') — a damaged line is reported, never silently dropped."""
    directory = pathlib.Path(directory)
    pattern = f"{bot}{SUFFIX}" if bot else f"*{SUFFIX}"
    records, problems = [], []
    for path in sorted(directory.glob(pattern)):
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                        raise ValueError("not a miss record")
                except ValueError as exc:
                    problems.append(f"{path}:{number}: {exc}")
                    continue
                records.append(record)
    return records, problems


_tokenizers = {}


def _tokenizer(lang):
    if lang not in _tokenizers:
        _tokenizers[lang] = nlu.Tokenizer(lang)
    return _tokenizers[lang]


def group(records, threshold=0.5):
    """Groups of similar questions, biggest first: [{"count", "text" (most frequent wording),
    "examples" (other wordings, most frequent first), "kinds", "bots", "last"}].

    Greedy single pass over TF-IDF vectors of the questions (IDF from the misses themselves): a
    question joins the first group whose first question it resembles by `threshold` or more.
    """
    by_lang = {}
    for record in records:
        by_lang.setdefault(record.get("lang", "zh"), []).append(record)
    groups = []
    for lang, recs in by_lang.items():
        tokenizer = _tokenizer(lang)
        texts = [r["text"] for r in recs]
        matcher = nlu.Matcher(tokenizer, [(i, [t]) for i, t in enumerate(texts)])
        vectors = dict(matcher.vectors)
        lang_groups = []                 # [(head vector, [records])]
        for i, record in enumerate(recs):
            # Questions of stop words only ("你好你好") have no vector: group them by their text.
            vec = vectors.get(i) or {"=" + nlu.normalize(record["text"]): 1.0}
            home = None
            for head, members in lang_groups:
                if sum(w * head.get(t, 0.0) for t, w in vec.items()) >= threshold:
                    home = members
                    break
            if home is None:
                lang_groups.append((vec, [record]))
            else:
                home.append(record)
        groups.extend(members for _, members in lang_groups)
    out = []
    for members in groups:
        wordings = Counter(m["text"] for m in members)
        ranked = [t for t, _ in wordings.most_common()]
        out.append({"count": len(members), "text": ranked[0], "examples": ranked[1:],
                    "kinds": dict(Counter(m.get("kind", "?") for m in members)),
                    "bots": sorted({m.get("bot", "?") for m in members}),
                    "last": max(m.get("at", 0) for m in members)})
    out.sort(key=lambda g: (-g["count"], -g["last"]))
    return out
