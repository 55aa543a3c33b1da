"""Scheduling on a fake clock: spread first runs, cron, bounded concurrency, no overlap, timeout → UNKNOWN."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import ClassVar, Literal

import pytest

from agent.runner import GROW_AFTER_S, WorkerPool, run_check, run_once
from agent.scheduler import LOCAL_SPREAD_S, ROUND_FLUSH_S, SKIPPED_METRIC, Scheduler, first_offset
from checks.context import RunContext
from checks.result import Outcome, Result, Status
from checks.spec import CheckSpec

WAIT = 10.0
"""Generous bound for a worker thread to get somewhere; tests never depend on it being short."""


class FakeClock:
    def __init__(self, wall: float = 1_763_000_000.0) -> None:
        self.wall = wall
        self.mono = 1000.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


class Probe:
    """What a test check does when run: counts calls, optionally blocks until released, optionally raises."""

    def __init__(self, block: bool = False, fail: bool = False) -> None:
        self.calls = 0
        self.running = 0
        self.max_running = 0
        self.block = block
        self.fail = fail
        self.release = threading.Event()
        self.entered = threading.Semaphore(0)
        self.lock = threading.Lock()
        self.keys = [""]
        """One OK result per key (a disk check reports a series per mount, a file check one keyed by its path)."""

    def __call__(self, spec: CheckSpec) -> list[Result]:
        with self.lock:
            self.calls += 1
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        self.entered.release()
        try:
            if self.block:
                self.release.wait(60)
            if self.fail:
                raise RuntimeError("boom")
            return [Result(check_id="ignored", status=Status.OK, summary="fine", value=1.0, key=k) for k in self.keys]
        finally:
            with self.lock:
                self.running -= 1

    def wait_entered(self, n: int = 1) -> None:
        for _ in range(n):
            assert self.entered.acquire(timeout=WAIT), "probe never started"


PROBES: dict[str, Probe] = {}


class TestCheck(CheckSpec):
    __test__: ClassVar[bool] = False
    kind: Literal["test.probe"] = "test.probe"
    probe_name: str = "default"

    def probe(self, ctx: RunContext) -> list[Result]:
        return PROBES[self.probe_name](self)


@pytest.fixture(autouse=True)
def _probes() -> Iterator[None]:
    yield
    for p in PROBES.values():
        p.release.set()
    PROBES.clear()


def probe(name: str = "default", **kwargs: bool) -> Probe:
    PROBES[name] = Probe(**kwargs)
    return PROBES[name]


def check(id: str, **kwargs: object) -> TestCheck:
    return TestCheck(id=id, kind="test.probe", **kwargs)  # type: ignore[arg-type]


class Sink:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.results: list[Result] = []

    def __call__(self, results: list[Result]) -> None:
        with self.cond:
            self.results.extend(results)
            self.cond.notify_all()

    def wait_for(self, n: int) -> list[Result]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.results) >= n, WAIT), f"only {len(self.results)} results"
            return list(self.results)


def make(specs: list[CheckSpec], clock: FakeClock, sink: Sink, concurrency: int = 4) -> Scheduler:
    return Scheduler(specs, RunContext(agent_id="agent-1"), sink, concurrency=concurrency, clock=clock)


def grow(sched: Scheduler, clock: FakeClock) -> None:
    """Let runs that wait behind a busy worker bring in another (they have waited GROW_AFTER_S)."""
    clock.advance(GROW_AFTER_S)
    sched.tick()


def run_until(pred: Callable[[], bool]) -> None:
    ev = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        if pred():
            return
        ev.wait(0.01)
    raise AssertionError("condition not reached")


# first-run spread


def test_first_runs_on_shared_targets_spread_over_the_whole_interval_and_are_stable() -> None:
    specs = [check(f"c{i}", interval=60.0, target="his_db") for i in range(200)]
    offsets = [first_offset(s, "agent-1") for s in specs]
    assert all(0 <= o < 60 for o in offsets)
    assert len({round(o, 6) for o in offsets}) == 200
    for lo in range(0, 60, 10):
        assert any(lo <= o < lo + 10 for o in offsets), f"no first run in [{lo}, {lo + 10})"
    assert offsets == [first_offset(s, "agent-1") for s in specs]
    assert first_offset(check("c0", interval=60.0, target="lis_db"), "agent-1") != offsets[0]
    assert first_offset(specs[0], "agent-2") != offsets[0]


def test_host_checks_of_one_agent_share_one_phase_within_local_spread() -> None:
    """One phase per agent, so a round of host checks is one tick, one spool write and one batch; agents differ."""
    offsets = {first_offset(check(f"c{i}", interval=300.0), "agent-1") for i in range(200)}
    assert len(offsets) == 1
    assert 0 <= offsets.pop() < LOCAL_SPREAD_S
    phases = [first_offset(check("c0", interval=300.0), f"agent-{i}") for i in range(200)]
    assert all(0 <= o < LOCAL_SPREAD_S for o in phases)
    for lo in range(0, int(LOCAL_SPREAD_S), 5):
        assert any(lo <= o < lo + 5 for o in phases), f"no agent starts in [{lo}, {lo + 5})"
    short = [first_offset(check(f"c{i}", interval=5.0), f"agent-{i}") for i in range(50)]
    assert all(0 <= o < 5.0 for o in short)


def test_scheduler_first_due_is_start_plus_offset() -> None:
    clock = FakeClock()
    spec = check("a", interval=30.0)
    sched = make([spec], clock, Sink())
    assert sched.next_due()[("a", "")] == pytest.approx(clock.mono + first_offset(spec, "agent-1"))


def test_disabled_checks_never_run() -> None:
    clock = FakeClock()
    p = probe()
    sched = make([check("a", interval=10.0, disabled=True)], clock, Sink())
    clock.advance(100)
    sched.tick()
    assert sched.next_due() == {}
    assert p.calls == 0


# interval and cron


def test_interval_check_runs_once_per_interval_in_phase() -> None:
    clock = FakeClock()
    p = probe()
    sink = Sink()
    spec = check("a", interval=10.0)
    sched = make([spec], clock, sink)
    offset = first_offset(spec, "agent-1")
    clock.advance(offset - 0.001)
    sched.tick()
    assert p.calls == 0
    clock.advance(0.001)
    wait = sched.tick()
    got = sink.wait_for(1)
    assert got[0].check_id == "a" and got[0].status is Status.OK
    assert wait <= 10.0
    clock.advance(5)
    sched.tick()
    assert p.calls == 1
    clock.advance(5)
    sched.tick()
    sink.wait_for(2)
    assert p.calls == 2
    assert sched.next_due()[("a", "")] == pytest.approx(1000.0 + offset + 20.0)
    sched.stop()


def test_missed_rounds_after_a_stall_run_once_and_keep_phase() -> None:
    clock = FakeClock()
    p = probe()
    sink = Sink()
    spec = check("a", interval=10.0)
    sched = make([spec], clock, sink)
    offset = first_offset(spec, "agent-1")
    clock.advance(offset + 35.0)
    sched.tick()
    sink.wait_for(1)
    assert p.calls == 1
    assert sched.next_due()[("a", "")] == pytest.approx(1000.0 + offset + 40.0)
    sched.stop()


def test_cron_schedule_runs_at_the_cron_times() -> None:
    start = datetime(2026, 11, 23, 10, 2, 0).astimezone().timestamp()
    clock = FakeClock(wall=start)
    p = probe()
    sink = Sink()
    sched = make([check("daily", schedule="*/5 * * * *")], clock, sink)
    five_past = datetime(2026, 11, 23, 10, 5, 0).astimezone().timestamp()
    assert sched.next_due()[("daily", "")] == five_past
    clock.advance(five_past - start - 1)
    sched.tick()
    assert p.calls == 0
    clock.advance(1)
    sched.tick()
    sink.wait_for(1)
    assert p.calls == 1
    assert sched.next_due()[("daily", "")] == five_past + 300
    sched.stop()


# timeouts and overlap


def test_overrun_gives_timeout_then_skips_rounds_until_the_old_run_ends() -> None:
    clock = FakeClock()
    p = probe(block=True)
    sink = Sink()
    spec = check("slow", interval=10.0, timeout=2.0)
    sched = make([spec], clock, sink)
    clock.advance(first_offset(spec, "agent-1"))
    sched.tick()
    p.wait_entered()
    clock.advance(2.0)
    sched.tick()
    assert sink.results == []
    clock.advance(0.3)
    sched.tick()
    timeout = sink.wait_for(1)[0]
    assert (timeout.status, timeout.outcome, timeout.summary) == (Status.UNKNOWN, Outcome.TIMEOUT, "timed out after 2s")
    assert timeout.check_id == "slow"

    clock.advance(10.0)
    sched.tick()
    clock.advance(10.0)
    sched.tick()
    got = sink.wait_for(3)
    assert p.calls == 1, "a second run started while the first was still going"
    assert [r.metrics.get(SKIPPED_METRIC) for r in got[1:]] == [1.0, 2.0]
    assert all(r.status is Status.UNKNOWN and r.outcome is Outcome.TIMEOUT for r in got[1:])
    assert got[2].summary == "previous run still running after 22.3s; 2 rounds skipped"

    p.block = False
    p.release.set()
    run_until(lambda: p.running == 0)
    clock.advance(10.0)
    sched.tick()
    got = sink.wait_for(4)
    assert p.calls == 2
    assert got[3].status is Status.OK
    assert got[3].metrics[SKIPPED_METRIC] == 2.0
    assert got[3].summary == "fine (2 rounds skipped while the previous run was going)"
    assert len(sink.results) == 4, "the late result of the timed-out run must be discarded"
    clock.advance(10.0)
    sched.tick()
    got = sink.wait_for(5)
    assert SKIPPED_METRIC not in got[4].metrics
    assert sched.stats()["timeouts_total"] == 1
    assert sched.stats()["skipped_total"] == 2
    sched.stop()


def test_a_one_series_check_times_out_and_skips_rounds_on_its_own_series() -> None:
    """A file check reports one series, keyed by its path. Its timeout and skipped rounds read UNKNOWN on that
    series; a keyless UNKNOWN would be another series of the same check, with an incident of its own. A check
    that reported several series (a disk per mount) times out as the whole check, keyless."""
    clock = FakeClock()
    p = probe()
    p.keys = ["/data/export.csv"]
    sink = Sink()
    spec = check("export", interval=10.0, timeout=2.0)
    sched = make([spec], clock, sink)
    clock.advance(first_offset(spec, "agent-1"))
    sched.tick()
    assert [r.key for r in sink.wait_for(1)] == ["/data/export.csv"]
    p.wait_entered()

    p.block = True
    clock.advance(10.0)
    sched.tick()
    p.wait_entered()
    clock.advance(2.3)
    sched.tick()
    timeout = sink.wait_for(2)[1]
    assert (timeout.outcome, timeout.key) == (Outcome.TIMEOUT, "/data/export.csv")
    clock.advance(7.7)
    sched.tick()
    skipped = sink.wait_for(3)[2]
    assert (skipped.metrics[SKIPPED_METRIC], skipped.key) == (1.0, "/data/export.csv")

    p.block = False
    p.release.set()
    run_until(lambda: p.running == 0)
    p.keys = ["/", "/data"]
    clock.advance(10.0)
    sched.tick()
    assert sorted(r.key for r in sink.wait_for(5)[3:]) == ["/", "/data"]
    p.wait_entered()
    p.release.clear()
    p.block = True
    clock.advance(10.0)
    sched.tick()
    p.wait_entered()
    clock.advance(2.3)
    sched.tick()
    timeout = sink.wait_for(6)[5]
    assert (timeout.outcome, timeout.key) == (Outcome.TIMEOUT, "")
    sched.stop()


def test_overlap_is_skipped_even_before_the_timeout() -> None:
    clock = FakeClock()
    p = probe(block=True)
    sink = Sink()
    spec = check("a", interval=5.0, timeout=30.0)
    sched = make([spec], clock, sink)
    clock.advance(first_offset(spec, "agent-1"))
    sched.tick()
    p.wait_entered()
    clock.advance(5.0)
    sched.tick()
    skipped = sink.wait_for(1)[0]
    assert skipped.metrics[SKIPPED_METRIC] == 1.0
    assert p.calls == 1
    sched.stop()


def test_concurrency_is_bounded() -> None:
    clock = FakeClock()
    p = probe(block=True)
    sink = Sink()
    specs = [check(f"c{i}", interval=60.0, timeout=50.0) for i in range(5)]
    sched = make(specs, clock, sink, concurrency=2)
    clock.advance(60.0)
    sched.tick()
    p.wait_entered(1)
    assert p.entered.acquire(timeout=0.2) is False
    clock.advance(GROW_AFTER_S)
    sched.tick()
    p.wait_entered(1)
    clock.advance(GROW_AFTER_S)
    sched.tick()
    assert p.entered.acquire(timeout=0.2) is False
    assert p.max_running == 2
    p.release.set()
    sink.wait_for(5)
    assert p.max_running == 2
    sched.stop()


def test_a_stuck_check_does_not_starve_the_others() -> None:
    clock = FakeClock()
    stuck = probe("stuck", block=True)
    healthy = probe("healthy")
    sink = Sink()
    specs = [check("stuck", interval=100.0, timeout=1.0, probe_name="stuck"),
             check("healthy", interval=100.0, probe_name="healthy")]
    sched = make(specs, clock, sink, concurrency=1)
    clock.advance(first_offset(specs[0], "agent-1"))
    sched.tick()
    stuck.wait_entered()
    clock.advance(1.1)
    sched.tick()
    run_until(lambda: any(r.outcome is Outcome.TIMEOUT for r in sink.results))
    run_until(lambda: sched.stats()["runs_total"] == healthy.calls + stuck.calls)
    before = healthy.calls
    clock.advance(100.0)
    sched.tick()
    run_until(lambda: healthy.calls == before + 1)
    assert stuck.running == 1
    sched.stop()


def test_probe_exception_is_an_unknown_result() -> None:
    clock = FakeClock()
    probe(fail=True)
    sink = Sink()
    spec = check("buggy", interval=10.0, target="db1")
    sched = make([spec], clock, sink)
    clock.advance(10.0)
    sched.tick()
    r = sink.wait_for(1)[0]
    assert (r.status, r.outcome, r.target) == (Status.UNKNOWN, Outcome.INTERNAL_ERROR, "db1")
    assert r.summary == "internal error in test.probe probe: RuntimeError: boom"
    sched.stop()


def test_start_and_stop_with_the_real_clock() -> None:
    p = probe()
    sink = Sink()
    sched = Scheduler([check("a", interval=0.05)], RunContext(), sink, concurrency=1)
    sched.start()
    sink.wait_for(2)
    sched.stop()
    assert sched.error is None
    assert p.calls >= 2


# the runner on its own


def test_run_check_fills_identity_and_timing() -> None:
    probe()
    spec = check("a", target="db1")
    ctx = RunContext(clock=lambda: 1234.5)
    [r] = run_check(spec, ctx)
    assert (r.check_id, r.target, r.started_at) == ("a", "db1", 1234.5)
    assert r.duration_ms >= 0


def test_run_check_sets_the_deadline() -> None:
    seen: list[float | None] = []

    class DeadlineCheck(CheckSpec):
        kind: Literal["test.deadline"] = "test.deadline"

        def probe(self, ctx: RunContext) -> list[Result]:
            seen.append(ctx.remaining())
            return []

    run_check(DeadlineCheck(id="d", kind="test.deadline", timeout=7.0), RunContext())
    assert seen[0] is not None and 6.0 < seen[0] <= 7.0


def test_run_once_keeps_spec_order_and_times_out_stuck_checks() -> None:
    probe("ok")
    stuck = probe("stuck", block=True)
    probe("bad", fail=True)
    specs = [check("first", probe_name="ok"), check("stuck", probe_name="stuck", timeout=0.05),
             check("bad", probe_name="bad"), check("last", probe_name="ok")]
    results = run_once(specs, RunContext(), concurrency=2)
    assert [(r.check_id, r.status, r.outcome) for r in results] == [
        ("first", Status.OK, Outcome.OK),
        ("stuck", Status.UNKNOWN, Outcome.TIMEOUT),
        ("bad", Status.UNKNOWN, Outcome.INTERNAL_ERROR),
        ("last", Status.OK, Outcome.OK),
    ]
    assert results[1].summary == "timed out after 50ms"
    assert stuck.calls == 1


def test_worker_pool_replaces_an_abandoned_worker() -> None:
    pool = WorkerPool(1)
    gate = threading.Event()
    started = threading.Event()
    done = threading.Event()
    workers: list[threading.Thread] = []

    def stuck() -> None:
        workers.append(threading.current_thread())
        started.set()
        gate.wait(WAIT)

    pool.submit(stuck)
    assert started.wait(WAIT)
    pool.abandon(workers[0])
    pool.submit(done.set)
    assert done.wait(WAIT)
    assert pool.stuck == 1
    gate.set()
    run_until(lambda: pool.stuck == 0)
    pool.shutdown()


# reload: the schedule takes a new set of checks


def test_replace_adds_changes_and_removes_checks() -> None:
    clock = FakeClock()
    probe()
    sink = Sink()
    keep, change, drop = check("keep", interval=30.0), check("change", interval=30.0), check("drop", interval=30.0)
    sched = make([keep, change, drop], clock, sink)
    before = sched.next_due()
    changed = check("change", interval=30.0, warn="> 5")
    retimed = check("keep", interval=30.0)
    added = check("new", interval=30.0)
    diff = sched.replace([retimed, changed, added])
    assert (diff.added, diff.changed, diff.removed) == ([("new", "")], [("change", "")], [("drop", "")])
    after = sched.next_due()
    assert set(after) == {("keep", ""), ("change", ""), ("new", "")}
    assert after[("keep", "")] == before[("keep", "")], "an unchanged check keeps its phase"
    assert after[("change", "")] == before[("change", "")], "a changed check with the same interval keeps its phase"
    assert not sched.replace([retimed, changed, added]), "the same checks again change nothing"
    sched.stop()


def test_a_changed_interval_reschedules_the_check() -> None:
    clock = FakeClock()
    sched = make([check("a", interval=30.0, target="db")], clock, Sink())
    before = sched.next_due()[("a", "db")]
    sched.replace([check("a", interval=300.0, target="db")])
    assert sched.next_due()[("a", "db")] == clock.mono + first_offset(check("a", interval=300.0, target="db"), "agent-1")
    assert sched.next_due()[("a", "db")] != before
    sched.stop()


def test_a_removed_checks_run_in_progress_is_dropped_and_a_changed_one_does_not_overlap() -> None:
    clock = FakeClock()
    slow = probe("slow", block=True)
    sink = Sink()
    gone, kept = check("gone", interval=10.0, probe_name="slow"), check("kept", interval=10.0, probe_name="slow")
    sched = make([gone, kept], clock, sink)
    clock.advance(LOCAL_SPREAD_S)
    sched.tick()
    slow.wait_entered(1)
    grow(sched, clock)
    slow.wait_entered(1)
    sched.replace([check("kept", interval=10.0, probe_name="slow", warn="> 5")])
    clock.advance(10.0)
    sched.tick()
    skipped = sink.wait_for(1)
    assert [r.check_id for r in skipped] == ["kept"], "the changed check's running run still counts"
    assert skipped[0].metrics[SKIPPED_METRIC] == 1.0
    slow.block = False
    slow.release.set()
    run_until(lambda: slow.running == 0)
    got = sink.wait_for(2)
    assert [r.check_id for r in got] == ["kept", "kept"], "the removed check's late result was dropped"
    sched.stop()


# rounds: the runs of one tick reach the sink together


class BatchSink(Sink):
    """Records each hand-over to the sink as one batch (one spool transaction in the agent)."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []

    def __call__(self, results: list[Result]) -> None:
        with self.cond:
            self.batches.append([r.check_id for r in results])
        super().__call__(results)


