"""Rows → results for sql.metric, sql.assert and sql.findings, with rows shaped like each engine's catalog views.

Oracle and SQL Server cannot run on this machine; their result handling is tested here with rows shaped
exactly as python-oracledb and pyodbc return them (upper-case column names, Decimal, bytes, None).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from checks.context import RunContext
from checks.result import Outcome, Status
from checks.sql.kinds import SqlAssert, SqlFindings, SqlMetric
from checks.sql.rows import Rows, ServerInfo

ORACLE = ServerInfo("oracle", "oracle", (19, 3, 0, 0, 0))
MSSQL = ServerInfo("mssql", "mssql", (16, 0, 1000, 6))
PG = ServerInfo("postgres", "postgres", (15, 20))
MARIADB = ServerInfo("mysql", "mariadb", (10, 11, 19))


def rows(columns: list[str], data: list[tuple[Any, ...]], truncated: bool = False) -> Rows:
    """Like the session: column names lower-cased whatever the driver returned."""
    return Rows(columns=[c.lower() for c in columns], rows=data, truncated=truncated)


def metric(**kw: Any) -> SqlMetric:
    base: dict[str, Any] = {"id": "t.m", "target": "db", "query": {"oracle": "SELECT 1 AS value FROM dual"}}
    return SqlMetric.model_validate({**base, **kw})


def test_oracle_tablespace_per_key() -> None:
    """dba_tablespace_usage_metrics as python-oracledb returns it: upper-case names, NUMBER as Decimal/float."""
    spec = metric(warn="> 90", crit="> 95", unit="percent")
    data = rows(
        ["KEY", "VALUE", "USED_SPACE", "TABLESPACE_SIZE"],
        [("SYSTEM", Decimal("62.5"), 51200, 81920), ("HIS_DATA", 96.03, 3932160, 4096000), ("UNDOTBS1", 91.0, 1, 2)],
    )
    results = spec.evaluate(data, ORACLE)
    assert [(r.key, r.status) for r in results] == [
        ("SYSTEM", Status.OK), ("HIS_DATA", Status.CRITICAL), ("UNDOTBS1", Status.WARNING),
    ]
    assert results[1].value == pytest.approx(96.03)
    assert results[1].metrics == {"used_space": 3932160.0, "tablespace_size": 4096000.0}
    assert results[1].summary == "t.m HIS_DATA = 96.03 percent (critical > 95)"


def test_single_value_and_alternative_columns() -> None:
    spec = metric(value_column=["seconds_behind_source", "seconds_behind_master"], key_column=["connection_name", "channel_name"])
    res = spec.evaluate(rows(["Connection_name", "Seconds_Behind_Master", "Slave_IO_Running"], [("", 12, "Yes")]), MARIADB)
    assert len(res) == 1 and res[0].key == "" and res[0].value == 12.0 and res[0].metrics == {}


def test_null_value_status() -> None:
    spec = metric(value_column="seconds_behind_master", key_column="connection_name", if_null="critical", crit="> 300")
    res = spec.evaluate(rows(["Connection_name", "Seconds_Behind_Master"], [("", None)]), MARIADB)
    assert res[0].status == Status.CRITICAL and "NULL" in res[0].summary


def test_empty_result() -> None:
    spec = metric(empty_summary="not a replica")
    res = spec.evaluate(rows(["value"], []), MARIADB)
    assert res[0].status == Status.OK and res[0].summary == "t.m: not a replica"
    spec = metric(if_empty="unknown")
    res = spec.evaluate(rows(["value"], []), MARIADB)
    assert res[0].status == Status.UNKNOWN and res[0].outcome == Outcome.CONTENT_MISMATCH


def test_missing_value_column_is_content_mismatch() -> None:
    res = metric().evaluate(rows(["x"], [(1,)]), PG)
    assert res[0].status == Status.UNKNOWN and res[0].outcome == Outcome.CONTENT_MISMATCH
    assert "value_column value is not among the query's columns (x)" in res[0].summary


def test_several_rows_without_key_is_content_mismatch() -> None:
    res = metric().evaluate(rows(["value"], [(1,), (2,)]), PG)
    assert res[0].outcome == Outcome.CONTENT_MISMATCH


def test_numeric_text_and_intervals() -> None:
    """MySQL status variables arrive as text; PostgreSQL intervals as timedelta."""
    res = metric().evaluate(rows(["value", "age"], [("151", dt.timedelta(minutes=2))]), MARIADB)
    assert res[0].value == 151.0 and res[0].metrics == {"age": 120.0}


def test_delta_per_second() -> None:
    now = [1000.0]
    ctx = RunContext(clock=lambda: now[0])
    spec = metric(delta="per_second", warn="> 3")
    first = spec.finish(spec.evaluate(rows(["value"], [(100,)]), MARIADB), ctx)
    assert first[0].value is None and first[0].status == Status.OK and "first reading" in first[0].summary
    now[0] += 10
    second = spec.finish(spec.evaluate(rows(["value"], [(150,)]), MARIADB), ctx)
    assert second[0].value == 5.0 and second[0].status == Status.WARNING and second[0].metrics["counter"] == 150.0
    now[0] += 10
    reset = spec.finish(spec.evaluate(rows(["value"], [(20,)]), MARIADB), ctx)
    assert reset[0].value == 2.0 and reset[0].status == Status.OK


def test_delta_increase_per_key() -> None:
    ctx = RunContext(clock=lambda: 0.0)
    spec = metric(delta="increase", warn="> 0")
    spec.finish(spec.evaluate(rows(["key", "value"], [("his", 3), ("lis", 0)]), PG), ctx)
    res = spec.finish(spec.evaluate(rows(["key", "value"], [("his", 5), ("lis", 0)]), PG), ctx)
    assert [(r.key, r.value, r.status) for r in res] == [("his", 2.0, Status.WARNING), ("lis", 0.0, Status.OK)]


def assertion(**kw: Any) -> SqlAssert:
    base: dict[str, Any] = {"id": "his.orders.orphans", "target": "his", "query": {"mssql": "SELECT order_id, patient_name FROM t"}}
    return SqlAssert.model_validate({**base, **kw})


def test_assert_summary_names_only_key_columns() -> None:
    """Contract daily integrity check: orphan orders; the patient's name must not appear anywhere."""
    spec = assertion(key_columns=["ORDER_ID"], show_keys=2)
    data = rows(["ORDER_ID", "PATIENT_NAME"], [(1001, "张三"), (1002, "李四"), (1003, "王五")])
    res = spec.evaluate(data, MSSQL)[0]
    assert res.status == Status.CRITICAL and res.value == 3.0 and res.unit == "rows"
    assert res.summary == "his.orders.orphans: 3 offending rows: order_id=1001; order_id=1002, ..."
    assert all(name not in str(res.to_json()) for name in ("张三", "李四", "王五"))


