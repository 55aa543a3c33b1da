"""The built-in Oracle pack run offline: rows shaped like python-oracledb's go through the real engine.

Recorded, not live (see recorded.py): upper-case column names, NUMBER as int/float/Decimal, DATE as
datetime. tests/integration/sql_live runs the same checks against a real Oracle when
XUNJIAN_TEST_ORACLE_DSN is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import oracledb
import pytest

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

V = oracledb.DB_TYPE_VARCHAR
N = oracledb.DB_TYPE_NUMBER
D = oracledb.DB_TYPE_DATE
ORACLE_19C = "19.0.0.0.0"
ORACLE_11G = "11.2.0.4.0"


@dataclass
class Case:
    """One check, the rows the server returns, and the statuses we expect (by key, or the single result)."""

    check_id: str
    columns: list[Column]
    rows: list[tuple[Any, ...]]
    expect: dict[str, Status] = field(default_factory=dict)
    version: str = ORACLE_19C
    name: str = ""

    def __str__(self) -> str:
        return f"{self.check_id}{'-' + self.name if self.name else ''}@{self.version}"


STALE_COLUMNS: list[Column] = [("fingerprint", V), ("object", V), ("partition_name", V), ("object_type", V),
                               ("num_rows", N), ("days_since_analyzed", N), ("stale_objects", N)]
STALE_ROWS = [(f"HIS.ORDER_DETAIL_{i}", f"HIS.ORDER_DETAIL_{i}", "-", "TABLE", 2_000_000 - i, dec("12.5"), 12)
              for i in range(12)]

DG_COLUMNS: list[Column] = [("key", V), ("value", N), ("seconds_since_datum", N)]
BLOCKING_COLUMNS: list[Column] = [
    ("session_id", N), ("blocked_by", N), ("wait_seconds", N), ("session_start", V), ("application", V),
    ("program", V), ("username", V), ("client", V), ("state", V), ("query", V)]
BLOCKING_ROWS = [
    (123, None, None, "4567@20261201081500", "HIS_CHARGE", "his.exe", "HIS", "WS-NURSE-03", "INACTIVE",
     "UPDATE his.fee_detail SET paid = 1 WHERE patient_id = '0012345678'"),
    (200, 123, dec("150.2"), "811@20261201090000", "HIS_CHARGE", "his.exe", "HIS", "WS-CASH-01", "ACTIVE",
     "UPDATE his.fee_detail SET paid = 1 WHERE patient_id = '0012345678'"),
    (201, 123, dec("90"), "990@20261201090100", "HIS_REG", "his.exe", "HIS", "WS-REG-02", "ACTIVE", None),
    (300, 200, dec("30"), "12@20261201090200", "LIS_SYNC", "lis.exe", "LIS", "lis-app", "ACTIVE", None),
]
SESSION_COLUMNS: list[Column] = [
    ("value", N), ("session_id", N), ("session_start", V), ("application", V), ("program", V), ("username", V),
    ("client", V), ("query", V)]
SESSION_ROWS = [
    (1200, 812, "33021@20261201010000", "HIS_REPORT", "JDBC Thin Client", "HIS", "ws-rep-01",
     "SELECT * FROM his.fee_detail WHERE patient_id = '0012345678'"),
    (5000, 900, "7@20261201000000", "backup full datafile", "rman@hisdb (TNS V1-V3)", "SYS", "hisdb", None),
    (9000, 901, "8@20261201000000", "Data Pump Worker", "oracle@hisdb (DW00)", "SYSTEM", "hisdb", None),
]
PLAN_COLUMNS: list[Column] = [("statement", V), ("plan", N), ("executions", N), ("total_ms", N), ("query", V)]
PLAN_ROWS = [("5qgz1p0cut7mx", 3387460123, 1000, dec("5000"), "SELECT * FROM his.fee_detail WHERE id = 42"),
             ("0w2qpuc6u2zsp", 1388734953, 88_000, dec("300200"), "SELECT COUNT(*) FROM his.reg_visit")]
SETTINGS_ROWS = [("processes", "1500"), ("sessions", "2272"), ("optimizer_mode", "ALL_ROWS"), ("audit_trail", None)]

CASES = [
    Case("oracle.instance.status",
         [("key", V), ("value", N), ("is_primary", N), ("archivelog_mode", N), ("uptime_seconds", N)],
         [("hisdb1", 0, 1, 1, 864000)], {"hisdb1": Status.OK}, name="open"),
    Case("oracle.instance.status",
         [("key", V), ("value", N), ("is_primary", N), ("archivelog_mode", N), ("uptime_seconds", N)],
         [("hisdb1", 1, 1, 1, 120)], {"hisdb1": Status.WARNING}, name="restricted"),
    Case("oracle.tablespace.used_pct",
         [("key", V), ("value", N), ("used_bytes", N), ("max_bytes", N)],
         [("USERS", dec("45.12"), 4_800_000_000, 10_640_000_000),
          ("HIS_DATA", dec("96.30"), 1_034_000_000_000, 1_073_741_824_000),
          ("HIS_INDEX", dec("91"), 97_700_000_000, 107_374_182_400)],
         {"USERS": Status.OK, "HIS_DATA": Status.CRITICAL, "HIS_INDEX": Status.WARNING}),
    Case("oracle.tablespace.temp_used_pct",
         [("key", V), ("value", N), ("used_bytes", N), ("size_bytes", N)],
         [("TEMP", 12.5, 4_000_000_000, 32_000_000_000)], {"TEMP": Status.OK}),
    Case("oracle.fra.used_pct",
         [("key", V), ("value", N), ("limit_bytes", N), ("used_bytes", N), ("reclaimable_bytes", N), ("files", N)],
         [("+FRA", dec("92.40"), 500_000_000_000, 480_000_000_000, 18_000_000_000, 812)], {"+FRA": Status.WARNING}),
    Case("oracle.fra.used_pct",
         [("key", V), ("value", N), ("limit_bytes", N), ("used_bytes", N), ("reclaimable_bytes", N), ("files", N)],
         [], {"": Status.OK}, name="no-fra"),
    Case("oracle.archive.dest", [("key", V), ("value", N), ("status", V), ("error", V)],
         [("LOG_ARCHIVE_DEST_1", 0, "VALID", None), ("LOG_ARCHIVE_DEST_2", 2, "ERROR", "ORA-12541: TNS:no listener"),
          ("LOG_ARCHIVE_DEST_3", 1, "DEFERRED", None)],
         {"LOG_ARCHIVE_DEST_1": Status.OK, "LOG_ARCHIVE_DEST_2": Status.CRITICAL, "LOG_ARCHIVE_DEST_3": Status.WARNING}),
    Case("oracle.archive.dest", [("key", V), ("value", N), ("status", V), ("error", V)],
         [], {"": Status.OK}, name="none-configured"),
    Case("oracle.rman.backup_age",
         [("key", V), ("value", N), ("backups_on_record", N)],
         [("database", 30_240, 7), ("archivelog", 100_800, 52)],
         {"database": Status.OK, "archivelog": Status.CRITICAL}),
    Case("oracle.rman.last_status",
         [("key", V), ("value", N), ("elapsed_seconds", N), ("output_bytes", N), ("started_seconds_ago", N)],
         [("DB INCR", 0, 5400, 80_000_000_000, 30_000), ("ARCHIVELOG", 2, 40, 0, 3_600),
          ("DB FULL", 1, 20_000, 900_000_000_000, 500_000)],
         {"DB INCR": Status.OK, "ARCHIVELOG": Status.CRITICAL, "DB FULL": Status.WARNING}),
    Case("oracle.dataguard.lag", DG_COLUMNS, [], {"": Status.OK}, name="primary"),
    Case("oracle.dataguard.lag", DG_COLUMNS, [("transport lag", dec("4"), 2), ("apply lag", dec("4500"), 2)],
         {"transport lag": Status.OK, "apply lag": Status.CRITICAL}, name="standby"),
    Case("oracle.dataguard.lag", DG_COLUMNS, [("transport lag", dec("45"), 40), ("apply lag", dec("12"), 10)],
         {"transport lag": Status.WARNING, "apply lag": Status.OK}, name="standby-slow"),
    Case("oracle.dataguard.lag", DG_COLUMNS, [("transport lag", None, None)],
         {"transport lag": Status.CRITICAL}, name="never-heard"),
    Case("oracle.dataguard.apply", [("key", V), ("value", N)], [("managed recovery", 2)],
         {"managed recovery": Status.CRITICAL}, name="stopped"),
    Case("oracle.dataguard.apply", [("key", V), ("value", N)], [("managed recovery", 2)],
         {"managed recovery": Status.CRITICAL}, version=ORACLE_11G, name="stopped"),
    Case("oracle.dataguard.apply", [("key", V), ("value", N)], [], {"": Status.OK}, name="primary"),
    Case("oracle.dataguard.dest_gap", [("key", V), ("value", N), ("dest_valid", N)],
         [("LOG_ARCHIVE_DEST_2", 0, 1), ("LOG_ARCHIVE_DEST_3", 25, 0)],
         {"LOG_ARCHIVE_DEST_2": Status.OK, "LOG_ARCHIVE_DEST_3": Status.CRITICAL}),
    Case("oracle.sessions.pct_of_limit",
         [("key", V), ("value", N), ("current_count", N), ("max_since_startup", N), ("limit_count", N)],
         [("processes", dec("85.33"), 1280, 1400, 1500), ("sessions", dec("50.10"), 1140, 1500, 2272)],
         {"processes": Status.WARNING, "sessions": Status.OK}),
    Case("oracle.locks.blocking", BLOCKING_COLUMNS, BLOCKING_ROWS, {"": Status.CRITICAL}),
    Case("oracle.locks.blocking", BLOCKING_COLUMNS, [], {"": Status.OK}, name="none"),
    Case("oracle.sessions.long_running", SESSION_COLUMNS, SESSION_ROWS, {"": Status.CRITICAL}),
    Case("oracle.transactions.long", SESSION_COLUMNS, SESSION_ROWS, {"": Status.CRITICAL}),
    Case("oracle.transactions.idle", SESSION_COLUMNS, [], {"": Status.OK}),
    Case("oracle.sql.top_elapsed",
         [("sql_id", V), ("plan_hash_value", N), ("sql_text", V), ("executions", N), ("elapsed_seconds", N),
          ("cpu_seconds", N), ("elapsed_ms_per_exec", N), ("buffer_gets", N), ("disk_reads", N),
          ("rows_processed", N)],
         [("5qgz1p0cut7mx", 3387460123, "SELECT * FROM his.fee_detail WHERE patient_id = '0012345678'",
           1520, dec("9120.5"), dec("8000.1"), dec("6000.329"), 9_100_000_000, 120_000, 3_000_000),
          ("0w2qpuc6u2zsp", 1388734953, "SELECT COUNT(*) FROM his.reg_visit WHERE visit_date > :1",
           88_000, dec("300.2"), dec("120"), dec("3.411"), 50_000_000, 10, 88_000)],
         {"": Status.OK}),
    Case("oracle.sql.top_cpu",
         [("sql_id", V), ("plan_hash_value", N), ("sql_text", V), ("executions", N), ("cpu_seconds", N),
          ("elapsed_seconds", N), ("cpu_ms_per_exec", N), ("buffer_gets", N), ("disk_reads", N),
          ("rows_processed", N)],
         [("5qgz1p0cut7mx", 3387460123, "SELECT * FROM his.fee_detail WHERE patient_id = 12345",
           1520, dec("8000.1"), dec("9120.5"), dec("5263.224"), 9_100_000_000, 120_000, 3_000_000)],
         {"": Status.OK}),
    Case("oracle.objects.invalid",
         [("fingerprint", V), ("object", V), ("object_type", V), ("days_since_ddl", N)],
         [("HIS.PACKAGE BODY.PKG_FEE", "HIS.PKG_FEE", "PACKAGE BODY", dec("0.4"))], {"": Status.CRITICAL}),
    Case("oracle.indexes.unusable",
         [("fingerprint", V), ("object", V), ("table_name", V), ("level_name", V), ("partitions", N)],
         [], {"": Status.OK}),
    Case("oracle.indexes.unusable",
         [("fingerprint", V), ("object", V), ("table_name", V), ("level_name", V), ("partitions", N)],
         [("HIS.IDX_FEE_DATE:partition", "HIS.IDX_FEE_DATE", "HIS.FEE_DETAIL", "PARTITION", 2)],
         {"": Status.CRITICAL}, name="partition"),
    Case("oracle.stats.stale", STALE_COLUMNS, STALE_ROWS, {"": Status.WARNING}),
    Case("oracle.stats.stale", STALE_COLUMNS, STALE_ROWS[:3], {"": Status.OK}, version=ORACLE_11G),
    Case("oracle.jobs.scheduler_failures", [("key", V), ("value", N), ("runs", N), ("max_error_code", N)],
         [("HIS.JOB_MOVE_TO_YEAR_DB", 1, 1, 12899), ("HIS.JOB_PURGE_LOG", 0, 3, None)],
         {"HIS.JOB_MOVE_TO_YEAR_DB": Status.CRITICAL, "HIS.JOB_PURGE_LOG": Status.OK}),
    Case("oracle.jobs.scheduler_failures", [("key", V), ("value", N), ("runs", N), ("max_error_code", N)],
         [("HIS.JOB_MOVE_TO_YEAR_DB", 0, 2, None)], {"HIS.JOB_MOVE_TO_YEAR_DB": Status.OK}, version=ORACLE_11G,
         name="recovered"),
    Case("oracle.jobs.queue_processes", [("key", V), ("value", N)], [("job_queue_processes", 0)],
         {"job_queue_processes": Status.CRITICAL}),
    Case("oracle.jobs.scheduler_broken",
         [("owner", V), ("job_name", V), ("state", V), ("enabled", V), ("failure_count", N)],
         [("HIS", "JOB_PURGE_LOG", "BROKEN", "FALSE", 16)], {"": Status.CRITICAL}),
    Case("oracle.jobs.overdue", [("key", V), ("value", N), ("failure_count", N), ("run_count", N)],
         [("HIS.JOB_MOVE_TO_YEAR_DB", dec("-3600"), 0, 400), ("HIS.JOB_PURGE_LOG", dec("9000"), 0, 30),
          ("LIS.JOB_SYNC", dec("2400"), 1, 9000)],
         {"HIS.JOB_MOVE_TO_YEAR_DB": Status.OK, "HIS.JOB_PURGE_LOG": Status.CRITICAL, "LIS.JOB_SYNC": Status.WARNING}),
    Case("oracle.jobs.dbms_job",
         [("job", N), ("schema_user", V), ("broken", V), ("failures", N), ("problem", V),
          ("hours_since_last_success", N)],
         [(41, "HIS", "Y", 16, "broken", dec("52.5"))], {"": Status.CRITICAL}),
    Case("oracle.redo.switch_interval", [("key", V), ("value", N), ("switches_last_hour", N)],
         [("thread 1", 240, 15), ("thread 2", 3600, 0)], {"thread 1": Status.WARNING, "thread 2": Status.OK}),
    Case("oracle.redo.free_groups", [("key", V), ("value", N), ("groups", N)],
         [("thread 1", 0, 3)], {"thread 1": Status.WARNING}),
    Case("oracle.memory.shared_pool_free_pct", [("key", V), ("value", N), ("pool_bytes", N)],
         [("shared pool", dec("3.2"), 8_589_934_592)], {"shared pool": Status.WARNING}),
    Case("oracle.memory.pga_pct_of_target",
         [("key", V), ("value", N), ("allocated_bytes", N), ("over_allocation_count", N)],
         [("pga", dec("95.1"), 10_200_000_000, 0)], {"pga": Status.WARNING}),
    Case("oracle.users.password_expiry", [("key", V), ("value", N)],
         [("HIS", 200_000), ("LIS", 500_000), ("EMR", 10_000_000)],
         {"HIS": Status.CRITICAL, "LIS": Status.WARNING, "EMR": Status.OK}),
    Case("oracle.users.password_expiry", [("key", V), ("value", N)], [("HIS", -3_600)],
         {"HIS": Status.CRITICAL}, version=ORACLE_11G),
    Case("oracle.blocks.corrupt",
         [("fingerprint", V), ("object", V), ("file_no", N), ("block_no", N), ("blocks", N), ("corruption_type", V)],
         [("file 7 block 81234", "file 7", 7, 81234, 1, "CHECKSUM")], {"": Status.CRITICAL}),
    Case("oracle.sessions.long_operations",
         [("fingerprint", V), ("object", V), ("opname", V), ("sql_id", V), ("username", V), ("pct_done", N),
          ("elapsed_seconds", N), ("seconds_remaining", N)],
         [("9b2vs7mrs2h7n:812,33021", "HIS.FEE_DETAIL", "Table Scan", "9b2vs7mrs2h7n", "HIS", dec("41.2"), 900, 1284)],
         {"": Status.OK}),
    Case("oracle.asm.diskgroup_used_pct",
         [("key", V), ("value", N), ("total_mb", N), ("free_mb", N), ("usable_file_mb", N), ("offline_disks", N)],
         [("DATA", dec("96.5"), 4_000_000, 140_000, 20_000, 0), ("FRA", dec("41"), 1_000_000, 590_000, 290_000, 0)],
         {"DATA": Status.CRITICAL, "FRA": Status.OK}),
    Case("oracle.alert_log.errors",
         [("fingerprint", V), ("object", V), ("occurrences", N), ("seconds_since_last", N), ("severity", N)],
         [("ORA-00600", "ORA-00600", 2, 300, 2), ("ORA-01555", "ORA-01555", 5, 60, 1)], {"": Status.CRITICAL}),
    Case("oracle.alert_log.errors",
         [("fingerprint", V), ("object", V), ("occurrences", N), ("seconds_since_last", N), ("severity", N)],
         [("ORA-01555", "ORA-01555", 5, 60, 1)], {"": Status.WARNING}, name="snapshot-too-old"),
    Case("oracle.database.force_logging", [("key", V), ("value", N)], [("force_logging", 1)],
         {"force_logging": Status.WARNING}),
    Case("oracle.security.privileged_accounts", [("fingerprint", V), ("object", V), ("power", V)],
         [("HIS:DBA", "HIS", "DBA role"), ("DBADMIN:SYSDBA", "DBADMIN", "SYSDBA")], {"": Status.OK}),
    Case("oracle.sql.plan_regressions", PLAN_COLUMNS, PLAN_ROWS, {"": Status.OK}, name="baseline"),
    Case("oracle.settings", [("name", V), ("value", V)], SETTINGS_ROWS, {"": Status.OK}, name="snapshot"),
    Case("oracle.database.size", [("key", V), ("value", N), ("files", N)], [("datafiles", 2_000_000_000_000, 64)],
         {"datafiles": Status.OK}, name="first-reading"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_recorded_rows_give_expected_results(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("oracle")[case.check_id]
    results, conn = run_recorded(monkeypatch, spec, "oracle", case.version, Answer(case.columns, case.rows))
    assert len(conn.queries) == 1
    # The recorded columns are exactly what the selected SQL returns, so the rows are honest.
    assert output_columns(conn.queries[0], "oracle") == [name for name, _ in case.columns]
    assert all(r.outcome == Outcome.OK for r in results), [r.summary for r in results]
    assert {r.key: r.status for r in results} == case.expect
    assert all(r.target == "his_db" for r in results)


def test_every_oracle_check_has_a_recorded_case() -> None:
    assert set(pack_specs("oracle")) == {c.check_id for c in CASES} | {"oracle.reachable"}


def test_tablespace_metrics_carry_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c.check_id == "oracle.tablespace.used_pct")
    results, _ = run_recorded(monkeypatch, pack_specs("oracle")[case.check_id], "oracle", ORACLE_19C,
                              Answer(case.columns, case.rows))
    data = keyed(results)["HIS_DATA"]
    assert data.value == pytest.approx(96.3)
    assert data.unit == "percent"
    assert data.metrics == {"used_bytes": 1_034_000_000_000, "max_bytes": 1_073_741_824_000}


def test_top_sql_findings_fingerprint_by_sql_id_without_literals(monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c.check_id == "oracle.sql.top_elapsed")
    results, _ = run_recorded(monkeypatch, pack_specs("oracle")[case.check_id], "oracle", ORACLE_19C,
                              Answer(case.columns, case.rows))
    (result,) = results
    assert result.value == 2
    first = result.findings[0]
    assert first.fingerprint == "oracle.sql.top_elapsed:5qgz1p0cut7mx"
    assert "0012345678" not in first.sql_text  # a patient id in a literal never leaves the host
    assert "0012345678" not in first.recommendation
    assert first.evidence["elapsed_ms_per_exec"] == pytest.approx(6000.329)
    assert "5qgz1p0cut7mx" in first.recommendation and "1520 times" in first.recommendation


def test_blocking_finding_names_the_root_blocker_and_its_victims(monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c.check_id == "oracle.locks.blocking" and c.rows)
    results, _ = run_recorded(monkeypatch, pack_specs("oracle")[case.check_id], "oracle", ORACLE_19C,
                              Answer(case.columns, case.rows))
    (result,) = results
    assert result.value == pytest.approx(150.2)
    (finding,) = result.findings
    assert finding.fingerprint == "oracle.locks.blocking:123@4567@20261201081500"
    assert finding.attributes["application"] == "HIS_CHARGE" and finding.attributes["client"] == "WS-NURSE-03"
    assert finding.evidence["most_blocked_at_once"] == 3  # 200 and 201 directly, 300 behind 200
    assert "Root blocker session 123 (application HIS_CHARGE, program his.exe, user HIS, client WS-NURSE-03)" in finding.title
    assert "0012345678" not in finding.sql_text and "0012345678" not in str(result.to_json())


def test_maintenance_sessions_left_out_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """RMAN and Data Pump run for hours at night: the long-running check reports the report query instead."""
    case = next(c for c in CASES if c.check_id == "oracle.sessions.long_running")
    results, _ = run_recorded(monkeypatch, pack_specs("oracle")[case.check_id], "oracle", ORACLE_19C,
                              Answer(case.columns, case.rows))
    (result,) = results
    assert result.value == 1200
    assert "session 812, application HIS_REPORT" in result.summary
    assert result.metrics["maintenance_sessions"] == 2
    assert "left out: application Data Pump Worker, application backup full datafile" in result.summary
    assert "0012345678" not in result.summary


def test_archive_dest_summary_names_status_and_error(monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c.check_id == "oracle.archive.dest" and c.rows)
    results, _ = run_recorded(monkeypatch, pack_specs("oracle")[case.check_id], "oracle", ORACLE_19C,
                              Answer(case.columns, case.rows))
    summaries = {r.key: r.summary for r in results}
    assert "status: ERROR; error: ORA-12541: TNS:no listener" in summaries["LOG_ARCHIVE_DEST_2"]
    assert "status: DEFERRED" in summaries["LOG_ARCHIVE_DEST_3"]


def test_dataguard_lag_counts_the_silence_since_datum_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SQL adds the seconds since DATUM_TIME to the reported lag; a silent standby is not "0 lag"."""
    spec = pack_specs("oracle")["oracle.dataguard.lag"]
    _, conn = run_recorded(monkeypatch, spec, "oracle", ORACLE_19C, Answer(DG_COLUMNS, []))
    sql = plain(conn.queries[0])
    assert "datum_time" in sql and "greatest(0, round((sysdate - x.datum) * 86400))" in sql
    assert "database_role <> 'primary'" in sql


