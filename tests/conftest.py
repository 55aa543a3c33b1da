"""Shared test plumbing: a missing service skips locally but fails under CI=true (docs/architecture.md, "Tests")."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from collector.sqlite import open_sqlite  # noqa: E402
from collector.sqlstore import SqlStore  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() == "true"


def calendar_stand_ins(directory: Path, now: float | None = None) -> list[Path]:
    """Weekends-only year tables for the years the shipped working-day calendar lacks now (next year from 1 December
    until the State Council's arrangement is shipped), so a test collector does not open the 'calendar not loaded'
    warning incident. Test data, not a calendar: `source` says so."""
    import time

    from collector.workdays import WorkingCalendar

    out = []
    for year in WorkingCalendar.load().missing_years(time.time() if now is None else now):
        path = directory / f"calendar-stand-in-{year}.yaml"
        path.write_text(f"year: {year}\nsource: test stand-in (weekends only, no statutory holidays)\n",
                        encoding="utf-8")
        out.append(path)
    return out


def require(available: bool, what: str) -> None:
    """Skip when `what` is missing on a developer machine; fail in CI, where `make test` must have provided it."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"required service missing in CI: {what}")
    pytest.skip(f"service not available: {what}")


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Daemon entry points run in-process (serve(), run_agent()) install their own root handler on a stream a
    test captures; put the root logger back so no later test logs into a closed stream or through its filters."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    """An empty SQLite store of the collector in the test's directory, closed after the test. Tests that need
    rows in it from the start define their own `store`."""
    s = open_sqlite(tmp_path / "collector.db")
    yield s
    s.close()
