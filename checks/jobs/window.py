"""When a scheduled job must have run, and what its runs say about the latest window: pure, no database.

Every time here is the database server's wall clock (naive datetimes): the window is read against the
server's own "now", never the agent's, because that is the clock the scheduler fired on.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from checks.result import Outcome
from checks.spec import Duration

RunState = Literal["succeeded", "failed", "running", "retry", "canceled"]
"""How a run of a job ended (or that it has not): every source's status values map onto these."""

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_DAY = dt.timedelta(days=1)


def _time_of_day(v: object) -> dt.time:
    if isinstance(v, dt.time):
        return v
    if isinstance(v, int) and not isinstance(v, bool) and 60 <= v < 24 * 60:
        return dt.time(v // 60, v % 60)  # YAML 1.1 reads an unquoted 1:30 as the base-60 number 90
    m = _TIME.match(v.strip()) if isinstance(v, str) else None
    if m is None:
        raise ValueError(f'expected a quoted time of day such as "01:30" (server clock, 24 h), got {v!r}')
    return dt.time(int(m.group(1)), int(m.group(2)))


class Window(BaseModel):
    """A daily window on the server's clock; `end` and `finish_by` earlier than `start` fall on the next day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: dt.time = Field(description='Earliest time the job may start, e.g. "01:00" (server clock).')
    end: dt.time = Field(description='Latest time it may start, e.g. "03:00"; before start means the next day.')
    finish_by: dt.time | None = Field(
        None, description='Time by which it must have finished, e.g. "05:00"; defaults to end.'
    )
    grace: Duration = Field(
        0.0, description="Slack added to end and finish_by before a run counts as missed or late, e.g. 15m."
    )

    @field_validator("start", "end", "finish_by", mode="before")
    @classmethod
    def _parse_time(cls, v: object) -> dt.time | None:
        return None if v is None else _time_of_day(v)

    @model_validator(mode="after")
    def _sane(self) -> Window:
        if self.grace < 0:
            raise ValueError("grace must not be negative")
        if self.start == self.end:
            raise ValueError("start and end are the same time: give the window's earliest and latest start")
        return self

    def occurrence_before(self, now: dt.datetime) -> Occurrence:
        """The latest window whose deadline (finish_by + grace) has passed at `now`: the one to judge."""
        grace = dt.timedelta(seconds=self.grace)
        day = dt.datetime.combine(now.date(), self.start)
        for _ in range(3):
            occ = self._at(day, grace)
            if occ.deadline <= now:
                return occ
            day -= _DAY
        raise AssertionError("a daily window's deadline is less than two days after its start")

    def _at(self, start: dt.datetime, grace: dt.timedelta) -> Occurrence:
        latest = _after(start, self.end)
        finish = _after(start, self.finish_by) if self.finish_by is not None else latest
        if finish < latest:
            finish += _DAY
        return Occurrence(start=start, latest_start=latest + grace, deadline=finish + grace)

    def describe(self) -> str:
        finish = f", finished by {self.finish_by:%H:%M}" if self.finish_by is not None else ""
        grace = f" (+{_span(self.grace)} grace)" if self.grace else ""
        return f"started {self.start:%H:%M}-{self.end:%H:%M}{finish}{grace}"


def _after(start: dt.datetime, at: dt.time) -> dt.datetime:
    """The first `at` after `start` (the same day, or the next when `at` is earlier than start's time)."""
    moment = dt.datetime.combine(start.date(), at)
    return moment if moment > start else moment + _DAY


@dataclass(frozen=True)
class Occurrence:
    """One night's window: runs starting in [start, latest_start] count; they must be done by deadline."""

    start: dt.datetime
    latest_start: dt.datetime
    deadline: dt.datetime

    def holds(self, started: dt.datetime) -> bool:
        return self.start <= started <= self.latest_start


@dataclass(frozen=True)
class JobRun:
    started: dt.datetime
    state: RunState
    finished: dt.datetime | None = None
    error: str = ""
    """An error number or code the scheduler recorded (ORA-, SQL Server message id); never message text."""

    @property
    def seconds(self) -> float | None:
        return None if self.finished is None else max(0.0, (self.finished - self.started).total_seconds())


@dataclass
class JobState:
    """What the scheduler says about the job now, besides its runs."""

    found: bool = True
    enabled: bool = True
    disabled_why: str = ""
    """"disabled", "broken", "no enabled schedule"... when enabled is false."""
    running_since: list[dt.datetime] = field(default_factory=list)
    """Starts of runs in progress that the run history does not list yet (SQL Agent activity, Oracle running jobs)."""
    failures_since_success: int = 0
    """DBMS_JOB keeps no history, only a failure count since the last success."""


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    summary: str
    run: JobRun | None = None
    """The run the verdict is about: the success, the running or the last failed one."""
    runs_in_window: int = 0
    failed_in_window: int = 0
    late: bool = False
    """For too_long: finished after the deadline (rather than longer than warn/crit)."""


def judge(occ: Occurrence, now: dt.datetime, runs: list[JobRun], state: JobState) -> Verdict:
    """missed / failed / still running / too long (finished late) / disabled / ok, from the runs of one window."""
    inside = sorted((r for r in runs if occ.holds(r.started)), key=lambda r: r.started)
    failed = [r for r in inside if r.state in ("failed", "retry", "canceled")]
    n, nf = len(inside), len(failed)
    succeeded = [r for r in inside if r.state == "succeeded"]
    if succeeded:
        run = succeeded[0]
        retried = f" after {len(failed)} failed attempt(s)" if failed and failed[0].started < run.started else ""
        when = f"started {_clock(run.started, occ.start)}"
        if run.finished is not None and run.finished > occ.deadline:
            return Verdict(Outcome.TOO_LONG, f"succeeded{retried} but finished {_clock(run.finished, occ.start)}, "
                           f"after its deadline {_clock(occ.deadline, occ.start)} ({when})", run, n, nf, late=True)
        took = f", took {_span(run.seconds)}" if run.seconds is not None else ""
        return Verdict(Outcome.OK, f"succeeded{retried} ({when}{took})", run, runs_in_window=n, failed_in_window=nf)
    running = sorted([r.started for r in runs if r.state == "running" and r.started <= occ.latest_start]
                     + [s for s in state.running_since if s <= occ.latest_start])
    if running:
        since = running[-1]
        run = JobRun(started=since, state="running")
        return Verdict(Outcome.STILL_RUNNING, f"still running at {_clock(now, occ.start)}, started "
                       f"{_clock(since, occ.start)} (deadline {_clock(occ.deadline, occ.start)})", run, runs_in_window=n, failed_in_window=nf)
    if failed:
        last = failed[-1]
        error = f", error {last.error}" if last.error else ""
        kind = {"failed": "failed", "retry": "is waiting to retry", "canceled": "was canceled"}[last.state]
        return Verdict(Outcome.FAILED, f"{len(failed)} run(s) in the window, none succeeded: the last, started "
                       f"{_clock(last.started, occ.start)}, {kind}{error}", last, runs_in_window=n, failed_in_window=nf)
    if state.failures_since_success:
        return Verdict(Outcome.FAILED, f"no successful run in the window; failed {state.failures_since_success} "
                       "time(s) since its last success", None, runs_in_window=n, failed_in_window=nf)
    if not state.enabled:
        return Verdict(Outcome.DISABLED, f"did not run in the window: the job is {state.disabled_why or 'disabled'}",
                       None, runs_in_window=n, failed_in_window=nf)
    return Verdict(Outcome.MISSED, f"no run started between {_clock(occ.start, occ.start)} and "
                   f"{_clock(occ.latest_start, occ.start)}", None, runs_in_window=n, failed_in_window=nf)


def _clock(moment: dt.datetime, base: dt.datetime) -> str:
    """A time as people say it about one night: "01:05", or with the date when it is another day than `base`."""
    text = f"{moment:%H:%M:%S}" if moment.second else f"{moment:%H:%M}"
    return text if moment.date() == base.date() else f"{moment:%Y-%m-%d} {text}"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    s = round(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"
