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
from tests.unit.sql_packs.recorded import Answer, Column, dec, keyed, output_columns, pack_specs, plain, run_recorded

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
    Case("oracle.archive.dest",
         [("dest_id", N), ("dest_name", V), ("status", V), ("destination", V), ("error", V)],
         [(2, "LOG_ARCHIVE_DEST_2", "ERROR", "hisdg", "ORA-12541: TNS:no listener")], {"": Status.CRITICAL}),
    Case("oracle.archive.dest",
         [("dest_id", N), ("dest_name", V), ("status", V), ("destination", V), ("error", V)],
         [], {"": Status.OK}, name="all-valid"),
    Case("oracle.rman.backup_age",
         [("key", V), ("value", N), ("backups_on_record", N)],
         [("database", 30_240, 7), ("archivelog", 100_800, 52)],
         {"database": Status.OK, "archivelog": Status.CRITICAL}),
    Case("oracle.rman.last_status",
         [("key", V), ("value", N), ("elapsed_seconds", N), ("output_bytes", N), ("started_seconds_ago", N)],
         [("DB INCR", 0, 5400, 80_000_000_000, 30_000), ("ARCHIVELOG", 2, 40, 0, 3_600),
          ("DB FULL", 1, 20_000, 900_000_000_000, 500_000)],
         {"DB INCR": Status.OK, "ARCHIVELOG": Status.CRITICAL, "DB FULL": Status.WARNING}),
    Case("oracle.dataguard.lag", [("key", V), ("value", N)], [], {"": Status.OK}, name="primary"),
    Case("oracle.dataguard.lag", [("key", V), ("value", N)],
         [("transport lag", dec("4")), ("apply lag", dec("4500"))],
         {"transport lag": Status.OK, "apply lag": Status.WARNING}, name="standby"),
    Case("oracle.dataguard.dest_gap", [("key", V), ("value", N), ("dest_valid", N)],
         [("LOG_ARCHIVE_DEST_2", 0, 1), ("LOG_ARCHIVE_DEST_3", 25, 0)],
         {"LOG_ARCHIVE_DEST_2": Status.OK, "LOG_ARCHIVE_DEST_3": Status.CRITICAL}),
    Case("oracle.sessions.pct_of_limit",
         [("key", V), ("value", N), ("current_count", N), ("max_since_startup", N), ("limit_count", N)],
         [("processes", dec("85.33"), 1280, 1400, 1500), ("sessions", dec("50.10"), 1140, 1500, 2272)],
         {"processes": Status.WARNING, "sessions": Status.OK}),
    Case("oracle.locks.blocked_wait", [("key", V), ("value", N), ("blocked_sessions", N)],
         [("blocked", 150, 3)], {"blocked": Status.CRITICAL}),
    Case("oracle.locks.blocked_wait", [("key", V), ("value", N), ("blocked_sessions", N)],
         [("blocked", 0, 0)], {"blocked": Status.OK}, name="none"),
    Case("oracle.locks.blockers",
         [("fingerprint", V), ("object", V), ("session_status", V), ("blocker_event", V), ("sql_id", V),
          ("blocked_sessions", N), ("max_wait_seconds", N), ("blocker_idle_or_call_seconds", N)],
         [("123,4567", "HIS@WS-NURSE-03", "INACTIVE", "SQL*Net message from client", "5qgz1p0cut7mx", 3, 150, 900)],
         {"": Status.OK}),
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
         [("HIS.JOB_MOVE_TO_YEAR_DB", 1, 1, 12899), ("SYS.ORA$AT_OS_OPT_SY_3081", 0, 1, 0)],
         {"HIS.JOB_MOVE_TO_YEAR_DB": Status.CRITICAL, "SYS.ORA$AT_OS_OPT_SY_3081": Status.OK}),
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
    assert set(pack_specs("oracle")) == {c.check_id for c in CASES}


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


def test_blocker_finding_names_the_session_and_what_it_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c.check_id == "oracle.locks.blockers")
    results, _ = run_recorded(monkeypatch, pack_specs("oracle")[case.check_id], "oracle", ORACLE_19C,
                              Answer(case.columns, case.rows))
    (finding,) = results[0].findings
    assert finding.fingerprint == "oracle.locks.blockers:123,4567"
    assert finding.object == "HIS@WS-NURSE-03"
    assert "blocks 3 session(s) for up to 150 s" in finding.recommendation


def test_archive_dest_summary_names_only_declared_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    case = next(c for c in CASES if c.check_id == "oracle.archive.dest" and c.rows)
    results, _ = run_recorded(monkeypatch, pack_specs("oracle")[case.check_id], "oracle", ORACLE_19C,
                              Answer(case.columns, case.rows))
    (result,) = results
    assert result.value == 1
    assert "dest_name=LOG_ARCHIVE_DEST_2" in result.summary and "ORA-12541" in result.summary
    assert "hisdg" not in result.summary  # destination is not a declared key column


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
