"""Outbound calling: callbacks and follow-up campaigns (issue 15)."""
