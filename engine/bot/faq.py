"""FAQ knowledge base entries, from the bot YAML itself or from CSV / YAML files it names.

CSV columns (header row required): id, category, question, answer, and optionally alternates
(other ways callers ask, separated by '|') and keywords (separated by '|'). Spreadsheets exported
by the hotline's knowledge team are UTF-8 with or without a BOM. Each problem is reported as
'file:line: problem', and a bad row does not hide the good ones' problems.
"""
import csv
import io
import pathlib
from dataclasses import dataclass, field

MAX_CSV_BYTES = 16 * 1024 * 1024   # a knowledge base of ~20,000 entries; a bigger file is a mistake
CSV_REQUIRED = ("id", "category", "question", "answer")
CSV_KNOWN = CSV_REQUIRED + ("alternates", "keywords")


@dataclass(frozen=True)
class FaqEntry:
    id: str
    category: str
    question: str
    answer: str
    alternates: tuple = ()
    keywords: tuple = ()
    where: str = ""                    # file:line, for messages about this entry
    then: str = None                   # None (keep talking), "human" or "done" after the answer

    @property
    def phrases(self):
        return (self.question,) + tuple(self.alternates)


@dataclass
class FaqLoad:
    entries: list = field(default_factory=list)
    problems: list = field(default_factory=list)


def _split(cell):
    return tuple(part.strip() for part in (cell or "").split("|") if part.strip())


def read_csv(path):
    """Entries of a CSV file, and the problems found ('file:line: problem')."""
    path = pathlib.Path(path)
    out = FaqLoad()
    try:
        if path.stat().st_size > MAX_CSV_BYTES:
            out.problems.append(f"{path}:1: file over {MAX_CSV_BYTES} bytes")
            return out
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        out.problems.append(f"{path}:1: cannot read: {exc}")
        return out
    reader = csv.DictReader(io.StringIO(text))
    try:
        _read_rows(path, reader, out)
    except csv.Error as exc:         # a cell over csv's 128 KB field limit, a NUL byte, ...
        out.problems.append(f"{path}:{reader.line_num + 1}: not readable as CSV: {exc}")
    return out


def _read_rows(path, reader, out):
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in CSV_REQUIRED if c not in header]
    unknown = [c for c in header if c not in CSV_KNOWN]
    if missing or unknown:
        if missing:
            out.problems.append(f"{path}:1: missing column(s) {', '.join(missing)}; "
                                f"columns: {', '.join(CSV_KNOWN)}")
        if unknown:
            out.problems.append(f"{path}:1: unknown column(s) {', '.join(unknown)}; "
                                f"columns: {', '.join(CSV_KNOWN)}")
        return out
    reader.fieldnames = header
    for row in reader:
        line = reader.line_num
        if None in row:
            out.problems.append(f"{path}:{line}: more cells than columns (a comma inside a text "
                                f"needs the text in double quotes)")
            continue
        values = {k: (v or "").strip() for k, v in row.items()}
        empty = [c for c in CSV_REQUIRED if not values.get(c)]
        if empty:
            out.problems.append(f"{path}:{line}: empty {', '.join(empty)}")
            continue
        out.entries.append(FaqEntry(id=values["id"], category=values["category"],
                                    question=values["question"], answer=values["answer"],
                                    alternates=_split(values.get("alternates")),
                                    keywords=_split(values.get("keywords")),
                                    where=f"{path}:{line}"))
    return out
