"""Durable spool: every result is on disk with its seq before the agent relies on it, and stays until acknowledged.

SQLite in WAL mode with synchronous=FULL, so a committed append survives a power cut. The seq counter lives in
the same transaction as the rows it numbers and never goes back, even when the spool is empty (docs/architecture.md:
the collector drops anything at or below the highest seq it stored for this agent). The last seq is the larger
of the newest stored row and `meta.last_seq`, which every transaction that deletes rows brings up to date, so
an append writes only its rows.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.wire import result_to_proto
from checks.result import Result

log = logging.getLogger("xunjian.agent.spool")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (seq INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('last_seq', 0), ('acked_seq', 0), ('dropped_total', 0);
CREATE TABLE IF NOT EXISTS spool_identity (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


PRESSURE_LEVELS = (0.5, 0.9)
"""Fractions of max_bytes at which the spool warns that the collector is not taking results fast enough."""
DRAINED_LEVEL = 0.1


def _rollback(db: sqlite3.Connection) -> None:
    """End a failed transaction; after a full disk or an I/O error SQLite has already rolled it back, and a
    second ROLLBACK would replace the real error with "no transaction is active"."""
    if db.in_transaction:
        db.execute("ROLLBACK")


class SpoolClosed(RuntimeError):
    """The agent is stopping; results that arrive now were never relied on and are not stored."""


@dataclass(frozen=True)
class SpoolStats:
    depth: int
    """Results waiting for the collector's acknowledgement."""
    bytes: int
    """Serialized size of those results (the quantity `max_bytes` bounds)."""
    dropped_total: int
    """Results dropped, oldest first, because the spool reached `max_bytes`; never reset."""
    last_seq: int
    acked_seq: int


