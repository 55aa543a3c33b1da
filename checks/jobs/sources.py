"""Where job runs are read from: one statement per scheduler, and its rows turned into runs and job state.

Each statement reads the server's own clock ("now") in the same statement as the runs, and returns every time
as the server's wall clock, so the window is judged on the clock the scheduler fired on:

| source | dialect | reads |
|---|---|---|
| sqlagent | mssql | msdb.dbo.sysjobs, sysjobhistory (step_id 0 = the job's outcome), sysjobactivity of the current Agent session (running), sysjobschedules/sysschedules (enabled schedules) |
| oracle_scheduler | oracle | dba_scheduler_jobs (enabled, state), dba_scheduler_job_run_details, dba_scheduler_running_jobs |
| dbms_job | oracle | dba_jobs (last_date = start of the last success, this_date = running since, failures, broken) |
| pg_cron | postgres | cron.job (active), cron.job_run_details |
| table | any | a job-log table the HIS vendor writes, described by its columns |

The job name is a literal and the log table and its columns quoted identifiers in a tree built by
checks/sql/build.py; the statement then passes the guard and the target's allow-list like any other.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from checks.jobs.window import JobRun, JobState, RunState
from checks.sql.build import Value, column, fill, merge, name_parts, statement, table
from checks.sql.probing import InputUnreadable
from checks.sql.query import QueryMap
from checks.sql.rows import Rows

SourceName = Literal["sqlagent", "oracle_scheduler", "dbms_job", "pg_cron", "table"]
LOOKBACK_DAYS = 3
"""Runs are read back this far from the server's now: the judged window started at most two days ago."""


class ShapeError(InputUnreadable):
    """The rows do not have the columns the source's statement returns (a different server version or view)."""


@dataclass
class Reading:
    """One read of a job: the server's clock, what the scheduler says about the job, and its recent runs."""

    now: dt.datetime
    state: JobState
    runs: list[JobRun]


class JobLog(BaseModel):
    """A job-log table the HIS vendor writes, one row per run: which columns hold what."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    table: str = Field(description="The log table with its schema, e.g. his.job_log (a site exception on the target).")
    job_column: str = Field(description="Column holding the job's name.")
    start_column: str = Field(description="Column holding when the run started (date/time, server clock).")
    end_column: str | None = Field(None, description="Column holding when it finished; empty while it runs.")
    status_column: str | None = Field(
        None, description="Column holding its status; without one, a finished run is a success."
    )
    success_values: list[str] = Field(
        ["SUCCESS", "SUCCEEDED", "OK", "DONE", "COMPLETED", "1", "成功", "完成"],
        description="Status values of a successful run (compared case-blind).",
    )
    failure_values: list[str] = Field(
        ["FAILED", "FAILURE", "ERROR", "0", "-1", "失败", "错误"], description="Status values of a failed run."
    )
    running_values: list[str] = Field(
        ["RUNNING", "STARTED", "IN PROGRESS", "运行中", "执行中"],
        description="Status values of a run still going; any run without an end time and no other status counts too.",
    )

    @field_validator("success_values", "failure_values", "running_values")
    @classmethod
    def _fold(cls, v: list[str]) -> list[str]:
        return [str(x).strip().casefold() for x in v]

    def names(self) -> list[tuple[str, str]]:
        """(option, configured name) of every name this log puts into SQL, for validation."""
        cols = [("job_column", self.job_column), ("start_column", self.start_column),
                ("end_column", self.end_column), ("status_column", self.status_column)]
        return [("table", self.table), *((k, v) for k, v in cols if v is not None)]

    def state_of(self, status: Any, finished: Any) -> RunState:
        text = "" if status is None else _text(status).strip().casefold()
        if self.status_column is None or not text:
            return "succeeded" if finished is not None else "running"
        if text in self.success_values:
            return "succeeded"
        if text in self.running_values or (finished is None and text not in self.failure_values):
            return "running"
        return "failed"


# --- statements -----------------------------------------------------------------------------------------------

_SQLAGENT = """
SELECT CURRENT_TIMESTAMP AS server_now, j.enabled AS enabled,
  (SELECT COUNT(*) FROM msdb.dbo.sysjobschedules AS js JOIN msdb.dbo.sysschedules AS sc
     ON sc.schedule_id = js.schedule_id WHERE js.job_id = j.job_id AND sc.enabled = 1) AS schedules,
  r.source AS source, r.run_date AS run_date, r.run_time AS run_time, r.run_duration AS run_duration,
  r.run_status AS run_status, r.sql_message_id AS sql_message_id, r.running_since AS running_since
