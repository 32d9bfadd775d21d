"""What every part of the engine stands on: Redis, the database, YAML reading, processes, logs, the
network, the command line."""
