"""In-call actions on a conversation the switch bridges itself: the preview call placed agent
first (engine/outbound/agentfirst.py), where the agent's leg and the customer's leg are both
originated `&park()` and joined with `uuid_bridge <customer> <agent leg>`. No greenlet of ours
runs the customer's leg (it has no outbound socket), so the inbound design (engine/acd/incall.py:
the caller's greenlet plays the music, joins the conference, carries out the transfer) has no
one to act; InCall keeps the checks, roles, figures and audit and asks this module only for the
switch's side:

- hold: `uuid_hold <agent leg>`. In a uuid_bridge the bridge loop runs no event-locked
  application, so the hold music broadcast to the customer's leg plays at once and
  `uuid_hold off` stops it, the two legs bridged again (fixture 10: CHANNEL_HOLD on the agent
  leg, `playback <hold_music>` + PLAYBACK_START on its partner, PLAYBACK_STOP on unhold; not so
  inside an event-locked `bridge`, fixture 08 A). The agent leg carries the queue's music as
  `hold_music`. The held desk phone sends no DTMF (fixture 10): unhold comes from the desk, the
  API or the CLI.
- blind transfer: the customer's leg is tagged `hotline_purpose=handover` and handed to this
  engine's outbound socket with `uuid_transfer <customer> hotline_handover XML hotline_handover`
  (as incall.py sends legs to dialplans/conference.xml's hotline_conference; fixture 03 moves legs
  with uuid_transfer): dialplans/handover.xml, a context of our own, runs `socket` to the address
  the public dialplan uses, for legs so tagged only. Not through the public context and a DID:
  a site's public dialplan may route the hotline's numbers elsewhere (time of day, an IVR, another
  order), and the leg would pass for a new inbound call. engine.fsconf.check checks the context
  at connect (feature "handover"); without it the transfer is refused (503), nothing moved.
  There the ordinary Call is served by Acd.transfer_caller exactly as an inbound caller after a
  blind transfer (queue, reserved agent, outside number through dialer.trunk_endpoint). Taking
  one leg out of a uuid_bridge hangs up its partner (fixture 10: `uuid_park` of one leg -> the
  other CHANNEL_HANGUP NORMAL_CLEARING, the parked one stays; uuid_park is
  switch_ivr_park_session, which sets CF_TRANSFER and a new state as switch_ivr_session_transfer
  does for uuid_transfer, src/switch_ivr.c). The agent leg is killed as well once the transfer
  was accepted: by then the customer's leg carries CF_TRANSFER, so it is not hung up with it.
"""
import collections
import dataclasses
import logging
import time

import gevent.event

from engine.call.live import CallLog
from engine.esl import commands

log = logging.getLogger("hotline.acd.bridged")

PURPOSE = "handover"                # hotline_purpose of a customer leg handed to the socket
# dialplans/handover.xml: its extension runs the socket app for legs tagged hotline_purpose=handover
HANDOVER_CONTEXT = "hotline_handover"
HANDOVER_EXTENSION = "hotline_handover"
ARRIVAL_SECONDS = 20.0              # from the uuid_transfer to the leg on our socket server

_handovers = {}                     # customer leg uuid -> Handover waiting for the leg to arrive
# agent leg -> customer leg of recent preview calls: the agent's state names the agent leg, the
# call's CDR (and its disposition, work order) the customer's (engine/web/desk.py wrap-up)
_customers = collections.OrderedDict()
CUSTOMERS_KEPT = 2000


@dataclasses.dataclass
class CustomerLeg:
    """The customer's leg of a bridged call, as much of a Call as InCall and the desk read."""
    uuid: str
    caller_id_number: str
    caller_id_name: str = ""
    destination_number: str = ""
    info: dict = dataclasses.field(default_factory=dict)
    variables: dict = dataclasses.field(default_factory=dict)
    path: list = dataclasses.field(default_factory=list)
    log: object = None

    def __post_init__(self):
        self.log = CallLog(log, {"uuid": self.uuid})

    def interrupt(self):
        """Nothing of ours plays on this leg (InCall calls it for inbound callers on music)."""


@dataclasses.dataclass
class Handover:
    acd: object
    kind: str                       # queue, agent, external
    target: str
    number: str                     # the customer's number: the caller ID the next agent sees
    queue: str                      # the preview's queue (an agent transfer falls back to it)
    from_agent: str
    info: dict                      # CDR fields of the attempt (direction, job or contact...)
    tags: list
    holds: dict                     # holds and hold_seconds before the transfer (later ones add up)
    arrived: gevent.event.Event = dataclasses.field(default_factory=gevent.event.Event)


