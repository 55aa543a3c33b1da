"""The built-in SQL Server pack run offline: rows shaped like pyodbc's go through the real engine.

Recorded, not live (see recorded.py): column names as the query writes them, int/Decimal/bool/str cells.
tests/integration/sql_live runs the same checks against a real SQL Server when XUNJIAN_TEST_MSSQL_DSN is set.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from checks.result import Outcome, Status
from tests.unit.sql_packs.recorded import (
    Answer,
    Column,
    dec,
    keyed,
    output_columns,
    pack_specs,
    plain,
    recorded_context,
    run_recorded,
)

S, INT, DEC = str, int, decimal.Decimal
SQL2019 = "15.0.4375.4"
SQL2016_SP2 = "13.0.5026.0"
SQL2016_SP1 = "13.0.4001.0"
SQL2014 = "12.0.6024.0"
SQL2008R2 = "10.50.6000.34"


@dataclass
class Case:
    check_id: str
    columns: list[Column]
    rows: list[tuple[Any, ...]]
    expect: dict[str, Status] = field(default_factory=dict)
    version: str = SQL2019
    name: str = ""

    def __str__(self) -> str:
        return f"{self.check_id}{'-' + self.name if self.name else ''}@{self.version}"


TOP_CPU_COLUMNS: list[Column] = [
    ("query_hash", S), ("database_name", S), ("sql_text", S), ("executions", INT), ("cpu_seconds", DEC),
    ("elapsed_seconds", DEC), ("cpu_ms_per_exec", DEC), ("logical_reads_per_exec", INT), ("physical_reads", INT)]
TOP_ELAPSED_COLUMNS: list[Column] = [
    ("query_hash", S), ("database_name", S), ("sql_text", S), ("executions", INT), ("elapsed_seconds", DEC),
    ("cpu_seconds", DEC), ("elapsed_ms_per_exec", DEC), ("logical_reads_per_exec", INT)]
FEE_QUERY = "SELECT * FROM dbo.FeeDetail WHERE PatientID = N'0012345678' AND FeeDate >= '2026-11-01'"

BLOCKING_COLUMNS: list[Column] = [
    ("session_id", INT), ("blocked_by", INT), ("wait_seconds", DEC), ("session_start", S), ("application", S),
    ("program", S), ("username", S), ("client", S), ("state", S), ("command", S), ("query", S)]
BLOCKING_ROWS = [
    (87, None, None, "2026-11-22T01:02:03.457", "HIS.exe", ".Net SqlClient Data Provider", "his_app", "WS-CASHIER-07",
     "sleeping", None, FEE_QUERY),
    (90, 87, dec("212.500000"), "2026-11-22T08:00:00.000", "HIS.exe", ".Net SqlClient Data Provider", "his_app",
     "WS-NURSE-02", "suspended", "UPDATE", FEE_QUERY),
    (91, 90, dec("20.000000"), "2026-11-22T08:01:00.000", "LIS.exe", "ODBC", "lis_app", "lis-app", "suspended",
     "SELECT", None),
]
SESSION_COLUMNS: list[Column] = [
    ("value", INT), ("session_id", INT), ("session_start", S), ("application", S), ("program", S), ("username", S),
    ("client", S)]
IO_COLUMNS: list[Column] = [("key", S), ("stall_seconds_total", DEC), ("operations", INT)]
IO_ROWS = [
    [("HISDB:HISDB_Data:read", dec("60000.0"), 5_000_000), ("HISDB:HISDB_Log:write", dec("1200.0"), 800_000),
     ("tempdb:tempdev:read", dec("0.1"), 10)],
    [("HISDB:HISDB_Data:read", dec("60012.0"), 5_001_000), ("HISDB:HISDB_Log:write", dec("1500.0"), 802_000),
     ("tempdb:tempdev:read", dec("9.1"), 20)],
]
PLAN_COLUMNS: list[Column] = [("statement", S), ("plan", S), ("executions", INT), ("total_ms", DEC), ("object", S)]
PLAN_ROWS = [("0x9A3F5C2E1B7D4A60", "0x1111222233334444", 15_200, dec("152000.0"), "HISDB")]

CASES = [
    Case("mssql.databases.state", [("key", S), ("value", INT), ("is_read_only", INT), ("user_access", INT)],
         [("HISDB", 0, 0, 0), ("LISDB", 4, 0, 0), ("HISDB_LOGSHIP", 1, 1, 0)],
         {"HISDB": Status.OK, "LISDB": Status.CRITICAL, "HISDB_LOGSHIP": Status.OK}),
    Case("mssql.backup.full_age", [("key", S), ("value", INT), ("has_full_backup", INT), ("recovery_model", INT)],
         [("HISDB", 90_000, 1, 1), ("EMRDB", 700_000, 1, 1), ("PACSDB", 1_000_000, 0, 3)],
         {"HISDB": Status.OK, "EMRDB": Status.WARNING, "PACSDB": Status.CRITICAL}),
    Case("mssql.backup.log_age", [("key", S), ("value", INT), ("has_log_backup", INT), ("recovery_model", INT)],
         [("HISDB", 1_800, 1, 1), ("EMRDB", 20_000, 1, 1), ("LISDB", 40_000, 0, 1)],
         {"HISDB": Status.OK, "EMRDB": Status.WARNING, "LISDB": Status.CRITICAL}),
    Case("mssql.backup.diff_age", [("key", S), ("value", INT)],
         [("HISDB", 90_000), ("EMRDB", 300_000), ("LISDB", 600_000)],
         {"HISDB": Status.OK, "EMRDB": Status.WARNING, "LISDB": Status.CRITICAL}),
    Case("mssql.agent.service", [("key", S), ("value", INT), ("service_status", INT)],
         [("SQL Server Agent (MSSQLSERVER)", 0, 4)], {"SQL Server Agent (MSSQLSERVER)": Status.OK}),
    Case("mssql.agent.service", [("key", S), ("value", INT), ("service_status", INT)],
         [("SQL Server Agent (MSSQLSERVER)", 2, 1)], {"SQL Server Agent (MSSQLSERVER)": Status.CRITICAL},
         name="stopped"),
    Case("mssql.agent.job_outcome",
         [("key", S), ("value", INT), ("run_status", INT), ("duration_seconds", INT), ("seconds_since_start", INT)],
         [("HIS_夜间转年库", 2, 0, 3_725, 20_000), ("DBA_备份_LOG", 0, 1, 40, 600), ("ETL_REPORT", 1, 3, 10, 50_000)],
         {"HIS_夜间转年库": Status.CRITICAL, "DBA_备份_LOG": Status.OK, "ETL_REPORT": Status.WARNING}),
    Case("mssql.agent.job_running_long", [("key", S), ("value", INT), ("last_executed_step_id", INT)],
         [("HIS_夜间转年库", 5_400, 3)], {"HIS_夜间转年库": Status.WARNING}),
    Case("mssql.agent.job_running_long", [("key", S), ("value", INT), ("last_executed_step_id", INT)],
         [], {"": Status.OK}, name="idle"),
    Case("mssql.agent.job_overdue", [("key", S), ("value", INT)],
         [("DBA_备份_FULL", -7_200), ("HIS_夜间转年库", 9_000), ("LIS_SYNC", 2_400)],
         {"DBA_备份_FULL": Status.OK, "HIS_夜间转年库": Status.CRITICAL, "LIS_SYNC": Status.WARNING}),
    Case("mssql.agent.job_not_scheduled", [("job_name", S), ("problem", S)],
         [("OLD_REPORT", "job disabled")], {"": Status.WARNING}),
    Case("mssql.log.used_pct", [("key", S), ("value", INT), ("log_reuse_wait", INT)],
         [("HISDB", 35, 0), ("EMRDB", 86, 2), ("LISDB", 95, 4)],
         {"HISDB": Status.OK, "EMRDB": Status.WARNING, "LISDB": Status.CRITICAL}),
    Case("mssql.log.vlf_count", [("key", S), ("value", INT), ("active_vlfs", INT)],
         [("HISDB", 1_500, 3), ("LISDB", 120, 1)], {"HISDB": Status.WARNING, "LISDB": Status.OK}),
    Case("mssql.locks.blocking", BLOCKING_COLUMNS, BLOCKING_ROWS, {"": Status.CRITICAL}),
    Case("mssql.locks.blocking", BLOCKING_COLUMNS, [], {"": Status.OK}, name="none"),
    Case("mssql.sessions.sleeping_open_tran", SESSION_COLUMNS, [], {"": Status.OK}),
    Case("mssql.sessions.sleeping_open_tran", SESSION_COLUMNS,
         [(1_300, 87, "2026-11-22T01:02:03.457", "HIS.exe", ".Net SqlClient Data Provider", "his_app", "WS-CASHIER-07")],
         {"": Status.WARNING}, name="cashier"),
    Case("mssql.requests.long_running", [*SESSION_COLUMNS, ("command", S), ("query", S)],
         [(7_200, 61, "2026-11-22T01:00:00.000", "SQLAgent - TSQL JobStep (Job 0x1A : Step 1)", "ODBC", "NT SERVICE\\SQLSERVERAGENT",
           "SQLNODE1", "BACKUP DATABASE", "EXECUTE dbo.DatabaseBackup @Databases = 'USER_DATABASES'"),
          (400, 75, "2026-11-22T08:00:00.000", "HIS.exe", ".Net SqlClient Data Provider", "his_app", "WS-REP-01",
           "SELECT", FEE_QUERY)],
         {"": Status.WARNING}),
    Case("mssql.transactions.long", [*SESSION_COLUMNS, ("command", S)], [], {"": Status.OK}),
    Case("mssql.deadlocks.per_day", [("key", S), ("value", INT)], [("deadlocks", 372)], {"deadlocks": Status.OK},
         name="first-reading"),
    Case("mssql.queries.top_cpu", TOP_CPU_COLUMNS,
         [("0x9A3F5C2E1B7D4A60", "HISDB", FEE_QUERY, 15_200, dec("9120.500000"), dec("9800.100000"),
           dec("600.032894"), 182_000, 1_200)], {"": Status.OK}),
    Case("mssql.queries.top_elapsed", TOP_ELAPSED_COLUMNS,
         [("0x1C2D3E4F5A6B7C8D", "(ad hoc)", "SELECT COUNT(*) FROM dbo.RegVisit WHERE VisitDate > @P1", 88_000,
           dec("300.2"), dec("120.0"), dec("3.411363"), 410)], {"": Status.OK}),
    Case("mssql.indexes.missing",
         [("fingerprint", S), ("object", S), ("equality_columns", S), ("inequality_columns", S),
          ("included_columns", S), ("uses", INT), ("avg_query_cost", float), ("avg_impact_pct", float),
          ("benefit_per_day", DEC), ("uptime_days", DEC)],
         [("[HISDB].[dbo].[FeeDetail] ([PatientID]) ([FeeDate]) INCLUDE ([Amount])", "[HISDB].[dbo].[FeeDetail]",
           "[PatientID]", "[FeeDate]", "[Amount]", 48_000, 35.2, 97.5, dec("4118400"), dec("40.0"))],
         {"": Status.OK}),
    Case("mssql.db.fragmentation",
         [("fingerprint", S), ("object", S), ("index_name", S), ("partition_number", INT), ("fragmentation_pct", DEC),
          ("page_count", INT), ("suggested_action", S)],
         [("dbo.FeeDetail.IX_FeeDetail_FeeDate:1", "HISDB.dbo.FeeDetail", "IX_FeeDetail_FeeDate", 1, dec("42.7"),
           180_000, "REBUILD")], {"": Status.OK}),
    Case("mssql.db.stale_stats",
         [("fingerprint", S), ("object", S), ("stats_name", S), ("table_rows", INT), ("modified_rows", INT),
          ("modified_pct", DEC), ("days_since_update", INT)],
         [("dbo.LabResult._WA_Sys_00000003_1A14E395", "HISDB.dbo.LabResult", "_WA_Sys_00000003_1A14E395",
           12_000_000, 2_400_000, dec("20.0"), 45)], {"": Status.OK}),
    Case("mssql.db.unused_indexes",
         [("fingerprint", S), ("object", S), ("index_name", S), ("writes", INT), ("uptime_days", DEC)],
         [("dbo.FeeDetail.IX_Old_Report", "HISDB.dbo.FeeDetail", "IX_Old_Report", 3_400_000, dec("40.0"))],
         {"": Status.OK}),
    Case("mssql.db.too_many_indexes", [("fingerprint", S), ("object", S), ("nonclustered_indexes", INT)],
         [("dbo.OrderDetail", "HISDB.dbo.OrderDetail", 14)], {"": Status.OK}),
    Case("mssql.waits.poison", [("key", S), ("value", DEC), ("waiting_tasks_count", INT)],
         [("THREADPOOL", dec("12000.0"), 90), ("RESOURCE_SEMAPHORE", dec("0.0"), 0)],
         {"THREADPOOL": Status.OK, "RESOURCE_SEMAPHORE": Status.OK}, name="first-reading"),
    Case("mssql.ag.sync_health",
         [("key", S), ("value", INT), ("synchronization_state", INT), ("is_suspended", INT), ("log_send_queue_kb", INT),
          ("redo_queue_kb", INT)],
         [("AG_HIS/SQLNODE1/HISDB", 2, 2, 0, 0, 0), ("AG_HIS/SQLNODE2/HISDB", 0, 0, 1, 102_400, 0),
          ("AG_HIS/SQLNODE3/HISDB", 1, 1, 0, 20, 5_000)],
         {"AG_HIS/SQLNODE1/HISDB": Status.OK, "AG_HIS/SQLNODE2/HISDB": Status.CRITICAL,
          "AG_HIS/SQLNODE3/HISDB": Status.WARNING}),
    Case("mssql.ag.sync_health",
         [("key", S), ("value", INT), ("synchronization_state", INT), ("is_suspended", INT), ("log_send_queue_kb", INT),
          ("redo_queue_kb", INT)], [], {"": Status.OK}, name="no-alwayson"),
    Case("mssql.ag.secondary_lag", [("key", S), ("value", INT)], [("AG_HIS/SQLNODE2/HISDB", 75)],
         {"AG_HIS/SQLNODE2/HISDB": Status.WARNING}),
    Case("mssql.ag.secondary_lag", [("key", S), ("value", INT)], [("AG_HIS/SQLNODE2/HISDB", 12)],
         {"AG_HIS/SQLNODE2/HISDB": Status.OK}, version=SQL2014),
    Case("mssql.tempdb.layout",
         [("fingerprint", S), ("object", S), ("data_files", INT), ("min_size_mb", INT), ("max_size_mb", INT)],
         [("single data file", "tempdb", 1, 8, 8)], {"": Status.WARNING}),
    Case("mssql.tempdb.layout",
         [("fingerprint", S), ("object", S), ("data_files", INT), ("min_size_mb", INT), ("max_size_mb", INT)],
         [], {"": Status.OK}, name="good"),
    Case("mssql.io.latency", IO_COLUMNS, IO_ROWS[0], {k: Status.OK for k, _, _ in IO_ROWS[0]}, name="first-reading"),
    Case("mssql.memory.page_life_expectancy", [("key", S), ("value", INT)], [("page_life_expectancy", 120)],
         {"page_life_expectancy": Status.WARNING}),
    Case("mssql.cpu.utilization", [("key", S), ("value", INT), ("host_cpu_pct", INT)], [("cpu", 35, 40)],
         {"cpu": Status.OK}),
    Case("mssql.cpu.utilization", [("key", S), ("value", INT), ("host_cpu_pct", INT)], [("cpu", 93, 98)],
         {"cpu": Status.CRITICAL}, name="busy"),
    Case("mssql.backup.traps", [("fingerprint", S), ("object", S), ("trap", S), ("backups", INT), ("severity", INT)],
         [("nul:HISDB", "HISDB", "log backup written to NUL", 12, 1),
          ("certificate:TDECert", "TDECert", "TDE certificate whose private key was never backed up", 1, 2)],
         {"": Status.CRITICAL}),
    Case("mssql.backup.traps", [("fingerprint", S), ("object", S), ("trap", S), ("backups", INT), ("severity", INT)],
         [("drive:D:\\", "D:\\", "backups on a drive that also holds database files", 30, 1)], {"": Status.WARNING},
         name="same-drive"),
    Case("mssql.databases.mirroring",
         [("key", S), ("value", INT), ("mirroring_state", INT), ("mirroring_role", INT), ("witness_connected", INT)],
         [("HISDB", 2, 1, 1, 0), ("EMRDB", 0, 4, 1, 1)], {"HISDB": Status.CRITICAL, "EMRDB": Status.OK}),
    Case("mssql.ag.replica_connected", [("key", S), ("value", INT), ("role", INT), ("synchronization_health", INT)],
         [("AG_HIS/SQLNODE1", 0, 1, 2), ("AG_HIS/SQLNODE2", 2, 2, 0)],
         {"AG_HIS/SQLNODE1": Status.OK, "AG_HIS/SQLNODE2": Status.CRITICAL}),
    Case("mssql.corruption.pages",
         [("fingerprint", S), ("object", S), ("source", S), ("file_id", INT), ("page_id", INT), ("errors", INT),
          ("event_type", INT)],
         [("suspect:HISDB:1:88231", "HISDB", "suspect page", 1, 88231, 2, 2)], {"": Status.CRITICAL}),
    Case("mssql.corruption.checkdb_age", [("key", S), ("value", INT)], [("HISDB", 2_000_000), ("LISDB", 86_400)],
         {"HISDB": Status.WARNING, "LISDB": Status.OK}),
    Case("mssql.files.headroom",
         [("key", S), ("value", DEC), ("size_bytes", DEC), ("room_bytes", DEC), ("volume_free_bytes", INT)],
         [("HISDB:HISDB_Data", dec("97.10"), dec("970000000000"), dec("29000000000"), 29_000_000_000),
          ("LISDB:LISDB_Data", dec("20.00"), dec("20000000000"), dec("80000000000"), 500_000_000_000)],
         {"HISDB:HISDB_Data": Status.CRITICAL, "LISDB:LISDB_Data": Status.OK}),
    Case("mssql.databases.options", [("fingerprint", S), ("object", S), ("problem", S)],
         [("HISDB:page_verify", "HISDB", "PAGE_VERIFY TORN_PAGE_DETECTION instead of CHECKSUM")], {"": Status.WARNING}),
    Case("mssql.security.sysadmins", [("object", S), ("login_type", S), ("login_state", S)],
         [("his_app", "SQL_LOGIN", "enabled"), ("HOSPITAL\\dba_li", "WINDOWS_LOGIN", "enabled")], {"": Status.OK}),
    Case("mssql.queries.plan_regressions", PLAN_COLUMNS, PLAN_ROWS, {"": Status.OK}, name="baseline"),
    Case("mssql.settings", [("name", S), ("value", S)], [("max server memory (MB)", "57344"), ("xp_cmdshell", "0")],
         {"": Status.OK}, name="snapshot"),
    Case("mssql.databases.size", [("key", S), ("value", INT)], [("HISDB", 1_000_000_000_000)], {"HISDB": Status.OK},
         name="first-reading"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_recorded_rows_give_expected_results(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("mssql")[case.check_id]
    results, conn = run_recorded(monkeypatch, spec, "mssql", case.version, Answer(case.columns, case.rows))
    assert len(conn.queries) == 1
    assert output_columns(conn.queries[0], "mssql") == [name for name, _ in case.columns]
    assert all(r.outcome == Outcome.OK for r in results), [r.summary for r in results]
    assert {r.key: r.status for r in results} == case.expect
    assert all(r.target == "his_sql" for r in results)


def test_every_mssql_check_has_a_recorded_case() -> None:
    assert set(pack_specs("mssql")) == {c.check_id for c in CASES} | {"mssql.reachable"}


def test_reachable_is_the_parent_and_critical_when_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyodbc

    spec = pack_specs("mssql")["mssql.reachable"]
    results, _ = run_recorded(monkeypatch, spec, "mssql", SQL2019, Answer([("", INT)], [(1,)]))
    assert results[0].status == Status.OK

    def too_many(target: object, password: object, timeout: object) -> object:
        raise pyodbc.OperationalError("08001", "[08001] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Could "
                                      "not connect because the maximum number of '300' user connections has already "
                                      "been reached. (17809)")

    monkeypatch.setattr("checks.sql.dialects._open_pyodbc", too_many)
    (down,) = spec.probe(recorded_context("mssql", spec.target or ""))
    assert (down.status, down.outcome) == (Status.CRITICAL, Outcome.TOO_MANY_CLIENTS)
    assert all(s.parent == "mssql.reachable" for s in pack_specs("mssql").values() if s.id != "mssql.reachable")


def test_session_is_polite_before_every_check(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("mssql")["mssql.databases.state"]
    _, conn = run_recorded(monkeypatch, spec, "mssql", SQL2019, Answer([("key", S), ("value", INT)], []))
    check = conn.executed.index(conn.queries[0])
    assert conn.executed[check - 1] == ("SET LOCK_TIMEOUT 2000; SET DEADLOCK_PRIORITY LOW; "
                                        "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; BEGIN TRANSACTION")


@pytest.mark.parametrize("version", [SQL2014, SQL2016_SP1])
def test_vlf_count_before_2016_sp2_is_a_clear_not_found_and_sends_nothing(version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("mssql")["mssql.log.vlf_count"]
    results, conn = run_recorded(monkeypatch, spec, "mssql", version, Answer([("key", S), ("value", INT)], []))
    (result,) = results
    assert result.status == Status.UNKNOWN
    assert result.outcome == Outcome.NOT_FOUND
    assert "no query variant" in result.summary and ">= 13.0.5026" in result.summary
    assert conn.queries == []  # no DBCC LOGINFO fallback: only SELECT reaches the server


@pytest.mark.parametrize("version", [SQL2016_SP2, SQL2019])
def test_vlf_count_from_2016_sp2_reads_dm_db_log_info(version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("mssql")["mssql.log.vlf_count"]
    _, conn = run_recorded(monkeypatch, spec, "mssql", version, Answer([("key", S), ("value", INT)], []))
    assert "sys.dm_db_log_info(d.database_id)" in plain(conn.queries[0])


@pytest.mark.parametrize(
    ("version", "marker"),
    [(SQL2019, "secondary_lag_seconds"), (SQL2016_SP1, "secondary_lag_seconds"), (SQL2014, "last_commit_time"),
     ("11.0.7001.0", "last_commit_time")],
)
def test_ag_lag_source_follows_the_version(version: str, marker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("mssql")["mssql.ag.secondary_lag"]
    _, conn = run_recorded(monkeypatch, spec, "mssql", version, Answer([("key", S), ("value", INT)], []))
    assert marker in plain(conn.queries[0])


def test_ag_lag_on_2008r2_has_no_alwayson(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("mssql")["mssql.ag.secondary_lag"]
    results, _ = run_recorded(monkeypatch, spec, "mssql", SQL2008R2, Answer([("key", S), ("value", INT)], []))
    assert results[0].outcome == Outcome.NOT_FOUND


def test_top_query_findings_fingerprint_by_query_hash_without_literals(monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c.check_id == "mssql.queries.top_cpu")
    results, _ = run_recorded(monkeypatch, pack_specs("mssql")[case.check_id], "mssql", SQL2019,
                              Answer(case.columns, case.rows))
    (finding,) = results[0].findings
    assert finding.fingerprint == "mssql.queries.top_cpu:0x9A3F5C2E1B7D4A60"
    assert finding.object == "HISDB"
    assert "0012345678" not in finding.sql_text and "2026-11-01" not in finding.sql_text
    assert finding.evidence["executions"] == 15_200
    assert "query_hash" not in finding.evidence


def test_missing_index_finding_keeps_columns_as_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c.check_id == "mssql.indexes.missing")
    results, _ = run_recorded(monkeypatch, pack_specs("mssql")[case.check_id], "mssql", SQL2019,
                              Answer(case.columns, case.rows))
    (finding,) = results[0].findings
    assert finding.attributes == {"equality_columns": "[PatientID]", "inequality_columns": "[FeeDate]",
                                  "included_columns": "[Amount]"}
    assert set(finding.evidence) == {"uses", "avg_query_cost", "avg_impact_pct", "benefit_per_day", "uptime_days"}
    assert "[HISDB].[dbo].[FeeDetail] keyed ([PatientID]) ([FeeDate])" in finding.recommendation


def test_io_latency_is_the_stall_per_operation_over_the_last_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("mssql")["mssql.io.latency"]
    now = [5_000.0]
    ctx = recorded_context("mssql", spec.target or "", clock=lambda: now[0])
    run_recorded(monkeypatch, spec, "mssql", SQL2019, Answer(IO_COLUMNS, IO_ROWS[0]), ctx)
    now[0] += 900
    results, _ = run_recorded(monkeypatch, spec, "mssql", SQL2019, Answer(IO_COLUMNS, IO_ROWS[1]), ctx)
    by_key = keyed(results)
    assert by_key["HISDB:HISDB_Data:read"].value == pytest.approx(0.012) and by_key["HISDB:HISDB_Data:read"].status == Status.OK
    log = by_key["HISDB:HISDB_Log:write"]
    assert log.value == pytest.approx(0.15) and log.status == Status.WARNING  # 300 s of stall over 2000 writes
    assert by_key["tempdb:tempdev:read"].value is None, "10 operations are too few to judge"


def test_deadlocks_count_the_last_day_not_the_average_since_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    """After 300 days of uptime with 372 deadlocks, a storm of 30 in an hour must warn (FRK 124: > 10 a day)."""
    spec = pack_specs("mssql")["mssql.deadlocks.per_day"]
    now = [0.0]
    ctx = recorded_context("mssql", spec.target or "", clock=lambda: now[0])
    for counter in (372, 380, 402):
        results, _ = run_recorded(monkeypatch, spec, "mssql", SQL2019, Answer([("key", S), ("value", INT)],
                                                                         [("deadlocks", counter)]), ctx)
        now[0] += 900
    (result,) = results
    assert result.value == 30 and result.status == Status.WARNING
    assert "window 1d filling" in result.summary
    now[0] += 2 * 86400
    results, _ = run_recorded(monkeypatch, spec, "mssql", SQL2019, Answer([("key", S), ("value", INT)], [("deadlocks", 402)]), ctx)
    assert results[0].value == 0 and results[0].status == Status.OK


def test_backups_to_nul_do_not_count_as_log_backups(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("mssql")["mssql.backup.log_age"]
    _, conn = run_recorded(monkeypatch, spec, "mssql", SQL2019, Answer([("key", S), ("value", INT)], []))
    sql = plain(conn.queries[0])
    assert "backupmediafamily" in sql and "n'nul'" in sql and "not exists" in sql


def test_backup_and_restore_requests_are_maintenance(monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c.check_id == "mssql.requests.long_running")
    results, _ = run_recorded(monkeypatch, pack_specs("mssql")[case.check_id], "mssql", SQL2019,
                              Answer(case.columns, case.rows))
    (result,) = results
    assert result.value == 400 and "session 75, application HIS.exe" in result.summary
    assert "1 maintenance session left out: command pattern" in result.summary


def test_blocking_root_is_the_sleeping_cashier(monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c.check_id == "mssql.locks.blocking" and c.rows)
    results, _ = run_recorded(monkeypatch, pack_specs("mssql")[case.check_id], "mssql", SQL2019,
                              Answer(case.columns, case.rows))
    (finding,) = results[0].findings
    assert finding.fingerprint == "mssql.locks.blocking:87@2026-11-22T01:02:03.457"
    assert finding.attributes["state"] == "sleeping" and finding.attributes["client"] == "WS-CASHIER-07"
    assert finding.evidence["most_blocked_at_once"] == 2
    assert "0012345678" not in str(results[0].to_json())


@pytest.mark.parametrize("version", [SQL2014, SQL2016_SP1])
def test_checkdb_age_needs_2016_sp2(version: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("mssql")["mssql.corruption.checkdb_age"]
    results, conn = run_recorded(monkeypatch, spec, "mssql", version, Answer([("key", S), ("value", INT)], []))
    assert (results[0].status, results[0].outcome) == (Status.UNKNOWN, Outcome.NOT_FOUND)
    assert conn.queries == []


def test_job_and_backup_ages_use_the_server_clock() -> None:
    for spec in pack_specs("mssql").values():
        sql = " ".join(v.sql for v in spec.query.mssql or ())  # type: ignore[attr-defined]
        assert "GETDATE" not in sql.upper() and "SYSDATETIME" not in sql.upper()
        if "msdb." in sql and "DATEDIFF" in sql:
            assert "CURRENT_TIMESTAMP" in sql, spec.id


def _evaluate(node: Any, columns: dict[str, int]) -> int:
    """Integer arithmetic the way T-SQL does it on int columns (/ truncates), for the packed-date decoders."""
    if isinstance(node, exp.Paren):
        return _evaluate(node.this, columns)
    if isinstance(node, exp.Column):
        return columns[node.name]
    if isinstance(node, exp.Literal):
        return int(node.this)
    ops = {exp.Add: int.__add__, exp.Sub: int.__sub__, exp.Mul: int.__mul__, exp.Mod: int.__mod__,
           exp.Div: int.__floordiv__}
    for cls, op in ops.items():
        if isinstance(node, cls):
            return op(_evaluate(node.this, columns), _evaluate(node.expression, columns))
    raise AssertionError(f"unexpected expression {node.sql()}")


def _job_outcome_tree() -> Any:
    spec = pack_specs("mssql")["mssql.agent.job_outcome"]
    return sqlglot.parse_one(spec.query.mssql[0].sql, read="tsql")  # type: ignore[attr-defined]


def test_packed_run_duration_decodes_to_seconds() -> None:
    select = _job_outcome_tree()
    duration = next(e for e in select.expressions if e.alias == "duration_seconds").this
    assert _evaluate(duration, {"run_duration": 13_005}) == 1 * 3600 + 30 * 60 + 5
    assert _evaluate(duration, {"run_duration": 1_234_502}) == 123 * 3600 + 45 * 60 + 2  # more than 99 hours
    assert _evaluate(duration, {"run_duration": 59}) == 59


def test_packed_run_date_and_time_decode_to_the_start_moment() -> None:
    select = _job_outcome_tree()
    parts = next(select.find_all(exp.TimestampFromParts))
    packed = {"run_date": 20261121, "run_time": 13_005}
    fields = [_evaluate(parts.args[name], packed) for name in ("year", "month", "day", "hour", "min", "sec")]
    year, month, day, hour, minute, second = fields
    assert dt.datetime(year, month, day, hour, minute, second) == dt.datetime(2026, 11, 21, 1, 30, 5)
