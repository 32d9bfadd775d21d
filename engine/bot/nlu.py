"""Text understanding for bots: normalising, word segmentation, and a TF-IDF matcher.

Chinese is segmented with jieba (search mode, so a long compound such as 医保异地就医备案 also yields
its parts 医保 / 异地 / 就医 / 备案 and matches a caller who says only some of them). Other languages
(the Korean test bot) split on spaces. Synonyms map words to one canonical word before scoring, so
"医疗保险" and "医保" count as the same word.

The scorer is TF-IDF cosine similarity between the caller's words and each example phrase of each
entry (FAQ question, its paraphrases, an intent's examples); an entry scores its best phrase. A
cosine is in [0, 1] whatever the phrase length, so one threshold works across entries. Written here
(50 lines) rather than pulling in scikit-learn for one vectoriser.

jieba loads its dictionary (~1 s) on first use: once per process, under a lock, at bot load time
(flows are loaded before calls arrive), never per call.
"""
import logging
import math
import re
import threading
import unicodedata
from collections import Counter

log = logging.getLogger("hotline.bot.nlu")

_jieba = None
_jieba_lock = threading.Lock()
_added_words = set()

# Function words that say nothing about what the caller wants. Question words (怎么, 哪里, 什么)
# are kept: "怎么交" and "交多少" are different questions.
ZH_STOPWORDS = frozenset("""
请问 请 问 问下 问一下 一下 我 我们 我的 你 你们 您 您好 你好 他 她 它 的 地 得 了 吗 呢 吧 啊 呀 哦 嗯 噢 哈
是 在 有 要 想 想要 就 都 也 还 和 与 跟 及 或 或者 这 那 这个 那个 一个 个 些 能 能不能 可以 可不可以 需要
会 应该 让 给 把 被 对 对于 关于 麻烦 帮 帮我 帮忙 谢谢 好 好的 那么 然后 现在 知道 告诉 下 着 过 么
问题 事情 咨询 一些 方面 不能 不行 行不行 行 能 用 一下子 上 里 中
""".split())

# Words every question has: knowing them does not make a question one of ours ("今天天气怎么样"
# shares 怎么样 with many FAQ questions and is still off-topic).
ZH_QUESTION_WORDS = frozenset("""
怎么 怎么样 怎么办 怎样 如何 什么 啥 哪里 哪儿 哪个 哪些 多少 多久 几 为什么 是否 有没有 能否
办 办理 弄 做 用 去 来 说 问题 事情 情况 时候 什么时候 时间 今天 明天
""".split())

_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_HAN = re.compile(r"[\u4e00-\u9fff]")


def jieba():
    """The shared jieba module, its dictionary loaded once per process."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba as jieba_mod
                jieba_mod.setLogLevel(logging.WARNING)
                jieba_mod.initialize()
                _jieba = jieba_mod
    return _jieba


def add_words(words):
    """Teach jieba domain words (灵活就业, 异地就医) so they are kept whole. jieba's dictionary is
    per process: words added by one bot help every bot, which is harmless (they are real words)."""
    j = jieba()
    with _jieba_lock:
        for word in words:
            if word and word not in _added_words:
                j.add_word(word, freq=20000)
                _added_words.add(word)


def normalize(text):
    """NFKC (full-width digits and letters become ASCII), lower case, punctuation to spaces."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    return _PUNCT.sub(" ", text).strip()


class Tokenizer:
    """Words of a text for matching, with synonyms folded to their canonical word."""

    def __init__(self, language="zh", synonyms=None, words=()):
        self.language = language
        self.synonyms = {}
        self.canonical = set((synonyms or {}).keys())
        for canonical, variants in (synonyms or {}).items():
            for variant in variants:
                self.synonyms[normalize(variant).replace(" ", "")] = canonical
        if self.chinese:
            add_words(list(words) + list(self.synonyms) + list((synonyms or {}).keys()))

    @property
    def chinese(self):
        return self.language.startswith("zh")

    def words(self, text):
        """Every word, stop words included (for keyword spotting and picking choices)."""
        text = normalize(text)
        if not self.chinese:
            return text.split()
        # ASR output for Chinese often has spaces between characters: they carry no meaning.
        joined = "".join(text.split()) if _HAN.search(text) else text
        return [w for w in jieba().cut_for_search(joined) if w.strip()]

    def terms(self, text):
        """Words that carry meaning, synonyms folded.

        Search mode gives a compound's parts before the compound (医疗, 保险, 医疗保险); when the
        compound is a synonym the parts are dropped, else 保险 from 医疗保险 would pull the caller
        towards 养老保险 questions."""
        words = self.words(text)
        folded = {w for w in words if w in self.synonyms or w in self.canonical}
        out = []
        for word in words:
            if any(word != f and len(word) < len(f) and word in f for f in folded):
                continue
            word = self.synonyms.get(word, word)
            if self.chinese and word in ZH_STOPWORDS:
                continue
            out.append(word)
        return out


