"""The clock every scheduler and timer takes, so tests move time instead of sleeping."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Unix time in seconds (cron schedules, deadlines, what is stored)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (intervals and timeouts)."""


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()
