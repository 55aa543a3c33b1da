"""Running one check: deadline in, Results out, a probe's bug turned into UNKNOWN rather than a crash.

Also the worker pool both the scheduler and `xunjian check run` use: daemon threads, so a probe stuck in a
driver call can be abandoned after its timeout without holding up the process or a healthy check's slot.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from checks.context import RunContext
from checks.result import Outcome, Result, unknown
from checks.spec import CheckSpec
from service.clock import Clock, SystemClock

log = logging.getLogger("xunjian.agent.runner")

Job = Callable[[], None]


def timeout_grace(timeout: float) -> float:
    """Extra time past a check's timeout before the runner gives up on it, so a probe that honours its
    deadline can still report its own, more precise failure (e.g. "connect timed out")."""
    return min(1.0, 0.1 * timeout)


def format_seconds(seconds: float) -> str:
    return f"{seconds:g}s" if seconds >= 1 else f"{seconds * 1000:g}ms"


def run_check(spec: CheckSpec, ctx: RunContext) -> list[Result]:
    """Run `spec.probe` with `ctx.deadline` set and fill check_id, target, started_at and duration_ms."""
    started_at = ctx.clock()
    t0 = time.monotonic()
    run_ctx = dataclasses.replace(ctx, deadline=t0 + spec.timeout)
    target = spec.target or ""
    try:
        results = spec.probe(run_ctx)
        if not isinstance(results, list):
            raise TypeError(f"probe returned {type(results).__name__}, expected a list of Result")
    except Exception as exc:
        log.debug("check %s raised", spec.id, exc_info=True)
        results = [unknown(spec.id, Outcome.INTERNAL_ERROR,
                           f"internal error in {spec.kind} probe: {type(exc).__name__}: {exc}", target=target)]
    duration_ms = (time.monotonic() - t0) * 1000.0
    for r in results:
        r.check_id = spec.id
        r.target = target
        if not r.started_at:
            r.started_at = started_at
        if not r.duration_ms:
            r.duration_ms = duration_ms
    return results


def timeout_result(spec: CheckSpec, started_at: float, elapsed_s: float, summary: str | None = None) -> Result:
    r = unknown(spec.id, Outcome.TIMEOUT, summary or f"timed out after {format_seconds(spec.timeout)}",
                target=spec.target or "")
    r.started_at = started_at
    r.duration_ms = elapsed_s * 1000.0
    return r


GROW_AFTER_S = 0.05
"""Runs wait behind busy workers at most about this long before another worker starts (up to the concurrency)."""


class WorkerPool:
    """Up to `size` daemon threads. The first starts with the first job; another only when RunSupervisor sees runs
    waiting behind workers that have all been busy for GROW_AFTER_S (`grow()`). Quick checks thus run one after the
    other on one thread, which costs half the CPU of several threads taking turns at the GIL, while a slow
    database check still cannot hold up the rest for long. A worker stuck in an abandoned run is replaced (up to
    `max_abandoned` at a time) and exits once its run finally returns, so the pool keeps up to `size` healthy
    workers."""

    def __init__(self, size: int, name: str = "xunjian-check", max_abandoned: int | None = None) -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._name = name
        self._size = size
        self._lock = threading.Lock()
        self._workers: set[threading.Thread] = set()
        self._retired: set[threading.Thread] = set()
        self._max_abandoned = max_abandoned if max_abandoned is not None else 4 * size
        self._closed = False
        self._count = 0
        self._idle = 0
        """Workers free for the next job submitted."""
        self._backlog = 0
        """Jobs submitted while every worker was busy; the next worker to come free takes one."""

    def _spawn(self) -> None:
        self._count += 1
        t = threading.Thread(target=self._work, name=f"{self._name}-{self._count}", daemon=True)
        self._workers.add(t)
        t.start()

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            job = self._jobs.get()
            if job is None:
                break
            try:
                job()
            except Exception:
                log.exception("check job failed")
            with self._lock:
                if me in self._retired:
                    self._retired.discard(me)
                    break
                self._came_free()
        with self._lock:
            self._workers.discard(me)

    def _came_free(self) -> None:
        """A worker is about to wait for a job (caller holds the lock)."""
        if self._backlog:
            self._backlog -= 1
        else:
            self._idle += 1

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
            elif len(self._workers) == len(self._retired) and not self._closed:
                self._spawn()
            else:
                self._backlog += 1
        self._jobs.put(job)

    @property
    def can_grow(self) -> bool:
        with self._lock:
            return bool(self._backlog) and not self._closed and len(self._workers) - len(self._retired) < self._size

    def grow(self) -> bool:
        """Start one more worker for the jobs waiting, if there are any and the pool is not at its size."""
        with self._lock:
            if not self._backlog or self._closed or len(self._workers) - len(self._retired) >= self._size:
                return False
            self._spawn()
            self._backlog -= 1
            return True

    @property
    def threads(self) -> int:
        """Worker threads alive, stuck ones included."""
        with self._lock:
            return len(self._workers)

    def abandon(self, worker: threading.Thread | None) -> None:
        """`worker` is stuck in a run past its timeout: let it finish on its own and start a replacement."""
        with self._lock:
            if worker is None or self._closed or worker in self._retired or worker not in self._workers:
                return
            if len(self._retired) >= self._max_abandoned:
                log.warning("%d check runs are stuck past their timeout; not adding more threads", len(self._retired))
                return
            self._retired.add(worker)
            self._spawn()
            self._came_free()

    @property
    def stuck(self) -> int:
        with self._lock:
            return len(self._retired)

    def shutdown(self) -> None:
        """Ask idle workers to exit; stuck ones are daemon threads and die with the process."""
        with self._lock:
            self._closed = True
            n = len(self._workers)
        for _ in range(n):
            self._jobs.put(None)


@dataclasses.dataclass(eq=False)
class Run:
    """One run of one check, from submission to its results (or its timeout)."""

    spec: CheckSpec
    started: float | None = None
    """clock.monotonic() when a worker picked the run up; None while it waits for a free worker."""
    started_at: float = 0.0
    worker: threading.Thread | None = None
    timed_out: bool = False
    discard: bool = False
    """Its results are no longer wanted (the check was removed by a reload)."""

    def limit(self) -> float | None:
        """clock.monotonic() past which the run is given up, or None while it has not started."""
        if self.started is None:
            return None
        return self.started + self.spec.timeout + timeout_grace(self.spec.timeout)


Finished = Callable[[Run, list[Result]], None]
"""Called from the worker with a run's results; `run.timed_out` says they came too late to count."""


