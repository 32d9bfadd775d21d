"""The hotline's daily report (issue 6 section 4): figures for one local day from the CDRs.

    hotline report daily [--date DAY] [--config FILE] [--tz ZONE] [--json] [--chart FILE]

A call belongs to the local day its start_time falls in: the day in the hotline's time zone
(setting `timezone`, or --tz); CDR times are stored in UTC. Offered = the call
reached a queue; answered = an agent took it; abandoned = offered but never answered; engine
down = no engine took the call and the switch's dialplan fallback answered it. Service
level = answered within SERVICE_LEVEL_SECONDS of queue wait, over offered. Satisfaction rate =
scores 1 (非常满意) and 2 (满意) over rated calls. Ticket figures come from engine.tickets
(`daily_counts`) when that module is installed, else they read "n/a".

The chart (PNG, only with --chart FILE) shows calls offered/answered per local hour and how long callers waited.
"""
import inspect
import json
import os
import sys
import tempfile

from engine.cdr.xmlcdr import ENGINE_DOWN_TAG
from engine.infra import clitext
from engine.infra.clock import DEFAULT_ZONE as DEFAULT_TZ, Clock

SERVICE_LEVEL_SECONDS = 20   # answered within 20 s of queue wait
ANSWER_RATE_TARGET = 0.95
SATISFACTION_TARGET = 0.95
SATISFIED_SCORES = (1, 2)    # 1 = 非常满意, 2 = 满意 (engine.call.survey)
# Wait-time buckets in seconds (lower edges); the last one is open-ended.
WAIT_BUCKETS = (0, 10, 20, 30, 60, 120, 300)


# --- figures (pure) ---------------------------------------------------------------------------

def _avg(values):
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 1) if values else None


def _rate(part, whole):
    return round(part / whole, 4) if whole else None


def daily_figures(cdrs):
    """Offered = calls that reached a queue; answered = an agent took it."""
    offered = [c for c in cdrs if c.get("queue")]
    # calls no engine took (engine stopped or shutting down): the switch's dialplan fallback told
    # the caller to call later; imported from the switch's XML CDRs (engine.cdr.xmlcdr)
    engine_down = [c for c in cdrs if ENGINE_DOWN_TAG in (c.get("tags") or ())]
    answered = [c for c in offered if c.get("agent")]
    rated = [c["satisfaction"] for c in cdrs if c.get("satisfaction") in (1, 2, 3, 4, 5)]
    within = [c for c in answered if (c.get("wait_seconds") or 0) <= SERVICE_LEVEL_SECONDS]
    n = len(offered)
    answer_rate = _rate(len(answered), n)
    satisfaction_rate = _rate(sum(1 for s in rated if s in SATISFIED_SCORES), len(rated))
    return {
        "calls": len(cdrs),
        "offered": n,
        "answered": len(answered),
        "answer_rate": answer_rate,
        "answer_rate_target": ANSWER_RATE_TARGET,
        # None (no calls) is not "below": there is nothing to judge.
        "answer_rate_below_target": answer_rate is not None and answer_rate < ANSWER_RATE_TARGET,
        "abandoned": n - len(answered),
        "unanswered_engine_down": len(engine_down),
        "service_level": _rate(len(within), n),
        "service_level_seconds": SERVICE_LEVEL_SECONDS,
        "avg_wait": _avg(c.get("wait_seconds") for c in offered),
        "avg_talk": _avg(c.get("talk_seconds") for c in answered),
        "avg_wrapup": _avg(c.get("wrapup_seconds") for c in answered),
        "rated": len(rated),
        "scores": {str(s): rated.count(s) for s in (1, 2, 3, 4, 5)},
        "satisfaction_rate": satisfaction_rate,
        "satisfaction_target": SATISFACTION_TARGET,
        "satisfaction_below_target": satisfaction_rate is not None and satisfaction_rate < SATISFACTION_TARGET,
    }


