"""The group-commit writer: many jobs, one transaction; a failing job fails alone; futures resolve after COMMIT."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from collector.events import AgentHeartbeat, AgentHello
from collector.sqlite import open_sqlite
from collector.sqlstore import SqlStore
from collector.store import StoreTx
from collector.writer import Writer


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_sqlite(tmp_path / "c.db")
    with s.transaction() as tx:
        tx.write_hello(AgentHello("a", "a", {}, [], "", "", 0, [], 1.0))
    yield s
    s.close()


def test_pending_jobs_share_one_commit_and_a_failing_job_fails_alone(store: SqlStore, tmp_path: Path) -> None:
    writer = Writer(store)
    gate = threading.Event()
    blocker = writer.submit(lambda tx: gate.wait(10))
    futures: list[Future[None]] = []
    for n in range(1, 6):
        def beat(tx: StoreTx, n: int = n) -> None:
            if n == 3:
                raise ValueError("bad job")
            tx.write_heartbeat(AgentHeartbeat("a", n, n, 0, float(n)))
        futures.append(writer.submit(beat))
    writer.start()
    gate.set()
    assert blocker.result(10) is True
    for n, fut in enumerate(futures, start=1):
        if n == 3:
            with pytest.raises(ValueError, match="bad job"):
                fut.result(10)
        else:
            assert fut.result(10) is None
    writer.stop()
    with sqlite3.connect(tmp_path / "c.db") as db:
        assert db.execute("SELECT last_seq FROM agents").fetchone() == (5,)
    assert writer.stats.failures_total == 1
    assert writer.stats.jobs_total == 5, "the failed group was split: each good job committed alone"
    assert writer.error is None


def test_stop_commits_what_is_queued(store: SqlStore, tmp_path: Path) -> None:
    writer = Writer(store)
    fut = writer.submit(lambda tx: tx.write_heartbeat(AgentHeartbeat("a", 7, 0, 0, 2.0)))
    writer.start()
    writer.stop()
    assert fut.done() and fut.result() is None


def test_a_job_cancelled_by_its_waiter_is_skipped_and_the_writer_keeps_going(store: SqlStore, tmp_path: Path) -> None:
    """Regression: a stream closed at shutdown cancels its pending commit; setting its result killed the writer."""
    writer = Writer(store)
    cancelled = writer.submit(lambda tx: tx.write_heartbeat(AgentHeartbeat("a", 99, 0, 0, 1.0)))
    assert cancelled.cancel()
    later = writer.submit(lambda tx: tx.write_heartbeat(AgentHeartbeat("a", 8, 0, 0, 2.0)))
    writer.start()
    assert later.result(10) is None
    writer.stop()
    assert writer.error is None
    with sqlite3.connect(tmp_path / "c.db") as db:
        assert db.execute("SELECT last_seq FROM agents").fetchone() == (8,), "the cancelled job was not run"
