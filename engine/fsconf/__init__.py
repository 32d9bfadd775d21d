"""The switch's configuration: rendering it for these settings, checking it at every connect."""
