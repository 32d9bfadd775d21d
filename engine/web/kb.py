"""The agents' knowledge base: the FAQ entries of the bot files, plus further knowledge files.

Sources, under the IVR flows directory (files.flows_dir):
- `bots/*.yaml`: each bot file's `faq:` entries and the CSV / YAML files its `faq_files:` name
  (the same entries the voice bot answers from: engine.bot.faq);
- `kb/*.csv`, `kb/*.yaml`: knowledge only agents read (CSV columns as engine.bot.faq; YAML a list
  of entries or `faq: [...]`).
Files are read again when one of them changes (mtime), so a knowledge team's edit shows without
a restart. A broken file is logged and skipped; the others still answer.

Search by words (substring of the question, its alternates, keywords, category or answer) or by
pinyin initials (`ylbx` finds 养老保险) or full pinyin (`yanglao`); best matches first.
"""
import logging
import pathlib
import re

import gevent.lock
from pypinyin import Style, lazy_pinyin

from engine.bot import faq as faq_mod
from engine.bot.botfile import read_yaml
from engine.infra.yamlpos import plain

log = logging.getLogger("hotline.web.kb")

MAX_RESULTS = 20
MAX_QUERY = 100
_LATIN = re.compile(r"^[a-z]+$")


class Entry:
    __slots__ = ("id", "category", "question", "answer", "phrases", "keywords", "source",
                 "initials", "spelled")

    def __init__(self, entry, source):
        self.id, self.category, self.question, self.answer = entry.id, entry.category, entry.question, entry.answer
        self.phrases = tuple(entry.phrases)
        self.keywords = tuple(entry.keywords)
        self.source = source
        # one pinyin string per phrase: initials ('ylbxznljf') and whole syllables ('yanglaobaoxian...')
        self.initials = tuple("".join(lazy_pinyin(p, style=Style.FIRST_LETTER)).lower() for p in self.phrases)
        self.spelled = tuple("".join(lazy_pinyin(p)).lower() for p in self.phrases)

    def as_dict(self):
        return {"id": self.id, "category": self.category, "question": self.question,
                "answer": self.answer, "alternates": list(self.phrases[1:]), "source": self.source}


class KnowledgeBase:
    def __init__(self, flows_dir):
        self.flows_dir = pathlib.Path(flows_dir)
        self.entries = []
        self._stamp = None
        self._lock = gevent.lock.Semaphore()

    def files(self):
        out = []
        for sub, patterns in (("bots", ("*.yaml", "*.yml")), ("kb", ("*.yaml", "*.yml", "*.csv"))):
            d = self.flows_dir / sub
            for pattern in patterns:
                out.extend(sorted(d.glob(pattern)))
        return out

    def _current_stamp(self, files):
        stamp = []
        for f in files:
            try:
                stamp.append((str(f), f.stat().st_mtime_ns))
            except OSError:
                pass
        return tuple(stamp)

    def load(self):
        """Read every source again if one changed; returns the entries."""
        with self._lock:
            files = self.files()
            stamp = self._current_stamp(files)
            if stamp == self._stamp:
                return self.entries
            entries, seen = [], set()
            for f in files:
                for entry in self._read(f, top=f.parent.name == "kb"):
                    key = (entry.question, entry.answer)
                    if key not in seen:          # a CSV shared by two bots is listed once
                        seen.add(key)
                        entries.append(Entry(entry, f.name))
            # files named by faq_files count for the stamp too
            self.entries, self._stamp = entries, stamp
            log.info("knowledge base: %d entries from %d files", len(entries), len(files))
            return entries

    def _read(self, path, top):
        if path.suffix.lower() == ".csv":
            loaded = faq_mod.read_csv(path)
            for p in loaded.problems:
                log.warning("knowledge base: %s", p)
            return loaded.entries
        problems = []
        raw = read_yaml(path, problems)
        if problems or raw is None:
            for p in problems:
                log.warning("knowledge base: %s", p)
            return []
        raw = plain(raw)
        items = raw.get("faq") if isinstance(raw, dict) else raw
        out = _entries(items, path)
        if isinstance(raw, dict) and not top:
            for name in raw.get("faq_files") or []:
                if isinstance(name, str):
                    out.extend(self._read(path.parent / name, top=True))
        return out

    def search(self, query, limit=MAX_RESULTS):
        query = (query or "").strip()[:MAX_QUERY]
        entries = self.load()
        if not query:
            return [e.as_dict() for e in entries[:limit]]
        words = [w for w in re.split(r"\s+", query.lower()) if w]
        scored = []
        for e in entries:
            score = sum(_score(e, w) for w in words)
            if score and all(_score(e, w) for w in words):
                scored.append((-score, e.id, e))
        scored.sort(key=lambda t: t[:2])
        return [e.as_dict() for _, _, e in scored[:limit]]


def _score(e, word):
    if word in e.question.lower():
        return 10
    if any(word in p.lower() for p in e.phrases[1:]):
        return 8
    if any(word in k.lower() for k in e.keywords) or word in e.category.lower():
        return 6
    if _LATIN.match(word):
        if any(i.startswith(word) for i in e.initials):
            return 7
        if any(word in i for i in e.initials):
            return 5
        if len(word) >= 3 and any(word in s for s in e.spelled):
            return 4
    if word in e.answer.lower():
        return 2
    return 0


def _entries(items, path):
    out = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item.get(k)
                                                 for k in ("question", "answer")):
            log.warning("knowledge base: %s: entry %d has no question or answer; skipped", path, i + 1)
            continue
        out.append(faq_mod.FaqEntry(id=str(item.get("id") or f"{path.stem}-{i + 1}"),
                                    category=str(item.get("category") or ""),
                                    question=item["question"], answer=item["answer"],
                                    alternates=tuple(str(a) for a in item.get("alternates") or ()),
                                    keywords=tuple(str(k) for k in item.get("keywords") or ()),
                                    where=f"{path}:{i + 1}"))
    return out