def test_a_round_of_host_checks_reaches_the_sink_in_one_batch() -> None:
    clock = FakeClock()
    probe()
    sink = BatchSink()
    specs = [check(f"c{i}", interval=30.0) for i in range(12)]
    sched = make(specs, clock, sink, concurrency=3)
    clock.advance(first_offset(specs[0], "agent-1"))
    sched.tick()
    sink.wait_for(12)
    clock.advance(30.0)
    sched.tick()
    sink.wait_for(24)
    assert [sorted(b) for b in sink.batches] == [sorted(f"c{i}" for i in range(12))] * 2
    sched.stop()


def test_quick_results_of_a_round_go_on_without_a_slow_run_after_the_round_flush() -> None:
    clock = FakeClock()
    slow = probe("slow", block=True)
    probe("quick")
    sink = BatchSink()
    specs = [check("slow", interval=60.0, timeout=30.0, probe_name="slow"),
             check("q1", interval=60.0, probe_name="quick"), check("q2", interval=60.0, probe_name="quick")]
    sched = make(specs, clock, sink)
    clock.advance(first_offset(specs[0], "agent-1"))
    sched.tick()
    slow.wait_entered()
    grow(sched, clock)
    run_until(lambda: sched.stats()["runs_total"] == 3 and PROBES["quick"].calls == 2)
    assert sink.batches == []
    clock.advance(ROUND_FLUSH_S)
    sched.tick()
    assert sorted(sink.wait_for(2)[i].check_id for i in range(2)) == ["q1", "q2"]
    slow.release.set()
    sink.wait_for(3)
    assert sorted(c for b in sink.batches[:-1] for c in b) == ["q1", "q2"]
    assert sink.batches[-1] == ["slow"]
    sched.stop()


