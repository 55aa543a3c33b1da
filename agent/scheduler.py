"""When each check runs: interval with a stable per-check offset, or cron; bounded concurrency; never overlapping.

A run past its timeout is reported UNKNOWN (outcome timeout) and abandoned; until it really ends, every round
that comes due is skipped and reported as another UNKNOWN naming how many rounds were skipped, so the
collector's raise_after counting still sees a stuck check. The clock is injected: tests drive `tick()`.

The checks of this host alone share one phase per agent, so they come due in the same tick; the runs launched in
one tick are a round, and a round's results go to the sink together (one spool transaction, one fsync, one batch)
once its last run ends, or ROUND_FLUSH_S after its launch for those that have ended by then.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from agent.runner import Run, RunSupervisor, WorkerPool, format_seconds, timeout_result
from checks.context import RunContext
from checks.pack import SeriesId
from checks.result import Result
from checks.spec import CheckSpec
from service.clock import Clock, SystemClock
from service.lifecycle import Health, Host, LoggingHost, describe, spawn

log = logging.getLogger("xunjian.agent.scheduler")

Sink = Callable[[list[Result]], None]
SKIPPED_METRIC = "skipped_rounds"
_MAX_SLEEP = 60.0
"""Re-evaluate at least this often, so a wall-clock jump cannot stall cron checks for long."""


LOCAL_SPREAD_S = 15.0
"""Checks of this host only (no target) start within this many seconds, so a new agent shows data at once."""
ROUND_FLUSH_S = 0.25
"""How long the results of a round's quick runs may wait for a slow run of the same round before they go on alone."""


def _fraction(text: str) -> float:
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def first_offset(spec: CheckSpec, salt: str = "") -> float:
    """When a check first runs: a stable hash, so a fleet restart spreads the load.

    Checks with a target (a shared database) spread over their whole interval by a hash of (salt, id, target).
    Checks of this host alone share one phase of the agent (a hash of the salt alone) within LOCAL_SPREAD_S:
    nothing is shared, so they run in the same tick, as one round with one spool write and one batch, while
    different agents still start at different times; and people expect to see a new agent's results soon.
    """
    if spec.target:
        return _fraction(f"{salt}\0{spec.id}\0{spec.target}") * spec.interval
    return (_fraction(f"{salt}\0local") * LOCAL_SPREAD_S) % spec.interval


def cron_next(expression: str, after: float) -> float:
    """The next time (unix seconds) `expression` fires after `after`, in the host's local time zone."""
    from croniter import croniter

    start = datetime.fromtimestamp(after).astimezone()
    return float(croniter(expression, start).get_next(float))


@dataclass(eq=False)
class _Job:
    spec: CheckSpec
    next_due: float
    """clock.monotonic() for interval checks, clock.time() for cron checks."""
    cron: bool
    running: Run | None = None
    skipped: int = 0
    """Rounds skipped since the last run that completed in time; reported with the next result."""
    runs_total: int = 0
    timeouts_total: int = 0
    skipped_total: int = 0
    sole_key: str = ""
    """The series key of the last run's results when it reported exactly one series (a file check's path), so that
    a timeout or a skipped round of a one-series check reads UNKNOWN on that series instead of making another."""

    @property
    def key(self) -> SeriesId:
        return (self.spec.id, self.spec.target or "")


@dataclass(eq=False)
class _Round:
    """The runs launched in one tick, whose results go to the sink together."""

    pending: int
    """Runs of the round that have neither ended nor timed out."""
    flush_by: float
    """clock.monotonic() after which results that have ended go on without waiting for the rest."""
    results: list[Result] = field(default_factory=list)
    late: bool = False
    """Past flush_by: every result from now on goes to the sink as it comes."""


@dataclass(frozen=True)
class ScheduleChange:
    """What a reload changed in the schedule, by (check id, target)."""

    added: list[SeriesId]
    changed: list[SeriesId]
    removed: list[SeriesId]

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def spec_fingerprint(spec: CheckSpec) -> str:
    """Everything a check was configured with, comparable across two loads of the same packs."""
    return json.dumps(spec.model_dump(mode="json"), sort_keys=True, default=str)