def hourly_counts(cdrs, tz=DEFAULT_TZ):
    """{"offered": [24 counts], "answered": [24 counts]} by the local hour the call started."""
    clock = Clock(tz)
    offered, answered = [0] * 24, [0] * 24
    for c in cdrs:
        start = c.get("start_time")
        if not c.get("queue") or start is None:
            continue
        hour = clock.local(start).hour
        offered[hour] += 1
        if c.get("agent"):
            answered[hour] += 1
    return {"offered": offered, "answered": answered}


def wait_distribution(cdrs):
    """Offered calls per wait bucket, answered and abandoned apart:
    [{"from": 0, "to": 10, "answered": n, "abandoned": n}, ..., {"from": 300, "to": None, ...}].
    A bucket holds from < wait <= to (the first also 0): like the service level, 20 s is "within 20"."""
    edges = list(WAIT_BUCKETS) + [None]
    buckets = [{"from": lo, "to": hi, "answered": 0, "abandoned": 0} for lo, hi in zip(edges, edges[1:])]
    for c in cdrs:
        if not c.get("queue"):
            continue
        wait = c.get("wait_seconds") or 0
        index = sum(1 for lo in WAIT_BUCKETS[1:] if wait > lo)
        buckets[index]["answered" if c.get("agent") else "abandoned"] += 1
    return buckets


def day_bounds(day, tz=DEFAULT_TZ):
    """The local day [start, end) as naive UTC datetimes (CDR times are stored in UTC)."""
    return Clock(tz).day_bounds(day)


# --- reading the day --------------------------------------------------------------------------

def day_cdrs(day, tz=DEFAULT_TZ):
    """CDRs (dicts, as CdrStore.get returns them) of calls started on the local day, oldest first,
    from the database the Cdr table is bound to (the CLI binds it read-only)."""
    from engine.cdr.models import Cdr
    from engine.cdr.rows import as_dict
    from engine.cdr.store import is_provisional
    start, end = day_bounds(day, tz)
    query = (Cdr.select().where((Cdr.start_time >= start) & (Cdr.start_time < end))
             .order_by(Cdr.start_time, Cdr.id))
    # a provisional CDR is a call still going (or cut by a crash and not completed yet): the day's
    # figures count calls that ended; outbound calls (callbacks, campaigns: extra.direction) are
    # not calls offered to the hotline (`hotline campaigns report` counts them)
    return [row for row in map(as_dict, query) if not is_provisional(row)
            and (row.get("extra") or {}).get("direction") != "outbound" and "outbound" not in (row.get("tags") or [])]


def ticket_counts(db_url, day, tz=DEFAULT_TZ):
    """engine.tickets.daily_counts for the day, or None when the ticket module is not installed.
    Returns (counts or None, problem text or None): a broken ticket module must not cost the
    rest of the report."""
    try:
        from engine.tickets import daily_counts
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == "engine.tickets" or exc.name.startswith("engine.tickets.")):
            return None, None           # not there yet: n/a, nothing to complain about
        return None, f"the ticket module cannot be loaded: {exc}"
    except ImportError as exc:
        return None, f"the ticket module cannot be loaded: {exc}"
    from engine.cdr.reading import missing_table
    source = None
    try:
        source = _ticket_source(db_url)
        # The agreed interface is daily_counts(db_url, day); the site's zone goes along when the
        # function takes one, so tickets and calls count the same local day.
        if "tz" in inspect.signature(daily_counts).parameters:
            counts = daily_counts(source, day, tz=tz)
        else:
            counts = daily_counts(source, day)
        return {k: int(counts[k]) for k in ("opened", "closed", "overdue")}, None
    except Exception as exc:        # noqa: BLE001 - any trouble there: n/a and say why
        if missing_table(exc):
            return None, f"ticket figures unavailable: the database has no ticket tables yet ({exc})"
        return None, f"ticket figures unavailable: {type(exc).__name__}: {exc}"
    finally:
        if source is not None and not isinstance(source, str):
            source.close()


def _ticket_source(db_url):
    """Our ticket module counts through a read-only store (its own open() would create the ticket
    tables in a database the report only reads); another daily_counts gets the agreed URL."""
    try:
        from engine.cdr.reading import ticket_store
        return ticket_store(db_url)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("engine.tickets"):
            return db_url
        raise


