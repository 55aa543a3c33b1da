"""Maintenance windows: silences matched by labels, one-off, recurring in local time with the working-day
calendar, or until the incidents they cover resolve.

A silence never stops results: checks keep running, series and /metrics keep moving, and incidents still open,
recorded as silenced by the silence (its id, who set it and why). Only notifications stay quiet. Pure rules:
`Silence.matches` and `Silence.active_at` take labels and a time.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.workdays import WorkingCalendar

KINDS = ("once", "recurring", "until_resolved")
MATCH_LABELS = ("system", "host", "agent", "target", "check", "key", "priority", "kind")
"""What a silence may match on: the incident's labels. Values are globs (`his.db.*`)."""
DAY_SETS = ("every", "working", "nonworking", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$|^24:00$")


class SilenceError(ValueError):
    """A silence that cannot be right; the message names the field."""


def parse_hhmm(text: str, what: str) -> int:
    """Minutes after midnight of 'HH:MM' (24:00 allowed as the end of a day)."""
    if not _HHMM.match(text.strip()):
        raise SilenceError(f"{what} must be HH:MM (00:00 to 24:00), got {text!r}")
    hours, minutes = text.strip().split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class Recurrence:
    """A daily window in the calendar's time zone on some days: `from` to `to`, crossing midnight when `to` is
    earlier (22:00–02:00 belongs to the day it starts on, so "working nights" means nights that begin on a
    working day)."""

    days: str
    """every, working, nonworking, or weekday names joined by commas (mon,wed,fri)."""
    start_min: int
    end_min: int

    @staticmethod
    def parse(days: str, start: str, end: str) -> Recurrence:
        names = [d.strip().lower() for d in days.split(",") if d.strip()]
        if not names:
            raise SilenceError("days is empty: every, working, nonworking or weekdays such as mon,tue")
        for name in names:
            if name not in DAY_SETS:
                raise SilenceError(f"days: unknown day set {name!r}; expected one of {', '.join(DAY_SETS)}")
        if len(names) > 1 and any(n in ("every", "working", "nonworking") for n in names):
            raise SilenceError("days: every, working and nonworking stand alone")
        a, b = parse_hhmm(start, "from"), parse_hhmm(end, "to")
        if a == b:
            raise SilenceError(f"from and to are both {start}: the window would be empty")
        return Recurrence(",".join(names), a, b)

    def _day_counts(self, day: dt.date, calendar: WorkingCalendar) -> bool:
        if self.days == "every":
            return True
        if self.days == "working":
            return calendar.is_working_day(day)
        if self.days == "nonworking":
            return not calendar.is_working_day(day)
        return _WEEKDAYS[day.weekday()] in self.days.split(",")

    def active_at(self, at: float, calendar: WorkingCalendar) -> bool:
        local = calendar.local(at)
        minute = local.hour * 60 + local.minute
        today = local.date()
        if self.start_min < self.end_min:
            return self.start_min <= minute < self.end_min and self._day_counts(today, calendar)
        # crosses midnight: the evening part belongs to today, the morning part to yesterday's window
        if minute >= self.start_min:
            return self._day_counts(today, calendar)
        if minute < self.end_min:
            return self._day_counts(today - dt.timedelta(days=1), calendar)
        return False

    def text(self) -> str:
        return f"{self.days} {self.start_min // 60:02d}:{self.start_min % 60:02d}-" \
               f"{self.end_min // 60:02d}:{self.end_min % 60:02d}"


@dataclass(frozen=True)
class Silence:
    id: int
    matchers: Mapping[str, str]
    kind: str
    created_by: str
    reason: str
    created_at: float
    starts_at: float
    ends_at: float | None = None
    """Never None for `once`; bounds a recurrence when set; unused for `until_resolved`."""
    recurrence: Recurrence | None = None
    removed_at: float | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(fnmatch.fnmatchcase(labels.get(name, ""), pattern) for name, pattern in self.matchers.items())

    def active_at(self, at: float, calendar: WorkingCalendar) -> bool:
        """Whether the window is open at `at` (an `until_resolved` silence is open until it is removed)."""
        if self.removed_at is not None and at >= self.removed_at:
            return False
        if at < self.starts_at or (self.ends_at is not None and at >= self.ends_at):
            return False
        if self.kind == "recurring":
            assert self.recurrence is not None
            return self.recurrence.active_at(at, calendar)
        return True

    def expired(self, at: float) -> bool:
        """Over for good: removed, or past its end."""
        return (self.removed_at is not None and at >= self.removed_at) or (self.ends_at is not None and
                                                                           at >= self.ends_at)



def validate_matchers(raw: Any) -> dict[str, str]:
    if not isinstance(raw, Mapping) or not raw:
        raise SilenceError("matchers must be a non-empty object such as {\"system\": \"HIS\", \"check\": \"his.db.*\"}")
    out = {}
    for name, pattern in raw.items():
        if name not in MATCH_LABELS:
            raise SilenceError(f"matchers.{name}: unknown label; expected one of {', '.join(MATCH_LABELS)}")
        if not isinstance(pattern, str) or not pattern.strip():
            raise SilenceError(f"matchers.{name}: must be a non-empty string (a glob such as his.db.*)")
        out[name] = pattern.strip()
    if set(out.values()) == {"*"}:
        raise SilenceError("matchers: a silence matching everything would hide every incident; name at least one "
                           "label that is not '*'")
    return out


@dataclass
class SilenceSet:
    """The silences in force, shared by the state engine (event loop) and the API (HTTP threads): readers take the
    tuple as it is, writers replace it whole under a lock once their change is committed."""

    calendar: WorkingCalendar
    items: tuple[Silence, ...] = ()
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def replace(self, silences: Iterable[Silence]) -> None:
        with self._lock:
            self.items = tuple(silences)

    def put(self, silence: Silence) -> None:
        with self._lock:
            self.items = (*(s for s in self.items if s.id != silence.id), silence)

    def drop(self, silence_id: int) -> None:
        with self._lock:
            self.items = tuple(s for s in self.items if s.id != silence_id)

    def silencing(self, labels: Mapping[str, str], at: float) -> Silence | None:
        """The first silence open at `at` that matches `labels`."""
        for s in self.items:
            if s.active_at(at, self.calendar) and s.matches(labels):
                return s
        return None

    def by_id(self, silence_id: int) -> Silence | None:
        return next((s for s in self.items if s.id == silence_id), None)
