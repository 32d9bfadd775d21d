"""One caller in a queue, in the caller's own greenlet: wait with music and announcements, ring the
agents the router offers, talk, and leave by answer, overflow, exit key or hang-up.

Returns an outcome for the IVR `queue` node: 'done' (served by an agent; the survey has been
played), 'full', 'no_agents', 'overflow', 'exit', or an action name the node maps to a child
('voicemail', 'callback', 'hangup'). A hang-up raises CallGone, as everywhere.
"""
import logging
import time
import uuid as uuidlib

import gevent

from engine.acd.outage import ERRORS as REDIS_ERRORS
from engine.acd.router import Waiter
from engine.call.port import CallGone
from engine.call.live import MUSIC_FALLBACK, checkpoint
from engine.esl import commands

log = logging.getLogger("hotline.acd.waiting")

MISSED_CAUSES = {"NO_ANSWER", "USER_BUSY", "CALL_REJECTED", "NO_USER_RESPONSE", "USER_NOT_REGISTERED",
                 "SUBSCRIBER_ABSENT", "UNALLOCATED_NUMBER", "NORMAL_TEMPORARY_FAILURE",
                 "DESTINATION_OUT_OF_ORDER", "RECOVERY_ON_TIMER_EXPIRE", "INCOMPATIBLE_DESTINATION"}


def serve(acd, call, queue_name, joined=None, hops=0):
    try:
        return _serve(acd, call, queue_name, joined, hops)
    except REDIS_ERRORS as exc:
        acd.outage.failed(exc, "serving a caller")
        if call.info.get("agent"):
            return "done"             # connected to an agent: served, whatever Redis did after
        call.log.info("queue %s not reachable (Redis down): the flow's error path", queue_name)
        return "error"


def _serve(acd, call, queue_name, joined=None, hops=0):
    config = acd.config
    queue = config.queues.get(queue_name)
    if queue is None:
        call.log.error("queue %r does not exist", queue_name)
        return "error"
    store = acd.store
    if store.queue_length(queue_name) >= queue.max_length:
        call.log.warning("queue %s is full (%d)", queue_name, queue.max_length)
        acd.count(queue_name, offered=1, full=1)
        return "full"
    if queue.no_agents != "wait" and not acd.staffed(queue):
        call.log.info("queue %s: no agent logged in -> %s", queue_name, queue.no_agents)
        acd.count(queue_name, offered=1, no_agents=1)
        return "no_agents" if queue.no_agents == "branch" else queue.no_agents
    caller = commands.safe_number(call.caller_id_number)
    priority = queue.vip_priority if caller and caller in queue.vip_numbers else 0
    priority = call.info.get("queue_priority", priority)     # a blacklisted caller: behind everyone
    preferred = store.last_agent(caller) if queue.repeat_caller_hours > 0 else None
    preferred = call.info.get("preferred_agent") or preferred   # a callback the agent took (preview)
    joined = joined or time.time()
    score = store.join(queue_name, call.uuid, acd.engine_id, caller, priority, preferred or "", joined)
    waiter = Waiter(call, queue_name, score, preferred, joined)
    acd.waiters[call.uuid] = waiter
    acd.router.kick()
    if hops == 0:
        acd.count(queue_name, offered=1)
    call.info["queue"] = queue_name
    call.info.setdefault("queue_joined", joined)
    # on the caller's leg, so that the switch's own CDR file names the queue if this engine dies
    # before it writes the CDR (the leg runs no bridge yet: the api reaches it at once)
    acd.api_quiet(commands.uuid_setvar(call.uuid, "hotline_queue", queue_name))
    checkpoint(call, "queue_join")          # a provisional CDR: IVR path and queue survive a crash
    call.log.info("joined queue %s (priority %d%s)", queue_name, priority,
                  f", last agent {preferred}" if preferred else "")
    served = False
    try:
        result = _wait(acd, call, queue, waiter)
        served = result == "done"
        if result == "overflow" and queue.overflow.action == "queue" and hops < 5:
            _leave(acd, call, waiter)
            call.log.info("overflow from %s to %s", queue_name, queue.overflow.target)
            call.tags.append(f"overflow:{queue_name}")
            acd.count(queue_name, overflowed=1)
            return _serve(acd, call, queue.overflow.target, joined=joined, hops=hops + 1)
        if result == "overflow":
            acd.count(queue_name, overflowed=1)
            return queue.overflow.action if queue.overflow.action != "branch" else "overflow"
        if result == "exit":
            acd.count(queue_name, exited=1)
            return queue.exit_action if queue.exit_action != "branch" else "exit"
        return result
    except CallGone:
        # Abandoned means never connected, whether the caller was in music or an agent's phone was
        # ringing (the ringing case is tagged too: it points at agents slow to pick up).
        if not served and not call.info.get("agent"):
            acd.count(queue_name, abandoned=1)
            call.info["abandoned"] = True
            call.tags.append("abandoned")
            if waiter.ringing:
                call.tags.append("abandoned_ringing")
        raise
    finally:
        _leave(acd, call, waiter)