class Spool:
    """Results serialized as protos.patrol_pb2.Result, keyed by seq; thread-safe (one connection, one lock)."""

    def __init__(self, path: str | Path, max_bytes: int = 256 * 1024**2) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._closed = False
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self.incarnation = self._incarnation()
        meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        newest = self._db.execute("SELECT MAX(seq) FROM results").fetchone()[0]
        self._last_seq = max(int(meta["last_seq"]), int(newest or 0))
        self._acked_seq = int(meta["acked_seq"])
        self._dropped_total = int(meta["dropped_total"])
        depth, size = self._db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM results").fetchone()
        self._depth = int(depth)
        self._bytes = int(size)
        self._pressure = 0
        """How many of PRESSURE_LEVELS the spool has passed since it was last drained (logged once each)."""

    def _incarnation(self) -> str:
        """The random id of this spool file, made when it is created: a reinstalled agent (a new spool under the same
        identity) tells the collector so, and its seqs start again instead of being taken for duplicates."""
        row = self._db.execute("SELECT value FROM spool_identity WHERE name = 'incarnation'").fetchone()
        if row is not None:
            return str(row[0])
        made = secrets.token_hex(8)
        self._db.execute("INSERT INTO spool_identity (name, value) VALUES ('incarnation', ?)", (made,))
        return made

    def close(self) -> None:
        """Close the database; closing twice is harmless."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def acked_seq(self) -> int:
        return self._acked_seq

    def stats(self) -> SpoolStats:
        with self._lock:
            return SpoolStats(self._depth, self._bytes, self._dropped_total, self._last_seq, self._acked_seq)

    def append(self, results: Sequence[Result]) -> int:
        """Number and store `results` in one durable transaction; returns the last seq assigned."""
        if not results:
            return self._last_seq
        with self._lock:
            if self._closed:
                raise SpoolClosed(f"spool {self.path} is closed")
            seq = self._last_seq
            rows = []
            added = 0
            for r in results:
                seq += 1
                body = result_to_proto(r, seq).SerializeToString()
                added += len(body)
                rows.append((seq, body))
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT INTO results (seq, body) VALUES (?, ?)", rows)
                depth, size = self._depth + len(rows), self._bytes + added
                dropped = 0
                if size > self.max_bytes:
                    dropped, freed = self._drop_oldest(size - self.max_bytes)
                    depth, size = depth - dropped, size - freed
                    db.execute("UPDATE meta SET value = value + ? WHERE name = 'dropped_total'", (dropped,))
                    db.execute("UPDATE meta SET value = ? WHERE name = 'last_seq'", (seq,))
                db.execute("COMMIT")
            except BaseException:
                _rollback(db)
                raise
            self._last_seq, self._depth, self._bytes = seq, depth, size
            if dropped:
                self._dropped_total += dropped
                log.warning("spool full (%d bytes): dropped the %d oldest results, %d dropped in total",
                            self.max_bytes, dropped, self._dropped_total,
                            extra={"event": "spool.dropped", "dropped": dropped, "dropped_total": self._dropped_total})
            self._note_pressure()
            return seq

    def _note_pressure(self) -> None:
        """Log once per level crossed on the way up, and once when the backlog has drained (caller holds the lock)."""
        used = self._bytes / self.max_bytes
        level = sum(1 for mark in PRESSURE_LEVELS if used >= mark)
        if level > self._pressure:
            self._pressure = level
            log.warning("spool at %.0f%% of its %d-byte bound: %d results waiting for the collector",
                        used * 100, self.max_bytes, self._depth,
                        extra={"event": "spool.pressure", "depth": self._depth, "used_fraction": round(used, 3)})
        elif self._pressure and used < DRAINED_LEVEL:
            self._pressure = 0
            log.info("spool drained: %d results waiting", self._depth, extra={"event": "spool.drained"})

    def _drop_oldest(self, excess: int) -> tuple[int, int]:
        """Delete the oldest rows until `excess` bytes are freed (inside the caller's transaction)."""
        freed = 0
        count = 0
        cutoff = 0
        for seq, size in self._db.execute("SELECT seq, LENGTH(body) FROM results ORDER BY seq"):
            freed += int(size)
            count += 1
            cutoff = int(seq)
            if freed >= excess:
                break
        self._db.execute("DELETE FROM results WHERE seq <= ?", (cutoff,))
        return count, freed

    def read_after(self, seq: int, limit: int) -> list[tuple[int, bytes]]:
        """Up to `limit` stored results with a seq above `seq`, oldest first, as (seq, serialized Result)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body FROM results WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
            ).fetchall()
        return [(int(s), bytes(b)) for s, b in rows]

    def ack(self, up_to_seq: int) -> int:
        """Forget every result at or below `up_to_seq` (the collector committed them); returns how many went.

        Without an fsync of its own: losing an ack to a power cut only means those results are offered again,
        and the collector's Welcome (high-water mark) makes the agent skip them. The next append's fsync makes
        it durable anyway.
        """
        with self._lock:
            if up_to_seq <= self._acked_seq:
                return 0
            db = self._db
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                count, size = db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM results WHERE seq <= ?", (up_to_seq,)
                ).fetchone()
                if count:
                    db.execute("DELETE FROM results WHERE seq <= ?", (up_to_seq,))
                acked = max(self._acked_seq, min(up_to_seq, self._last_seq))
                db.execute("UPDATE meta SET value = ? WHERE name = 'acked_seq'", (acked,))
                db.execute("UPDATE meta SET value = ? WHERE name = 'last_seq'", (self._last_seq,))
                db.execute("COMMIT")
            except BaseException:
                _rollback(db)
                raise
            finally:
                db.execute("PRAGMA synchronous=FULL")
            self._depth -= int(count)
            self._bytes -= int(size)
            self._acked_seq = acked
            self._note_pressure()
            return int(count)

    def advance_seq(self, at_least: int) -> bool:
        """Make the next seq exceed `at_least` (the collector already stored up to it, e.g. after the spool file
        was deleted), so new results are not dropped as duplicates; returns True when the counter moved."""
        with self._lock:
            if at_least <= self._last_seq:
                return False
            self._db.execute("UPDATE meta SET value = ? WHERE name = 'last_seq'", (at_least,))
            log.warning("collector has results up to seq %d but this spool was at %d: continuing from %d",
                        at_least, self._last_seq, at_least + 1)
            self._last_seq = at_least
            return True
