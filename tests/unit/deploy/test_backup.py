"""deploy/backup/xunjian-backup.py on a real collector store: a consistent, self-contained, private copy that
holds what was committed (also what is still in the WAL) and nothing uncommitted; bad input exits 2."""

from __future__ import annotations

import importlib.util
import sqlite3
import stat
from pathlib import Path
from types import ModuleType

import pytest

from collector.sqlite import connect, open_sqlite
from collector.sqlstore import migrations
from tests.conftest import ROOT

SCRIPT = ROOT / "deploy" / "backup" / "xunjian-backup.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("xunjian_backup", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


backup = load_script()


def store(tmp_path: Path) -> Path:
    db = tmp_path / "collector.db"
    open_sqlite(db)
    return db


def add_agent(conn: sqlite3.Connection, agent_id: str) -> None:
    conn.execute("INSERT INTO agents (id, first_seen, last_seen) VALUES (?, 0, 0)", (agent_id,))


def agents_in(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute("SELECT id FROM agents")}
    finally:
        conn.close()


def test_copy_holds_committed_rows_in_the_wal_and_not_an_open_transaction(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    db = store(tmp_path)
    writer = connect(db)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    add_agent(writer, "committed-in-wal")
    writer.execute("BEGIN IMMEDIATE")
    add_agent(writer, "uncommitted")
    try:
        assert backup.main(["--db", str(db), "--to", str(tmp_path / "backups")]) == 0
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    (copy,) = (tmp_path / "backups").glob("collector-*.db")
    assert agents_in(copy) == {"committed-in-wal"}
    assert not list((tmp_path / "backups").glob("*-wal")), "the copy must be one self-contained file"
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        conn.close()
    latest = max(m.version for m in migrations())
    assert f"schema version {latest}, quick_check ok" in capsys.readouterr().out


def test_restored_copy_opens_as_a_store(tmp_path: Path) -> None:
    db = store(tmp_path)
    conn = connect(db)
    add_agent(conn, "his-app-01")
    conn.close()
    assert backup.main(["--db", str(db), "--to", str(tmp_path / "backups")]) == 0
    (copy,) = (tmp_path / "backups").glob("collector-*.db")
    restored = tmp_path / "restored" / "collector.db"
    restored.parent.mkdir()
    restored.write_bytes(copy.read_bytes())
    open_sqlite(restored)
    assert agents_in(restored) == {"his-app-01"}


def test_keeps_only_the_newest_copies(tmp_path: Path) -> None:
    to = tmp_path / "backups"
    to.mkdir()
    for day in ("20261101", "20261102", "20261103"):
        (to / f"collector-{day}T023000Z.db").write_bytes(b"")
    (to / "unrelated.db").write_bytes(b"")
    removed = backup.prune(to, 2)
    assert [p.name for p in removed] == ["collector-20261101T023000Z.db"]
    assert sorted(p.name for p in to.iterdir()) == [
        "collector-20261102T023000Z.db", "collector-20261103T023000Z.db", "unrelated.db"]


def test_missing_store_is_bad_input_and_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "colector.db"
    assert backup.main(["--db", str(db), "--to", str(tmp_path / "backups")]) == 2
    assert "colector.db: no such store" in capsys.readouterr().err
    assert not db.exists() and not (tmp_path / "backups").exists()


def test_a_file_that_is_not_a_store_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    assert backup.main(["--db", str(other), "--to", str(tmp_path / "backups")]) == 2
    assert "not a Xunjian collector store" in capsys.readouterr().err


def test_keep_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        backup.main(["--db", str(tmp_path / "c.db"), "--keep", "0"])
    assert exc.value.code == 2
