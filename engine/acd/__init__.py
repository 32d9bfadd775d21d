"""Skill-based queues: agents as state machines, routing, holds and transfers, shared state in Redis."""
