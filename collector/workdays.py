"""The working-day calendar: weekends, statutory holidays and make-up working days (调休), one table per year.

Resolution deadlines are counted in working days, so the calendar must be right, including the Saturdays and
Sundays that are working days because a holiday was moved. Libraries get the years they know right and invent
the others, so Xunjian ships its own table (collector/calendars/cn-YYYY.yaml, from the State Council's notice of
each year) and a hospital adds or replaces years with files of the same shape (`calendar.files` in
collector.yaml). A year without a table falls back to Monday to Friday, and the collector opens a warning
incident from 1 December when next year's table is missing (see `missing_years`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, model_validator

from checks.config_error import ConfigError
from checks.yamlsource import YamlSource, load_yaml, parse_yaml, validate

DAY_S = 86400.0
WARN_FROM_MONTH_DAY = (12, 1)
"""From this day on, next year's table must be loaded (the State Council publishes it in November or December)."""
MAX_DAYS_SCANNED = 3 * 366
"""A deadline further than this is a configuration error, not something to loop over."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class HolidayRange(_Model):
    start: dt.date = Field(alias="from", description="First day off.")
    end: dt.date = Field(alias="to", description="Last day off (the same day for a one-day holiday).")
    name: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> HolidayRange:
        if self.end < self.start:
            raise ValueError(f"'to' {self.end} is before 'from' {self.start}")
        return self


class MakeUpDay(_Model):
    date: dt.date = Field(description="A Saturday or Sunday that is a working day (调休上班).")
    name: str = ""


class YearFile(_Model):
    """One year of the calendar: the days off (weekends inside a break may be listed too) and the make-up days."""

    year: int = Field(ge=2000, le=2100)
    source: str = Field("", description="Where the table comes from (the notice and its date).")
    holidays: list[HolidayRange] = Field(default_factory=list)
    workdays: list[MakeUpDay] = Field(default_factory=list)

    @model_validator(mode="after")
    def _in_year(self) -> YearFile:
        for r in self.holidays:
            if r.start.year != self.year or r.end.year != self.year:
                raise ValueError(f"holiday {r.name or r.start} ({r.start} to {r.end}) is not in {self.year}")
        for w in self.workdays:
            if w.date.year != self.year:
                raise ValueError(f"make-up working day {w.date} is not in {self.year}")
            if any(r.start <= w.date <= r.end for r in self.holidays):
                raise ValueError(f"{w.date} is listed both as a holiday and as a make-up working day")
        return self


@dataclass(frozen=True)
class YearTable:
    year: int
    source: str
    days_off: frozenset[dt.date]
    workdays: frozenset[dt.date]
    names: Mapping[dt.date, str] = field(default_factory=dict)
    origin: str = ""
    """The file it was read from."""


def year_table(doc: YearFile, origin: str) -> YearTable:
    off: set[dt.date] = set()
    names: dict[dt.date, str] = {}
    for r in doc.holidays:
        day = r.start
        while day <= r.end:
            off.add(day)
            names[day] = r.name
            day += dt.timedelta(days=1)
    for w in doc.workdays:
        names[w.date] = w.name
    return YearTable(doc.year, doc.source, frozenset(off), frozenset(w.date for w in doc.workdays), names, origin)


def parse_year(text: str, file: str) -> YearTable:
    return _table(parse_yaml(text, file))


def load_year(path: Path) -> YearTable:
    return _table(load_yaml(path))


def _table(src: YamlSource) -> YearTable:
    if not isinstance(src.data, dict):
        raise ConfigError("expected a mapping with year, source, holidays and workdays", file=src.file,
                          line=src.line_of(()))
    return year_table(validate(YearFile, src.data, src), src.file)


def shipped_years() -> dict[int, YearTable]:
    """The tables shipped in collector/calendars (cn-YYYY.yaml)."""
    out = {}
    for entry in resources.files("collector.calendars").iterdir():
        if entry.name.startswith("cn-") and entry.name.endswith(".yaml"):
            table = parse_year(entry.read_text(encoding="utf-8"), f"collector/calendars/{entry.name}")
            out[table.year] = table
    return out


class WorkingCalendar:
    """Which days are working days in one time zone, and deadline arithmetic in working days."""

    def __init__(self, years: Mapping[int, YearTable], timezone: str = "Asia/Shanghai") -> None:
        self.years = dict(years)
        try:
            self.tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {timezone!r} (an IANA name such as Asia/Shanghai)",
                              field="calendar.timezone") from None
        self.timezone = timezone

    @classmethod
    def load(cls, files: Sequence[Path] = (), timezone: str = "Asia/Shanghai") -> WorkingCalendar:
        """The shipped years, with each of `files` adding a year or replacing the shipped table of its year."""
        years = shipped_years()
        seen: dict[int, str] = {}
        for path in files:
            table = load_year(path)
            if table.year in seen:
                raise ConfigError(f"year {table.year} is also in {seen[table.year]}", file=str(path),
                                  field="calendar.files")
            seen[table.year] = str(path)
            years[table.year] = table
        return cls(years, timezone)

    def loaded(self, year: int) -> bool:
        return year in self.years

    def is_working_day(self, day: dt.date) -> bool:
        table = self.years.get(day.year)
        if table is not None:
            if day in table.workdays:
                return True
            if day in table.days_off:
                return False
        return day.weekday() < 5

    def kind_of(self, day: dt.date) -> str:
        """working, weekend, holiday (a statutory day off) or makeup (a weekend day that is a working day)."""
        table = self.years.get(day.year)
        if table is not None and day in table.workdays:
            return "makeup"
        if table is not None and day in table.days_off:
            return "holiday"
        return "working" if day.weekday() < 5 else "weekend"

    def local(self, at: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(at, self.tz)

    def _midnight(self, day: dt.date) -> float:
        return dt.datetime.combine(day, dt.time(0), self.tz).timestamp()

    def add_working_days(self, start: float, days: float) -> float:
        """The time `days` whole working days of elapsed time after `start`: only time on working days counts.

        Opened on a working day at 15:00, one working day is due at 15:00 on the next working day; opened on a
        Saturday (not a make-up day), the clock starts at 00:00 of the next working day.
        """
        remaining = days * DAY_S
        day = self.local(start).date()
        at = start
        for _ in range(MAX_DAYS_SCANNED):
            end = self._midnight(day + dt.timedelta(days=1))
            if self.is_working_day(day):
                if remaining <= end - at:
                    return at + remaining
                remaining -= end - at
            day += dt.timedelta(days=1)
            at = end
        raise ValueError(f"{days:g} working days from {self.local(start):%Y-%m-%d} is beyond {MAX_DAYS_SCANNED} days")

    def missing_years(self, now: float) -> list[int]:
        """Years the calendar must have by now and does not: this year, and next year from 1 December on."""
        today = self.local(now).date()
        needed = [today.year]
        if (today.month, today.day) >= WARN_FROM_MONTH_DAY:
            needed.append(today.year + 1)
        return [y for y in needed if not self.loaded(y)]

    def describe(self) -> str:
        years = ", ".join(f"{y} ({t.origin})" for y, t in sorted(self.years.items()))
        return f"working-day calendar {self.timezone}: {years or 'no year loaded'}"

