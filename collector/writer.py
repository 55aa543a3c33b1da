"""The single store writer: one thread takes every pending job from every stream into ONE transaction.

Group commit is what makes a fsync'd SQLite keep up with 100k results/s: each job (a batch's effects,
a heartbeat, a review) runs inside the shared transaction; if the transaction fails, each job is
retried alone so one bad batch cannot fail the others. Futures resolve only after COMMIT returned,
so an Ack sent when its future resolves means "on disk".
"""

from __future__ import annotations

import bisect
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from collector.store import Store, StoreTx

T = TypeVar("T")
log = logging.getLogger(__name__)

COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
MAX_GROUP = 5000
"""Jobs in one transaction at most, so a backlog still commits (and acks) in bounded steps."""


@dataclass
class CommitStats:
    """Counters and a histogram of commit durations, written by the writer thread, read at scrape time."""

    bucket_counts: list[int] = field(default_factory=lambda: [0] * (len(COMMIT_BUCKETS) + 1))
    seconds_sum: float = 0.0
    commits_total: int = 0
    jobs_total: int = 0
    failures_total: int = 0

    def observe(self, seconds: float) -> None:
        self.bucket_counts[bisect.bisect_left(COMMIT_BUCKETS, seconds)] += 1
        self.seconds_sum += seconds
        self.commits_total += 1


@dataclass
class _Job:
    fn: Callable[[StoreTx], Any]
    future: Future[Any]


class Writer:
    def __init__(self, store: Store, *, max_group: int = MAX_GROUP) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._max_group = max_group
        self.stats = CommitStats()
        self.error: BaseException | None = None
        """Set when the writer thread died; /healthz reports it."""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="xunjian-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Commit what is queued, then end the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def submit(self, fn: Callable[[StoreTx], T]) -> Future[T]:
        fut: Future[T] = Future()
        if self.error is not None:
            fut.set_exception(RuntimeError(f"store writer stopped: {self.error}"))
            return fut
        self._queue.put(_Job(fn, fut))
        return fut

    def _run(self) -> None:
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is None:
                    stopping = True
                    group: list[_Job] = []
                else:
                    group = [first]
                while len(group) < self._max_group:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stopping = True
                        break
                    group.append(nxt)
                # A job whose waiter was cancelled (a stream closed at shutdown) is skipped: it was never acked,
                # so the agent sends it again. Once running, a future can no longer be cancelled under us.
                group = [job for job in group if job.future.set_running_or_notify_cancel()]
                if group:
                    self._commit(group)
        except BaseException as exc:  # the thread must report, not vanish
            self.error = exc
            log.exception("store writer stopped")
            raise

    def _commit(self, group: list[_Job]) -> None:
        started = time.perf_counter()
        try:
            with self._store.transaction() as tx:
                outcomes = [job.fn(tx) for job in group]
        except Exception:
            if len(group) == 1:
                self._fail_alone(group[0])
            else:
                for job in group:
                    self._commit([job])
            return
        self.stats.observe(time.perf_counter() - started)
        self.stats.jobs_total += len(group)
        for job, outcome in zip(group, outcomes, strict=True):
            job.future.set_result(outcome)

    def _fail_alone(self, job: _Job) -> None:
        try:
            with self._store.transaction() as tx:
                outcome = job.fn(tx)
        except Exception as exc:
            self.stats.failures_total += 1
            job.future.set_exception(exc)
            return
        job.future.set_result(outcome)
