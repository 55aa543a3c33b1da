"""The per-check transaction on Oracle and SQL Server, through the real session with recording connections.

Neither server runs here (docs/databases.md, "Threat model"); these tests prove what the engine sends around
every check: the read-only transaction with its timeouts re-asserted, the check's statement as the guard
rendered it, the ROLLBACK, the verification, and that a session found turned is closed and reported as
unsafe_session with the check's rows discarded.
"""

from __future__ import annotations

from typing import Any

import oracledb
import pytest

from checks.context import RunContext
from checks.result import Outcome, Status
from checks.sql import dialects
from checks.sql.allow import prepare
from checks.sql.dialects import MssqlConnection, MysqlConnection, OracleConnection, PostgresConnection
from checks.sql.kinds import SqlMetric
from checks.sql.rows import ServerInfo
from checks.sql.target import Target
from tests.unit.sql_packs.recorded import Answer, RecordedConnection, pack_specs, run_recorded, target_for

N = oracledb.DB_TYPE_NUMBER


def _metric(key: str, sql: str, target: str) -> SqlMetric:
    return SqlMetric.model_validate({"id": "t.metric", "target": target, "query": {key: sql}})


def test_oracle_check_runs_in_a_read_only_transaction_rolled_back_and_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("oracle")["oracle.instance.status"]
    results, conn = run_recorded(monkeypatch, spec, "oracle", "19.0.0.0.0", Answer([("key", N), ("value", N)], [("x", 0)]))
    assert results[0].outcome == Outcome.OK
    check = conn.executed.index(conn.queries[0])
    assert conn.executed[check - 1] == "SET TRANSACTION READ ONLY"
    assert conn.queries[0] == prepare(spec.query.oracle[0].sql or "", "oracle").sql  # type: ignore[index]
    assert conn.executed[check + 1] == OracleConnection.verify_sql
    assert conn.rollbacks >= 3, "before the transaction, after the check, after verification"
    assert conn.call_timeout == int(min(spec.timeout, 30.0) * 1000)


def test_oracle_user_lock_left_held_is_unsafe_session(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = RecordedConnection("oracle", "19.0.0.0.0", Answer([("value", N)], [(1,)]))
    conn.session = (1, "XUNJIAN_MON", "XUNJIAN_MON")
    monkeypatch.setattr(dialects, "_open_oracledb", lambda target, password, timeout: conn)
    ctx = RunContext(targets={"his_db": target_for("oracle")})
    (result,) = _metric("oracle", "SELECT 1 AS value FROM dual", "his_db").probe(ctx)
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.UNSAFE_SESSION)
    assert "holds 1 user lock(s) (DBMS_LOCK)" in result.summary and "connection closed" in result.summary
    assert result.value is None, "the check's rows are discarded"
    assert not ctx.resources["sql:his_db"].is_open


def test_oracle_current_schema_changed_is_unsafe_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """ALTER SESSION SET CURRENT_SCHEMA outlives the ROLLBACK and would re-point every unqualified name."""
    conn = RecordedConnection("oracle", "19.0.0.0.0", Answer([("value", N)], [(1,)]))
    conn.session = (0, "HIS", "XUNJIAN_MON")
    monkeypatch.setattr(dialects, "_open_oracledb", lambda target, password, timeout: conn)
    ctx = RunContext(targets={"his_db": target_for("oracle")})
    (result,) = _metric("oracle", "SELECT 1 AS value FROM dual", "his_db").probe(ctx)
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.UNSAFE_SESSION)
    assert "CURRENT_SCHEMA is HIS, expected XUNJIAN_MON" in result.summary


