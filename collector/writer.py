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
from service.lifecycle import Health, Host, LoggingHost, describe, spawn

T = TypeVar("T")
log = logging.getLogger("xunjian.collector.writer")

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
    """The store writer: the collector's "store" component. Its health is the store's: unhealthy from a commit
    that failed because the store itself failed (disk full, I/O error) until the next commit succeeds."""

    name = "store"

    def __init__(self, store: Store, *, max_group: int = MAX_GROUP) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._max_group = max_group
        self.stats = CommitStats()
        self.error: BaseException | None = None
        """Set when the writer thread died."""
        self.store_error: str | None = None
        """The last store failure, until a commit succeeds again."""

    def start(self, host: Host | None = None) -> None:
        self._thread = spawn("xunjian-writer", self._run, host or LoggingHost(log), self.name)

    def stop(self, timeout: float = 10.0) -> bool:
        """Commit what is queued, then end the thread."""
        if self._thread is None:
            return True
        self._queue.put(None)
        self._thread.join(timeout)
        stopped = not self._thread.is_alive()
        self._thread = None
        return stopped

    def health(self) -> Health:
        if self.error is not None:
            return Health(False, f"writer stopped: {describe(self.error)}")
        if self.store_error is not None:
            return Health(False, f"store writes failing: {self.store_error}")
        return Health(True, f"{self.stats.commits_total} commits")

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
            raise

    def _commit(self, group: list[_Job]) -> None:
        """Every job in one transaction; if it fails, each job alone, so one bad job cannot fail the others."""
        started = time.perf_counter()
        try:
            with self._store.transaction() as tx:
                outcomes = [job.fn(tx) for job in group]
        except Exception as exc:
            if len(group) == 1:
                self._failed(group[0], exc)
            else:
                for job in group:
                    self._commit([job])
            return
        self.stats.observe(time.perf_counter() - started)
        self.stats.jobs_total += len(group)
        if self.store_error is not None:
            log.info("store writes succeed again", extra={"event": "store.recovered"})
            self.store_error = None
        for job, outcome in zip(group, outcomes, strict=True):
            job.future.set_result(outcome)

    def _failed(self, job: _Job, exc: Exception) -> None:
        self.stats.failures_total += 1
        if self._store.is_unavailable(exc):
            self.store_error = describe(exc)
            log.error("store write failed: %s; nothing of it is acknowledged, agents will send it again",
                      describe(exc), extra={"event": "store.error"})
        job.future.set_exception(exc)
