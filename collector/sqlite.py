"""Everything SQLite-specific about the store: connection pragmas (WAL), the dialect, opening and migrating."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from collector.sqlstore import Dialect, SqlStore, migrate


def unavailable(error: BaseException) -> bool:
    """SQLite itself failed (full, read-only, I/O error, locked, corrupt), as opposed to a statement being wrong."""
    return isinstance(error, (sqlite3.OperationalError, sqlite3.InternalError)) or type(error) is sqlite3.DatabaseError


SQLITE = Dialect(name="sqlite", id_column="INTEGER PRIMARY KEY", begin_write="BEGIN IMMEDIATE",
                 unavailable=unavailable)


def connect(path: Path) -> sqlite3.Connection:
    """Autocommit connection (explicit BEGIN/COMMIT), WAL, full fsync on commit: an ack means on disk."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def open_sqlite(path: Path, *, history: str = "transitions", upto: int | None = None) -> SqlStore:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        migrate(conn, SQLITE, upto=upto, now=time.time())
    finally:
        conn.close()
    return SqlStore(SQLITE, lambda: connect(path), history=history)
