"""When each check runs: interval with a stable per-check offset, or cron; bounded concurrency; never overlapping.

A run past its timeout is reported UNKNOWN (outcome timeout) and abandoned; until it really ends, every round
that comes due is skipped and reported as another UNKNOWN naming how many rounds were skipped, so the
collector's raise_after counting still sees a stuck check. The clock is injected: tests drive `tick()`.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from agent.runner import WorkerPool, format_seconds, run_check, timeout_grace, timeout_result
from checks.context import RunContext
from checks.result import Result
from checks.spec import CheckSpec

log = logging.getLogger("xunjian.agent.scheduler")

Sink = Callable[[list[Result]], None]
SKIPPED_METRIC = "skipped_rounds"
_MAX_SLEEP = 60.0
"""Re-evaluate at least this often, so a wall-clock jump cannot stall cron checks for long."""


class Clock(Protocol):
    def time(self) -> float:
        """Unix time (cron schedules and started_at)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (intervals and timeouts)."""


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


LOCAL_SPREAD_S = 15.0
"""Checks of this host only (no target) start within this many seconds, so a new agent shows data at once."""


def first_offset(spec: CheckSpec, salt: str = "") -> float:
    """When a check first runs: a stable hash of (salt, id, target), so a fleet restart spreads the load.

    Checks with a target (a shared database) spread over their whole interval; checks of this host alone
    spread over at most LOCAL_SPREAD_S, since nothing is shared and people expect to see results soon.
    """
    digest = hashlib.blake2b(f"{salt}\0{spec.id}\0{spec.target or ''}".encode(), digest_size=8).digest()
    spread = spec.interval if spec.target else min(spec.interval, LOCAL_SPREAD_S)
    return int.from_bytes(digest, "big") / 2**64 * spread


def cron_next(expression: str, after: float) -> float:
    """The next time (unix seconds) `expression` fires after `after`, in the host's local time zone."""
    from croniter import croniter

    start = datetime.fromtimestamp(after).astimezone()
    return float(croniter(expression, start).get_next(float))


def _limit(spec: CheckSpec) -> float:
    return spec.timeout + timeout_grace(spec.timeout)


@dataclass(eq=False)
class _Run:
    started: float | None = None
    """clock.monotonic() when a worker picked the run up; None while it waits for a free worker."""
    started_at: float = 0.0
    worker: threading.Thread | None = None
    timed_out: bool = False


@dataclass(eq=False)
class _Job:
    spec: CheckSpec
    next_due: float
    """clock.monotonic() for interval checks, clock.time() for cron checks."""
    cron: bool
    running: _Run | None = None
    skipped: int = 0
    """Rounds skipped since the last run that completed in time; reported with the next result."""
    runs_total: int = 0
    timeouts_total: int = 0
    skipped_total: int = 0