class Matcher:
    """Scores a text against entries, each given as (key, [phrases])."""

    def __init__(self, tokenizer, entries):
        self.tokenizer = tokenizer
        self.phrases = []                       # (key, Counter of terms)
        for key, phrases in entries:
            for phrase in phrases:
                terms = Counter(tokenizer.terms(phrase))
                if terms:
                    self.phrases.append((key, terms))
        docs = len(self.phrases) or 1
        df = Counter(term for _, terms in self.phrases for term in terms)
        # Smoothed IDF: a word in every phrase still weighs a little; unseen words weigh most,
        # which lowers the cosine of a question that talks about something else.
        self.idf = {t: math.log((1 + docs) / (1 + n)) + 1 for t, n in df.items()}
        self.unseen_idf = math.log(1 + docs) + 1
        self.vectors = [(key, self._vector(terms)) for key, terms in self.phrases]
        self.key_terms = {}
        for key, terms in self.phrases:
            self.key_terms.setdefault(key, set()).update(terms)

    @property
    def vocabulary(self):
        return self.idf.keys()

    def _vector(self, terms):
        vec = {t: (1 + math.log(n)) * self.idf.get(t, self.unseen_idf) for t, n in terms.items()}
        norm = math.sqrt(sum(v * v for v in vec.values())) or 1.0
        return {t: v / norm for t, v in vec.items()}

    def rank(self, text):
        """[(key, score)] best first, one row per key (its best phrase)."""
        terms = Counter(self.tokenizer.terms(text))
        if not terms:
            return []
        query = self._vector(terms)
        best = {}
        for key, vec in self.vectors:
            score = sum(w * vec.get(t, 0.0) for t, w in query.items())
            if score > best.get(key, 0.0):
                best[key] = score
        return sorted(best.items(), key=lambda kv: (-kv[1], str(kv[0])))

    def distinguishing(self, text, key, other):
        """The caller's words that `key` has and `other` has not: the evidence for one answer
        over the next. None means the caller said only what both share ("公积金"); question words
        are no evidence ("什么时候" does not make a question one about retirement)."""
        mine, theirs = self.key_terms.get(key, set()), self.key_terms.get(other, set())
        return [t for t in self.tokenizer.terms(text)
                if t in mine and t not in theirs and t not in ZH_QUESTION_WORDS]

    def known_terms(self, text):
        """The caller's subject words this matcher has seen (question words left out): none
        means the question is off-topic."""
        return [t for t in self.tokenizer.terms(text) if t in self.idf and t not in ZH_QUESTION_WORDS]


# --- short answers: yes/no, picking a choice --------------------------------------------------

ZH_NO = ("不对", "不是", "错了", "不正确", "有误", "错的", "不行", "错误", "否")
ZH_YES = ("对", "是", "正确", "没错", "没问题", "确认", "嗯", "好", "行", "可以", "确定")
_ORDINAL = {"一": 1, "1": 1, "幺": 1, "二": 2, "两": 2, "2": 2, "三": 3, "3": 3, "四": 4, "4": 4,
            "五": 5, "5": 5}
_PICK = re.compile(r"^(?:是|选|要)?(?:第)?([一二两三四五幺1-5])(?:个|条|项|种|号)?(?:问题|吧|的)?$")
_PICK_INNER = re.compile(r"第([一二两三四五1-5])(?:个|条|项)")


def yes_no(text, yes=ZH_YES, no=ZH_NO):
    """True, False, or None when the answer is neither (negations are checked first: 不对 has 对)."""
    text = normalize(text).replace(" ", "")
    if not text:
        return None
    if any(w in text for w in no):
        return False
    if any(w in text for w in yes):
        return True
    return None


def pick_number(text):
    """The choice a caller picks: "2", "第二个", "第2条", "我要第三个" -> 2, 2, 2, 3; else None."""
    text = normalize(text).replace(" ", "")
    m = _PICK.match(text)
    if m:
        return _ORDINAL[m.group(1)]
    m = _PICK_INNER.search(text)
    return _ORDINAL[m.group(1)] if m else None


_NEGATION = ("不要", "不用", "别", "不需要", "不想")


def spot_keyword(text, keywords):
    """The first keyword said (as a substring of the normalised text) and not negated right
    before it ("不要转人工" is not a request for a human)."""
    flat = normalize(text).replace(" ", "") if _HAN.search(text or "") else normalize(text)
    for keyword in keywords:
        key = normalize(keyword).replace(" ", "") if _HAN.search(keyword) else normalize(keyword)
        at = flat.find(key) if key else -1
        if at < 0:
            continue
        before = flat[max(0, at - 4):at]
        if any(n in before for n in _NEGATION):
            continue
        return keyword
    return None