# --- chart ------------------------------------------------------------------------------------

def write_chart(path, day, figures, hourly, waits, tz=DEFAULT_TZ):
    """A PNG with calls per hour (offered/answered bars) and the wait-time distribution.
    Written to a temporary file beside `path` and renamed: never a half-written chart."""
    # Figure + the Agg canvas directly: no pyplot global state, no GUI backend, under any $DISPLAY.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 8), dpi=100)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1)
    hours = range(24)
    top.bar([h - 0.2 for h in hours], hourly["offered"], width=0.4, label="offered", color="#9ecae1")
    top.bar([h + 0.2 for h in hours], hourly["answered"], width=0.4, label="answered", color="#3182bd")
    top.set_xticks(list(hours))
    top.set_xlabel(f"hour ({tz})")
    top.set_ylabel("calls")
    top.set_title(f"Calls per hour, {day.isoformat()}: offered {figures['offered']}, "
                  f"answered {figures['answered']} ({_pct(figures['answer_rate'])})")
    top.legend(loc="upper left")

    labels = [f"{b['from']}-{b['to']}" if b["to"] is not None else f"{b['from']}+" for b in waits]
    x = range(len(waits))
    answered = [b["answered"] for b in waits]
    bottom.bar(x, answered, label="answered", color="#31a354")
    bottom.bar(x, [b["abandoned"] for b in waits], bottom=answered, label="abandoned", color="#e6550d")
    if SERVICE_LEVEL_SECONDS in WAIT_BUCKETS:
        edge = WAIT_BUCKETS.index(SERVICE_LEVEL_SECONDS) - 0.5
        bottom.axvline(edge, color="#636363", linestyle="--", linewidth=1)
        bottom.annotate(f"service level {SERVICE_LEVEL_SECONDS} s", (edge, 1), xycoords=("data", "axes fraction"),
                        xytext=(4, -12), textcoords="offset points", color="#636363")
    bottom.set_xticks(list(x))
    bottom.set_xticklabels(labels)
    bottom.set_xlabel("wait in queue (seconds)")
    bottom.set_ylabel("calls")
    bottom.set_title(f"Wait time: service level {_pct(figures['service_level'])} within "
                     f"{figures['service_level_seconds']} s, average {_num(figures['avg_wait'])} s")
    bottom.legend(loc="upper right")
    fig.tight_layout()

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".png", dir=directory)
    try:
        os.fchmod(fd, 0o666 & ~_umask())    # mkstemp makes 0600; a chart is as readable as any file
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- CLI --------------------------------------------------------------------------------------