FROM msdb.dbo.sysjobs AS j
LEFT JOIN (
  SELECT h.job_id AS job_id, 'history' AS source, h.run_date AS run_date, h.run_time AS run_time,
    h.run_duration AS run_duration, h.run_status AS run_status, h.sql_message_id AS sql_message_id,
    CAST(NULL AS DATETIME) AS running_since
  FROM msdb.dbo.sysjobhistory AS h
  WHERE h.step_id = 0
    AND h.run_date >= YEAR(DATEADD(DAY, -__days__, CURRENT_TIMESTAMP)) * 10000
      + MONTH(DATEADD(DAY, -__days__, CURRENT_TIMESTAMP)) * 100 + DAY(DATEADD(DAY, -__days__, CURRENT_TIMESTAMP))
  UNION ALL
  SELECT a.job_id, 'activity', NULL, NULL, NULL, NULL, NULL, a.start_execution_date
  FROM msdb.dbo.sysjobactivity AS a
  WHERE a.session_id = (SELECT MAX(ss.session_id) FROM msdb.dbo.syssessions AS ss)
    AND a.start_execution_date IS NOT NULL AND a.stop_execution_date IS NULL
) AS r ON r.job_id = j.job_id
WHERE j.name = __job__
"""

_ORACLE_SCHEDULER = """
SELECT CAST(SYSTIMESTAMP AS TIMESTAMP) AS server_now, j.enabled AS enabled, j.state AS state,
  CAST(SYSTIMESTAMP AS TIMESTAMP) - rj.elapsed_time AS running_since, r.status AS status,
  CAST(SYSTIMESTAMP AS TIMESTAMP) - (SYSTIMESTAMP - r.actual_start_date) AS started,
  r.run_duration AS run_duration, r.error# AS error
FROM dba_scheduler_jobs j
LEFT JOIN dba_scheduler_running_jobs rj ON rj.owner = j.owner AND rj.job_name = j.job_name
LEFT JOIN dba_scheduler_job_run_details r ON r.owner = j.owner AND r.job_name = j.job_name
  AND r.actual_start_date > SYSTIMESTAMP - NUMTODSINTERVAL(__days__, 'DAY')
WHERE j.owner = __owner__ AND j.job_name = __job__
"""
"""Start times are TIMESTAMP WITH TIME ZONE in the job's zone; (SYSTIMESTAMP - start) is an exact interval,
subtracted from the server's wall clock to give the start on that clock."""

_DBMS_JOB = """
SELECT SYSDATE AS server_now, j.broken AS broken, j.failures AS failures, j.last_date AS last_date,
  j.this_date AS this_date
FROM dba_jobs j
WHERE j.job = __job__
"""

_PG_CRON = """
SELECT LOCALTIMESTAMP AS server_now, j.active AS enabled, d.status AS status,
  CAST(d.start_time AS TIMESTAMP) AS started, CAST(d.end_time AS TIMESTAMP) AS finished
FROM cron.job AS j
LEFT JOIN cron.job_run_details AS d ON d.jobid = j.jobid
  AND d.start_time >= CURRENT_TIMESTAMP - __days__ * INTERVAL '1 day'
WHERE j.jobname = __job__
"""
"""timestamptz cast to timestamp gives the session's (the server's default) wall clock, as LOCALTIMESTAMP."""

_TABLE_NOW = {
    "postgres": ("(SELECT LOCALTIMESTAMP AS server_now)", "LOCALTIMESTAMP - __days__ * INTERVAL '1 day'"),
    "mysql": ("(SELECT NOW() AS server_now)", "NOW() - INTERVAL __days__ DAY"),
    "oracle": ("(SELECT SYSDATE AS server_now FROM dual)", "SYSDATE - __days__"),
    "mssql": ("(SELECT CURRENT_TIMESTAMP AS server_now)", "DATEADD(DAY, -__days__, CURRENT_TIMESTAMP)"),
}

_TABLE = """
SELECT n.server_now AS server_now, {started} AS started, {finished} AS finished, {status} AS status
FROM {now} n
LEFT JOIN __log__ l ON l.__job_column__ = __job__ AND l.__start_column__ >= {since}
"""


def query_for(source: SourceName, job: str, log: JobLog | None) -> QueryMap:
    """The statement reading `job` from `source`; for a log table, one per dialect (the target picks)."""
    if source == "table":
        assert log is not None
        return merge(_table_query(dialect, job, log) for dialect in _TABLE_NOW)
    if source == "sqlagent":
        return statement(fill(_SQLAGENT, "mssql", {"__job__": job, "__days__": LOOKBACK_DAYS}), "mssql")
    if source == "oracle_scheduler":
        owner, name = oracle_job_name(job)
        values: dict[str, Value] = {"__owner__": owner, "__job__": name, "__days__": LOOKBACK_DAYS}
        return statement(fill(_ORACLE_SCHEDULER, "oracle", values), "oracle")
    if source == "dbms_job":
        return statement(fill(_DBMS_JOB, "oracle", {"__job__": dbms_job_number(job)}), "oracle")
    return statement(fill(_PG_CRON, "postgres", {"__job__": job, "__days__": LOOKBACK_DAYS}), "postgres")


