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


class WorkerPool:
    """`size` daemon threads; a worker stuck in an abandoned run is replaced (up to `max_abandoned` at a time)
    and exits once its run finally returns, so the pool stays at `size` healthy workers."""

    def __init__(self, size: int, name: str = "xunjian-check", max_abandoned: int | None = None) -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._name = name
        self._lock = threading.Lock()
        self._workers: set[threading.Thread] = set()
        self._retired: set[threading.Thread] = set()
        self._max_abandoned = max_abandoned if max_abandoned is not None else 4 * size
        self._closed = False
        self._count = 0
        for _ in range(size):
            self._spawn()

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
        with self._lock:
            self._workers.discard(me)

    def submit(self, job: Job) -> None:
        self._jobs.put(job)

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
class _OnceRun:
    spec: CheckSpec
    started: float | None = None
    started_at: float = 0.0
    worker: threading.Thread | None = None
    done: bool = False
    results: list[Result] = dataclasses.field(default_factory=list)


def run_once(specs: Sequence[CheckSpec], ctx: RunContext, concurrency: int = 4) -> list[Result]:
    """Run every check once (for `xunjian check run`); results in spec order, a run past its timeout gives
    UNKNOWN outcome timeout and its thread is abandoned."""
    if not specs:
        return []
    cond = threading.Condition()
    runs = [_OnceRun(s) for s in specs]
    pool = WorkerPool(max(1, min(concurrency, len(runs))), name="xunjian-once")

    def job(run: _OnceRun) -> None:
        with cond:
            run.started = time.monotonic()
            run.started_at = ctx.clock()
            run.worker = threading.current_thread()
            cond.notify_all()
        results = run_check(run.spec, ctx)
        with cond:
            if not run.done:
                run.results = results
                run.done = True
            cond.notify_all()

    for run in runs:
        pool.submit(functools.partial(job, run))
    with cond:
        while True:
            now = time.monotonic()
            wait: float | None = None
            pending = False
            for run in runs:
                if run.done:
                    continue
                if run.started is None:
                    pending = True
                    continue
                limit = run.started + run.spec.timeout + timeout_grace(run.spec.timeout)
                if now >= limit:
                    run.done = True
                    run.results = [timeout_result(run.spec, run.started_at, now - run.started)]
                    pool.abandon(run.worker)
                else:
                    pending = True
                    wait = limit - now if wait is None else min(wait, limit - now)
            if not pending:
                break
            cond.wait(wait)
    pool.shutdown()
    return [r for run in runs for r in run.results]
