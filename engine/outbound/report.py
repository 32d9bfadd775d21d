"""A campaign's figures and its per-contact results, for people and for export.

    figures = campaign_report(db, "fu-1123", tz="Asia/Shanghai")
    export(db, "fu-1123", "out.xlsx")          # or .csv: one row per contact

Reached = the contact answered at least once; completed = the contact is done (robot: confirmed
and answered the questions; agent modes: an agent talked to them). The abandon rate is answered
dials that found no agent (predictive), over answered dials. Days are local days of `tz`.

Dials are the attempts that rang the customer. Two kinds of attempt never did, and are figures of
their own: `agent_missed` (a preview call's agent did not answer their phone, so the customer was
never dialled: engine/outbound/agentfirst.py) and the dialler's refusals before any dial
(`refused`: engine.outbound.results.REFUSALS).
"""
import collections
import csv
import datetime
import zoneinfo
from pathlib import Path

from engine.outbound.attempts import REACHED
from engine.outbound.campaigns import contacts, get
from engine.outbound.results import REFUSALS

EXPORT_COLUMNS = ("number", "name", "reference", "state", "attempts", "last_result", "agent",
                  "disposition", "answers", "comment_recording", "source")
AGENT_MISSED = "agent_missed"
NOT_DIALLED = (AGENT_MISSED,) + REFUSALS       # attempts in which the customer's phone never rang


def campaign_report(db, name, tz="Asia/Shanghai"):
    campaign = get(db, name)
    rows = contacts(db, name)
    A = db.m.Attempt
    tries = db.run(lambda: list(A.select().where(A.campaign_id == campaign["id"]).order_by(A.id).dicts()))
    zone = zoneinfo.ZoneInfo(tz)
    dials = [t for t in tries if t["result"] not in NOT_DIALLED]
    total = len(rows)
    reached_ids = {t["contact_id"] for t in tries if t["result"] in REACHED or t["result"] == "abandoned"
                   or t["result"] == "not_confirmed"}
    completed = sum(1 for r in rows if r["state"] == "done")
    answered = [t for t in tries if t["answered_at"] is not None or t["result"] in REACHED + ("abandoned",)]
    abandoned = sum(1 for t in tries if t["result"] == "abandoned")
    answers = collections.defaultdict(collections.Counter)
    for r in rows:
        for key, value in (r["answers"] or {}).items():
            answers[key][str(value)] += 1
    scores = [int(r["answers"]["satisfaction"]) for r in rows
              if (r["answers"] or {}).get("satisfaction") not in (None, "") and
              str(r["answers"]["satisfaction"]).isdigit()]
    by_day = collections.OrderedDict()
    for t in tries:
        day = t["started_at"].replace(tzinfo=datetime.timezone.utc).astimezone(zone).date().isoformat()
        d = by_day.setdefault(day, {"dials": 0, "answered": 0, "abandoned": 0, "completed": 0,
                                    "agent_missed": 0})
        d["dials"] += t["result"] not in NOT_DIALLED
        d["agent_missed"] += t["result"] == AGENT_MISSED
        d["answered"] += t in answered
        d["abandoned"] += t["result"] == "abandoned"
        d["completed"] += t["result"] in REACHED
    by_agent = {}
    for t in tries:
        if t["agent"]:
            a = by_agent.setdefault(t["agent"], {"calls": 0, "missed": 0, "completed": 0, "talk_seconds": 0.0})
            a["calls"] += t["result"] not in NOT_DIALLED
            a["missed"] += t["result"] == AGENT_MISSED
            a["completed"] += t["result"] in REACHED
            if t["answered_at"] and t["ended_at"]:
                a["talk_seconds"] += (t["ended_at"] - t["answered_at"]).total_seconds()
    return {
        "campaign": campaign["name"], "mode": campaign["mode"], "state": campaign["state"],
        "contacts": total,
        "states": dict(collections.Counter(r["state"] for r in rows)),
        "reached": len(reached_ids), "reached_pct": _pct(len(reached_ids), total),
        "completed": completed, "completed_pct": _pct(completed, total),
        "dials": len(dials), "attempts_per_contact": round(len(dials) / total, 2) if total else 0.0,
        "agent_missed": sum(1 for t in tries if t["result"] == AGENT_MISSED),
        "refused": sum(1 for t in tries if t["result"] in REFUSALS),
        "results": dict(collections.Counter(t["result"] or "in_progress" for t in tries)),
        "answers": {k: dict(sorted(v.items())) for k, v in sorted(answers.items())},
        "satisfaction": {"rated": len(scores), "mean": round(sum(scores) / len(scores), 2) if scores else None,
                         "distribution": dict(sorted(collections.Counter(scores).items()))},
        "abandon_pct": _pct(abandoned, len(answered)),
        "by_day": by_day, "by_agent": dict(sorted(by_agent.items())),
    }


def _pct(part, whole):
    return round(100.0 * part / whole, 1) if whole else 0.0


def export(db, name, path):
    """Per-contact results to .csv (UTF-8 with BOM, so Excel reads the Chinese) or .xlsx."""
    path = Path(path)
    rows = contacts(db, name)
    fields = sorted({k for r in rows for k in (r["fields"] or {})})
    header = list(EXPORT_COLUMNS) + fields
    table = [[_safe(v) for v in [_cell(r, c) for c in EXPORT_COLUMNS]
              + [(r["fields"] or {}).get(f, "") for f in fields]] for r in rows]
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, "w", encoding="utf-8-sig", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(table)
    elif suffix == ".xlsx":
        import openpyxl
        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet("contacts")
        sheet.append(header)
        for line in table:
            sheet.append(line)
        summary = book.create_sheet("summary")
        for key, value in campaign_report(db, name).items():
            if not isinstance(value, dict):
                summary.append([key, value])
        book.save(path)
    else:
        raise ValueError(f"{path}: export to .csv or .xlsx")
    return len(rows)


def _cell(row, column):
    value = row.get(column)
    if column == "answers":
        return " ".join(f"{k}={v}" for k, v in sorted((value or {}).items()))
    return "" if value is None else value


def _safe(value):
    """Text that starts like a formula is kept as text (CSV/XLSX injection: =cmd|...): the names
    and free fields came from outside."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value