def test_a_timed_out_run_completes_its_round_with_its_timeout_result() -> None:
    clock = FakeClock()
    stuck = probe("stuck", block=True)
    probe("quick")
    sink = BatchSink()
    specs = [check("stuck", interval=60.0, timeout=0.1, probe_name="stuck"),
             check("quick", interval=60.0, probe_name="quick")]
    sched = make(specs, clock, sink)
    clock.advance(first_offset(specs[0], "agent-1"))
    sched.tick()
    stuck.wait_entered()
    grow(sched, clock)
    run_until(lambda: PROBES["quick"].calls == 1)
    clock.advance(0.2)
    sched.tick()
    results = sink.wait_for(2)
    assert sink.batches == [["quick", "stuck"]] or sink.batches == [["stuck", "quick"]]
    assert {r.check_id: r.outcome for r in results}["stuck"] is Outcome.TIMEOUT
    sched.stop()


def test_stop_hands_over_the_finished_part_of_a_round() -> None:
    clock = FakeClock()
    probe("stuck", block=True)
    probe("quick")
    sink = BatchSink()
    specs = [check("stuck", interval=60.0, timeout=30.0, probe_name="stuck"),
             check("quick", interval=60.0, probe_name="quick")]
    sched = make(specs, clock, sink)
    clock.advance(first_offset(specs[0], "agent-1"))
    sched.tick()
    PROBES["stuck"].wait_entered()
    grow(sched, clock)
    run_until(lambda: any(rnd.results for rnd in sched._rounds))
    assert sink.batches == []
    sched.stop()
    assert sink.batches == [["quick"]]


