"""Judging a job's window, pure: which window is judged at a given server time, and each outcome."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from checks.jobs.window import JobRun, JobState, Window, judge
from checks.result import Outcome

NIGHT = Window.model_validate({"start": "01:00", "end": "03:00", "finish_by": "05:00", "grace": "15m"})


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_the_latest_window_whose_deadline_has_passed_is_judged() -> None:
    occ = NIGHT.occurrence_before(at("2025-03-10 05:30"))
    assert (occ.start, occ.latest_start, occ.deadline) == (at("2025-03-10 01:00"), at("2025-03-10 03:15"),
                                                           at("2025-03-10 05:15"))
    before = NIGHT.occurrence_before(at("2025-03-10 05:14"))
    assert before.start == at("2025-03-09 01:00"), "before the deadline, last night's window is the latest closed one"


def test_a_window_across_midnight() -> None:
    w = Window.model_validate({"start": "23:00", "end": "00:30", "finish_by": "02:00"})
    occ = w.occurrence_before(at("2025-03-10 06:00"))
    assert (occ.start, occ.latest_start, occ.deadline) == (at("2025-03-09 23:00"), at("2025-03-10 00:30"),
                                                           at("2025-03-10 02:00"))
    assert w.occurrence_before(at("2025-03-10 23:30")).start == at("2025-03-09 23:00")


def test_finish_by_defaults_to_the_end_of_the_start_window() -> None:
    w = Window.model_validate({"start": "01:00", "end": "04:00"})
    assert w.occurrence_before(at("2025-03-10 12:00")).deadline == at("2025-03-10 04:00")


@pytest.mark.parametrize("raw, expected", [("01:30", dt.time(1, 30)), (90, dt.time(1, 30)), ("23:59", dt.time(23, 59))])
def test_times_as_written_in_yaml(raw: object, expected: dt.time) -> None:
    assert Window.model_validate({"start": raw, "end": "05:00"}).start == expected


@pytest.mark.parametrize("raw", ["25:00", "1 am", 5, "01:30:00", None])
def test_bad_times_are_refused_with_the_expected_form(raw: object) -> None:
    with pytest.raises(ValidationError) as info:
        Window.model_validate({"start": raw, "end": "05:00"})
    assert "01:30" in str(info.value) or "time" in str(info.value)


def test_same_start_and_end_is_refused() -> None:
    with pytest.raises(ValidationError, match="start and end are the same time"):
        Window.model_validate({"start": "01:00", "end": "01:00"})


NOW = at("2025-03-10 06:00")
OCC = NIGHT.occurrence_before(NOW)


def run(start: str, state: str, end: str | None = None, error: str = "") -> JobRun:
    return JobRun(at(f"2025-03-10 {start}"), state, at(f"2025-03-10 {end}") if end else None, error)  # type: ignore[arg-type]


def test_a_success_in_the_window_is_ok_with_its_duration() -> None:
    v = judge(OCC, NOW, [run("01:02", "succeeded", "02:32")], JobState())
    assert v.outcome == Outcome.OK
    assert v.run is not None and v.run.seconds == 5400
    assert v.summary == "succeeded (started 01:02, took 90 min)"


def test_no_run_is_missed_and_a_run_outside_the_window_does_not_count() -> None:
    v = judge(OCC, NOW, [run("03:30", "succeeded", "03:40"), JobRun(at("2025-03-09 01:00"), "succeeded")], JobState())
    assert v.outcome == Outcome.MISSED
    assert v.summary == "no run started between 01:00 and 03:15"


def test_failed_runs_and_a_retry_that_succeeded() -> None:
    failed = judge(OCC, NOW, [run("01:00", "failed", "01:01", "ORA-01555"), run("01:30", "canceled", "01:31")],
                   JobState())
    assert failed.outcome == Outcome.FAILED and failed.failed_in_window == 2
    assert failed.summary.endswith("the last, started 01:30, was canceled")
    retried = judge(OCC, NOW, [run("01:00", "failed", "01:01"), run("01:10", "succeeded", "01:40")], JobState())
    assert retried.outcome == Outcome.OK and "after 1 failed attempt(s)" in retried.summary


def test_still_running_after_the_deadline() -> None:
    v = judge(OCC, NOW, [run("01:00", "running")], JobState())
    assert v.outcome == Outcome.STILL_RUNNING
    assert v.summary == "still running at 06:00, started 01:00 (deadline 05:15)"
    stuck = judge(OCC, NOW, [], JobState(running_since=[at("2025-03-09 01:00")]))
    assert stuck.outcome == Outcome.STILL_RUNNING and "started 2025-03-09 01:00" in stuck.summary


def test_finished_after_the_deadline_is_too_long() -> None:
    v = judge(OCC, NOW, [run("02:50", "succeeded", "05:40")], JobState())
    assert (v.outcome, v.late) == (Outcome.TOO_LONG, True)
    assert "finished 05:40, after its deadline 05:15" in v.summary


def test_disabled_explains_a_missed_window() -> None:
    v = judge(OCC, NOW, [], JobState(enabled=False, disabled_why="broken"))
    assert v.outcome == Outcome.DISABLED and v.summary.endswith("the job is broken")


def test_dbms_job_failures_since_the_last_success_are_a_failure() -> None:
    v = judge(OCC, NOW, [JobRun(at("2025-03-08 01:00"), "succeeded")], JobState(failures_since_success=3))
    assert v.outcome == Outcome.FAILED and "failed 3 time(s) since its last success" in v.summary
