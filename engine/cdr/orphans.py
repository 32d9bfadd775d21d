"""Provisional CDRs of calls that the engine and the switch both lost: finish them honestly.

A provisional CDR (engine.cdr.store) is completed by the engine's final write or, if the engine
died, by the switch's XML CDR file (engine.cdr.xmlcdr). If the switch died under the call too,
neither ever comes: no CHANNEL_HANGUP_COMPLETE, and no file (mod_xml_cdr writes it from the
channel's reporting hook, which a dead process never runs). Left alone, such a row would stay
provisional: out of `cdr list`, the reports and the outbox, so the caller who waited in a queue
and was cut off would never get a callback ticket.

How we know the switch died under the call: every event carries the switch's Core-UUID, a new
one at each start of the switch (fixture 05: the CHANNEL_DATA connect reply has it). The
provisional CDR keeps the Core-UUID of the switch that carried the call; once the switch we talk
to has another one, that call can no longer exist and, with no file of it in cdr_dir, its end
will never be reported. Only this engine's own rows (the socket its calls dial) are touched: on a
database shared with engines on other switches, theirs have other Core-UUIDs for other reasons.
"""
import logging
import os

from engine.cdr.store import PROVISIONAL, is_provisional
from engine.cdr.xmlcdr import SUFFIX

log = logging.getLogger("hotline.cdr")

CORE_UUID_KEY = "switch_core_uuid"      # extra: the Core-UUID of the switch that carried the call
SOCKET_KEY = "engine_socket"            # extra: host:port of the engine socket the call dialled


def finish_orphans(store, core_uuid, socket_target, cdr_dir, live_uuids=()):
    """Finish this engine's provisional CDRs whose switch has restarted since; returns how many."""
    if not core_uuid:
        return 0
    finished = 0
    for row in store.list(provisional=True):
        extra = row.get("extra") or {}
        if not is_provisional(row) or row["uuid"] in live_uuids or extra.get(SOCKET_KEY) != socket_target:
            continue
        carried_by = extra.get(CORE_UUID_KEY)
        if not carried_by or carried_by == core_uuid or _switch_file(cdr_dir, row["uuid"]):
            continue
        record = {k: v for k, v in row.items() if k not in ("created_at", "updated_at")}
        record["tags"] = [t for t in row.get("tags") or [] if t != PROVISIONAL] + ["switch_restarted"]
        # CRASH: the cause FreeSWITCH itself gives a channel whose session died with a crash
        # (switch_core_state_machine.c, SWITCH_CAUSE_CRASH); the end time is not known: the last
        # moment the engine knew the call was up stands in for it, and says so.
        record["hangup_cause"] = "CRASH"
        record["hangup_side"] = "system"
        record["end_time"] = record.get("end_time") or row.get("updated_at")
        record["extra"] = {**extra, "hangup_cause_from": f"engine: the switch restarted (Core-UUID "
                                                          f"{carried_by} -> {core_uuid}) with the call "
                                                          "up and left no CDR file",
                           "end_time_is": "last known moment"}
        record["extra"].pop("provisional_at", None)
        where = store.save(record)
        log.warning("[%s] the switch died under this call (the engine too): CDR finished with cause "
                    "CRASH from its provisional CDR (%s)", row["uuid"], where)
        finished += 1
    return finished


def _switch_file(cdr_dir, uuid):
    if not cdr_dir:
        return False
    return any(os.path.exists(os.path.join(cdr_dir, f"{prefix}{uuid}{SUFFIX}")) for prefix in ("a_", ""))
