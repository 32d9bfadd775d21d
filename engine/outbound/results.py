"""What became of a dial, from the switch's own hangup causes, and when to try again.

The causes are FreeSWITCH's (switch_channel.c cause table), which mod_sofia derives from the
carrier's SIP answer in sofia_glue_sip_cause_to_freeswitch (mod_sofia/sofia_glue.c, "map sip
responses to QSIG cause codes ala RFC4497 section 8.4.4"): 486/600 -> USER_BUSY, 480 ->
NO_USER_RESPONSE, 401/402/403/407/603 -> CALL_REJECTED, 404 -> UNALLOCATED_NUMBER (older versions:
NO_ROUTE_DESTINATION, like 485/604), 484 -> INVALID_NUMBER_FORMAT, 410 -> NUMBER_CHANGED,
400/481/500/503 -> NORMAL_TEMPORARY_FAILURE, 502 -> NETWORK_OUT_OF_ORDER, 408/504 ->
RECOVERY_ON_TIMER_EXPIRE, 488/606 -> INCOMPATIBLE_DESTINATION. The originate's own timeout is
NO_ANSWER (switch_ivr_originate.c), a gateway that is down or unknown GATEWAY_DOWN (mod_sofia).
"""
import datetime

# result names a dial can end with; the refusals come from the dialer's checks, before any dial
ANSWERED, BUSY, NO_ANSWER, REJECTED, INVALID, OUR_FAULT, FAILED = (
    "answered", "busy", "no_answer", "rejected", "invalid", "our_fault", "failed")
REFUSALS = ("invalid", "blocked", "dnc", "window_closed", "paused")

CAUSES = {
    "USER_BUSY": BUSY,
    "NO_ANSWER": NO_ANSWER,
    "NO_USER_RESPONSE": NO_ANSWER,           # SIP 480: switched off, out of coverage
    "SUBSCRIBER_ABSENT": NO_ANSWER,
    "PROGRESS_TIMEOUT": NO_ANSWER,
    "CALL_REJECTED": REJECTED,
    "UNALLOCATED_NUMBER": INVALID,           # 404: no such number (空号)
    "NO_ROUTE_DESTINATION": INVALID,         # 404 on older versions, 485, 604
    "INVALID_NUMBER_FORMAT": INVALID,        # 484
    "NUMBER_CHANGED": INVALID,               # 410: 改号
    # our side (the trunk, the switch, the engine): tried again, not held against the contact
    "NORMAL_TEMPORARY_FAILURE": OUR_FAULT,
    "GATEWAY_DOWN": OUR_FAULT,
    "INVALID_GATEWAY": OUR_FAULT,            # no such gateway: our configuration (trunk.proxy unset?)
    "INVALID_URL": OUR_FAULT,
    "INVALID_PROFILE": OUR_FAULT,
    "NETWORK_OUT_OF_ORDER": OUR_FAULT,
    "DESTINATION_OUT_OF_ORDER": OUR_FAULT,
    "NORMAL_CIRCUIT_CONGESTION": OUR_FAULT,
    "SWITCH_CONGESTION": OUR_FAULT,
    "RECOVERY_ON_TIMER_EXPIRE": OUR_FAULT,   # 408/504: the carrier did not answer our INVITE
    "INCOMPATIBLE_DESTINATION": OUR_FAULT,   # 488: our codecs
    "SERVICE_UNAVAILABLE": OUR_FAULT,
    "SERVICE_NOT_IMPLEMENTED": OUR_FAULT,
    "FACILITY_REJECTED": OUR_FAULT,
    "FACILITY_NOT_SUBSCRIBED": OUR_FAULT,
    "OUTGOING_CALL_BARRED": OUR_FAULT,       # the trunk may not call out
    "BEARERCAPABILITY_NOTAVAIL": OUR_FAULT,
    "CHAN_NOT_IMPLEMENTED": OUR_FAULT,
    "INTERWORKING": OUR_FAULT,
    "MANDATORY_IE_MISSING": OUR_FAULT,
    "SYSTEM_SHUTDOWN": OUR_FAULT,
    "CRASH": OUR_FAULT,
    "ORIGINATOR_CANCEL": OUR_FAULT,          # we gave up the dial ourselves
    "LOSE_RACE": OUR_FAULT,
    "MANAGER_REQUEST": OUR_FAULT,            # uuid_kill of a dial that ran too long
    "ALLOTTED_TIMEOUT": OUR_FAULT,
}


def classify(answered, cause):
    """(result, retry, counts_attempt) of a dial that reached the switch. `cause` is the hangup
    cause (the `-ERR <CAUSE>` of the originate), None when the switch never answered us."""
    if answered:
        return ANSWERED, False, True
    result = CAUSES.get((cause or "").strip().upper(), FAILED if cause else OUR_FAULT)
    if result == INVALID:
        return INVALID, False, True          # a number that does not exist is never tried again
    if result == OUR_FAULT:
        return OUR_FAULT, True, False
    return result, True, True


class RetryRules:
    """When a contact is tried again: `rules` {result: RetryRule(delay_minutes, max_attempts)}
    (engine.outbound.config.retry_rules). `attempts`: attempts already made that count against
    the contact, this one included; for our_fault, the tries failed on our side."""

    def __init__(self, rules):
        self.rules = dict(rules)

    @classmethod
    def from_settings(cls, cfg):
        from engine.outbound.config import retry_rules
        return cls(retry_rules(cfg))

    def next_due(self, result, attempts, now):
        """The time of the next try, or None: never again (answered, invalid, refused for good,
        attempts used up). A closed window is the dialer's business, not this rule's."""
        rule = self.rules.get(result)
        if rule is None or rule.max_attempts <= 0 or attempts >= rule.max_attempts:
            return None
        return now + datetime.timedelta(minutes=rule.delay_minutes)
