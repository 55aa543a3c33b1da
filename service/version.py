"""The installed xunjian version, as both daemons report it (Hello, start-up log line)."""

from __future__ import annotations


def version() -> str:
    """The installed version; "0+unknown" when running from a source tree that was never installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("xunjian")
    except PackageNotFoundError:
        return "0+unknown"