def register(subparsers):
    parser = subparsers.add_parser("report", help="the hotline's figures for a day",
                                   description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    daily = sub.add_parser("daily", help="calls, answer rate, service level, waits, satisfaction, tickets")
    clitext.add_day(daily, "the local day")
    clitext.add_config(daily)
    clitext.add_option(daily, "--tz")
    clitext.add_json(daily, "one JSON object with every figure")
    png = daily.add_mutually_exclusive_group()
    png.add_argument("--chart", "--png", metavar="FILE", dest="chart",
                     help="also draw the day's chart (PNG) into FILE")
    png.add_argument("--no-png", action="store_true", help="no chart (the default)")
    daily.set_defaults(func=cmd_daily)


def cmd_daily(args):
    try:
        return _daily(args)
    except clitext.Refused as exc:
        print(f"hotline report daily: {exc}", file=sys.stderr)
        return exc.code


def _daily(args):
    from engine.cdr.models import MODELS
    from engine.cdr.reading import NoDatabase, missing_table, open_readonly
    from engine.cdr.store import DB_ERRORS, CdrStore
    from engine.infra.clock import Clock, TimeInputError
    settings = clitext.settings_for_reading(args.config)
    try:
        clock = Clock(args.tz or settings.timezone)
    except ValueError as exc:
        raise clitext.Refused(str(exc), 2) from None
    tz = clock.name
    try:
        day = clock.parse_day(args.date, "--date") if args.date else clock.today()
    except TimeInputError as exc:
        raise clitext.Refused(str(exc), 2) from None
    db = settings.database
    # Read-only: a missing database is said, never created (it would report a silent zero day).
    try:
        conn = open_readonly(db.url, MODELS)
    except NoDatabase as exc:
        raise clitext.Refused(f"no CDR database: {exc}") from None
    try:
        cdrs = day_cdrs(day, tz)
    except DB_ERRORS as exc:
        problem = "it has no CDR table yet (has the engine run?)" if missing_table(exc) else exc
        raise clitext.Refused(f"reading the CDR database failed: {problem}") from None
    finally:
        conn.close()
    # reading only: replaying the spool is the engine's job; the store is not opened
    spool = CdrStore(db.url, settings.paths.cdr_spool)
    pending = spool.pending()

    figures = daily_figures(cdrs)
    hourly = hourly_counts(cdrs, tz)
    waits = wait_distribution(cdrs)
    tickets, ticket_problem = ticket_counts(db.url, day, tz)
    if ticket_problem:
        print(f"hotline report daily: {ticket_problem}", file=sys.stderr)

    rc, chart = 0, None
    if args.chart:
        chart = args.chart
        try:
            write_chart(chart, day, figures, hourly, waits, tz)
        except OSError as exc:
            print(f"hotline report daily: cannot write the chart {chart}: {exc}", file=sys.stderr)
            chart, rc = None, 1

    if args.json:
        out = {"date": day.isoformat(), "timezone": tz, **figures, "tickets": tickets,
               "hourly": hourly, "wait_distribution": waits, "png": chart, "cdrs_pending": pending,
               "generated_at": clock.iso(clock.now())}
        print(json.dumps(out, ensure_ascii=False, indent=1))
    else:
        print(format_report(day, tz, figures, tickets))
        if chart:
            print(f"chart: {chart}")
    if pending:
        print(f"hotline report daily: {pending} CDR(s) still wait in the spool {spool.spool_dir}; "
              "the figures do not include them yet", file=sys.stderr)
    return rc


def _pct(rate):
    return "n/a" if rate is None else f"{rate * 100:.1f}%"


def _num(value):
    return "n/a" if value is None else f"{value:.1f}"


def _secs(value):
    return "n/a" if value is None else f"{value:.1f} s"


def format_report(day, tz, f, tickets):
    """The human-readable report; figures below a target carry a BELOW TARGET flag."""
    def flag(below, target):
        return f"   (target >= {target * 100:.0f}%)" + ("  ** BELOW TARGET **" if below else "")

    if tickets is None:
        opened = closed = overdue = "n/a"
    else:
        opened, closed, overdue = tickets["opened"], tickets["closed"], tickets["overdue"]
    lines = [
        f"hotline daily report {day.isoformat()} ({tz})",
        f"calls (all)          {f['calls']}",
        f"calls offered        {f['offered']}",
        f"answered             {f['answered']}",
        f"answer rate          {_pct(f['answer_rate'])}"
        + flag(f["answer_rate_below_target"], f["answer_rate_target"]),
        f"abandoned            {f['abandoned']}",
        f"engine down          {f['unanswered_engine_down']}   (unanswered: no engine took the call, "
        "the switch said 'call later')",
        f"service level        {_pct(f['service_level'])}   (answered within {f['service_level_seconds']} s)",
        f"average wait         {_secs(f['avg_wait'])}   (offered calls, answered or not)",
        f"average talk         {_secs(f['avg_talk'])}",
        f"average wrap-up      {_secs(f['avg_wrapup'])}",
        f"satisfaction rate    {_pct(f['satisfaction_rate'])}"
        + flag(f["satisfaction_below_target"], f["satisfaction_target"])
        + f"   ({f['rated']} rated)",
        f"tickets opened       {opened}",
        f"tickets closed       {closed}",
        f"tickets overdue      {overdue}",
    ]
    return "\n".join(lines)