def _table_query(dialect: str, job: str, log: JobLog) -> QueryMap:
    now, since = _TABLE_NOW[dialect]
    started = "CAST(l.__start_column__ AS TIMESTAMP)" if dialect == "postgres" else "l.__start_column__"
    if log.end_column is None:
        finished = "NULL"
    else:
        finished = "CAST(l.__end_column__ AS TIMESTAMP)" if dialect == "postgres" else "l.__end_column__"
    status = "NULL" if log.status_column is None else "l.__status_column__"
    template = _TABLE.format(started=started, finished=finished, status=status, now=now, since=since)
    values: dict[str, Value] = {"__log__": table(log.table, dialect), "__job__": job, "__days__": LOOKBACK_DAYS,
                              "__job_column__": column(log.job_column, dialect),
                              "__start_column__": column(log.start_column, dialect)}
    if log.end_column is not None:
        values["__end_column__"] = column(log.end_column, dialect)
    if log.status_column is not None:
        values["__status_column__"] = column(log.status_column, dialect)
    return statement(fill(template, dialect, values), dialect)


def oracle_job_name(job: str) -> tuple[str, str]:
    """OWNER.JOB_NAME as the dictionary stores them (upper case unless quoted)."""
    try:
        parts = name_parts(job, "oracle", max_parts=2)
    except ValueError:
        parts = ()
    if len(parts) != 2:
        raise ValueError(f"an Oracle scheduler job is named with its owner, e.g. HIS.YEAR_DB_MIGRATION, got {job!r}")
    return parts[0], parts[1]


def dbms_job_number(job: str) -> int:
    try:
        number = int(job)
    except ValueError:
        raise ValueError(f"a DBMS_JOB job is named by its number (dba_jobs.job), got {job!r}") from None
    if number <= 0:
        raise ValueError(f"a DBMS_JOB job number is positive, got {job!r}")
    return number


# --- rows → runs ----------------------------------------------------------------------------------------------

def read(source: SourceName, rows: Rows, log: JobLog | None) -> Reading | None:
    """The reading of the rows; None when the scheduler does not know the job (no row at all)."""
    if not rows.rows:
        return None
    decoder: dict[str, Callable[[_Cells], Reading]] = {
        "sqlagent": _sqlagent, "oracle_scheduler": _oracle_scheduler, "dbms_job": _dbms_job, "pg_cron": _pg_cron,
    }
    cells = _Cells(rows)
    if source == "table":
        assert log is not None
        return _table(cells, log)
    return decoder[source](cells)


class _Cells:
    """Rows addressed by (lower-cased) column name; a missing column is a ShapeError naming it."""

    def __init__(self, rows: Rows) -> None:
        self.rows = rows.rows
        self.index = {c: i for i, c in enumerate(rows.columns)}

    def get(self, row: Sequence[Any], name: str) -> Any:
        i = self.index.get(name)
        if i is None:
            raise ShapeError(f"the statement's rows have no column {name!r} (columns: {', '.join(self.index)})")
        return row[i]

    def now(self) -> dt.datetime:
        return wall(self.get(self.rows[0], "server_now"), None)


def wall(value: Any, now: dt.datetime | None) -> dt.datetime:
    """A time cell as a naive server wall-clock datetime (dates become midnight)."""
    if isinstance(value, dt.datetime):
        moment: dt.datetime = value
        if moment.tzinfo is not None:
            moment = moment.astimezone(now.tzinfo if now is not None and now.tzinfo else moment.tzinfo)
        return moment.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    raise ShapeError(f"expected a date/time, got {type(value).__name__}")


def _opt_wall(value: Any, now: dt.datetime) -> dt.datetime | None:
    return None if value is None else wall(value, now)


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, decimal.Decimal, float)):
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ShapeError(f"expected a number, got {type(value).__name__}")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else str(value)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().upper() in ("TRUE", "T", "Y", "YES", "1")
    return bool(value)


