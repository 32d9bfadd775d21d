"""What an engine does to trust the shared state again after a failure (issue 17): a process
restarted in its slot after kill -9, a Redis outage, a Redis that restarted empty.

- A predecessor in this slot is dead (one process per listening port): its heartbeat goes at once.
- Before an agent with a leg is freed, the switch is asked (`uuid_exists`): a running `bridge` goes
  on without its engine, so a live leg is adopted, never rung over (no double booking).
- Two engines beside two switches: a dead engine of another slot may have had its agents' legs on
  its own switch, which this engine cannot ask (`uuid_exists` here says false for a leg there).
  Those agents stay booked for `redis.dead_engine_grace` seconds after this engine first sees the
  owner dead (its successor, restarted beside that switch, adopts live legs meanwhile), then are
  released (_foreign_leg_pending).
- Queue entries expire unless their engine refreshes them; the entries of dead engines are removed.
- An epoch key written into a fresh Redis: when it is missing or changed, Redis lost its data and
  the engine writes again what it knows (agents on calls, waiting callers).

A mixin of service.Acd: it works on the Acd's store, board, conversations, waiters and adopted legs.
"""
import logging
import time
import uuid as uuidlib

from engine.infra import netutil
from engine.esl import commands

log = logging.getLogger("hotline.acd")


