"""What every kind that reads a database beyond one query shares (job windows, reconciliation): the time left for
a statement, and one place where a failure becomes a classified UNKNOWN result instead of an exception."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from checks.context import RunContext
from checks.result import Outcome, Result, unknown
from checks.spec import CheckSpec


class InputMissing(Exception):
    """Something the check needs is not there yet (the day's statement file): UNKNOWN not_found."""


class InputUnreadable(ValueError):
    """Rows or a file that do not read as they should (a truncated bill, a column of the wrong type):
    UNKNOWN content_mismatch, with a message naming where."""


class DatabaseCheck(CheckSpec):
    """A check kind that runs statements on one or more targets and turns them into results itself."""

    needs_target: ClassVar[bool] = True

    def timeout_left(self, ctx: RunContext) -> float:
        """The bound for the next statement: the check's timeout, or what is left of the run's deadline."""
        return min(self.timeout, ctx.remaining(self.timeout))

    def guarded(self, ctx: RunContext, run: Callable[[], list[Result]], key: str = "") -> list[Result]:
        """`run()`'s results, or one UNKNOWN result for the failure that ended it; all stamped with the start
        time, the duration and the target."""
        from checks.sql.secrets import scrub
        from checks.sql.session import SqlFailure

        started = ctx.clock()
        t0 = time.monotonic()
        try:
            results = run()
        except SqlFailure as failure:
            results = [unknown(self.id, failure.outcome, f"{self.display_title}: {failure.message}")]
        except InputMissing as exc:
            results = [unknown(self.id, Outcome.NOT_FOUND, f"{self.display_title}: {exc}")]
        except InputUnreadable as exc:
            results = [unknown(self.id, Outcome.CONTENT_MISMATCH, f"{self.display_title}: {exc}")]
        except Exception as exc:
            message = scrub(f"{type(exc).__name__}: {exc}")
            results = [unknown(self.id, Outcome.INTERNAL_ERROR, f"{self.display_title}: internal error: {message}")]
        elapsed = (time.monotonic() - t0) * 1000.0
        for r in results:
            r.key = r.key or key
            r.target = r.target or self.target or ""
            r.started_at, r.duration_ms = started, elapsed
        return results