class Scheduler:
    """Runs `specs` forever in a thread and hands every Result to `sink`: the agent's "scheduler" component."""

    name = "scheduler"

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
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._pool = WorkerPool(concurrency, name="xunjian-check")
        self._runs = RunSupervisor(replace(ctx, clock=self._clock.time), self._pool, self._finished, self._clock)
        self._salt = ctx.agent_id if salt is None else salt
        self._jobs: list[_Job] = []
        self._interval_heap: list[tuple[float, int, _Job]] = []
        self._cron_heap: list[tuple[float, int, _Job]] = []
        self._order = 0
        self._job_of: dict[Run, _Job] = {}
        """The job each run in progress belongs to (a reload may move a run to the job that replaced its own)."""
        self._round_of: dict[Run, _Round] = {}
        self._rounds: list[_Round] = []
        """Rounds still waiting for a run, for the tick that flushes them at their flush_by."""
        self._set_jobs([self._new_job(s) for s in specs if not s.disabled])

    def _new_job(self, spec: CheckSpec) -> _Job:
        now_m, now_w = self._clock.monotonic(), self._clock.time()
        if spec.schedule:
            return _Job(spec, cron_next(spec.schedule, now_w), True)
        return _Job(spec, now_m + first_offset(spec, self._salt), False)

    def _set_jobs(self, jobs: list[_Job]) -> None:
        """Replace the job list and rebuild both heaps (caller holds the lock, or nothing runs yet)."""
        self._jobs = jobs
        self._interval_heap, self._cron_heap = [], []
        for job in jobs:
            self._order += 1
            (self._cron_heap if job.cron else self._interval_heap).append((job.next_due, self._order, job))
        heapq.heapify(self._interval_heap)
        heapq.heapify(self._cron_heap)

    # lifecycle

    def start(self, host: Host | None = None) -> None:
        self._thread = spawn("xunjian-scheduler", self._loop, host or LoggingHost(log), self.name)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop launching runs; results of a round that already ended go to the sink rather than wait for the rest."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown()
        with self._lock:
            waiting = [r for rnd in self._rounds for r in rnd.results]
            for rnd in self._rounds:
                rnd.results, rnd.late = [], True
        if waiting:
            self._deliver(waiting)
        return self._thread is None or not self._thread.is_alive()

    def health(self) -> Health:
        if self._error is not None:
            return Health(False, f"stopped: {describe(self._error)}")
        stuck = self._pool.stuck
        detail = f"{len(self._jobs)} checks" + (f", {stuck} runs stuck past their timeout" if stuck else "")
        return Health(True, detail)

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
            raise

    # reload

    def replace(self, specs: Sequence[CheckSpec], ctx: RunContext | None = None) -> ScheduleChange:
        """Run `specs` from now on: new checks are scheduled, changed ones keep their phase when their interval did
        not change, removed ones stop (a run of theirs still going is left to finish and its results dropped)."""
        with self._lock:
            if ctx is not None:
                self._runs.ctx = replace(ctx, clock=self._clock.time)
            old = {job.key: job for job in self._jobs}
            jobs, added, changed = [], [], []
            for spec in specs:
                if spec.disabled:
                    continue
                key = (spec.id, spec.target or "")
                previous = old.pop(key, None)
                if previous is None:
                    jobs.append(self._new_job(spec))
                    added.append(key)
                    continue
                if spec_fingerprint(spec) == spec_fingerprint(previous.spec):
                    jobs.append(previous)
                    continue
                job = self._new_job(spec)
                same_timing = (spec.schedule, spec.interval) == (previous.spec.schedule, previous.spec.interval)
                if same_timing:
                    job.next_due = previous.next_due
                job.running, job.skipped = previous.running, previous.skipped
                if job.running is not None:
                    self._job_of[job.running] = job
                job.runs_total, job.timeouts_total = previous.runs_total, previous.timeouts_total
                job.skipped_total = previous.skipped_total
                jobs.append(job)
                changed.append(key)
            for job in old.values():
                if job.running is not None:
                    job.running.discard = True
            self._set_jobs(jobs)
        self._wake.set()
        return ScheduleChange(added, changed, sorted(old))

    # the schedule itself

    def next_due(self) -> dict[tuple[str, str], float]:
        """Next due time per (id, target): monotonic for interval checks, unix time for cron checks."""
        with self._lock:
            return {job.key: job.next_due for job in self._jobs}

    def tick(self) -> float:
        """Launch what is due, time out what overran; returns seconds until something is next due."""
        now_m, now_w = self._clock.monotonic(), self._clock.time()
        emit: list[list[Result]] = []
        launch: list[Run] = []
        for run, result in self._runs.overdue(now_m):
            with self._lock:
                job = self._job_of.get(run)
                if job is not None:
                    job.timeouts_total += 1
                    result.key = job.sole_key
                done = self._run_ended(run, [] if run.discard else [result])
            if done:
                emit.append(done)
            if run.discard:
                continue
            log.warning("check %s%s timed out after %s; its thread is abandoned until it returns",
                        run.spec.id, f"@{run.spec.target}" if run.spec.target else "",
                        format_seconds(run.spec.timeout), extra={"event": "check.timeout", "check": run.spec.id})
        with self._lock:
            for heap, now in ((self._interval_heap, now_m), (self._cron_heap, now_w)):
                while heap and heap[0][0] <= now:
                    _, order, job = heapq.heappop(heap)
                    if job.running is None:
                        job.running = Run(job.spec)
                        self._job_of[job.running] = job
                        job.runs_total += 1
                        launch.append(job.running)
                    else:
                        job.skipped += 1
                        job.skipped_total += 1
                        emit.append(self._skipped_round(job, now_m))
                    job.next_due = self._advance(job, now_m, now_w)
                    heapq.heappush(heap, (job.next_due, order, job))
            if launch:
                rnd = _Round(len(launch), now_m + ROUND_FLUSH_S)
                self._rounds.append(rnd)
                for run in launch:
                    self._round_of[run] = rnd
            for rnd in self._rounds:
                if not rnd.late and rnd.flush_by <= now_m:
                    rnd.late = True
                    if rnd.results:
                        emit.append(rnd.results)
                        rnd.results = []
            self._rounds = [rnd for rnd in self._rounds if rnd.pending]
            wait = _MAX_SLEEP
            if self._interval_heap:
                wait = min(wait, self._interval_heap[0][0] - now_m)
            if self._cron_heap:
                wait = min(wait, self._cron_heap[0][0] - now_w)
            for rnd in self._rounds:
                if not rnd.late:
                    wait = min(wait, rnd.flush_by - now_m)
        limit = self._runs.next_limit(now_m)
        if limit is not None:
            wait = min(wait, limit - now_m)
        for results in emit:
            self._deliver(results)
        for run in launch:
            self._runs.launch(run)
        return max(0.0, wait)

    def _run_ended(self, run: Run, results: Sequence[Result] = ()) -> list[Result]:
        """Count `run` out of its round, keeping `results` with the round's; returns what is now due for the sink:
        the whole round when this was its last run, these results alone once the round is late (caller holds the
        lock)."""
        rnd = self._round_of.pop(run, None)
        if rnd is None:
            return list(results)
        rnd.pending -= 1
        if rnd.late:
            return list(results)
        rnd.results.extend(results)
        if rnd.pending:
            return []
        done, rnd.results = rnd.results, []
        return done

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
        r.key = job.sole_key
        r.metrics[SKIPPED_METRIC] = float(job.skipped)
        return [r]

    def _finished(self, run: Run, results: list[Result]) -> None:
        with self._lock:
            job = self._job_of.pop(run, None)
            if job is not None and job.running is run:
                job.running = None
            if run.timed_out or run.discard or job is None:
                done = [] if run.timed_out else self._run_ended(run)
                why = "after its timeout" if run.timed_out else "after the check was removed"
                log.info("check %s returned %s; late results discarded", run.spec.id, why)
            else:
                keys = {r.key for r in results}
                job.sole_key = keys.pop() if len(keys) == 1 else ""
                skipped, job.skipped = job.skipped, 0
                if skipped:
                    note = f" ({skipped} round{'s' if skipped != 1 else ''} skipped while the previous run was going)"
                    for r in results:
                        r.summary += note
                        r.metrics[SKIPPED_METRIC] = float(skipped)
                done = self._run_ended(run, results)
        if done:
            self._deliver(done)

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
