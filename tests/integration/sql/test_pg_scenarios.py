"""Real conditions on the live PostgreSQL, created in a throwaway schema, seen by the postgres pack's checks
(through psycopg and through psqlODBC)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from checks.context import RunContext
from checks.result import Status
from tests.integration.sql.conftest import PG, Background, pg_target, run_check, wait_for

pytestmark = pytest.mark.integration


def _flush_stats(conn: psycopg.Connection[Any]) -> None:
    """PG15+ backends report table/index statistics lazily; make this session's counts visible now."""
    if conn.info.server_version >= 150000:
        conn.execute("SELECT pg_stat_force_next_flush()")


def test_root_blocker_history(driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any], pg_schema: str) -> None:
    """A cashier's session holds a row lock and walks away; two sessions queue behind it. One finding names it,
    run after run, and once more when it ends."""
    pg_admin.execute(f"CREATE TABLE {pg_schema}.account (id int PRIMARY KEY, balance int)")
    pg_admin.execute(f"INSERT INTO {pg_schema}.account VALUES (1, 0)")
    holder = psycopg.connect(**PG, application_name="HIS-cashier")
    waiters = [psycopg.connect(**PG, autocommit=True, application_name=f"HIS-nurse-{i}") for i in range(2)]
    blocked: list[Background] = []
    try:
        holder.execute(f"UPDATE {pg_schema}.account SET balance = 1 WHERE id = 1")
        holder_pid = holder.info.backend_pid
        for w in waiters:
            blocked.append(Background(lambda w=w: w.execute(f"UPDATE {pg_schema}.account SET balance = 2 WHERE id = 1")))
        wait_for(lambda: pg_admin.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                          "AND application_name LIKE 'HIS-nurse-%'").fetchone() == (2,),
                 "both sessions to wait for the row lock")
        time.sleep(1.5)
        target = pg_target(driver)
        fast = {"pg.blocking": {"warn": "> 1", "crit": "> 600", "min_duration": "1s"}}
        first = run_check(ctx, target, "postgres", "pg.blocking", fast)[0]
        assert first.status == Status.WARNING and first.value is not None and first.value > 1
        mine = [f for f in first.findings if f.attributes["session_id"] == str(holder_pid)]
        assert len(mine) == 1, [f.title for f in first.findings]
        finding = mine[0]
        assert finding.attributes["application"] == "HIS-cashier"
        assert finding.attributes["state"] == "idle in transaction" and finding.attributes["ended"] == "no"
        assert finding.evidence["most_blocked_at_once"] == 2
        assert finding.sql_text == f"UPDATE {pg_schema}.account SET balance = ? WHERE id = ?", "literals stripped"
        assert f"Root blocker session {holder_pid} (application HIS-cashier" in finding.title
        time.sleep(1.0)
        second = run_check(ctx, target, "postgres", "pg.blocking", fast)[0]
        again = [f for f in second.findings if f.attributes["session_id"] == str(holder_pid)]
        assert [f.fingerprint for f in again] == [finding.fingerprint]
        assert again[0].evidence["duration_seconds"] > finding.evidence["duration_seconds"]
    finally:
        holder.rollback()
        holder.close()
        for b in blocked:
            b.join()
        for w in waiters:
            w.close()
    assert all(b.error is None for b in blocked)
    ended = run_check(ctx, pg_target(driver), "postgres", "pg.blocking", fast)[0]
    last = [f for f in ended.findings if f.attributes["session_id"] == str(holder_pid)]
    assert [f.fingerprint for f in last] == [finding.fingerprint] and last[0].attributes["ended"] == "yes"
    assert ended.status == Status.OK


def test_long_running_query(driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any]) -> None:
    runner = psycopg.connect(**PG, autocommit=True)
    pid = runner.info.backend_pid
    sleeping = Background(lambda: runner.execute("SELECT pg_sleep(30)"))
    try:
        wait_for(lambda: pg_admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
                                          (pid,)).fetchone() == (1,), "pg_sleep to start")
        time.sleep(1.5)
        res = run_check(ctx, pg_target(driver), "postgres", "pg.long_queries", {"pg.long_queries": {"warn": "> 1"}})[0]
        assert res.status == Status.WARNING and res.value is not None and res.value > 1
        quiet = run_check(ctx, pg_target(driver), "postgres", "pg.long_queries")[0]
        assert quiet.status == Status.OK, "below the pack's 2 minute threshold"
    finally:
        pg_admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
        sleeping.join()
        runner.close()


def test_idle_in_transaction(driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any]) -> None:
    idle = psycopg.connect(**PG)
    try:
        idle.execute("SELECT 1")  # psycopg opens a transaction and leaves it open
        pid = idle.info.backend_pid
        wait_for(lambda: pg_admin.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
                 == ("idle in transaction",), "the session to sit idle in transaction")
        time.sleep(1.5)
        res = run_check(ctx, pg_target(driver), "postgres", "pg.idle_in_transaction",
                        {"pg.idle_in_transaction": {"warn": "> 1"}})[0]
        assert res.status == Status.WARNING and res.metrics["count"] >= 1
    finally:
        idle.rollback()
        idle.close()