def conversation(customer, number, name, queue, agent, leg, handover_info, handover_tags):
    """The Conversation the in-call actions address for a bridged preview call; the agent-first
    call keeps it in its acd.agent_first entry (not in acd.conversations: no greenlet of ours
    serves the customer, and the ACD's hang-up bookkeeping of inbound calls does not apply)."""
    from engine.acd.service import Conversation
    _customers[leg] = customer
    while len(_customers) > CUSTOMERS_KEPT:
        _customers.popitem(last=False)
    conv = Conversation(call=CustomerLeg(customer, number, name), queue=queue, legs={leg: agent}, agent=agent,
                        leg=leg, answered_at=time.time())
    conv.bridged = True
    conv.handed_over = None             # the Handover once the customer's leg was sent to the socket
    conv.handover_info = handover_info  # CDR fields of the attempt, for the handed-over call's CDR
    conv.handover_tags = handover_tags
    return conv


def hold_figures(conv):
    """The holds of the call so far (InCall.hold / end_hold count them on conv.call.info)."""
    return {k: conv.call.info[k] for k in ("holds", "hold_seconds") if k in conv.call.info}


class Busy(Exception):
    """A transfer of this customer is already under way."""


def is_bridged(conv):
    return getattr(conv, "bridged", False)


def hold(acd, conv, on):
    """The switch's part of hold (on) and unhold (off); raises what acd.api raises."""
    return acd.api(commands.uuid_hold(conv.leg, on))


def hand_over(acd, conv, kind, target, handover_info, tags):
    """Send the customer's leg to this engine's socket, served there by Acd.transfer_caller.
    Returns the Handover; raises on a refused command (nothing moved then: the leg stays bridged)."""
    from engine.outbound import legs
    customer = conv.call.uuid
    if customer in _handovers or conv.handed_over:
        raise Busy(f"call {customer} is being transferred already")
    legs.register(PURPOSE, on_leg)
    entry = Handover(acd, kind, target, conv.call.caller_id_number, conv.queue.name, conv.agent,
                     handover_info, tags, hold_figures(conv))
    _handovers[customer] = entry
    try:
        for name, value in (("hotline_purpose", PURPOSE), ("hotline_transfer", f"{kind} {target}")):
            reply = acd.api(commands.uuid_setvar(customer, name, value))
            if not reply.startswith("+OK"):
                raise RuntimeError(f"uuid_setvar {name}: {reply.strip()}")
        # the variable is set first: the extension matches only legs that carry it
        reply = acd.api(commands.uuid_transfer(customer, HANDOVER_EXTENSION, HANDOVER_CONTEXT))
        if not reply.startswith("+OK"):
            raise RuntimeError(f"uuid_transfer: {reply.strip()}")
    except Exception:
        _handovers.pop(customer, None)
        raise
    conv.handed_over = entry
    # the switch hangs the agent leg up when the customer's leaves the bridge (fixture 10); the
    # kill makes sure of it (an -ERR once it is gone changes nothing)
    acd.api_quiet(commands.uuid_kill(conv.leg, "NORMAL_CLEARING"))
    return entry


def on_leg(call, info):
    """The legs registry's handler for `handover` legs (engine/outbound/legs.py)."""
    entry = _handovers.pop(call.uuid, None)
    if entry is None:
        call.log.error("handed-over leg with no transfer waiting for it here (engine restarted?): "
                       "hanging up")
        call.hangup()
        return None
    entry.arrived.set()
    acd = entry.acd
    # the leg was originated with the hotline's number as its caller ID: the next agent and the
    # CDR see the customer's
    call.caller_id_number = entry.number
    call.tags.extend(t for t in entry.tags if t not in call.tags)
    extra = call.info.setdefault("extra", {})
    extra.pop("outbound", None)             # {"purpose": "handover"}: the attempt's fields say more
    extra.update(entry.info)
    # an outbound call's CDR names the number dialled (as the attempt's own would), not our DID
    call.info.update(queue=entry.queue, agent=entry.from_agent, agents=[entry.from_agent],
                     destination=entry.number, **entry.holds)
    move = {"kind": entry.kind, "to": entry.target, "from_agent": entry.from_agent, "at": time.time()}
    call.info["transfers"] = [move]
    call.log.info("handed over by agent %s: blind transfer to %s %s", entry.from_agent, entry.kind,
                  entry.target)
    return acd.transfer_caller(call, entry.kind, entry.target)


def customer_of(leg):
    """The customer's leg of the recent preview call whose agent leg is `leg` (None if unknown)."""
    return _customers.get(leg)


def forget(customer):
    """The call ended before its leg arrived (or the wait gave up)."""
    _handovers.pop(customer, None)
