#!/usr/bin/env python3
"""xunjian-backup: a consistent copy of the collector's SQLite store, taken while the collector runs.

SQLite's backup API copies one snapshot holding every committed transaction, those still in the -wal file
included, and never half of one; `cp collector.db` while the collector writes can give a torn copy and misses
the WAL. The copy is checked (PRAGMA quick_check), made self-contained (no -wal beside it), named by UTC time,
and the oldest copies beyond --keep are removed. Standard library only, so any Python 3.8+ can run it.

    xunjian-backup [--db /var/lib/xunjian/collector.db] [--to /var/lib/xunjian/backups] [--keep 14]

Run it as the store's owner. Started as root it becomes that user first: a root process opening the store could
leave a root-owned -wal or -shm file that locks the collector out. Exit 0 when the copy is made, 1 when it
failed, 2 for bad input (no such store, not a Xunjian store).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sqlite3
import sys
from pathlib import Path
from urllib.parse import quote

PREFIX = "collector-"


class BadInput(Exception):
    """The store named is missing or is not a Xunjian collector store."""


def become_owner(db: Path) -> None:
    """As root, take the identity of the store's owner before touching anything next to it."""
    if os.geteuid() != 0:
        return
    st = db.stat()
    if st.st_uid == 0:
        return
    os.setgroups([])
    os.setgid(st.st_gid)
    os.setuid(st.st_uid)


def _open_existing(db: Path) -> sqlite3.Connection:
    """Open without ever creating: a mistyped --db must be an error, not a new empty store."""
    if not db.is_file():
        raise BadInput(f"{db}: no such store (the collector's store.url names it)")
    conn = sqlite3.connect(f"file:{quote(str(db.resolve()))}?mode=rw", uri=True, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _schema_version(conn: sqlite3.Connection, db: Path) -> int:
    try:
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BadInput(f"{db}: not a Xunjian collector store ({exc})") from None
    return int(row[0] or 0)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def take(db: Path, to: Path, now: datetime.datetime) -> tuple[Path, int]:
    """Copy `db` into `to` as collector-YYYYmmddTHHMMSSZ.db; returns the copy and its schema version."""
    src = _open_existing(db)
    try:
        version = _schema_version(src, db)
        to.mkdir(parents=True, exist_ok=True)
        final = to / f"{PREFIX}{now.strftime('%Y%m%dT%H%M%SZ')}.db"
        part = final.with_name(final.name + ".part")
        part.unlink(missing_ok=True)
        dst = sqlite3.connect(str(part))
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            check = dst.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"the copy failed quick_check: {check}")
        finally:
            dst.close()
    finally:
        src.close()
    os.chmod(part, 0o600)
    _fsync(part)
    os.replace(part, final)
    _fsync(to)
    return final, version


def prune(to: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` copies (names sort by time)."""
    copies = sorted(to.glob(f"{PREFIX}*.db"))
    old = copies[:-keep] if keep else copies
    for p in old:
        p.unlink()
    return old


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="xunjian-backup", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", type=Path, default=Path("/var/lib/xunjian/collector.db"), help="the collector's store")
    p.add_argument("--to", type=Path, default=Path("/var/lib/xunjian/backups"), help="directory for the copies")
    p.add_argument("--keep", type=int, default=14, help="copies to keep, newest first (default 14)")
    args = p.parse_args(argv)
    if args.keep < 1:
        p.error("--keep must be at least 1")
    try:
        if args.db.is_file():
            become_owner(args.db)
        final, version = take(args.db, args.to, datetime.datetime.now(datetime.timezone.utc))
        removed = prune(args.to, args.keep)
    except BadInput as exc:
        print(f"xunjian-backup: {exc}", file=sys.stderr)
        return 2
    except (OSError, sqlite3.Error) as exc:
        print(f"xunjian-backup: backup of {args.db} to {args.to} FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"xunjian-backup: {final} ({final.stat().st_size} bytes, schema version {version}, quick_check ok); "
          f"{len(removed)} old cop{'y' if len(removed) == 1 else 'ies'} removed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