def test_dead_tuples(driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any], pg_schema: str) -> None:
    table = f"{pg_schema}.visit_log"
    pg_admin.execute(f"CREATE TABLE {table} (id int, note text) WITH (autovacuum_enabled = off)")
    pg_admin.execute(f"INSERT INTO {table} SELECT g, 'x' FROM generate_series(1, 30000) g")
    pg_admin.execute(f"DELETE FROM {table} WHERE id <= 20000")
    _flush_stats(pg_admin)
    wait_for(lambda: (pg_admin.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = %s AND relname = 'visit_log'",
                                       (pg_schema,)).fetchone() or (0,))[0] >= 20000, "dead tuples in the statistics")
    res = run_check(ctx, pg_target(driver), "postgres", "pg.dead_tuples")[0]
    assert res.status == Status.WARNING
    mine = [f for f in res.findings if f.object == table]
    assert len(mine) == 1
    assert mine[0].evidence["n_dead_tup"] == 20000 and mine[0].evidence["dead_percent"] == pytest.approx(66.7)
    assert f"VACUUM (VERBOSE, ANALYZE) {table}" in mine[0].recommendation


def test_sequence_near_exhaustion(driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any], pg_schema: str) -> None:
    seq = f"{pg_schema}.order_no"
    pg_admin.execute(f"CREATE SEQUENCE {seq} AS integer MAXVALUE 100")
    pg_admin.execute(f"SELECT setval('{seq}', 97)")
    res = run_check(ctx, pg_target(driver), "postgres", "pg.sequence_exhaustion")[0]
    mine = [f for f in res.findings if f.object == seq]
    assert len(mine) == 1 and mine[0].evidence["percent_used"] == pytest.approx(96.97)
    assert res.status == Status.CRITICAL and res.value is not None and res.value >= 96.97


@pytest.mark.parametrize("link", ["owned by", "column default"])
def test_bigint_sequence_on_an_int4_key(link: str, driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any],
                                        pg_schema: str) -> None:
    """The sequence has room until 9.2e18; the integer key it feeds overflows at 2147483647."""
    seq, table = f"{pg_schema}.order_id_seq", f"{pg_schema}.orders"
    pg_admin.execute(f"CREATE SEQUENCE {seq} AS bigint")
    pg_admin.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY DEFAULT nextval('{seq}'), note text)")
    if link == "owned by":
        pg_admin.execute(f"ALTER SEQUENCE {seq} OWNED BY {table}.id")
    pg_admin.execute(f"SELECT setval('{seq}', 2100000000)")
    res = run_check(ctx, pg_target(driver), "postgres", "pg.sequence_exhaustion")[0]
    mine = [f for f in res.findings if f.object == seq]
    assert len(mine) == 1, [f.object for f in res.findings]
    assert mine[0].attributes == {"data_type": "bigint", "column_type": "integer"}
    assert mine[0].evidence["max_value"] == 2147483647 and mine[0].evidence["percent_used"] == pytest.approx(97.79, abs=0.01)
    assert res.status == Status.CRITICAL


def test_unused_index(driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any], pg_schema: str) -> None:
    pg_admin.execute(f"CREATE TABLE {pg_schema}.lab_result (id int PRIMARY KEY, patient_id int, code text)")
    pg_admin.execute(f"INSERT INTO {pg_schema}.lab_result SELECT g, g % 500, 'c' || g FROM generate_series(1, 20000) g")
    pg_admin.execute(f"CREATE INDEX lab_result_code_idx ON {pg_schema}.lab_result (code)")
    pg_admin.execute(f"CREATE INDEX lab_result_patient_idx ON {pg_schema}.lab_result (patient_id)")
    pg_admin.execute(f"ANALYZE {pg_schema}.lab_result")
    with psycopg.connect(**PG, autocommit=True) as reader:
        reader.execute("SET enable_seqscan = off")
        reader.execute(f"SELECT count(*) FROM {pg_schema}.lab_result WHERE patient_id = 42").fetchone()
        _flush_stats(reader)
    wait_for(lambda: (pg_admin.execute("SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'lab_result_patient_idx' "
                                       "AND schemaname = %s", (pg_schema,)).fetchone() or (0,))[0] > 0, "index scan counted")
    res = run_check(ctx, pg_target(driver), "postgres", "pg.unused_indexes")[0]
    objects = {f.object for f in res.findings}
    assert f"{pg_schema}.lab_result_code_idx" in objects
    assert f"{pg_schema}.lab_result_patient_idx" not in objects, "a used index is not reported"
    assert f"{pg_schema}.lab_result_pkey" not in objects, "constraint indexes are never reported"


def test_invalid_index(driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any], pg_schema: str) -> None:
    """A failed CREATE UNIQUE INDEX CONCURRENTLY leaves an invalid index behind."""
    pg_admin.execute(f"CREATE TABLE {pg_schema}.card (no int)")
    pg_admin.execute(f"INSERT INTO {pg_schema}.card VALUES (1), (1)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        pg_admin.execute(f"CREATE UNIQUE INDEX CONCURRENTLY card_no_idx ON {pg_schema}.card (no)")
    res = run_check(ctx, pg_target(driver), "postgres", "pg.invalid_indexes")[0]
    assert res.status == Status.CRITICAL
    assert f"{pg_schema}.card_no_idx" in {f.object for f in res.findings}
