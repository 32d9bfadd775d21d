"""Campaign control: create, load contacts, start, pause, resume, stop, list, show. Service
functions over an OutboundDb, shared by the CLI and the control API; a refused request raises
OutboundError with a message a person can act on, and changes nothing.

State lives in the database only (several engines read it): `running` campaigns are dialled by
every engine's runner (engine/outbound/runner.py), each contact claimed by one of them.
"""
import logging

import peewee

from engine.outbound.contacts import read_contacts
from engine.outbound.tables import CAMPAIGN_MODES, CONTACT_STATES, as_dict

log = logging.getLogger("hotline.outbound")

# action -> (states it is allowed from, state it leads to)
ACTIONS = {
    "start": (("draft", "stopped"), "running"),
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "stop": (("draft", "running", "paused"), "stopped"),
}


class OutboundError(ValueError):
    """A request refused (the message says why); nothing was changed."""


def create(db, name, mode, queue=None, flow=None, priority=5, max_attempts=3, abandon_target=0.03,
           note="", who="system"):
    if not name or len(name) > 64 or any(c.isspace() for c in name):
        raise OutboundError(f"campaign name {name!r}: 1-64 characters, no spaces")
    if mode not in CAMPAIGN_MODES:
        raise OutboundError(f"mode {mode!r}: one of {', '.join(CAMPAIGN_MODES)}")
    if mode == "robot" and not flow:
        raise OutboundError("a robot campaign needs --flow (an IVR flow file, e.g. ivr_flows/followup.yaml)")
    if mode != "robot" and not queue:
        raise OutboundError(f"a {mode} campaign needs --queue (its agents' skills)")
    if not 1 <= int(priority) <= 9:
        raise OutboundError("priority: 1 (first) to 9 (last)")
    if not 1 <= int(max_attempts) <= 20:
        raise OutboundError("max attempts: 1 to 20")
    if not 0.0 < float(abandon_target) <= 0.2:
        raise OutboundError("abandon target: above 0 and at most 0.2 (20%)")
    C = db.m.Campaign

    def write():
        if C.select().where(C.name == name).exists():
            raise OutboundError(f"campaign {name!r} exists already")
        return as_dict(C.create(name=name, mode=mode, queue=queue, flow=flow and str(flow),
                                priority=int(priority), max_attempts=int(max_attempts),
                                abandon_target=float(abandon_target), note=note, created_by=who))
    return db.run(write, write=True)


def get(db, name):
    return as_dict(db.run(lambda: _row(db, name)))


def _row(db, name):
    C = db.m.Campaign
    query = C.id == int(name) if str(name).isdigit() else C.name == str(name)
    row = C.get_or_none(query)
    if row is None:
        raise OutboundError(f"no campaign {name!r}")
    return row


def load(db, name, path, partial=False):
    """Contacts from a CSV/XLSX file. With errors: nothing loaded, or (`partial`) the good rows.
    Returns {"loaded", "skipped_existing", "errors", "loaded_rows": "all"|"good rows only"|"none"}."""
    rows, errors = read_contacts(path)
    return add_contacts(db, name, rows, errors, partial)


def add_contacts(db, name, rows, errors=(), partial=False):
    errors = list(errors)
    if errors and not partial:
        return {"loaded": 0, "skipped_existing": 0, "errors": errors, "loaded_rows": "none"}
    K = db.m.Contact

    def write():
        campaign = _row(db, name)
        if campaign.state == "finished":
            raise OutboundError(f"campaign {campaign.name} is finished")
        known = {c.number for c in K.select(K.number).where(K.campaign_id == campaign.id)}
        fresh = [r for r in rows if r["number"] not in known]
        now = db.clock()
        for start in range(0, len(fresh), 500):
            K.insert_many([{"campaign_id": campaign.id, "number": r["number"], "name": r.get("name", ""),
                            "reference": r.get("reference", ""), "fields": r.get("fields") or {},
                            "source": r.get("source", ""), "next_due_at": now, "updated_at": now}
                           for r in fresh[start:start + 500]]).execute()
        return len(fresh), len(rows) - len(fresh)
    loaded, existing = db.run(write, write=True)
    return {"loaded": loaded, "skipped_existing": existing, "errors": errors,
            "loaded_rows": "good rows only" if errors else "all"}


def control(db, name, action, who="system"):
    """start | pause | resume | stop; returns the campaign. Stopping lets calls in progress end;
    their contacts keep their results, the others stay pending (start again to go on)."""
    if action not in ACTIONS:
        raise OutboundError(f"unknown action {action!r}")
    allowed, target = ACTIONS[action]
    C = db.m.Campaign

    def write():
        row = _row(db, name)
        if row.state not in allowed:
            raise OutboundError(f"campaign {row.name} is {row.state}: cannot {action} "
                                f"(only when {' or '.join(allowed)})")
        now = db.clock()
        changes = {"state": target, "updated_at": now}
        if action == "start":
            changes["started_at"] = now
        if action == "stop":
            changes["stopped_at"] = now
        C.update(**changes).where(C.id == row.id).execute()
        return as_dict(C.get_by_id(row.id))
    out = db.run(write, write=True)
    log.info("campaign %s: %s by %s -> %s", out["name"], action, who, out["state"])
    return out


def finish_if_done(db, campaign_id):
    """A running campaign with no open contact left is finished."""
    C, K = db.m.Campaign, db.m.Contact

    def write():
        if K.select().where((K.campaign_id == campaign_id) & K.state.in_(("pending", "claimed"))).exists():
            return False
        return bool(C.update(state="finished", stopped_at=db.clock())
                    .where((C.id == campaign_id) & (C.state == "running")).execute())
    return db.run(write, write=True)


def list_campaigns(db):
    C, K = db.m.Campaign, db.m.Contact

    def query():
        counts = {}
        for cid, state, n in (K.select(K.campaign_id, K.state, peewee.fn.COUNT(K.id))
                              .group_by(K.campaign_id, K.state).tuples()):
            counts.setdefault(cid, {})[state] = n
        out = []
        for c in C.select().order_by(C.priority, C.id):
            d = as_dict(c)
            d["contacts"] = {s: counts.get(c.id, {}).get(s, 0) for s in CONTACT_STATES}
            d["contacts"]["total"] = sum(d["contacts"].values())
            out.append(d)
        return out
    return db.run(query)


def show(db, name):
    out = next(c for c in list_campaigns(db) if c["id"] == get(db, name)["id"])
    return out


def contacts(db, name, state=None, limit=None):
    K = db.m.Contact

    def query():
        campaign = _row(db, name)
        q = K.select().where(K.campaign_id == campaign.id).order_by(K.id)
        if state:
            q = q.where(K.state == state)
        if limit:
            q = q.limit(limit)
        return [as_dict(r) for r in q]
    return db.run(query)