def test_mssql_check_runs_in_a_transaction_rolled_back_and_verified(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("mssql")["mssql.databases.state"]
    results, conn = run_recorded(monkeypatch, spec, "mssql", "15.0.4375.4", Answer([("key", str), ("value", int)], []))
    assert all(r.outcome == Outcome.OK for r in results)
    check = conn.executed.index(conn.queries[0])
    assert conn.executed[check - 1] == ("SET LOCK_TIMEOUT 2000; SET DEADLOCK_PRIORITY LOW; "
                                        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; BEGIN TRANSACTION")
    assert conn.executed[check + 1] == "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION"
    assert conn.executed[check + 2] == MssqlConnection.verify_sql
    assert conn.timeout == 20, "the ODBC query timeout is the check's timeout"


def test_mssql_uses_snapshot_isolation_where_the_database_allows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = RecordedConnection("mssql", "15.0.4375.4", Answer([("value", int)], [(1,)]))
    conn.snapshot_isolation = 1
    monkeypatch.setattr(dialects, "_open_pyodbc", lambda target, password, timeout: conn)
    ctx = RunContext(targets={"his_sql": target_for("mssql")})
    (result,) = _metric("mssql", "SELECT 1 AS value", "his_sql").probe(ctx)
    assert result.outcome == Outcome.OK
    assert any("SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION" in s for s in conn.executed)


@pytest.mark.parametrize(
    ("session", "problem"),
    [
        ((2000, 1, 0, -5), "a transaction is still open"),
        ((2000, 0, 1, -5), "holds 1 application lock(s) (sp_getapplock)"),
        ((-1, 0, 0, -5), "LOCK_TIMEOUT is -1, expected 2000"),
        ((2000, 0, 0, 0), "DEADLOCK_PRIORITY is 0, expected LOW (-5)"),
    ],
)
def test_mssql_turned_session_is_unsafe_and_reconnected(session: tuple[int, ...], problem: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[RecordedConnection] = []

    def connect(target: Target, password: str | None, timeout: float) -> RecordedConnection:
        conn = RecordedConnection("mssql", "15.0.4375.4", Answer([("value", int)], [(7,)]))
        conn.session = session if not opened else (2000, 0, 0, -5)
        opened.append(conn)
        return conn

    monkeypatch.setattr(dialects, "_open_pyodbc", connect)
    ctx = RunContext(targets={"his_sql": target_for("mssql")})
    spec = _metric("mssql", "SELECT 7 AS value", "his_sql")
    (first,) = spec.probe(ctx)
    assert first.outcome == Outcome.UNSAFE_SESSION and problem in first.summary
    (second,) = spec.probe(ctx)
    assert (second.outcome, second.value) == (Outcome.OK, 7.0)
    assert len(opened) == 2, "the turned connection was closed and a new one opened"


def test_a_failing_statement_is_still_rolled_back(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = RecordedConnection("mssql", "15.0.4375.4", None)
    original = conn.answer_for

    def failing(sql: str) -> Answer | None:
        if "1 / 0" in sql:
            raise RuntimeError("[22012] Divide by zero error encountered. (8134)")
        return original(sql)

    conn.answer_for = failing  # type: ignore[method-assign]
    monkeypatch.setattr(dialects, "_open_pyodbc", lambda target, password, timeout: conn)
    ctx = RunContext(targets={"his_sql": target_for("mssql")})
    (result,) = _metric("mssql", "SELECT 1 / 0 AS value", "his_sql").probe(ctx)
    assert result.outcome == Outcome.PROTOCOL_ERROR
    failed = next(i for i, s in enumerate(conn.executed) if "1 / 0" in s)
    assert conn.executed[failed + 1] == "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION"


# --- the verification rules of the live-tested dialects, row by row -----------------------------------------------

def _target(dialect: str) -> Target:
    return Target.model_construct(name="t", dialect=dialect, driver="native", host="h", statement_timeout=30.0,
                                  lock_timeout=2.0, allow=None)


class _Raw:
    call_timeout = 0

    def __init__(self) -> None:
        self.info: Any = None


def test_postgres_verification_rules() -> None:
    conn = PostgresConnection(_Raw(), _target("postgres"), "native")
    conn._expected = ("30s", "2s")  # as current_setting() spells them right after connecting
    assert conn.problems(("on", "30s", "2s", 0)) == []
    assert conn.problems(("off", "30s", "2s", 0)) == ["default_transaction_read_only is no longer on"]
    assert conn.problems(("on", "0", "2s", 0)) == ["statement_timeout is 0, expected 30s"]
    assert conn.problems(("on", "30s", "0", 2)) == ["lock_timeout is 0, expected 2s", "holds 2 advisory lock(s)"]


def test_mysql_verification_rules() -> None:
    conn = MysqlConnection(_Raw(), _target("mysql"), "native")
    conn.info = ServerInfo("mysql", "mariadb", (10, 11, 6))
    conn._lock_wait = 2
    conn.statement_timeout = 10.0
    assert "tx_read_only" in conn._verify_sql() and "RELEASE_ALL_LOCKS()" in conn._verify_sql()
    assert conn.problems((1, 10.0, 2, 2, 1, 0)) == []
    assert conn.problems((0, 0.0, 2, 2, 0, 1)) == [
        "the session's transactions are no longer read-only",
        "max_statement_time is 0.0, expected 10.0",
        "autocommit was switched off",
        "held 1 named lock(s) (GET_LOCK)",
    ]
    conn.info = ServerInfo("mysql", "mysql", (8, 0, 36))
    assert "transaction_read_only" in conn._verify_sql()
    assert conn.problems((1, 10000, 2, 50, 1, 0)) == ["lock wait timeouts are 2/50, expected 2"]
