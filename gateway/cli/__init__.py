"""The `relaygate` command line."""
