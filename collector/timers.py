"""Every timed job of the collector on one heap, run on the event loop, with the clock injected.

The lost-agent check and housekeeping live here now; escalations, response and resolution deadlines and
notification retries are meant to join them (`at` for a one-shot deadline, `every` for a period). A job that
fails because the store is unavailable is logged, makes the component unhealthy and is tried again at its next
time; any other error is a bug and stops the collector. Tests move the clock and await `run_due()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from collector.loop import EventLoop
from service.lifecycle import Health, Host, describe

log = logging.getLogger("xunjian.collector.timers")
Job = Callable[[], Awaitable[Any] | Any]
MAX_SLEEP_S = 30.0
"""Look at the clock at least this often, so a wall-clock jump cannot hold a job back for long."""


@dataclass(eq=False)
class Timer:
    name: str
    due: float
    """Unix time (the collector's clock) when the job next runs."""
    job: Job
    every: float | None = None
    cancelled: bool = False
    failing: str | None = None
    """Why its last run failed, until a run succeeds."""
    runs: int = field(default=0)


def _next(due: float, every: float, now: float) -> float:
    """The next time of a periodic job in its phase; periods missed while it ran late are skipped, not caught up."""
    nxt = due + every
    if nxt <= now:
        nxt += (math.floor((now - nxt) / every) + 1) * every
    return nxt


class Timers:
    name = "timers"

    def __init__(self, loop: EventLoop, clock: Callable[[], float],
                 transient: Callable[[BaseException], bool] = lambda _e: False) -> None:
        self.loop = loop
        self.clock = clock
        self.transient = transient
        self._heap: list[tuple[float, int, Timer]] = []
        self._order = 0
        self._host: Host | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._running: asyncio.Lock | None = None
        self._timers: list[Timer] = []

    # what to run, and when

    def every(self, name: str, seconds: float, job: Job, *, first_in: float = 0.0) -> Timer:
        """Run `job` every `seconds`, first `first_in` seconds from now."""
        return self._add(Timer(name, self.clock() + first_in, job, every=seconds))

    def at(self, name: str, when: float, job: Job) -> Timer:
        """Run `job` once at unix time `when` (a deadline)."""
        return self._add(Timer(name, when, job))

    def reschedule(self, timer: Timer, every: float) -> None:
        """Give a periodic timer a new period (a reload changed it), counted from now."""
        timer.every = every
        timer.cancelled = True
        self._add(Timer(timer.name, self.clock() + every, timer.job, every=every))

    def cancel(self, timer: Timer) -> None:
        timer.cancelled = True

    def find(self, name: str) -> Timer | None:
        for _, _, timer in self._heap:
            if timer.name == name and not timer.cancelled:
                return timer
        return None

    def _add(self, timer: Timer) -> Timer:
        self._order += 1
        heapq.heappush(self._heap, (timer.due, self._order, timer))
        self._timers = [t for t in self._timers if not t.cancelled] + [timer]
        if self._wake is not None:
            self.loop.loop.call_soon_threadsafe(self._wake.set)
        return timer

    # running them

    async def run_due(self) -> float:
        """Run every job that is due (in due order); returns seconds until the next one."""
        if self._running is None:
            self._running = asyncio.Lock()
        async with self._running:
            while self._heap:
                due, _, timer = self._heap[0]
                if timer.cancelled:
                    heapq.heappop(self._heap)
                    continue
                now = self.clock()
                if due > now:
                    return min(due - now, MAX_SLEEP_S)
                heapq.heappop(self._heap)
                await self._run(timer)
                if timer.every is not None and not timer.cancelled:
                    timer.due = _next(due, timer.every, self.clock())
                    self._order += 1
                    heapq.heappush(self._heap, (timer.due, self._order, timer))
            return MAX_SLEEP_S

    async def _run(self, timer: Timer) -> None:
        timer.runs += 1
        try:
            outcome = timer.job()
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            if not self.transient(exc):
                if self._host is None:
                    raise
                self._host.fail(f"timer {timer.name}", exc)
                return
            timer.failing = describe(exc)
            log.error("%s failed: %s; trying again at its next time", timer.name, describe(exc),
                      extra={"event": "timer.failed", "timer": timer.name})
            return
        if timer.failing is not None:
            log.info("%s works again", timer.name, extra={"event": "timer.recovered", "timer": timer.name})
            timer.failing = None

    async def _loop(self) -> None:
        self._wake = asyncio.Event()
        while True:
            delay = await self.run_due()
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    # lifecycle

    def start(self, host: Host) -> None:
        self._host = host

        async def begin() -> None:
            self._task = asyncio.ensure_future(self._loop())

        self.loop.call(begin(), timeout=10)

    def stop(self, timeout: float) -> bool:
        task = self._task
        if task is None:
            return True

        async def end() -> None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        try:
            self.loop.call(end(), timeout)
        except Exception:
            return False
        return True

    def health(self) -> Health:
        failing = [f"{t.name}: {t.failing}" for t in self._timers if t.failing and not t.cancelled]
        if failing:
            return Health(False, "; ".join(failing))
        return Health(True, f"{sum(1 for t in self._timers if not t.cancelled)} timers")
