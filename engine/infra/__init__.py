"""What every part of the engine stands on: Redis, YAML reading, processes, logs, the network, the command line."""