def test_assert_no_rows_ok_and_severity() -> None:
    assert assertion().evaluate(rows(["order_id"], []), MSSQL)[0].status == Status.OK
    res = assertion(severity="warning").evaluate(rows(["order_id"], [(1,)]), MSSQL)[0]
    assert res.status == Status.WARNING and res.summary == "his.orders.orphans: 1 offending rows"


def test_assert_thresholds_on_count_and_truncation() -> None:
    spec = assertion(warn="> 5", crit="> 50", key_columns=["order_id"], show_keys=0)
    res = spec.evaluate(rows(["order_id"], [(i,) for i in range(10)], truncated=True), MSSQL)[0]
    assert res.status == Status.WARNING and res.summary == "his.orders.orphans: 10+ offending rows"


def findings(**kw: Any) -> SqlFindings:
    base: dict[str, Any] = {"id": "mssql.top_sql", "title": "Top SQL", "target": "his", "query": {"mssql": "SELECT 1 AS x"}}
    return SqlFindings.model_validate({**base, **kw})


def test_mssql_top_queries_shaped_rows() -> None:
    """sys.dm_exec_query_stats via pyodbc: query_hash is binary(8), numbers int/Decimal, text with literals."""
    spec = findings(
        fingerprint_column="query_hash",
        object_column="database_name",
        sql_text_column="query_text",
        evidence_columns=["execution_count", "total_elapsed_ms"],
        finding_title="Top query {query_hash}",
        recommendation="Runs {execution_count} times for {total_elapsed_ms} ms in {database_name}: {query_text}",
        top_n=2,
    )
    data = rows(
        ["query_hash", "database_name", "execution_count", "total_elapsed_ms", "query_text"],
        [
            ("0x8A1B2C3D4E5F6071", "HIS", 1200, Decimal("45000.5"), "SELECT * FROM patient WHERE name = N'张三'"),
            ("0x1111111111111111", "LIS", 3, 10, "SELECT 1"),
            ("0x2222222222222222", "LIS", 1, 1, "SELECT 2"),
        ],
    )
    res = spec.evaluate(data, MSSQL)[0]
    assert res.value == 2.0 and len(res.findings) == 2
    f = res.findings[0]
    assert f.fingerprint == "mssql.top_sql:0x8A1B2C3D4E5F6071"
    assert f.title == "Top query 0x8A1B2C3D4E5F6071" and f.object == "HIS"
    assert f.sql_text == "SELECT * FROM patient WHERE name = ?"
    assert f.evidence == {"execution_count": 1200.0, "total_elapsed_ms": 45000.5}
    assert f.recommendation == "Runs 1200 times for 45000.5 ms in HIS: SELECT * FROM patient WHERE name = ?"
    assert "张三" not in str(res.to_json())


