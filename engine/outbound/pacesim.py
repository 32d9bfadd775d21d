"""A deterministic simulation of an agent campaign on a scripted population (a fake clock in
one-second steps, a seeded random generator): what the pacer does to agents and customers.

    result = simulate(Pacer("predictive"), agents=20, contacts=3000, seed=1)
    result.abandon_rate, result.occupancy, result.finished_per_hour

The population is the one issue 15 calls realistic: 60% answer (after 4-20 s of ringing),
20% no answer (30 s), 10% busy (1 s), 10% invalid (0.5 s). A customer who answers is bridged to a
free agent at once, or is an abandon (no one waits: the predictive dialler's abandon counts
answered calls that found no agent). Talk 60-180 s, wrap-up 10 s. Used by the pacer's test and
scripts/bench_outbound (which also dials through the simulator).
"""
import dataclasses
import heapq
import random

POPULATION = (("answer", 0.60), ("no_answer", 0.20), ("busy", 0.10), ("invalid", 0.10))


@dataclasses.dataclass
class SimResult:
    seconds: int
    dials: int
    answered: int
    abandoned: int
    talk_seconds: float
    agent_seconds: float
    contacts_finished: int

    @property
    def abandon_rate(self):
        return self.abandoned / self.answered if self.answered else 0.0

    @property
    def occupancy(self):
        return self.talk_seconds / self.agent_seconds if self.agent_seconds else 0.0

    @property
    def finished_per_hour(self):
        return self.contacts_finished * 3600.0 / self.seconds if self.seconds else 0.0


def outcome(rng):
    r = rng.random()
    for name, share in POPULATION:
        if r < share:
            return name
        r -= share
    return POPULATION[-1][0]


def simulate(pacer, agents=20, contacts=3000, seed=1, max_seconds=6 * 3600, wrapup=10.0):
    rng = random.Random(seed)
    free = agents
    busy = 0
    events = []            # (time, seq, kind, data)
    seq = 0
    left = contacts
    in_flight = 0
    answered = abandoned = dials = finished = 0
    talk = 0.0
    t = 0
    while t < max_seconds and (left > 0 or in_flight or busy):
        # events due by now
        while events and events[0][0] <= t:
            _, _, kind, data = heapq.heappop(events)
            if kind == "dial_end":
                in_flight -= 1
                result, ring = data
                pacer.dial_ended(result == "answer", ring)
                finished += 1
                if result != "answer":
                    continue
                answered += 1
                if free > 0:
                    free -= 1
                    busy += 1
                    seconds = rng.uniform(60, 180)
                    talk += seconds
                    pacer.connected(False)
                    seq += 1
                    heapq.heappush(events, (t + seconds + wrapup, seq, "agent_free", seconds + wrapup))
                else:
                    abandoned += 1
                    pacer.connected(True)
            elif kind == "agent_free":
                busy -= 1
                free += 1
                pacer.handled(data)
        n = min(left, pacer.dials_to_make(free, busy, in_flight, now=t))
        for _ in range(n):
            result = outcome(rng)
            ring = {"answer": rng.uniform(4, 20), "no_answer": 30.0, "busy": 1.0, "invalid": 0.5}[result]
            seq += 1
            heapq.heappush(events, (t + ring, seq, "dial_end", (result, ring)))
            in_flight += 1
            dials += 1
            left -= 1
        t += 1
    return SimResult(seconds=t, dials=dials, answered=answered, abandoned=abandoned, talk_seconds=talk,
                     agent_seconds=float(agents * t), contacts_finished=finished)
