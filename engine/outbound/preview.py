"""Preview mode for campaign contacts: the agent sees who and why before any dial.

    contact = offer(db, claims, campaign, agent="1001")    # claimed for this agent (or None)
    runner.dial_claimed("contact", contact["id"], campaign, agent="1001")   # accept
    skip(db, claims, contact, agent="1001")                 # back to the list, not offered to 1001

Callback jobs have the same two steps in engine/outbound/jobs.py (take, skip).
"""
from engine.outbound.campaigns import OutboundError, get
from engine.outbound.tables import as_dict


def offer(db, claims, campaign_name, agent):
    """The next due contact of a running preview campaign, claimed for `agent`; None if none."""
    campaign = get(db, campaign_name)
    if campaign["mode"] != "preview":
        raise OutboundError(f"campaign {campaign['name']} is {campaign['mode']}, not preview")
    if campaign["state"] != "running":
        raise OutboundError(f"campaign {campaign['name']} is {campaign['state']}")
    K = db.m.Contact
    now = db.clock()
    due = (K.campaign_id == campaign["id"]) & (K.state == "pending") & (K.next_due_at <= now)
    rows = db.run(lambda: list(K.select(K.id, K.skipped_by).where(due).order_by(K.next_due_at, K.id).limit(200)))
    candidates = [r.id for r in rows if agent not in (r.skipped_by or [])]
    ids = claims.claim("contact", ids=candidates[:20], order=(K.next_due_at, K.id), limit=1) if candidates else []
    if not ids:
        return None
    db.run(lambda: K.update(agent=agent).where(K.id == ids[0]).execute(), write=True)
    return {**as_dict(db.run(lambda: K.get_by_id(ids[0]))), "campaign": campaign["name"]}


def skip(db, claims, contact, agent):
    """Give the contact back (pending, same due time); this agent is not offered it again."""
    skipped = sorted(set(contact.get("skipped_by") or []) | {agent})
    return claims.release("contact", contact["id"], state="pending", agent=None, skipped_by=skipped)