class RunSupervisor:
    """Runs checks on a worker pool and gives up on runs past their timeout: the one place for the timeout rules,
    used by the scheduler (forever) and by `xunjian check run` (once).

    A run past `timeout` (plus a little grace, so a probe that honours its deadline reports its own failure) gets an
    UNKNOWN timeout result at once; its thread is abandoned and replaced, and whatever it returns later is marked
    late for `finished` to drop.
    """

    def __init__(self, ctx: RunContext, pool: WorkerPool, finished: Finished, clock: Clock | None = None) -> None:
        self.ctx = ctx
        self.pool = pool
        self._finished = finished
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._active: set[Run] = set()
        self._grown_at = float("-inf")

    def launch(self, run: Run) -> None:
        with self._lock:
            self._active.add(run)
        self.pool.submit(functools.partial(self._execute, run))

    def _execute(self, run: Run) -> None:
        with self._lock:
            run.started = self._clock.monotonic()
            run.started_at = self._clock.time()
            run.worker = threading.current_thread()
        results = run_check(run.spec, self.ctx)
        with self._lock:
            self._active.discard(run)
        self._finished(run, results)

    def overdue(self, now: float) -> list[tuple[Run, Result]]:
        """Runs that passed their limit since the last call, each with its UNKNOWN timeout result."""
        out = []
        with self._lock:
            for run in self._active:
                limit = run.limit()
                if run.timed_out or limit is None or now < limit:
                    continue
                run.timed_out = True
                out.append((run, timeout_result(run.spec, run.started_at, now - (run.started or now))))
        for run, _ in out:
            self.pool.abandon(run.worker)
        stalled = self._stalled_since()
        if stalled is not None and stalled <= now and self.pool.grow():
            self._grown_at = now
        return out

    def _stalled_since(self) -> float | None:
        """When the runs waiting for a worker will have waited GROW_AFTER_S behind workers all busy (or since the
        last worker was added), or None when the pool cannot or need not grow."""
        if not self.pool.can_grow:
            return None
        with self._lock:
            if not any(r.started is None for r in self._active):
                return None
            busy = [r.started for r in self._active if r.started is not None and not r.timed_out]
        if not busy:
            return None
        return max(*busy, self._grown_at) + GROW_AFTER_S

    def next_limit(self, now: float) -> float | None:
        """The earliest limit of a run still going, for the caller's next wake-up; a run still waiting for a
        worker counts as starting `now`, so the caller looks again by the time it could overrun. Also when runs
        waiting behind busy workers call for another worker (overdue() adds it)."""
        with self._lock:
            limits = [now + r.spec.timeout + timeout_grace(r.spec.timeout) if lim is None else lim
                      for r in self._active if not r.timed_out for lim in (r.limit(),)]
        stalled = self._stalled_since()
        if stalled is not None:
            limits.append(max(stalled, now + 0.001))
        return min(limits) if limits else None


def run_once(specs: Sequence[CheckSpec], ctx: RunContext, concurrency: int = 4) -> list[Result]:
    """Run every check once (for `xunjian check run`); results in spec order, a run past its timeout gives
    UNKNOWN outcome timeout and its thread is abandoned."""
    if not specs:
        return []
    cond = threading.Condition()
    runs = [Run(s) for s in specs]
    results: dict[Run, list[Result]] = {}

    def finished(run: Run, got: list[Result]) -> None:
        with cond:
            if not run.timed_out:
                results[run] = got
            cond.notify_all()

    pool = WorkerPool(max(1, min(concurrency, len(runs))), name="xunjian-once")
    supervisor = RunSupervisor(ctx, pool, finished)
    for run in runs:
        supervisor.launch(run)
    with cond:
        while True:
            for run, timeout in supervisor.overdue(time.monotonic()):
                results[run] = [timeout]
            if len(results) == len(runs):
                break
            now = time.monotonic()
            limit = supervisor.next_limit(now)
            cond.wait(None if limit is None else max(0.0, limit - now) + 0.001)
    pool.shutdown()
    return [r for run in runs for r in results[run]]
