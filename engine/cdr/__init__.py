"""Call detail records: one durable row per call, an outbox for consumers, a spool for bad days."""