def agent_datetime(run_date: int, run_time: int) -> dt.datetime:
    """SQL Agent's packed run_date (YYYYMMDD) and run_time (HHMMSS) as msdb.dbo.agent_datetime reads them."""
    return dt.datetime(run_date // 10000, run_date // 100 % 100, run_date % 100,
                       run_time // 10000, run_time // 100 % 100, run_time % 100)


def agent_seconds(run_duration: int) -> int:
    """SQL Agent's packed run_duration (HHMMSS, hours may exceed 99) in seconds."""
    return run_duration // 10000 * 3600 + run_duration // 100 % 100 * 60 + run_duration % 100


_AGENT_STATUS: dict[int, RunState] = {0: "failed", 1: "succeeded", 2: "retry", 3: "canceled", 4: "running"}


def _sqlagent(c: _Cells) -> Reading:
    now = c.now()
    first = c.rows[0]
    state = JobState()
    if not _truthy(c.get(first, "enabled")):
        state.enabled, state.disabled_why = False, "disabled"
    elif _int(c.get(first, "schedules") or 0) == 0:
        state.enabled, state.disabled_why = False, "without an enabled schedule"
    runs = []
    for row in c.rows:
        source = c.get(row, "source")
        if source == "activity" and c.get(row, "running_since") is not None:
            state.running_since.append(wall(c.get(row, "running_since"), now))
        elif source == "history":
            started = agent_datetime(_int(c.get(row, "run_date")), _int(c.get(row, "run_time")))
            finished = started + dt.timedelta(seconds=agent_seconds(_int(c.get(row, "run_duration") or 0)))
            status = _AGENT_STATUS.get(_int(c.get(row, "run_status")), "failed")
            message = c.get(row, "sql_message_id")
            error = str(_int(message)) if message not in (None, 0) else ""
            runs.append(JobRun(started, status, None if status == "running" else finished, error))
    return Reading(now, state, runs)


_ORACLE_STATUS: dict[str, RunState] = {"SUCCEEDED": "succeeded", "FAILED": "failed", "STOPPED": "canceled",
                                       "RUNNING": "running"}


def _oracle_scheduler(c: _Cells) -> Reading:
    now = c.now()
    first = c.rows[0]
    state = JobState()
    job_state = _text(c.get(first, "state") or "").upper()
    if job_state in ("BROKEN", "DISABLED") or not _truthy(c.get(first, "enabled")):
        state.enabled, state.disabled_why = False, "broken" if job_state == "BROKEN" else "disabled"
    runs = []
    for row in c.rows:
        since = c.get(row, "running_since")
        if since is not None:
            moment = wall(since, now)
            if moment not in state.running_since:
                state.running_since.append(moment)
        started = c.get(row, "started")
        if started is None:
            continue
        begin = wall(started, now)
        duration = c.get(row, "run_duration")
        finished = begin + duration if isinstance(duration, dt.timedelta) else None
        status = _ORACLE_STATUS.get(_text(c.get(row, "status") or "").upper(), "failed")
        error = c.get(row, "error")
        runs.append(JobRun(begin, status, finished, f"ORA-{_int(error):05d}" if error not in (None, 0) else ""))
    return Reading(now, state, runs)


def _dbms_job(c: _Cells) -> Reading:
    now = c.now()
    row = c.rows[0]
    state = JobState()
    if _text(c.get(row, "broken") or "N").strip().upper() == "Y":
        state.enabled, state.disabled_why = False, "broken"
    this_date = c.get(row, "this_date")
    if this_date is not None:
        state.running_since.append(wall(this_date, now))
    state.failures_since_success = _int(c.get(row, "failures") or 0)
    last = c.get(row, "last_date")
    runs = [JobRun(wall(last, now), "succeeded")] if last is not None else []
    return Reading(now, state, runs)


_CRON_STATUS: dict[str, RunState] = {"succeeded": "succeeded", "failed": "failed", "starting": "running",
                                     "running": "running", "sending": "running", "connecting": "running"}


def _pg_cron(c: _Cells) -> Reading:
    now = c.now()
    state = JobState()
    if not _truthy(c.get(c.rows[0], "enabled")):
        state.enabled, state.disabled_why = False, "inactive (cron.job.active is false)"
    runs = []
    for row in c.rows:
        started = c.get(row, "started")
        if started is None:
            continue
        status = _CRON_STATUS.get(_text(c.get(row, "status") or "").lower(), "failed")
        runs.append(JobRun(wall(started, now), status, _opt_wall(c.get(row, "finished"), now)))
    return Reading(now, state, runs)


def _table(c: _Cells, log: JobLog) -> Reading:
    now = c.now()
    runs = []
    for row in c.rows:
        started = c.get(row, "started")
        if started is None:
            continue
        finished = _opt_wall(c.get(row, "finished"), now)
        status = log.state_of(c.get(row, "status"), finished)
        text = c.get(row, "status")
        error = _text(text).strip()[:40] if status == "failed" and text is not None else ""
        runs.append(JobRun(wall(started, now), status, finished if status != "running" else None, error))
    return Reading(now, JobState(), runs)