def _leave(acd, call, waiter):
    if acd.waiters.get(call.uuid) is waiter:
        acd.waiters.pop(call.uuid, None)
        acd.best_effort("leaving a queue", acd.store.leave, waiter.queue, call.uuid)
        # An offer the caller never got to (they hung up as the router chose an agent): free the
        # agent now rather than when the watchdog notices. No-op once the agent rang or answered.
        for agent_id in waiter.offer or ():
            acd.best_effort("releasing an agent", acd.board.release, agent_id, call.uuid, missed=False,
                            why="caller_gone")
        if call.info.get("queue_joined") and "wait_seconds" not in call.info:
            call.info["wait_seconds"] = round(time.time() - call.info["queue_joined"], 3)


def _wait(acd, call, queue, waiter):
    now = time.monotonic()
    overflow_at = now + queue.overflow.after_seconds - (time.time() - waiter.joined)
    next_announce = now + min(queue.announce.every_seconds, 3.0) if _announces(queue) else float("inf")
    call.flush_digits()
    while True:
        call.clear_interrupt()
        if waiter.offer:
            outcome = ring(acd, call, queue, waiter)
            if outcome in ("done", "transferred"):
                # served; "transferred": the agent sent the caller to an outside number and that
                # call is over, so the caller is not put back in this queue
                return outcome
            continue                     # not answered: back to the music, same place in line
        if queue.exit_key and queue.exit_key in _pressed(call):
            call.log.info("caller pressed the exit key %s", queue.exit_key)
            return "exit"
        call.flush_digits()
        now = time.monotonic()
        if now >= overflow_at:
            call.log.info("waited %.0f s in %s: overflow", queue.overflow.after_seconds, queue.name)
            return "overflow"
        if now >= next_announce:
            _announce(acd, call, queue, waiter)
            next_announce = time.monotonic() + queue.announce.every_seconds
            continue
        wake = gevent.spawn_later(max(0.0, min(next_announce, overflow_at) - now), call.interrupt)
        try:
            call.play([queue.music], interruptible=True, fallback=MUSIC_FALLBACK)
        finally:
            wake.kill(block=False)


def _pressed(call):
    digits = getattr(call, "_digits", None)
    return "".join(digits) if digits else ""


def _announces(queue):
    a = queue.announce
    return a.position or a.expected_wait or bool(a.message)


def _announce(acd, call, queue, waiter):
    if waiter.offer:
        return
    texts = []
    # in a Redis outage the caller waits on, without the figures
    position = acd.best_effort("announcing a position", acd.store.position, queue.name, call.uuid)
    if queue.announce.position and position:
        texts.append(f"您前面还有{position - 1}位来电者。" if position > 1 else "您是下一位，请稍候。")
    minutes = None
    if queue.announce.expected_wait and position:
        minutes = acd.best_effort("estimating a wait", acd.expected_wait, queue, position)
    if minutes is not None:
        minutes = minutes / 60.0
        texts.append(f"预计等待{max(1, round(minutes))}分钟。")
    if queue.announce.message:
        texts.append(queue.announce.message)
    if not texts:
        return
    call.info.setdefault("announcements", 0)
    call.info["announcements"] += 1
    sources = [acd.prompt(t) for t in texts]
    call.log.info("announce: %s", "".join(texts))
    call.play(sources, interruptible=True)


# --- ringing and talking --------------------------------------------------------------------------

def ring(acd, call, queue, waiter, transfer_from=None):
    """Ring the reserved agent(s); on answer, talk until the conversation ends. Returns 'done' when
    the caller was served, None when nobody answered (the agents are released, the caller keeps
    their place)."""
    agent_ids = waiter.offer
    legs = {}
    for agent_id in agent_ids:
        leg = str(uuidlib.uuid4())
        legs[leg] = agent_id
        acd.board.ringing(agent_id, call.uuid, leg)
        acd.legs[leg] = (agent_id, call.uuid)
    conversation = acd.begin(call, queue, legs)
    dial = acd.dial_string(call, queue, legs)
    acd.arm_recording(call, queue)
    call.log.info("ringing agent%s %s", "s" if len(legs) > 1 else "", ", ".join(agent_ids))
    waiter.ringing = True
    try:
        done = call.bridge(dial)
    except CallGone:
        acd.caller_gone(call, conversation)
        raise
    cause = (done.get("variable_originate_disposition") or done.get("variable_DIALSTATUS") or "").upper()
    if conversation.answered_at is None and (call.gone or cause == "ORIGINATOR_CANCEL"):
        acd.caller_gone(call, conversation)      # the caller's hang-up cancelled the ringing
        raise CallGone(call.uuid)
    waiter.ringing = False
    if conversation.answered_at is None:
        for leg, agent_id in legs.items():
            acd.legs.pop(leg, None)
            acd.best_effort("releasing an agent", acd.board.release, agent_id, call.uuid,
                            missed=cause in MISSED_CAUSES, why=cause.lower())
        acd.end(call, conversation)
        call.log.info("no answer from %s (%s); back in line", ", ".join(agent_ids), cause or "?")
        waiter.clear()
        # lost in an outage, the place is given back by the watchdog (_rejoin_lost_waiters)
        acd.best_effort("putting a caller back in line", acd.store.put_back, queue.name, call.uuid, waiter.score)
        call.wait_gone(queue.retry_delay)
        if call.gone:
            raise CallGone(call.uuid)
        acd.router.kick()
        return None
    # The bridge ended. In-call features (hold, consult, three-way, transfer) move the agent's
    # leg out of the bridge on purpose and leave an instruction for the caller's side.
    return acd.converse(call, queue, conversation)
