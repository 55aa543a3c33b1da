"""`job.window`: a scheduled job must have succeeded in its window, judged after the window closes.

Reading the scheduler (sources.py) is separate from judging the window (window.py), and both from the status
each outcome gets (STATUS_POLICY): the judging is tested with rows shaped like msdb, the dba_ views and
pg_cron's tables.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from checks.context import RunContext
from checks.jobs.sources import JobLog, Reading, SourceName, query_for, read
from checks.jobs.window import Occurrence, Verdict, Window, judge
from checks.result import Outcome, Result, Status, unknown
from checks.spec import CheckSpec
from checks.sql.build import BadName
from checks.sql.probing import DatabaseCheck
from checks.sql.query import QueryMap

StatusName = Literal["ok", "warning", "critical"]
_STATUS = {"ok": Status.OK, "warning": Status.WARNING, "critical": Status.CRITICAL}
SOURCE_DIALECT = {"sqlagent": "mssql", "oracle_scheduler": "oracle", "dbms_job": "oracle", "pg_cron": "postgres"}
SOURCE_NAMES = {"sqlagent": "SQL Agent job", "oracle_scheduler": "scheduler job", "dbms_job": "DBMS_JOB job",
                "pg_cron": "pg_cron job", "table": "job"}


class JobStatuses(BaseModel):
    """The status each outcome gets; the defaults wake someone for a migration that did not happen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    missed: StatusName = Field("critical", description="No run started in the window.")
    failed: StatusName = Field("critical", description="Runs in the window, none succeeded.")
    still_running: StatusName = Field("critical", description="A run is still going after the deadline.")
    too_long: StatusName = Field("warning", description="Succeeded, but finished after the deadline.")
    disabled: StatusName = Field("warning", description="The job is disabled or broken (it will not run).")


STATUS_POLICY = JobStatuses.model_validate({})