def test_workers_start_only_when_there_is_work() -> None:
    pool = WorkerPool(4)
    assert pool.threads == 0
    done = threading.Semaphore(0)
    for _ in range(3):
        pool.submit(done.release)
        assert done.acquire(timeout=WAIT)
    run_until(lambda: pool.threads == 1)
    pool.shutdown()


def test_quick_checks_run_on_one_worker_and_a_slow_one_brings_in_another() -> None:
    clock = FakeClock()
    slow = probe("slow", block=True)
    probe("quick")
    sink = Sink()
    specs = [check("slow", interval=60.0, timeout=30.0, probe_name="slow")] + [
        check(f"q{i}", interval=60.0, probe_name="quick") for i in range(5)]
    sched = make(specs, clock, sink, concurrency=4)
    clock.advance(first_offset(specs[0], "agent-1"))
    sched.tick()
    run_until(lambda: PROBES["quick"].calls + slow.calls >= 1)
    if slow.calls:
        assert PROBES["quick"].calls == 0
        clock.advance(GROW_AFTER_S)
        sched.tick()
    run_until(lambda: PROBES["quick"].calls == 5)
    assert PROBES["quick"].max_running == 1
    assert sched._pool.threads <= 2
    slow.release.set()
    sink.wait_for(6)
    sched.stop()