def test_plan_regression_found_with_both_plans(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("oracle")["oracle.sql.plan_regressions"]
    now = [1_000_000.0]
    ctx = recorded_context("oracle", spec.target or "", clock=lambda: now[0])
    run_recorded(monkeypatch, spec, "oracle", ORACLE_19C, Answer(PLAN_COLUMNS, PLAN_ROWS), ctx)
    now[0] += 900
    later = [("5qgz1p0cut7mx", 3387460123, 1000, dec("5000"), "SELECT * FROM his.fee_detail WHERE id = 42"),
             ("5qgz1p0cut7mx", 1203456789, 40, dec("9000"), "SELECT * FROM his.fee_detail WHERE id = 42"),
             ("0w2qpuc6u2zsp", 1388734953, 90_000, dec("307000"), "SELECT COUNT(*) FROM his.reg_visit")]
    results, _ = run_recorded(monkeypatch, spec, "oracle", ORACLE_19C, Answer(PLAN_COLUMNS, later), ctx)
    (result,) = results
    assert result.status == Status.WARNING
    (finding,) = result.findings
    assert finding.fingerprint == "oracle.sql.plan_regressions:5qgz1p0cut7mx:1203456789"
    assert finding.attributes["before_plan"] == "3387460123" and finding.attributes["after_plan"] == "1203456789"
    assert finding.evidence["before_ms"] == 5.0 and finding.evidence["after_ms"] == 225.0
    assert "42" not in finding.sql_text


def test_parameter_change_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("oracle")["oracle.settings"]
    ctx = recorded_context("oracle", spec.target or "")
    run_recorded(monkeypatch, spec, "oracle", ORACLE_19C, Answer([("name", V), ("value", V)], SETTINGS_ROWS), ctx)
    changed = [("processes", "3000"), *SETTINGS_ROWS[1:]]
    results, _ = run_recorded(monkeypatch, spec, "oracle", ORACLE_19C, Answer([("name", V), ("value", V)], changed), ctx)
    (finding,) = results[0].findings
    assert finding.title == "Setting processes changed: 1500 -> 3000"
    assert results[0].status == Status.WARNING


def test_reachable_connects_afresh_and_is_critical_with_the_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("oracle")["oracle.reachable"]
    results, conn = run_recorded(monkeypatch, spec, "oracle", ORACLE_19C, Answer([("1", N)], [(1,)]))
    assert results[0].status == Status.OK and results[0].unit == "ms"
    assert any(plain(q) == "select 1 from dual" for q in conn.executed)

    def refused(target: object, password: object, timeout: object) -> object:
        raise oracledb.OperationalError("DPY-6005: cannot connect to database. ORA-12541: TNS:no listener")

    monkeypatch.setattr("checks.sql.dialects._open_oracledb", refused)
    ctx = recorded_context("oracle", spec.target or "")
    (down,) = spec.probe(ctx)
    assert (down.status, down.outcome) == (Status.CRITICAL, Outcome.CONNECTION_REFUSED)
    other = pack_specs("oracle")["oracle.tablespace.used_pct"]
    assert other.parent == "oracle.reachable"
    (behind,) = other.probe(ctx)
    assert behind.status == Status.UNKNOWN and "unreachable: see oracle.reachable" in behind.summary


@pytest.mark.parametrize(
    ("version", "marker"),
    [(ORACLE_19C, "oracle_maintained = 'N'"), ("12.1.0.2.0", "oracle_maintained = 'N'"), (ORACLE_11G, "'OUTLN'")],
)
def test_dictionary_filters_follow_the_server_version(version: str, marker: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for check_id in ("oracle.stats.stale", "oracle.users.password_expiry"):
        spec = pack_specs("oracle")[check_id]
        _, conn = run_recorded(monkeypatch, spec, "oracle", version, Answer([("key", V), ("value", N)], []))
        assert marker.lower() in plain(conn.queries[0])


def test_oracle_session_is_read_only_before_each_check(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("oracle")["oracle.instance.status"]
    _, conn = run_recorded(monkeypatch, spec, "oracle", ORACLE_19C, Answer([("key", V), ("value", N)], []))
    assert conn.executed[0] == "SET TRANSACTION READ ONLY"


def test_backup_age_is_seconds_with_the_record_count_as_metric(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = pack_specs("oracle")["oracle.rman.backup_age"]
    answer = Answer([("key", V), ("value", N), ("backups_on_record", N)], [("database", dec("3600"), 2)])
    results, _ = run_recorded(monkeypatch, spec, "oracle", ORACLE_19C, answer)
    assert results[0].metrics == {"backups_on_record": 2}
    assert results[0].value == 3600
    assert results[0].unit == "s"
