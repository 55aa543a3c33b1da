"""The durable spool: seq strictly increasing and never reused, results kept until acked, bounded by bytes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.spool import Spool, SpoolClosed
from checks.result import Result, Status
from protos import patrol_pb2
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def _close_spools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every spool a test opened (an unclosed sqlite3 connection is a ResourceWarning on newer Pythons)."""
    opened: list[Spool] = []
    original = Spool.__init__

    def tracking_init(self: Spool, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)  # type: ignore[arg-type]
        opened.append(self)

    monkeypatch.setattr(Spool, "__init__", tracking_init)
    yield
    for spool in opened:
        spool.close()


def results(n: int, prefix: str = "c", summary: str = "") -> list[Result]:
    return [Result(check_id=f"{prefix}{i}", status=Status.OK, summary=summary, value=float(i)) for i in range(n)]


def seqs(rows: list[tuple[int, bytes]]) -> list[int]:
    return [s for s, _ in rows]


def test_append_assigns_consecutive_seqs_and_stores_protobuf(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    assert spool.append(results(3)) == 3
    assert spool.append(results(2)) == 5
    rows = spool.read_after(0, 10)
    assert seqs(rows) == [1, 2, 3, 4, 5]
    first = patrol_pb2.Result.FromString(rows[0][1])
    assert (first.seq, first.check_id, first.value) == (1, "c0", 0.0)
    assert seqs(spool.read_after(3, 10)) == [4, 5]
    assert seqs(spool.read_after(0, 2)) == [1, 2]
    st = spool.stats()
    assert (st.depth, st.last_seq, st.dropped_total) == (5, 5, 0)
    assert st.bytes == sum(len(b) for _, b in rows)


def test_append_nothing_keeps_seq(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.append(results(2))
    assert spool.append([]) == 2
    assert spool.stats().depth == 2


def test_ack_deletes_up_to_seq(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.append(results(5))
    assert spool.ack(3) == 3
    assert seqs(spool.read_after(0, 10)) == [4, 5]
    st = spool.stats()
    assert (st.depth, st.acked_seq) == (2, 3)
    assert st.bytes == sum(len(b) for _, b in spool.read_after(0, 10))
    assert spool.ack(2) == 0
    assert spool.ack(99) == 2
    assert spool.stats().depth == 0
    assert spool.stats().bytes == 0


def test_seq_never_reused_after_everything_acked_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path)
    spool.append(results(4))
    spool.ack(4)
    spool.close()
    spool = Spool(path)
    assert spool.stats().depth == 0
    assert spool.append(results(1)) == 5


def test_restart_resumes_seq_and_unacked_results(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path)
    spool.append(results(6))
    spool.ack(2)
    before = spool.stats()
    spool.close()
    spool = Spool(path)
    after = spool.stats()
    assert after == before
    assert seqs(spool.read_after(0, 10)) == [3, 4, 5, 6]
    assert spool.append(results(1)) == 7


def test_bound_drops_oldest_and_counts_them_persistently(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path, max_bytes=64 * 1024)
    big = "x" * 1000
    for _ in range(10):
        spool.append(results(10, summary=big))
    st = spool.stats()
    assert st.last_seq == 100
    assert st.bytes <= 64 * 1024
    assert st.dropped_total > 0
    assert st.depth + st.dropped_total == 100
    kept = seqs(spool.read_after(0, 1000))
    assert kept == list(range(101 - st.depth, 101))
    spool.close()
    reopened = Spool(path, max_bytes=64 * 1024)
    assert reopened.stats().dropped_total == st.dropped_total
    assert reopened.append(results(1)) == 101


def test_seq_stays_strictly_increasing_when_drops_empty_the_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_bytes=64 * 1024)
    spool.append(results(1, summary="y" * 70_000))
    assert spool.stats().depth == 0
    assert spool.stats().dropped_total == 1
    assert spool.append(results(1)) == 2


def test_advance_seq_skips_past_the_collectors_high_water_mark(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path)
    spool.append(results(2))
    assert spool.advance_seq(1) is False
    assert spool.advance_seq(500) is True
    spool.close()
    spool = Spool(path)
    assert spool.append(results(1)) == 501


def test_written_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    Spool(path).append(results(1))
    db = sqlite3.connect(str(path))
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_append_after_close_is_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.close()
    spool.close()
    with pytest.raises(SpoolClosed):
        spool.append(results(1))


def test_a_full_disk_is_reported_as_such_and_loses_no_stored_result(tmp_path: Path) -> None:
    """Regression: SQLite rolls back by itself on SQLITE_FULL; our second ROLLBACK hid the error behind
    "cannot rollback - no transaction is active"."""
    spool = Spool(tmp_path / "spool.db")
    spool.append(results(3))
    pages = spool._db.execute("PRAGMA page_count").fetchone()[0]
    spool._db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        spool.append(results(2000, summary="x" * 200))
    assert spool.stats().last_seq == 3 and spool.stats().depth == 3
    spool._db.execute("PRAGMA max_page_count = 1073741823")
    assert spool.append(results(1)) == 4, "the seq counter did not move on the failed append"


def test_spool_pressure_is_logged_once_per_level_and_when_drained(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(tmp_path / "spool.db", max_bytes=64 * 1024)
    with caplog.at_level("INFO", logger="xunjian.agent.spool"):
        while spool.stats().bytes < 0.95 * spool.max_bytes:
            spool.append(results(20, summary="y" * 100))
        spool.ack(spool.last_seq)
    lines = [r.getMessage() for r in caplog.records]
    crossed = [int(line.split()[2].rstrip("%")) for line in lines if line.startswith("spool at")]
    assert len(crossed) == 2 and 50 <= crossed[0] < 90 <= crossed[1], lines
    assert lines[-1] == "spool drained: 0 results waiting"


CRASH_AFTER_APPEND = """\
import os, sys
from agent.spool import Spool
from checks.result import Result, Status
spool = Spool(sys.argv[1])
spool.append([Result(check_id=f"c{i}", status=Status.OK, summary="") for i in range(25)])
os._exit(0)
"""


def test_a_round_is_on_disk_once_append_returns_even_if_the_process_dies_at_once(tmp_path: Path) -> None:
    """The agent hands a round to the transport only after append() returned: a crash right then loses nothing the
    collector could have acknowledged (a kill without close: no Python cleanup, no checkpoint)."""
    path = tmp_path / "spool.db"
    Spool(path).close()
    subprocess.run([sys.executable, "-c", CRASH_AFTER_APPEND, str(path)], cwd=ROOT, check=True, timeout=60)
    spool = Spool(path)
    assert seqs(spool.read_after(0, 100)) == list(range(1, 26))
    assert spool.append(results(1)) == 26