class JobWindowSpec(DatabaseCheck):
    kind_doc: ClassVar[str] = (
        "A scheduled job must have succeeded in its window: started between window.start and window.end and "
        "finished by window.finish_by (plus grace), all on the database server's clock. The check judges the "
        "latest window whose deadline has passed, so schedule it after the deadline (e.g. 05:30 for a 05:00 "
        "deadline). Outcomes: ok; missed (no run started in the window), failed (runs there, none succeeded), "
        "still_running (a run is going after the deadline), too_long (succeeded but finished late, or its "
        "duration crossed warn/crit), disabled (the job is disabled or broken, or has no enabled schedule), each "
        "with the status given in `statuses`; UNKNOWN not_found when the scheduler has no such job. The value is "
        "the successful run's duration in seconds. Sources: sqlagent (msdb; job = the job's name), "
        "oracle_scheduler (job = OWNER.JOB_NAME), dbms_job (job = dba_jobs.job number), pg_cron (job = "
        "cron.job.jobname; the target allows cron.*), table (a job-log table described by `log`, which the target "
        "allows as a site exception)."
    )

    example: ClassVar[str] = """
id: his.migration.year_db.job
title: Nightly 年库 migration job
kind: job.window
target: his_sql
source: sqlagent
job: HIS_YEAR_DB_MIGRATION
window: {start: "01:00", end: "03:00", finish_by: "05:00", grace: 15m}
schedule: "30 5 * * *"
crit: "> 4h"
"""

    value_unit: ClassVar[str | None] = "seconds"

    kind: Literal["job.window"] = "job.window"
    source: SourceName = Field(description="sqlagent, oracle_scheduler, dbms_job, pg_cron or table.")
    job: str = Field(min_length=1, description="The job: its name, OWNER.JOB_NAME (Oracle scheduler) or number (DBMS_JOB).")
    window: Window = Field(description="When it must start and finish, on the server's clock.")
    log: JobLog | None = Field(None, description="For source table: the job-log table and its columns.")
    statuses: JobStatuses = Field(default_factory=lambda: STATUS_POLICY, description="Status of each outcome.")

    @model_validator(mode="after")
    def _source_options(self) -> JobWindowSpec:
        if self.source == "table" and self.log is None:
            raise ValueError("source table needs log: {table, job_column, start_column, ...}")
        if self.source != "table" and self.log is not None:
            raise ValueError(f"log is only for source table, not {self.source}")
        try:
            self._query()
        except BadName as exc:
            raise ValueError(f"{'log' if self.log is not None else 'job'}: {exc}") from None
        return self

    def _query(self) -> QueryMap:
        return query_for(self.source, self.job, self.log)

    def sql_queries(self) -> list[tuple[str, QueryMap]]:
        return [("job", self._query())]

    def probe(self, ctx: RunContext) -> list[Result]:
        from checks.sql.session import session_for

        def run() -> list[Result]:
            with session_for(ctx, self.target or "", wait=ctx.remaining(self.timeout)) as session:
                rows = session.run(self._query(), timeout=self.timeout_left(ctx), max_rows=500, check_id=self.id)
            return [self.evaluate(read(self.source, rows, self.log))]

        return self.guarded(ctx, run)

    def evaluate(self, reading: Reading | None) -> Result:
        """The result for one reading of the scheduler (pure: tested with rows shaped like each source's)."""
        what = f"{SOURCE_NAMES[self.source]} {self.job}"
        if reading is None:
            where = f" in {self.log.table}" if self.log is not None else ""
            return unknown(self.id, Outcome.NOT_FOUND, f"{self.display_title}: no {what}{where}")
        occ = self.window.occurrence_before(reading.now)
        verdict = judge(occ, reading.now, reading.runs, reading.state)
        outcome, status, note = self._status(verdict, reading)
        run = verdict.run
        value = run.seconds if run is not None and run.state == "succeeded" else None
        if outcome == Outcome.STILL_RUNNING and run is not None:
            value = max(0.0, (reading.now - run.started).total_seconds())
        summary = (f"{self.display_title}: {what} {verdict.summary}{note} "
                   f"[window of {occ.start:%Y-%m-%d}: {self.window.describe()}]")
        return Result(check_id=self.id, status=status, outcome=outcome, summary=summary, value=value,
                      unit="seconds", metrics=_metrics(verdict, occ))

    def _status(self, verdict: Verdict, reading: Reading) -> tuple[Outcome, Status, str]:
        """The outcome's status by policy; thresholds on the duration make an ok run too_long; a job that ran but
        is disabled now is reported disabled, since it will not run tonight."""
        policy = self.statuses.model_dump()
        outcome = verdict.outcome
        note = ""
        if outcome == Outcome.OK and verdict.run is not None and verdict.run.seconds is not None:
            by_threshold = self.status_for(verdict.run.seconds)
            if by_threshold != Status.OK:
                crossed = self.crit if by_threshold == Status.CRITICAL else self.warn
                return Outcome.TOO_LONG, by_threshold, f" (longer than {by_threshold.name.lower()} {crossed})"
        if outcome in (Outcome.OK, Outcome.TOO_LONG) and not reading.state.enabled:
            note = f"; the job is now {reading.state.disabled_why or 'disabled'}, so it will not run again"
            status = _worse(_STATUS[policy["disabled"]], _STATUS[policy["too_long"]] if outcome == Outcome.TOO_LONG
                            else Status.OK)
            return Outcome.DISABLED, status, note
        if outcome == Outcome.OK:
            return outcome, Status.OK, note
        return outcome, _STATUS[policy[outcome.value]], note


def _worse(a: Status, b: Status) -> Status:
    return a if a >= b else b


def _metrics(verdict: Verdict, occ: Occurrence) -> dict[str, float]:
    out = {"runs_in_window": float(verdict.runs_in_window), "failed_in_window": float(verdict.failed_in_window)}
    run = verdict.run
    if run is not None:
        out["start_delay_seconds"] = (run.started - occ.start).total_seconds()
        if run.finished is not None:
            out["deadline_margin_seconds"] = (occ.deadline - run.finished).total_seconds()
        if run.seconds is not None:
            out["duration_seconds"] = run.seconds
    return out


SPECS: dict[str, type[CheckSpec]] = {"job.window": JobWindowSpec}