class Scheduler:
    """Runs `specs` forever in a thread (start/stop) and hands every Result to `sink`."""

    def __init__(
        self,
        specs: Sequence[CheckSpec],
        ctx: RunContext,
        sink: Sink,
        *,
        concurrency: int = 4,
        clock: Clock | None = None,
        salt: str | None = None,
    ) -> None:
        self._sink = sink
        self._clock: Clock = clock or SystemClock()
        self._ctx = replace(ctx, clock=self._clock.time)
        self._pool = WorkerPool(concurrency, name="xunjian-check")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        now_m, now_w = self._clock.monotonic(), self._clock.time()
        key = ctx.agent_id if salt is None else salt
        self._jobs = [
            _Job(s, cron_next(s.schedule, now_w), True) if s.schedule else _Job(s, now_m + first_offset(s, key), False)
            for s in specs
            if not s.disabled
        ]
        self._interval_heap = [(j.next_due, i, j) for i, j in enumerate(self._jobs) if not j.cron]
        self._cron_heap = [(j.next_due, i, j) for i, j in enumerate(self._jobs) if j.cron]
        heapq.heapify(self._interval_heap)
        heapq.heapify(self._cron_heap)
        self._running: set[_Job] = set()

    # lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="xunjian-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown()

    @property
    def error(self) -> BaseException | None:
        """Why the scheduler thread died, if it did."""
        return self._error

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                delay = self.tick()
                self._wake.wait(delay)
                self._wake.clear()
        except BaseException as exc:
            self._error = exc
            log.exception("scheduler stopped")

    # the schedule itself

    def next_due(self) -> dict[tuple[str, str], float]:
        """Next due time per (id, target): monotonic for interval checks, unix time for cron checks."""
        with self._lock:
            return {(j.spec.id, j.spec.target or ""): j.next_due for j in self._jobs}

    def tick(self) -> float:
        """Launch what is due, time out what overran; returns seconds until something is next due."""
        now_m, now_w = self._clock.monotonic(), self._clock.time()
        emit: list[list[Result]] = []
        launch: list[tuple[_Job, _Run]] = []
        with self._lock:
            for job in list(self._running):
                run = job.running
                if run is None or run.timed_out or run.started is None:
                    continue
                if now_m >= run.started + _limit(job.spec):
                    run.timed_out = True
                    job.timeouts_total += 1
                    emit.append([timeout_result(job.spec, run.started_at, now_m - run.started)])
                    self._pool.abandon(run.worker)
                    log.warning("check %s%s timed out after %s; its thread is abandoned until it returns",
                                job.spec.id, f"@{job.spec.target}" if job.spec.target else "",
                                format_seconds(job.spec.timeout))
            for heap, now in ((self._interval_heap, now_m), (self._cron_heap, now_w)):
                while heap and heap[0][0] <= now:
                    _, order, job = heapq.heappop(heap)
                    if job.running is None:
                        job.running = _Run()
                        job.runs_total += 1
                        self._running.add(job)
                        launch.append((job, job.running))
                    else:
                        job.skipped += 1
                        job.skipped_total += 1
                        emit.append(self._skipped_round(job, now_m))
                    job.next_due = self._advance(job, now_m, now_w)
                    heapq.heappush(heap, (job.next_due, order, job))
            wait = _MAX_SLEEP
            if self._interval_heap:
                wait = min(wait, self._interval_heap[0][0] - now_m)
            if self._cron_heap:
                wait = min(wait, self._cron_heap[0][0] - now_w)
            for job in self._running:
                run = job.running
                if run is not None and not run.timed_out:
                    wait = min(wait, (run.started if run.started is not None else now_m) + _limit(job.spec) - now_m)
        for results in emit:
            self._deliver(results)
        for job, run in launch:
            self._pool.submit(functools.partial(self._execute, job, run))
        return max(0.0, wait)

    def _advance(self, job: _Job, now_m: float, now_w: float) -> float:
        if job.cron:
            assert job.spec.schedule is not None
            return cron_next(job.spec.schedule, now_w)
        interval = job.spec.interval
        nxt = job.next_due + interval
        if nxt <= now_m:
            nxt += (math.floor((now_m - nxt) / interval) + 1) * interval
        return nxt

    def _skipped_round(self, job: _Job, now_m: float) -> list[Result]:
        spec = job.spec
        run = job.running
        assert run is not None
        elapsed = now_m - run.started if run.started is not None else 0.0
        rounds = f"{job.skipped} round{'s' if job.skipped != 1 else ''} skipped"
        if run.started is None:
            summary = f"previous run still waiting for a free worker; {rounds}"
        else:
            summary = f"previous run still running after {format_seconds(round(elapsed, 3))}; {rounds}"
        log.warning("check %s: %s", spec.id, summary)
        r = timeout_result(spec, self._clock.time(), elapsed, summary)
        r.metrics[SKIPPED_METRIC] = float(job.skipped)
        return [r]

    def _execute(self, job: _Job, run: _Run) -> None:
        with self._lock:
            run.started = self._clock.monotonic()
            run.started_at = self._clock.time()
            run.worker = threading.current_thread()
        results = run_check(job.spec, self._ctx)
        with self._lock:
            job.running = None
            self._running.discard(job)
            if run.timed_out:
                log.info("check %s returned after its timeout; late results discarded", job.spec.id)
                return
            skipped, job.skipped = job.skipped, 0
        if skipped:
            note = f" ({skipped} round{'s' if skipped != 1 else ''} skipped while the previous run was going)"
            for r in results:
                r.summary += note
                r.metrics[SKIPPED_METRIC] = float(skipped)
        self._deliver(results)

    def _deliver(self, results: list[Result]) -> None:
        try:
            self._sink(results)
        except Exception:
            log.exception("could not hand %d results to the spool", len(results))

    def stats(self) -> dict[str, Any]:
        """Counters for the agent's own reporting: runs, timeouts, skipped rounds, runs stuck past timeout."""
        with self._lock:
            return {
                "checks": len(self._jobs),
                "runs_total": sum(j.runs_total for j in self._jobs),
                "timeouts_total": sum(j.timeouts_total for j in self._jobs),
                "skipped_total": sum(j.skipped_total for j in self._jobs),
                "stuck": self._pool.stuck,
            }
