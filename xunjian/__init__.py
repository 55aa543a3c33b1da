"""The `xunjian` command: runs the collector and agents, and is a client of the collector's HTTP API."""

__version__ = "0.1.0"
