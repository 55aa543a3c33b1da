"""job.window's sources offline: their SQL parsed in each dialect and passed by the guard, and rows shaped like
msdb's, the dba_ views' and pg_cron's (as pyodbc, python-oracledb and psycopg return them) run through the real
session (recorded connections, tests/unit/sql_packs/recorded.py) to each outcome.

SQL Server and Oracle cannot run here: this proves the SQL is well-formed for the server and allowed, and that
the rows the real views return become the right outcome; it does not prove the statement on a live server.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import oracledb
import pytest

from checks.jobs.kind import JobWindowSpec
from checks.jobs.sources import JobLog, agent_datetime, agent_seconds, query_for, read
from checks.result import Outcome, Status
from checks.sql.allow import SiteAllowance, prepare
from checks.sql.guard import GuardError, check_statement
from checks.sql.rows import Rows
from tests.unit.sql_packs.recorded import MSSQL_TARGET, ORACLE_TARGET, Answer, output_columns, run_recorded

WINDOW = {"start": "01:00", "end": "03:00", "finish_by": "05:00", "grace": "15m"}
NOW = dt.datetime(2025, 3, 10, 5, 30)


def spec(source: str, job: str, target: str, **extra: Any) -> JobWindowSpec:
    return JobWindowSpec.model_validate({"id": "his.migration.job", "kind": "job.window", "target": target,
                                         "source": source, "job": job, "window": WINDOW, **extra})


def sql_of(source: str, job: str, log: JobLog | None = None) -> dict[str, str]:
    return {key: variant.sql or "" for key, _, variant in query_for(source, job, log).variants()}  # type: ignore[arg-type]


@pytest.mark.parametrize("source, job, dialect", [
    ("sqlagent", "HIS_YEAR_DB_MIGRATION", "mssql"),
    ("oracle_scheduler", "HIS.YEAR_DB_MIGRATION", "oracle"),
    ("dbms_job", "42", "oracle"),
])
def test_scheduler_sql_parses_in_its_dialect_and_passes_the_built_in_allow_list(source: str, job: str, dialect: str) -> None:
    [(key, sql)] = sql_of(source, job).items()
    assert key == dialect
    check_statement(sql, dialect)
    prepare(sql, dialect, None)


def test_pg_cron_tables_are_a_site_exception_of_the_target() -> None:
    [sql] = sql_of("pg_cron", "year_db_migration").values()
    with pytest.raises(GuardError, match=r"not on the read-only allow-list: cron\.job"):
        prepare(sql, "postgres", None)
    prepare(sql, "postgres", SiteAllowance(reviewed_by="DBA", relations=("cron.job", "cron.job_run_details")))


LOG = JobLog(table="his.job_log", job_column="job_name", start_column="started_at", end_column="finished_at",
             status_column="status")


def test_a_job_log_table_in_every_dialect_is_allowed_only_as_a_site_exception() -> None:
    statements = sql_of("table", "year_db", LOG)
    assert set(statements) == {"postgres", "mysql", "oracle", "mssql"}
    for dialect, sql in statements.items():
        check_statement(sql, dialect)
        with pytest.raises(GuardError, match="not on the read-only allow-list"):
            prepare(sql, dialect, None)
        prepare(sql, dialect, SiteAllowance(reviewed_by="DBA", relations=("his.job_log",)))
        assert output_columns(sql, dialect) == ["server_now", "started", "finished", "status"]


@pytest.mark.parametrize("job", ["x' OR '1'='1", "名字'; DROP TABLE t --", "a\\'b"])
def test_a_job_name_is_always_a_literal(job: str) -> None:
    for dialect, sql in sql_of("table", job, LOG).items():
        prepared = prepare(sql, dialect, SiteAllowance(reviewed_by="DBA", relations=("his.job_log",)))
        assert "DROP TABLE" not in prepared.sql.split("'")[0]
        assert prepared.sql.count("job_log") + prepared.sql.count("JOB_LOG") == 1


@pytest.mark.parametrize("bad", ["his.job_log; DROP TABLE x", "a.b.c.d", "his.*", ""])
def test_a_log_table_that_is_not_a_name_is_a_config_error(bad: str) -> None:
    with pytest.raises(ValueError):
        spec("table", "j", "t", log={"table": bad, "job_column": "j", "start_column": "s"})


def test_packed_sql_agent_times() -> None:
    assert agent_datetime(20250310, 13005) == dt.datetime(2025, 3, 10, 1, 30, 5)
    assert agent_seconds(1020304) == 102 * 3600 + 3 * 60 + 4


# --- SQL Agent: rows as pyodbc returns msdb's --------------------------------------------------------------------

AGENT_COLUMNS = [("server_now", dt.datetime), ("enabled", int), ("schedules", int), ("source", str),
                 ("run_date", int), ("run_time", int), ("run_duration", int), ("run_status", int),
                 ("sql_message_id", int), ("running_since", dt.datetime)]


def agent_row(source: str | None, run_time: int = 0, duration: int = 0, status: int = 1, message: int = 0,
              since: dt.datetime | None = None, enabled: int = 1, schedules: int = 1,
              run_date: int = 20250310) -> tuple[Any, ...]:
    if source is None:
        return (NOW, enabled, schedules, None, None, None, None, None, None, None)
    if source == "activity":
        return (NOW, enabled, schedules, "activity", None, None, None, None, None, since)
    return (NOW, enabled, schedules, "history", run_date, run_time, duration, status, message, None)


@pytest.mark.parametrize("rows, outcome, status, value", [
    ([agent_row("history", 10500, 13000)], Outcome.OK, Status.OK, 5400.0),
    ([agent_row(None)], Outcome.MISSED, Status.CRITICAL, None),
    ([agent_row("history", 10000, 5, 0, 50000), agent_row("history", 13000, 3, 3)], Outcome.FAILED, Status.CRITICAL, None),
    ([agent_row("activity", since=dt.datetime(2025, 3, 10, 1, 0))], Outcome.STILL_RUNNING, Status.CRITICAL, 16200.0),
    ([agent_row("history", 24500, 30000)], Outcome.TOO_LONG, Status.WARNING, 10800.0),
    ([agent_row(None, enabled=0)], Outcome.DISABLED, Status.WARNING, None),
    ([agent_row(None, schedules=0)], Outcome.DISABLED, Status.WARNING, None),
    ([agent_row("history", 10500, 13000, run_date=20250309)], Outcome.MISSED, Status.CRITICAL, None),
])
def test_sql_agent_outcomes_from_msdb_rows(monkeypatch: pytest.MonkeyPatch, rows: list[tuple[Any, ...]],
                                           outcome: Outcome, status: Status, value: float | None) -> None:
    check = spec("sqlagent", "HIS_YEAR_DB_MIGRATION", MSSQL_TARGET)
    [result], conn = run_recorded(monkeypatch, check, "mssql", "15.0.4375.4", Answer(AGENT_COLUMNS, rows))
    assert (result.outcome, result.status, result.value) == (outcome, status, value), result.summary
    [sent] = conn.queries
    assert "N'HIS_YEAR_DB_MIGRATION'" in sent or "'HIS_YEAR_DB_MIGRATION'" in sent
    assert output_columns(sent, "mssql") == [c for c, _ in AGENT_COLUMNS]


def test_sql_agent_failure_names_the_message_id_and_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    check = spec("sqlagent", "HIS_YEAR_DB_MIGRATION", MSSQL_TARGET)
    [result], _ = run_recorded(monkeypatch, check, "mssql", "15.0.4375.4",
                               Answer(AGENT_COLUMNS, [agent_row("history", 10000, 5, 0, 50000)]))
    assert result.summary == (
        "his.migration.job: SQL Agent job HIS_YEAR_DB_MIGRATION 1 run(s) in the window, none succeeded: the last, "
        "started 01:00, failed, error 50000 [window of 2025-03-10: started 01:00-03:00, finished by 05:00 "
        "(+15 min grace)]")
    assert result.metrics == {"runs_in_window": 1.0, "failed_in_window": 1.0, "start_delay_seconds": 0.0,
                              "deadline_margin_seconds": 15295.0, "duration_seconds": 5.0}


def test_sql_agent_unknown_job_is_not_found(monkeypatch: pytest.MonkeyPatch) -> None:
    check = spec("sqlagent", "NO_SUCH_JOB", MSSQL_TARGET)
    [result], _ = run_recorded(monkeypatch, check, "mssql", "15.0.4375.4", Answer(AGENT_COLUMNS, []))
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.NOT_FOUND)
    assert result.summary == "his.migration.job: no SQL Agent job NO_SUCH_JOB"


def test_a_run_longer_than_crit_is_too_long_and_a_disabled_job_that_ran_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    check = spec("sqlagent", "J", MSSQL_TARGET, crit="> 1h")
    [long_run], _ = run_recorded(monkeypatch, check, "mssql", "15.0.4375.4",
                                 Answer(AGENT_COLUMNS, [agent_row("history", 10500, 13000)]))
    assert (long_run.outcome, long_run.status) == (Outcome.TOO_LONG, Status.CRITICAL)
    assert "(longer than critical > 1h)" in long_run.summary
    ran = spec("sqlagent", "J", MSSQL_TARGET)
    [disabled], _ = run_recorded(monkeypatch, ran, "mssql", "15.0.4375.4",
                                 Answer(AGENT_COLUMNS, [agent_row("history", 10500, 13000, enabled=0)]))
    assert (disabled.outcome, disabled.status) == (Outcome.DISABLED, Status.WARNING)
    assert "the job is now disabled, so it will not run again" in disabled.summary


def test_statuses_can_be_changed_per_check(monkeypatch: pytest.MonkeyPatch) -> None:
    check = spec("sqlagent", "J", MSSQL_TARGET, statuses={"disabled": "ok", "missed": "warning"})
    [result], _ = run_recorded(monkeypatch, check, "mssql", "15.0.4375.4", Answer(AGENT_COLUMNS, [agent_row(None)]))
    assert (result.outcome, result.status) == (Outcome.MISSED, Status.WARNING)


# --- Oracle: rows as python-oracledb returns the dba_ views ------------------------------------------------------

T = oracledb.DB_TYPE_TIMESTAMP
SCHED_COLUMNS = [("server_now", T), ("enabled", oracledb.DB_TYPE_VARCHAR), ("state", oracledb.DB_TYPE_VARCHAR),
                 ("running_since", T), ("status", oracledb.DB_TYPE_VARCHAR), ("started", T),
                 ("run_duration", oracledb.DB_TYPE_INTERVAL_DS), ("error", oracledb.DB_TYPE_NUMBER)]


def sched(status: str | None, start: str | None = None, minutes: int = 0, error: int = 0, enabled: str = "TRUE",
          state: str = "SCHEDULED", running: dt.datetime | None = None) -> tuple[Any, ...]:
    started = dt.datetime.fromisoformat(f"2025-03-10 {start}") if start else None
    return (NOW, enabled, state, running, status, started, dt.timedelta(minutes=minutes) if start else None,
            error if start else None)


@pytest.mark.parametrize("rows, outcome", [
    ([sched("SUCCEEDED", "01:00:03", 42)], Outcome.OK),
    ([sched(None)], Outcome.MISSED),
    ([sched("FAILED", "01:00", 1, 1555), sched("STOPPED", "02:00", 1)], Outcome.FAILED),
    ([sched(None, running=dt.datetime(2025, 3, 10, 2, 0), state="RUNNING")], Outcome.STILL_RUNNING),
    ([sched("SUCCEEDED", "03:00", 200)], Outcome.TOO_LONG),
    ([sched(None, enabled="FALSE", state="DISABLED")], Outcome.DISABLED),
    ([sched(None, state="BROKEN")], Outcome.DISABLED),
])
def test_oracle_scheduler_outcomes_from_dba_view_rows(monkeypatch: pytest.MonkeyPatch, rows: list[tuple[Any, ...]],
                                                      outcome: Outcome) -> None:
    check = spec("oracle_scheduler", "his.year_db_migration", ORACLE_TARGET)
    [result], conn = run_recorded(monkeypatch, check, "oracle", "19.3.0.0.0", Answer(SCHED_COLUMNS, rows))
    assert result.outcome == outcome, result.summary
    [sent] = conn.queries
    assert "'HIS'" in sent and "'YEAR_DB_MIGRATION'" in sent
    assert output_columns(sent, "oracle") == [c for c, _ in SCHED_COLUMNS]


def test_oracle_failure_shows_the_ora_error_number(monkeypatch: pytest.MonkeyPatch) -> None:
    check = spec("oracle_scheduler", "HIS.YEAR_DB_MIGRATION", ORACLE_TARGET)
    [result], _ = run_recorded(monkeypatch, check, "oracle", "19.3.0.0.0",
                               Answer(SCHED_COLUMNS, [sched("FAILED", "01:00", 1, 1555)]))
    assert "failed, error ORA-01555" in result.summary


JOBS_COLUMNS = [("server_now", oracledb.DB_TYPE_DATE), ("broken", oracledb.DB_TYPE_VARCHAR),
                ("failures", oracledb.DB_TYPE_NUMBER), ("last_date", oracledb.DB_TYPE_DATE),
                ("this_date", oracledb.DB_TYPE_DATE)]


@pytest.mark.parametrize("row, outcome", [
    ((NOW, "N", 0, dt.datetime(2025, 3, 10, 1, 0), None), Outcome.OK),
    ((NOW, "N", 0, dt.datetime(2025, 3, 9, 1, 0), None), Outcome.MISSED),
    ((NOW, "N", 2, dt.datetime(2025, 3, 9, 1, 0), None), Outcome.FAILED),
    ((NOW, "N", 0, dt.datetime(2025, 3, 9, 1, 0), dt.datetime(2025, 3, 10, 1, 0)), Outcome.STILL_RUNNING),
    ((NOW, "Y", 16, dt.datetime(2025, 3, 1, 1, 0), None), Outcome.FAILED),
    ((NOW, "Y", 0, None, None), Outcome.DISABLED),
])
def test_dbms_job_outcomes_from_dba_jobs_rows(monkeypatch: pytest.MonkeyPatch, row: tuple[Any, ...],
                                              outcome: Outcome) -> None:
    check = spec("dbms_job", "42", ORACLE_TARGET)
    [result], conn = run_recorded(monkeypatch, check, "oracle", "11.2.0.4.0", Answer(JOBS_COLUMNS, [row]))
    assert result.outcome == outcome, result.summary
    assert '"JOB" = 42' in conn.queries[0]


@pytest.mark.parametrize("job", ["YEAR", "HIS.A.B"])
def test_an_oracle_scheduler_job_is_named_with_its_owner(job: str) -> None:
    with pytest.raises(ValueError, match="named with its owner"):
        spec("oracle_scheduler", job, ORACLE_TARGET)


def test_a_dbms_job_is_named_by_its_number() -> None:
    with pytest.raises(ValueError, match="by its number"):
        spec("dbms_job", "NIGHTLY", ORACLE_TARGET)


# --- pg_cron and a job-log table: rows as psycopg / PyMySQL return them ------------------------------------------

CRON = ["server_now", "enabled", "status", "started", "finished"]


@pytest.mark.parametrize("status, outcome", [("succeeded", Outcome.OK), ("failed", Outcome.FAILED),
                                             ("running", Outcome.STILL_RUNNING), ("starting", Outcome.STILL_RUNNING)])
def test_pg_cron_statuses(status: str, outcome: Outcome) -> None:
    end = dt.datetime(2025, 3, 10, 1, 20) if status in ("succeeded", "failed") else None
    rows = Rows(CRON, [(NOW, True, status, dt.datetime(2025, 3, 10, 1, 0), end)])
    result = spec("pg_cron", "year_db", "pg").evaluate(read("pg_cron", rows, None))
    assert result.outcome == outcome, result.summary


def test_pg_cron_inactive_job_and_aware_times() -> None:
    aware = dt.datetime(2025, 3, 10, 1, 0, tzinfo=dt.timezone.utc)
    rows = Rows(CRON, [(NOW, False, None, None, None)])
    assert spec("pg_cron", "j", "pg").evaluate(read("pg_cron", rows, None)).outcome == Outcome.DISABLED
    ok = Rows(CRON, [(NOW, True, "succeeded", aware, aware + dt.timedelta(minutes=5))])
    assert spec("pg_cron", "j", "pg").evaluate(read("pg_cron", ok, None)).outcome == Outcome.OK


def test_job_log_default_status_values() -> None:
    end = dt.datetime(2025, 1, 1)
    assert [LOG.state_of(v, end) for v in ("SUCCESS", "success", "成功", "FAILED", "error")] == [
        "succeeded", "succeeded", "succeeded", "failed", "failed"]
    assert LOG.state_of("Running", None) == "running"


def test_job_log_status_values_are_declared_and_case_blind() -> None:
    log = JobLog(table="his.job_log", job_column="j", start_column="s", end_column="e", status_column="st",
                 success_values=["完成"], failure_values=["异常"], running_values=["进行"])
    assert log.state_of(" 完成 ", dt.datetime(2025, 1, 1)) == "succeeded"
    assert log.state_of("异常", dt.datetime(2025, 1, 1)) == "failed"
    assert log.state_of("进行", None) == "running"
    assert log.state_of("something else", None) == "running", "no end time and no known final status"
    assert log.state_of("something else", dt.datetime(2025, 1, 1)) == "failed"
    bare = JobLog(table="his.job_log", job_column="j", start_column="s", end_column="e")
    assert bare.state_of(None, dt.datetime(2025, 1, 1)) == "succeeded" and bare.state_of(None, None) == "running"


def test_a_job_log_without_rows_in_the_lookback_is_missed() -> None:
    rows = Rows(["server_now", "started", "finished", "status"], [(NOW, None, None, None)])
    result = spec("table", "year_db", "my", log=LOG.model_dump()).evaluate(read("table", rows, LOG))
    assert result.outcome == Outcome.MISSED


def test_rows_without_the_expected_columns_are_content_mismatch() -> None:
    from checks.jobs.sources import ShapeError

    with pytest.raises(ShapeError, match="no column 'enabled'"):
        read("pg_cron", Rows(["server_now"], [(NOW,)]), None)
