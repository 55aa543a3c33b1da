"""Noise control rules with an injected clock: flapping (Icinga 2's weighted ring), silences (one-off, recurring on
the working-day calendar, until resolved) and their matching."""

from __future__ import annotations

import pytest

from collector import flapping
from collector.deadlines import finished_silences
from collector.flapping import Thresholds
from collector.silences import Recurrence, Silence, SilenceError, SilenceSet, validate_matchers
from collector.workdays import WorkingCalendar
from tests.unit.incidents.test_workdays import at


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return WorkingCalendar.load()


def ring_of(changes: list[bool]) -> int:
    ring = 0
    for changed in changes:
        ring = flapping.record(ring, changed)
    return ring


def test_weights_rise_from_the_oldest_to_the_newest() -> None:
    assert flapping.percent(ring_of([True] + [False] * 19)) == pytest.approx(100 * 0.8 / 20)
    assert flapping.percent(ring_of([False] * 19 + [True])) == pytest.approx(100 * 1.18 / 20)
    assert flapping.percent(ring_of([True] * 20)) == pytest.approx(99.0)
    assert flapping.percent(ring_of([True] * 25)) == pytest.approx(99.0), "only the last 20 results count"
    assert flapping.percent(0) == 0.0


def test_starts_above_high_and_stops_at_or_below_low() -> None:
    t = Thresholds()
    seven_recent = ring_of([False] * 13 + [True] * 7)  # 7 changes at the newest end: (1.06+...+1.18)/20 ≈ 39.2 %
    assert flapping.is_flapping(False, flapping.percent(seven_recent), t)
    assert not flapping.is_flapping(False, 30.0, t), "exactly 30 % does not start flapping"
    assert flapping.is_flapping(True, 27.0, t), "between the thresholds a flapping series keeps flapping"
    assert not flapping.is_flapping(False, 27.0, t), "and a steady one stays steady"
    assert not flapping.is_flapping(True, 25.0, t), "at 25 % it stops"
    assert not flapping.is_flapping(False, 90.0, Thresholds(enabled=False))


def test_one_off_silence_only_inside_its_window(cal: WorkingCalendar) -> None:
    s = Silence(1, {"system": "HIS"}, "once", "ops", "upgrade", at("2026-12-02 08:00"), at("2026-12-02 22:00"),
                at("2026-12-03 02:00"))
    assert not s.active_at(at("2026-12-02 21:59"), cal)
    assert s.active_at(at("2026-12-02 23:30"), cal)
    assert not s.active_at(at("2026-12-03 02:00"), cal)
    assert s.expired(at("2026-12-03 02:00"))


def test_every_working_night_skips_the_holiday_and_keeps_the_make_up_saturday(cal: WorkingCalendar) -> None:
    """01:00-04:00 on working days, during the year-DB migration: not on 2 October (National Day), yes on Saturday
    10 October (a make-up working day), not on Sunday 11 October, yes on a plain Wednesday."""
    s = Silence(2, {"check": "his.db.*"}, "recurring", "dba", "年库迁移", at("2026-09-01 00:00"), at("2026-09-01 00:00"),
                at("2026-12-31 00:00"), Recurrence.parse("working", "01:00", "04:00"))
    assert s.active_at(at("2026-09-30 02:00"), cal)
    assert not s.active_at(at("2026-09-30 04:00"), cal)
    assert not s.active_at(at("2026-10-02 02:00"), cal)
    assert s.active_at(at("2026-10-10 01:00"), cal)
    assert not s.active_at(at("2026-10-11 02:00"), cal)
    assert not s.active_at(at("2027-01-06 02:00"), cal), "past its end"


def test_a_window_past_midnight_belongs_to_the_day_it_starts(cal: WorkingCalendar) -> None:
    r = Recurrence.parse("working", "22:00", "02:00")
    assert r.active_at(at("2026-10-09 23:00"), cal), "Friday 9 October is a working day"
    assert r.active_at(at("2026-10-10 01:30"), cal), "its night runs into Saturday morning"
    assert r.active_at(at("2026-10-10 23:00"), cal), "Saturday 10 October is a make-up working day"
    assert not r.active_at(at("2026-10-07 23:00"), cal), "the last day of the National Day break"
    assert not r.active_at(at("2026-10-08 01:00"), cal), "...and its night"
    assert not r.active_at(at("2026-10-09 12:00"), cal)
    weekdays = Recurrence.parse("sat,sun", "00:00", "24:00")
    assert weekdays.active_at(at("2026-10-10 12:00"), cal) and not weekdays.active_at(at("2026-10-09 12:00"), cal)


def test_matchers_are_globs_over_the_incident_labels() -> None:
    s = Silence(3, {"system": "HIS", "check": "his.db.*"}, "until_resolved", "ops", "known", 0.0, 0.0)
    assert s.matches({"system": "HIS", "check": "his.db.tablespace", "host": "db1"})
    assert not s.matches({"system": "LIS", "check": "his.db.tablespace"})
    assert not s.matches({"system": "HIS", "check": "his.app.cpu"})


@pytest.mark.parametrize(("matchers", "message"), [
    ({}, "matchers must be a non-empty object"),
    ({"sytem": "HIS"}, "matchers.sytem: unknown label"),
    ({"system": ""}, "matchers.system: must be a non-empty string"),
    ({"system": "*", "check": "*"}, "a silence matching everything"),
])
def test_bad_matchers(matchers: dict[str, str], message: str) -> None:
    with pytest.raises(SilenceError, match=message):
        validate_matchers(matchers)


@pytest.mark.parametrize(("days", "start", "end", "message"), [
    ("weekdays", "01:00", "04:00", "unknown day set 'weekdays'"),
    ("working,mon", "01:00", "04:00", "stand alone"),
    ("every", "1am", "04:00", "from must be HH:MM"),
    ("every", "04:00", "04:00", "the window would be empty"),
])
def test_bad_recurrences(days: str, start: str, end: str, message: str) -> None:
    with pytest.raises(SilenceError, match=message):
        Recurrence.parse(days, start, end)


def test_silence_set_finds_the_first_open_match(cal: WorkingCalendar) -> None:
    now = at("2026-12-02 10:00")
    silences = SilenceSet(cal)
    silences.replace([Silence(1, {"system": "LIS"}, "once", "a", "r", now, now - 60, now + 60),
                      Silence(2, {"system": "HIS"}, "once", "a", "r", now, now + 3600, now + 7200),
                      Silence(3, {"system": "HIS"}, "once", "a", "r", now, now - 60, now + 60)])
    found = silences.silencing({"system": "HIS"}, now)
    assert found is not None and found.id == 3
    silences.drop(3)
    assert silences.silencing({"system": "HIS"}, now) is None


def test_until_resolved_ends_when_no_active_incident_carries_it() -> None:
    now = at("2026-12-02 10:00")
    kept = Silence(1, {"system": "HIS"}, "until_resolved", "a", "r", now, now)
    done = Silence(2, {"system": "LIS"}, "until_resolved", "a", "r", now, now)
    over = Silence(3, {"system": "PACS"}, "once", "a", "r", now, now, now + 60)
    assert finished_silences([kept, done, over], {1}, now + 120) == [
        (2, "the incidents it covered resolved"), (3, "ended")]