def test_oracle_findings_default_evidence_and_value_column() -> None:
    """v$session blocking rows as python-oracledb returns them: upper-case, NUMBER as int/float."""
    spec = findings(
        fingerprint_column=["BLOCKING_SESSION", "SID"],
        value_column="SECONDS_IN_WAIT",
        unit="seconds",
        warn="> 60",
        crit="> 120",
        attribute_columns=["USERNAME"],
    )
    data = rows(["SID", "BLOCKING_SESSION", "SECONDS_IN_WAIT", "USERNAME", "EVENT"],
                [(201, 88, 75, "HISAPP", "enq: TX - row lock contention"), (202, 88, 30, "HISAPP", "enq: TX")])
    res = spec.evaluate(data, ORACLE)[0]
    assert res.status == Status.WARNING and res.value == 75.0 and res.unit == "seconds"
    assert res.findings[0].fingerprint == "mssql.top_sql:88/201"
    assert res.findings[0].evidence == {"seconds_in_wait": 75.0}, "numeric columns except the fingerprint"
    assert res.findings[0].attributes == {"username": "HISAPP"}


def test_findings_none_and_missing_column() -> None:
    spec = findings(fingerprint_column="sql_id")
    res = spec.evaluate(rows(["sql_id"], []), ORACLE)[0]
    assert res.status == Status.OK and res.value == 0.0 and res.summary == "Top SQL: no findings"
    res = spec.evaluate(rows(["x"], [(1,)]), ORACLE)[0]
    assert res.outcome == Outcome.CONTENT_MISMATCH and "fingerprint_column 'sql_id'" in res.summary


def test_template_validated_at_load() -> None:
    with pytest.raises(ValueError, match="bad template"):
        findings(fingerprint_column="x", recommendation="see {x")
    with pytest.raises(ValueError, match="plain column name"):
        findings(fingerprint_column="x", recommendation="see {x.__class__}")


def test_probe_without_target_config_is_unknown() -> None:
    res = metric().probe(RunContext(targets={}))
    assert res[0].status == Status.UNKNOWN and res[0].outcome == Outcome.NOT_FOUND
    assert "no target 'db' in agent.yaml" in res[0].summary and res[0].target == "db"


def test_drivers_load_lazily() -> None:
    """The agent imports the sql kinds and validates targets without loading any database driver."""
    code = (
        "import sys, checks.sql.kinds, checks.targets\n"
        "from checks.yamlsource import parse_yaml\n"
        "src = parse_yaml('targets:\\n  a: {dialect: postgres, host: h}\\n  b: {dialect: oracle, dsn: h/S}\\n')\n"
        "checks.targets.parse_targets(src.data['targets'], src)\n"
        "print(sorted(m for m in ('psycopg', 'pymysql', 'pyodbc', 'oracledb') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(Path(__file__).resolve().parents[3]))
    assert out.stdout.strip() == "[]"