class Recovery:
    def _bury_predecessors(self):
        """One process listens on a slot's port: another instance of this slot with a heartbeat
        still alive is a predecessor killed moments ago. Its leftovers are repaired from the first
        watchdog pass (asking the switch about every leg), not after its heartbeat expires."""
        slot = netutil.slot_of(self.engine_id)
        if slot == self.engine_id:
            return
        for other in self.store.engines():
            if other != self.engine_id and netutil.slot_of(other) == slot:
                self.store.forget_engine(other)
                log.warning("engine %s (this slot's previous process) is dead: its calls are checked "
                            "with the switch", other)

    def _leg_exists(self, leg):
        """Ask the switch about a leg: True, False, or None when it cannot tell (not connected,
        an error): then nothing is released on a guess."""
        reply = self.api_quiet(commands.uuid_exists(leg)).strip()
        return {"true": True, "false": False}.get(reply)

    def _adopt(self, agent_id, d):
        """An agent still ringing or talking on this switch after the engine that connected the
        call went away (a crash, a restart): a running `bridge` goes on without its engine, so
        the agent stays booked until that leg hangs up, then wraps up (or is freed if the leg was
        never answered). Returns True (adopted), False (the leg is gone) or None (cannot tell)."""
        leg = d.get("leg")
        exists = self._leg_exists(leg) if leg else False
        if not exists:
            return exists
        self.store.set_fields(agent_id, engine=self.engine_id)
        self.adopted[leg] = (agent_id, d.get("call"), d.get("queue", ""), float(d.get("answered_at") or time.time()))
        log.warning("agent %s is still %s on leg %s from before a restart: adopted", agent_id,
                    "talking" if d.get("state") == "in_call" else "ringing", leg)
        return True

    def _foreign_leg_pending(self, agent_id, d, pending):
        """True while a dead engine's agent keeps its booking although this switch does not know
        its leg: the leg may live on the dead engine's own switch (a running bridge goes on
        without its engine, FREESWITCH.md), which only that slot's next process can ask. Freeing
        the agent at once could ring them in the middle of that talk; keeping them booked for
        ever would lose them if that switch died too. So: booked for `dead_engine_grace` seconds
        from the first pass that saw the owner dead, then released (a successor that adopts the
        leg meanwhile makes the owner alive again, and this engine leaves it alone).

        A leg of this engine's own slot (a predecessor, same switch) is never pending: there the
        switch's false is the truth. `pending` collects the keys still waiting, for the pass."""
        owner = d.get("engine") or ""
        if not owner or netutil.slot_of(owner) == netutil.slot_of(self.engine_id):
            return False
        key = (agent_id, d.get("leg"))
        now = time.time()
        first = self.foreign_since.setdefault(key, now)
        if now - first < self.settings.redis.dead_engine_grace:
            if first == now:
                log.warning("agent %s was %s on leg %s of engine %s, which is dead; the leg is not on "
                            "this switch: released in %.0f s unless that engine's successor adopts it",
                            agent_id, d.get("state"), d.get("leg"), owner, self.settings.redis.dead_engine_grace)
            pending.add(key)
            return True
        log.warning("agent %s: released after %.1f s (engine %s dead, its leg %s not on this switch)",
                    agent_id, now - first, owner, d.get("leg"))
        return False

    def check_epoch(self):
        """A missing or different epoch: Redis restarted empty (or was flushed) since this engine
        wrote its state. Claim a new epoch and write again what this engine knows. Returns True
        when it re-asserted."""
        current = self.store.epoch()
        if current is not None and current == self.epoch:
            return False
        if self.epoch is None:              # Redis was down when this engine started
            self.epoch = self.store.claim_epoch(uuidlib.uuid4().hex)
            self.reassert()
            return True
        log.error("Redis lost its data (epoch %s, now %s): re-asserting this engine's %d conversation(s) "
                  "and %d waiting caller(s); agents must log in again", self.epoch, current,
                  len(self.conversations), len(self.waiters))
        self.epoch = self.store.claim_epoch(uuidlib.uuid4().hex)
        self.reassert()
        return True

    def after_outage(self):
        """Redis answers again after an outage: before anything routes, write again what this
        engine knows. Either Redis lost its data (check_epoch re-asserts and says so), or it came
        back from a snapshot taken before the outage, with the same epoch and older states (an
        agent who answered during the outage is "available" there): re-assert all the same."""
        if not self.check_epoch():
            self.reassert()

    def _rejoin(self, waiter):
        """Put a waiting caller back in their queue, in their place (same joined time, priority)."""
        call = waiter.call
        waiter.score = self.store.join(waiter.queue, call.uuid, self.engine_id,
                                       commands.safe_number(call.caller_id_number) or "",
                                       round((waiter.joined - waiter.score) / 1e10),   # its priority
                                       waiter.preferred or "", waiter.joined)

    def _rejoin_lost_waiters(self):
        """Callers waiting on this engine whom their queue no longer lists (an update lost in a
        Redis outage): in line again, or the router would never offer them an agent."""
        idle = [(w.queue, u) for u, w in list(self.waiters.items()) if w.offer is None]
        for call_uuid in self.store.not_waiting(idle):
            waiter = self.waiters.get(call_uuid)
            if waiter is not None and waiter.offer is None:     # not offered meanwhile
                self._rejoin(waiter)
                waiter.call.log.warning("was missing from queue %s in Redis: back in line", waiter.queue)

    def _known_call(self, agent_id):
        """The fields of the call this engine knows `agent_id` to be on (talking, ringing, or an
        adopted leg), for Redis; None if it knows of none."""
        for conv in list(self.conversations.values()):
            if conv.agent == agent_id and not conv.agent_finished:
                return "in_call", {"call": conv.call.uuid, "leg": conv.leg, "queue": conv.queue.name,
                                   "answered_at": repr(conv.answered_at)}
            if conv.answered_at is None:
                for leg, ringing in conv.legs.items():
                    if ringing == agent_id:
                        return "ringing", {"call": conv.call.uuid, "leg": leg, "queue": conv.queue.name}
        for leg, held in list(self.agent_first.items()):      # preview calls ringing the agent first
            if held["agent"] == agent_id and held["state"] in ("ringing", "in_call"):
                fields = {"call": leg, "leg": leg, "queue": held["queue"]}
                if held.get("answered_at"):
                    fields["answered_at"] = repr(held["answered_at"])
                return held["state"], fields
        for leg, (adopted, call_uuid, queue, answered_at) in list(self.adopted.items()):
            if adopted == agent_id:
                return "in_call", {"call": call_uuid, "leg": leg, "queue": queue, "answered_at": repr(answered_at)}
        return None

    def reassert(self):
        """Write this engine's agents on calls and its waiting callers into Redis again."""
        agents = 0
        for agent_id in list(self.config.agents):
            known = self._known_call(agent_id)
            if known is None:
                continue
            state, fields = known
            agent = self.config.agents[agent_id]
            self.store.transition(agent_id, "*", state, engine=self.engine_id, extension=agent.extension, **fields)
            agents += 1
        waiters = 0
        for call_uuid, waiter in list(self.waiters.items()):
            if not waiter.offer:            # being rung: its agents were written above
                self._rejoin(waiter)
                waiters += 1
        log.warning("re-asserted %d agent(s) on calls and %d waiting caller(s) in Redis", agents, waiters)
        self.router.kick()
        return agents, waiters

    def _adopted_answers(self):
        """An adopted leg that was ringing and is answered now: the agent is in the call. The
        switch marks an answered channel `endpoint_disposition=ANSWER`
        (switch_channel_perform_mark_answered, src/switch_channel.c)."""
        answered = []
        for leg, (agent_id, call_uuid, queue, _) in list(self.adopted.items()):
            d = self.store.agent(agent_id)
            if d["state"] != "ringing" or d.get("call") != call_uuid:
                continue
            if self.api_quiet(commands.uuid_getvar(leg, "endpoint_disposition")).strip() != "ANSWER":
                continue
            if self.board.answered(agent_id, call_uuid) and leg in self.adopted:
                # talk time counts from here: the answer happened at most one watchdog pass ago
                self.adopted[leg] = (agent_id, call_uuid, queue, time.time())
                answered.append((agent_id, "answered"))
        return answered

    def _collect_entries(self, now):
        """Entry hashes no queue lists any more (taken for a conversation) whose engine died, or
        which this engine no longer serves: a crash left them behind."""
        collected = []
        uuids = [u for u in self.store.entry_uuids() if u not in self.waiters and u not in self.conversations]
        for call_uuid, entry in self.store.entries(uuids).items():
            owner = entry.get("engine")
            if not entry or float(entry.get("joined") or 0) > now - 2.0:
                continue                    # gone meanwhile, or joining right now
            if owner == self.engine_id or not owner or not self.store.engine_alive(owner):
                self.store.leave(entry.get("queue", ""), call_uuid)
                collected.append((call_uuid, "queue_entry"))
        return collected
