"""The SQLite store: migrations, transactional writes, findings lifecycle with an injected clock, retention."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.events import (
    AgentHello,
    BatchEffects,
    CheckRule,
    FindingSeen,
    IncidentOpen,
    IncidentResolve,
    Transition,
)
from collector.findings import FindingStateError
from collector.sqlite import SQLITE, connect, open_sqlite
from collector.sqlstore import SqlStore, migrate, migrations, schema_version
from protos import patrol_pb2

DAY = 86400.0


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_migrations_are_numbered_one_after_another() -> None:
    """A database applies every migration above its version in order: a gap or a clash would let a later one be
    skipped or applied twice."""
    versions = [m.version for m in migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_migrate_an_empty_database(tmp_path: Path) -> None:
    open_sqlite(tmp_path / "c.db").close()
    conn = connect(tmp_path / "c.db")
    assert schema_version(conn) == migrations()[-1].version
    assert {"agents", "checks", "series", "transitions", "incidents", "incident_notes", "results", "findings",
            "finding_events", "schema_version"} <= tables(tmp_path / "c.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_migrate_an_older_version_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    open_sqlite(path, upto=1).close()
    assert "findings" not in tables(path)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO agents (id, first_seen, last_seen, high_water_seq) VALUES ('a', 1, 1, 77)")
    store = open_sqlite(path)
    assert "findings" in tables(path)
    assert store.load_snapshot().agents[0].high_water_seq == 77
    conn2 = connect(path)
    assert migrate(conn2, SQLITE) == migrations()[-1].version, "re-running is a no-op"
    conn2.close()
    store.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_sqlite(tmp_path / "c.db", history="all")
    with s.transaction() as tx:
        tx.write_hello(AgentHello("a", "a.local", {"site": "main"}, ["his"], "0.1", "linux", 9,
                                  [CheckRule("db.top_sql", "his_db", kind="sql.findings", labels={"engine": "oracle"})],
                                  10.0))
    yield s
    s.close()


def test_batch_effects_and_high_water_mark_commit_together(store: SqlStore) -> None:
    eff = BatchEffects("a", 3, 20.0, accepted=3)
    eff.transitions.append(Transition("a", "his.disk", "", "/", 2, 0, 2, 19.0, "full", 99.0))
    eff.incidents.append(IncidentOpen("check", "a", "his.disk", "", "/", "high", "HIS", "Disk CRITICAL", "full", 2,
                                      20.0, 920.0))
    eff.history = [patrol_pb2.Result(seq=s, check_id="his.disk", key="/", status=0, value=1.0) for s in (1, 2, 3)]
    with store.transaction() as tx:
        tx.write_batch(eff)
    snap = store.load_snapshot()
    assert snap.agents[0].high_water_seq == 3
    assert [(s.check_id, s.status) for s in snap.series] == [("his.disk", 2)]
    assert [i.check_id for i in snap.open_incidents] == ["his.disk"]
    assert [r["seq"] for r in store.list_results("a", 1, 10)] == [2, 3]
    with store.transaction() as tx:
        tx.write_incident_actions([IncidentResolve("a", "his.disk", "", "/", 0, "ok", 30.0)])
    [incident] = store.list_incidents("all", 10)
    assert (incident["status"], incident["resolved_at"], incident["last_status"]) == ("resolved", 30.0, 0)


def test_a_failed_transaction_leaves_nothing(store: SqlStore) -> None:
    eff = BatchEffects("a", 5, 20.0)
    eff.transitions.append(Transition("a", "x", "", "", 5, None, 2, 19.0, "", None))
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.write_batch(eff)
        raise RuntimeError("boom")
    assert store.load_snapshot().agents[0].high_water_seq == 0
    assert store.load_snapshot().series == []


def see(store: SqlStore, at: float, fingerprint: str = "sql_id:abc", elapsed: float = 1.0, category: str = "") -> None:
    finding = patrol_pb2.Finding(fingerprint=fingerprint, title="Slow SQL", object="HIS.ORDERS",
                                 recommendation="add an index", sql_text="SELECT * FROM orders WHERE id = ?",
                                 evidence={"elapsed_s": elapsed}, category=category)
    eff = BatchEffects("a", 0, at)
    eff.findings.append(FindingSeen("a", "his_db", "db.top_sql", "oracle", finding, at))
    with store.transaction() as tx:
        tx.write_batch(eff)


def test_findings_lifecycle_with_an_injected_clock(store: SqlStore) -> None:
    see(store, 100.0, elapsed=1.0)
    see(store, 200.0, elapsed=2.0)
    [f] = store.list_findings({}, 10)
    assert (f["state"], f["first_seen"], f["last_seen"], f["seen_count"]) == ("new", 100.0, 200.0, 2)
    assert (f["engine"], f["check_id"], f["evidence"]) == ("oracle", "db.top_sql", {"elapsed_s": 2.0})

    with store.transaction() as tx:
        reviewed = tx.review_finding(f["id"], "accept", "dba.wang", "index planned Friday", 300.0)
    assert reviewed is not None and reviewed["state"] == "accepted"

    with store.transaction() as tx:
        assert tx.fix_stale_findings(seen_before=200.0, at=400.0) == 0, "seen at 200: not stale yet"
        assert tx.fix_stale_findings(seen_before=200.0 + 1, at=7 * DAY) == 1
    row = store.get_finding(f["id"])
    assert row is not None and (row["state"], row["fixed_at"]) == ("fixed", 7 * DAY)

    with pytest.raises(FindingStateError), store.transaction() as tx:
        tx.review_finding(f["id"], "dismiss", "dba.wang", "", 7 * DAY + 1)

    see(store, 8 * DAY)
    row = store.get_finding(f["id"])
    assert row is not None
    assert (row["state"], row["seen_count"], row["fixed_at"], row["first_seen"]) == ("new", 3, None, 100.0)
    assert [(h["from_state"], h["to_state"], h["actor"]) for h in row["history"]] == [
        (None, "new", ""), ("new", "accepted", "dba.wang"), ("accepted", "fixed", ""), ("fixed", "new", "")]
    assert store.finding_counts() == {("dba", "new"): 1}


def test_dismissed_findings_stay_dismissed(store: SqlStore) -> None:
    see(store, 100.0)
    [f] = store.list_findings({"state": "new", "engine": "oracle", "target": "his_db", "agent": "a"}, 10)
    with store.transaction() as tx:
        tx.review_finding(f["id"], "dismiss", "dba.li", "by design", 150.0)
        assert tx.fix_stale_findings(seen_before=10 * DAY, at=10 * DAY) == 0
    see(store, 11 * DAY)
    assert store.list_findings({"state": "dismissed"}, 10)[0]["seen_count"] == 2
    assert store.list_findings({"engine": "mssql"}, 10) == []


def test_review_of_a_missing_finding_returns_none(store: SqlStore) -> None:
    with store.transaction() as tx:
        assert tx.review_finding(999, "accept", "x", "", 1.0) is None


def test_purge_history_older_than_retention(store: SqlStore) -> None:
    eff = BatchEffects("a", 2, 100.0)
    eff.transitions.append(Transition("a", "c", "", "", 1, None, 0, 50.0, "", None))
    eff.history = [patrol_pb2.Result(seq=1, check_id="c", status=0)]
    with store.transaction() as tx:
        tx.write_batch(eff)
    with store.transaction() as tx:
        assert tx.purge_history(before=100.0) == 1, "the transition at 50; the result was received at 100"
        assert tx.purge_history(before=101.0) == 1
    assert store.list_results("a", 0, 10) == []


def test_purge_history_in_chunks(store: SqlStore) -> None:
    eff = BatchEffects("a", 5, 100.0)
    eff.transitions.extend(Transition("a", "c", "", str(k), k, None, 0, 50.0, "", None) for k in range(1, 6))
    with store.transaction() as tx:
        tx.write_batch(eff)
    with store.transaction() as tx:
        assert tx.purge_history(before=60.0, limit=2) == 2
        assert tx.purge_history(before=60.0, limit=2) == 2
        assert tx.purge_history(before=60.0, limit=2) == 1


def test_findings_keep_their_category_and_an_old_agents_findings_are_dba(store: SqlStore) -> None:
    see(store, 100.0, fingerprint="sql_id:old")
    see(store, 100.0, fingerprint="pay:wechat:channel_only:WX1", category="payment")
    see(store, 100.0, fingerprint="mig:charge:2025-01-02:missing_day", category="migration")
    see(store, 100.0, fingerprint="odd", category="DROP TABLE findings")
    assert {f["fingerprint"]: f["category"] for f in store.list_findings({}, 10)} == {
        "sql_id:old": "dba", "pay:wechat:channel_only:WX1": "payment",
        "mig:charge:2025-01-02:missing_day": "migration", "odd": "dba"}
    [pay] = store.list_findings({"category": "payment"}, 10)
    assert pay["fingerprint"] == "pay:wechat:channel_only:WX1"
    assert store.finding_counts() == {("dba", "new"): 2, ("payment", "new"): 1, ("migration", "new"): 1}


def test_a_payment_discrepancy_is_never_fixed_by_not_being_seen_only_settled(store: SqlStore) -> None:
    see(store, 100.0, fingerprint="pay:alipay:his_only:P1", category="payment")
    see(store, 100.0, fingerprint="ins:2025-01:city_employee", category="insurance")
    see(store, 100.0, fingerprint="mig:charge:2025-01-02:short", category="migration")
    with store.transaction() as tx:
        assert tx.fix_stale_findings(seen_before=30 * DAY, at=30 * DAY) == 1, "only the migration finding"
    states = {f["category"]: f["state"] for f in store.list_findings({}, 10)}
    assert states == {"payment": "new", "insurance": "new", "migration": "fixed"}
    [pay] = store.list_findings({"category": "payment"}, 10)
    with store.transaction() as tx:
        tx.review_finding(pay["id"], "accept", "cashier.zhao", "refunded by hand, voucher 2025-0113", 31 * DAY)
    see(store, 32 * DAY, fingerprint="pay:alipay:his_only:P1", category="payment")
    row = store.get_finding(pay["id"])
    assert row is not None and (row["state"], row["review_note"]) == ("accepted", "refunded by hand, voucher 2025-0113")
