"""Outbound calling: the one way to dial out (dialer), numbers, result classes and retries, time
windows, the inbound-first gate, and the number lists (blacklist, do-not-call, dial-block); callback
jobs and follow-up campaigns (jobs, campaigns, claims, pacer, runner) built on them."""
