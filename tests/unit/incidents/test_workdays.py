"""The working-day calendar: the shipped tables match the State Council's notices, deadlines count working days
across weekends, the National Day week and make-up Saturdays, and a missing year is noticed from 1 December."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from checks.config_error import ConfigError
from collector.workdays import WorkingCalendar, load_year, shipped_years

TZ = dt.timezone(dt.timedelta(hours=8))


def at(text: str) -> float:
    """A Beijing wall-clock time as unix seconds."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=TZ).timestamp()


def local(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, TZ).strftime("%Y-%m-%d %H:%M")


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return WorkingCalendar.load()


def test_2026_national_day_and_spring_festival_as_the_notice_says(cal: WorkingCalendar) -> None:
    """国务院办公厅关于2026年部分节假日安排的通知 (2025-11-04): 国庆 10月1日至7日, 9月20日(周日)、10月10日(周六)上班;
    春节 2月15日至23日, 2月14日(周六)、2月28日(周六)上班."""
    days = {d: cal.kind_of(dt.date(2026, 10, d)) for d in range(1, 12)}
    assert [days[d] for d in range(1, 8)] == ["holiday"] * 7
    assert days[8] == days[9] == "working"
    assert days[10] == "makeup" and cal.is_working_day(dt.date(2026, 10, 10))
    assert cal.kind_of(dt.date(2026, 9, 20)) == "makeup"
    assert all(not cal.is_working_day(dt.date(2026, 2, d)) for d in range(15, 24))
    assert cal.is_working_day(dt.date(2026, 2, 14)) and cal.is_working_day(dt.date(2026, 2, 28))
    assert cal.kind_of(dt.date(2026, 2, 21)) == "holiday", "a weekend inside a break is listed as the holiday"


@pytest.mark.parametrize("year", [2025, 2026])
def test_shipped_tables_agree_with_the_holidays_package(year: int) -> None:
    """Seeded from a library, checked against it: every day of the year is a working day in both or in neither."""
    holidays = pytest.importorskip("holidays")
    theirs = holidays.China(years=year)
    makeup = {dt.date(int(y), int(m), int(d)) for name in theirs.values()
              for m, d, y in re.findall(r"substituted from (\d\d)/(\d\d)/(\d{4})", name)}
    ours = WorkingCalendar(shipped_years())
    day = dt.date(year, 1, 1)
    while day.year == year:
        expected = (day.weekday() < 5 or day in makeup) and day not in theirs
        assert ours.is_working_day(day) == expected, day
        day += dt.timedelta(days=1)


def test_one_working_day_across_a_weekend(cal: WorkingCalendar) -> None:
    assert local(cal.add_working_days(at("2026-03-06 15:00"), 1)) == "2026-03-09 15:00"  # Friday → Monday
    assert local(cal.add_working_days(at("2026-03-04 09:30"), 3)) == "2026-03-09 09:30"  # Wednesday → Monday
    assert local(cal.add_working_days(at("2026-03-02 08:00"), 5)) == "2026-03-09 08:00"  # Monday → Monday


def test_opened_on_a_day_off_counts_from_the_next_working_day(cal: WorkingCalendar) -> None:
    assert local(cal.add_working_days(at("2026-03-07 03:00"), 1)) == "2026-03-10 00:00"  # Saturday → Tuesday 00:00


def test_the_national_day_week(cal: WorkingCalendar) -> None:
    opened = at("2026-09-30 10:00")  # the Wednesday before the break
    assert local(cal.add_working_days(opened, 1)) == "2026-10-08 10:00"
    assert local(cal.add_working_days(opened, 3)) == "2026-10-10 10:00", "Saturday 10 October is a working day"
    assert local(cal.add_working_days(opened, 5)) == "2026-10-13 10:00"
    assert local(cal.add_working_days(at("2026-10-03 12:00"), 1)) == "2026-10-09 00:00", "opened inside the break"


def test_a_make_up_working_saturday(cal: WorkingCalendar) -> None:
    assert local(cal.add_working_days(at("2026-10-09 16:00"), 1)) == "2026-10-10 16:00"
    assert local(cal.add_working_days(at("2026-02-13 11:00"), 1)) == "2026-02-14 11:00", "Saturday before 春节"
    assert local(cal.add_working_days(at("2026-02-14 11:00"), 1)) == "2026-02-24 11:00", "then the whole break"


def test_missing_years_from_the_first_of_december(cal: WorkingCalendar) -> None:
    assert cal.missing_years(at("2026-11-30 23:59")) == []
    assert cal.missing_years(at("2026-12-01 00:00")) == [2027]
    assert cal.missing_years(at("2028-03-01 12:00")) == [2028]


def test_a_year_without_a_table_counts_monday_to_friday(cal: WorkingCalendar) -> None:
    assert not cal.loaded(2030)
    assert cal.is_working_day(dt.date(2030, 1, 1)), "no table: New Year's Day is not known to be off"
    assert local(cal.add_working_days(at("2030-01-04 10:00"), 1)) == "2030-01-07 10:00"


def test_a_hospital_file_adds_a_year_and_replaces_a_shipped_one(tmp_path: Path) -> None:
    y2027 = tmp_path / "cn-2027.yaml"
    y2027.write_text("year: 2027\nsource: hospital\nholidays:\n  - {from: 2027-01-01, to: 2027-01-03, name: 元旦}\n"
                     "workdays:\n  - {date: 2027-01-09, name: test}\n", encoding="utf-8")
    y2026 = tmp_path / "cn-2026.yaml"
    y2026.write_text("year: 2026\nsource: hospital closes on its anniversary\nholidays:\n"
                     "  - {from: 2026-06-01, to: 2026-06-01, name: 院庆}\n", encoding="utf-8")
    cal = WorkingCalendar.load([y2027, y2026])
    assert cal.loaded(2027) and not cal.is_working_day(dt.date(2027, 1, 1)) and cal.kind_of(dt.date(2027, 1, 9)) == "makeup"
    assert not cal.is_working_day(dt.date(2026, 6, 1))
    assert cal.is_working_day(dt.date(2026, 10, 8)) and cal.is_working_day(dt.date(2026, 10, 1)), \
        "the hospital's 2026 table replaces ours whole"
    assert cal.missing_years(at("2026-12-02 09:00")) == []


@pytest.mark.parametrize(("text", "message"), [
    ("year: 2027\nholidays:\n  - {from: 2027-01-03, to: 2027-01-01}\n",
     "cal.yaml:3: holidays[0]: 'to' 2027-01-01 is before 'from' 2027-01-03"),
    ("year: 2027\nholidays:\n  - {from: 2026-12-31, to: 2027-01-01, name: x}\n",
     "cal.yaml:1: holiday x (2026-12-31 to 2027-01-01) is not in 2027"),
    ("year: 2027\nworkdays:\n  - {date: 2027-13-01}\n",
     "cal.yaml:3: workdays[0].date: '2027-13-01' is not a valid date or time (month must be in 1..12)"),
    ("year: 2027\nholiday: []\n", "cal.yaml:2: holiday: unknown field (did you mean 'holidays'?)"),
])
def test_a_bad_file_names_file_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cal.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_year(path)
    assert str(err.value).replace(str(tmp_path) + "/", "").startswith(message)


def test_the_same_year_twice_is_refused(tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    for p in (a, b):
        p.write_text("year: 2027\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="year 2027 is also in"):
        WorkingCalendar.load([a, b])


def test_an_unknown_time_zone() -> None:
    with pytest.raises(ConfigError, match="unknown time zone 'Mars/Base'"):
        WorkingCalendar({}, "Mars/Base")
