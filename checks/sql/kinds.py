"""The sql.* check kinds: sql.metric, sql.assert and sql.findings.

Running a query (session, guard, timeouts, errors → outcomes) is separate from turning its rows into
results (`evaluate`), so the row handling is tested with rows shaped like each engine's catalog views.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import string
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from checks.context import RunContext
from checks.result import Finding, Outcome, Result, Status, unknown
from checks.spec import CheckSpec, Duration
from checks.sql.errors import SqlFailure
from checks.sql.maintenance import Remembered, SessionFilter, session_filter, split_sessions
from checks.sql.query import QueryField, QueryMap
from checks.sql.rows import Rows, ServerInfo

if TYPE_CHECKING:
    from checks.sql.session import Session

_STATUS_BY_NAME = {
    "ok": Status.OK,
    "warning": Status.WARNING,
    "critical": Status.CRITICAL,
    "unknown": Status.UNKNOWN,
}


def number(value: Any) -> float | None:
    """A numeric cell as float (intervals as seconds); None for NULL and anything not a number."""
    if value is None or isinstance(value, bool):
        return float(value) if isinstance(value, bool) else None
    if isinstance(value, (int, float, decimal.Decimal)):
        return float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return None


def number_or_text(value: Any) -> float | None:
    """Like number(), but also numeric text (MySQL status variables are strings)."""
    n = number(value)
    if n is not None or not isinstance(value, (str, bytes)):
        return n
    text = value.decode() if isinstance(value, bytes) else value
    try:
        return float(text.strip())
    except ValueError:
        return None


def _truthy(value: Any) -> bool:
    n = number_or_text(value)
    if n is not None:
        return n != 0
    return isinstance(value, str) and value.strip().lower() in ("t", "true", "on", "yes", "y")


def fmt_number(value: float | None) -> str:
    if value is None:
        return "NULL"
    if float(value).is_integer():
        return str(int(value))
    text = f"{value:.2f}" if abs(value) >= 1 else f"{value:.4g}"
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def check_template(text: str) -> str:
    """A recommendation/title template: literal text with {column} placeholders."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise ValueError(f"bad template ({exc}); use {{column}} placeholders and {{{{ }}}} for braces") from None
    for f in fields:
        if not f or not f.replace("_", "").isalnum():
            raise ValueError(f"template placeholder {{{f}}} must be a plain column name")
    return text


class Cells(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _lower(names: Sequence[str]) -> list[str]:
    return [n.lower() for n in names]


UNREACHABLE = frozenset({Outcome.CONNECTION_REFUSED, Outcome.TIMEOUT, Outcome.DNS_ERROR, Outcome.TLS_ERROR,
                         Outcome.AUTH_FAILED, Outcome.TOO_MANY_CLIENTS})
"""Outcomes that can mean the target cannot be reached at all (its reachability check tells which)."""


def _note_left_out(results: list[Result], reasons: list[str]) -> None:
    """Say on each result how many maintenance sessions were left out, and why (counted by reason)."""
    if not reasons:
        return
    counts: dict[str, int] = {}
    for why in reasons:
        counts[why] = counts.get(why, 0) + 1
    said = ", ".join(f"{why}" + (f" x{n}" if n > 1 else "") for why, n in sorted(counts.items()))
    for r in results:
        r.metrics["maintenance_sessions"] = float(len(reasons))
        r.summary += f" ({len(reasons)} maintenance session{'s' if len(reasons) > 1 else ''} left out: {said})"


class SqlCheck(CheckSpec):
    """Options every sql.* kind shares: the query, a row cap and an optional precondition."""

    needs_target: ClassVar[bool] = True

    query: QueryField = Field(description="SQL per dialect, or per dialect a list of {sql, min_version, max_version, flavor}.")
    max_rows: int | None = Field(None, ge=1, description="Most rows read; defaults to the target's max_rows.")
    requires: QueryField | None = Field(
        None,
        description="A query that must return a row whose first column is true/non-zero, else UNKNOWN not_found "
        "with requires_message (e.g. an extension or performance_schema being present).",
    )
    requires_message: str = Field("a prerequisite of this check is missing on the server", description="Why, for the UNKNOWN result.")
    exclude_maintenance: bool = Field(
        False,
        description="Leave out rows of maintenance sessions (pg_dump, mysqldump, RMAN, backups, and the target's "
        "maintenance_sessions in agent.yaml), matched on the row's application, program, username and query columns.",
    )

    def sql_queries(self) -> list[tuple[str, QueryMap]]:
        """The statements this check may send, for the allow-list check when it is bound (checks/sql/binding.py)."""
        return [("query", self.query)] + ([("requires", self.requires)] if self.requires is not None else [])

    def probe(self, ctx: RunContext) -> list[Result]:
        from checks.sql.session import session_for

        started = ctx.clock()
        t0 = time.monotonic()
        target = self.target or ""
        try:
            with session_for(ctx, target, wait=ctx.remaining(self.timeout)) as session:
                timeout = min(self.timeout, ctx.remaining(self.timeout))
                if self.requires is not None:
                    pre = session.run(self.requires, timeout=timeout, max_rows=1, check_id=self.id)
                    if not pre.rows or not _truthy(pre.rows[0][0]):
                        results = [unknown(self.id, Outcome.NOT_FOUND, f"{self.display_title}: {self.requires_message}", target=target)]
                        return self._stamp(results, started, t0)
                    timeout = min(self.timeout, ctx.remaining(self.timeout))
                rows = session.run(self.query, timeout=timeout, max_rows=self.max_rows, check_id=self.id)
                left_out: list[str] = []
                if self.exclude_maintenance:
                    which = session_filter(session.target.dialect, session.target.maintenance_sessions)
                    seen: dict[str, float] = ctx.resources.setdefault(f"sql-maintenance:{target}", {})
                    rows, left_out = self.leave_out(rows, which, Remembered(seen, ctx.clock()))
                results = self.judge(rows, session, ctx)
                _note_left_out(results, left_out)
        except SqlFailure as failure:
            results = [self.failed(failure)]
        except Exception as exc:
            from checks.sql.secrets import scrub

            message = scrub(f"{type(exc).__name__}: {exc}")
            results = [unknown(self.id, Outcome.INTERNAL_ERROR, f"{self.display_title}: internal error: {message}", target=target)]
        return self._stamp(results, started, t0)

    def judge(self, rows: Rows, session: Session, ctx: RunContext) -> list[Result]:
        """Rows to results: the pure evaluate(), then finish() for state kept between runs."""
        return self.finish(self.evaluate(rows, session.info), ctx)

    def failed(self, failure: SqlFailure) -> Result:
        """UNKNOWN with the failure's outcome; when the target itself is unreachable, naming the check that says so."""
        summary = f"{self.display_title}: {failure.message}"
        if self.parent and failure.outcome in UNREACHABLE:
            summary += f" (target {self.target} unreachable: see {self.parent})"
        return unknown(self.id, failure.outcome, summary, target=self.target or "")

    def leave_out(self, rows: Rows, which: SessionFilter, memory: Remembered | None = None) -> tuple[Rows, list[str]]:
        """Rows without the maintenance sessions, and why each left-out row was left out."""
        kept, reasons = split_sessions(rows.columns, rows.rows, which, memory)
        return Rows(columns=rows.columns, rows=kept, truncated=rows.truncated), reasons

    def _stamp(self, results: list[Result], started: float, t0: float) -> list[Result]:
        elapsed = (time.monotonic() - t0) * 1000.0
        for r in results:
            r.started_at = started
            r.duration_ms = elapsed
            r.target = r.target or (self.target or "")
        return results

    def evaluate(self, rows: Rows, server: ServerInfo) -> list[Result]:
        """Turn the rows of this check's query into results (pure; no database)."""
        raise NotImplementedError

    def finish(self, results: list[Result], ctx: RunContext) -> list[Result]:
        """Hook after evaluate() for state kept between runs (counter deltas)."""
        return results

    def _column(self, rows: Rows, name: str, option: str) -> int:
        try:
            return rows.columns.index(name.lower())
        except ValueError:
            raise ShapeError(f"{option} {name!r} is not among the query's columns ({', '.join(rows.columns)})") from None

    def _shape_error(self, exc: ShapeError) -> list[Result]:
        return [unknown(self.id, Outcome.CONTENT_MISMATCH, f"{self.display_title}: {exc}", target=self.target or "")]


class ShapeError(Exception):
    """The rows do not have the columns the check declares."""


class CounterRatio(BaseModel):
    """The share of one counter's increase in another's, e.g. on-disk temporary tables of all temporary tables."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    numerator: str = Field(description="Column of the counter counted, e.g. created_tmp_disk_tables.")
    denominator: str = Field(description="Column of the counter it is a share of, e.g. created_tmp_tables.")
    scale: float = Field(100.0, description="Multiplier: 100 for percent.")
    min_denominator: float = Field(0.0, ge=0, description="Below this increase of the denominator the share is not judged (too few to mean anything).")

    @field_validator("numerator", "denominator")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()


_RATE_PERIODS: dict[str, tuple[float, str]] = {
    "per_second": (1.0, "/s"),
    "per_minute": (60.0, "/min"),
    "per_hour": (3600.0, "/h"),
    "per_day": (86400.0, "/day"),
}
ATTRIBUTION_COLUMNS = ("session_id", "application", "program", "username", "client")
"""Row columns that say whose session a value belongs to; named in the summary of a session-based check."""


class SqlMetric(SqlCheck):
    kind_doc: ClassVar[str] = (
        "One number from a query, or one per row key. Columns `key` and `value` by default "
        "(key_column/value_column, each a name or a list of alternatives: the first present is used); a query "
        "without the key column must return one row, unless `aggregate: max` takes the largest value over all rows "
        "(one row per session: the summary names the worst one's session, application, program, user and client). "
        "Other numeric columns become metrics of the row's result. warn/crit apply to the value, or with `delta` "
        "to its increase (or rate) since the previous run or over `delta_window`, or with `ratio` to the share of "
        "one counter's increase in another's. `value_map` turns text states (Yes/No) into numbers."
    )

    example: ClassVar[str] = """
id: his.db.tablespace
kind: sql.metric
target: his_db
query:
  oracle: SELECT tablespace_name AS key, used_percent AS value FROM dba_tablespace_usage_metrics
unit: percent
warn: "> 90"
crit: "> 95"
"""

    kind: Literal["sql.metric"] = "sql.metric"
    key_column: list[str] = Field(["key"], description="Column naming the series (e.g. tablespace); absent = single value.")
    value_column: list[str] = Field(["value"], description="Column holding the number compared with warn/crit.")
    unit: str = Field("", description="Unit of the value: percent, seconds, bytes, count...")
    if_null: Literal["ok", "warning", "critical", "unknown", "skip"] = Field(
        "unknown", description="Status of a row whose value is NULL (skip drops the row)."
    )
    if_empty: Literal["ok", "warning", "critical", "unknown"] = Field(
        "ok", description="Status when the query returns no rows (e.g. not a replica)."
    )
    empty_summary: str = Field("no rows", description='Summary when no rows come back, e.g. "not a replica".')
    aggregate: Literal["none", "max"] = Field(
        "none", description="max: one result, the largest value over all rows (no rows = 0), e.g. the longest query."
    )
    value_map: dict[str, float] | None = Field(
        None, description='Text values to numbers, case-blind, e.g. {"Yes": 0, "Connecting": 1, "No": 2}; other text is NULL.'
    )
    detail_columns: list[str] = Field(
        default_factory=list,
        description="Columns added to the summary of a result that is not OK (e.g. last_io_error), with every quoted "
        "part masked (where server messages carry values).",
    )
    delta: Literal["none", "increase", "per_second", "per_minute", "per_hour", "per_day"] = Field(
        "none",
        description="For cumulative counters (deadlocks, Aborted_connects, wait time): report the increase since the "
        "previous run (or over delta_window), or that increase as a rate. The first run only records the counter.",
    )
    delta_window: Duration | None = Field(
        None,
        description="With delta: the increase over this sliding window (e.g. 1h, 1d) instead of since the previous "
        "run, as in \"more than 10 deadlocks a day\"; while the window fills, the increase so far.",
    )
    ratio: CounterRatio | None = Field(
        None,
        description="With delta: the value is scale x (increase of numerator) / (increase of denominator), "
        "e.g. the share of temporary tables that went to disk in the last interval.",
    )

    @field_validator("key_column", "value_column", mode="before")
    @classmethod
    def _alternatives(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("key_column", "value_column")
    @classmethod
    def _lower_alternatives(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("name at least one column")
        return _lower(v)

    @field_validator("detail_columns")
    @classmethod
    def _lower_details(cls, v: list[str]) -> list[str]:
        return _lower(v)

    @field_validator("value_map")
    @classmethod
    def _fold_map(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        return None if v is None else {k.strip().lower(): float(n) for k, n in v.items()}

    @model_validator(mode="after")
    def _delta_options(self) -> SqlMetric:
        if self.delta == "none" and (self.delta_window is not None or self.ratio is not None):
            raise ValueError("delta_window and ratio need delta (increase or a rate)")
        if self.ratio is not None and self.delta != "increase":
            raise ValueError("ratio compares two counters' increases: use delta: increase")
        if self.delta_window is not None and self.delta_window <= 0:
            raise ValueError("delta_window must be a positive duration such as 1h")
        if self.aggregate != "none" and self.delta != "none":
            raise ValueError("aggregate takes the largest current value; it cannot be combined with delta")
        return self

    def _value(self, cell: Any) -> float | None:
        if self.value_map is not None and isinstance(cell, (str, bytes)):
            text = (cell.decode("utf-8", "replace") if isinstance(cell, bytes) else cell).strip().lower()
            if text in self.value_map:
                return self.value_map[text]
        return number_or_text(cell)

    def _details(self, rows: Rows, row: tuple[Any, ...], dialect: str) -> str:
        from checks.sql.normalize import mask_quoted

        parts = []
        for col in self.detail_columns:
            if col in rows.columns:
                cell = row[rows.columns.index(col)]
                n = number(cell)
                text = fmt_number(n) if n is not None else "" if cell is None else (
                    cell.decode("utf-8", "replace") if isinstance(cell, bytes) else str(cell))
                if text.strip():
                    parts.append(f"{col}: {mask_quoted(text)}")
        return "; ".join(parts)

    def evaluate(self, rows: Rows, server: ServerInfo) -> list[Result]:
        value_columns = [self.ratio.numerator] if self.ratio is not None else self.value_column
        vi = next((rows.columns.index(c) for c in value_columns if c in rows.columns), None)
        if vi is None:
            return self._shape_error(ShapeError(
                f"value_column {' or '.join(value_columns)} is not among the query's columns ({', '.join(rows.columns)})"
            ))
        if self.ratio is not None and self.ratio.denominator not in rows.columns:
            return self._shape_error(ShapeError(
                f"ratio denominator {self.ratio.denominator!r} is not among the query's columns ({', '.join(rows.columns)})"))
        if self.aggregate == "max":
            return self._largest(rows, vi, server)
        ki = next((rows.columns.index(c) for c in self.key_column if c in rows.columns), None)
        if not rows.rows:
            status = _STATUS_BY_NAME[self.if_empty]
            outcome = Outcome.CONTENT_MISMATCH if status == Status.UNKNOWN else Outcome.OK
            return [Result(check_id=self.id, status=status, summary=f"{self.display_title}: {self.empty_summary}",
                           unit=self.unit, outcome=outcome)]
        if ki is None and len(rows.rows) > 1:
            return self._shape_error(ShapeError(f"expected one row without a {self.key_column[0]!r} column, got {len(rows.rows)}"))
        out: list[Result] = []
        for row in rows.rows:
            key = "" if ki is None or row[ki] is None else str(row[ki])
            value = self._value(row[vi])
            metrics = {
                col: n
                for i, col in enumerate(rows.columns)
                if i not in (vi, ki) and (n := number(row[i])) is not None
            }
            if self.ratio is not None:
                den = number_or_text(row[rows.columns.index(self.ratio.denominator)])
                if den is None:
                    value = None
                else:
                    metrics[self.ratio.denominator] = den
            label = f"{self.display_title}{' ' + key if key else ''}"
            if value is None:
                if self.if_null == "skip":
                    continue
                status = _STATUS_BY_NAME[self.if_null]
                outcome = Outcome.CONTENT_MISMATCH if status == Status.UNKNOWN else Outcome.OK
                summary = f"{label}: no value (NULL)"
                if status != Status.OK and (details := self._details(rows, row, server.dialect)):
                    summary += f"; {details}"
                out.append(Result(check_id=self.id, status=status, summary=summary, key=key,
                                  unit=self.unit, outcome=outcome, metrics=metrics))
                continue
            status = self.status_for(value) if self.delta == "none" else Status.OK
            unit = f" {self.unit}" if self.unit else ""
            summary = f"{label} = {fmt_number(value)}{unit}"
            if status != Status.OK:
                crossed = self.crit if status is Status.CRITICAL else self.warn
                summary += f" ({status.name.lower()} {crossed})"
                if details := self._details(rows, row, server.dialect):
                    summary += f"; {details}"
            out.append(Result(check_id=self.id, status=status, summary=summary, key=key,
                              value=value, unit=self.unit, metrics=metrics))
        if rows.truncated:
            for r in out:
                r.summary += f" (first {len(rows.rows)} rows only)"
        return out

    def _largest(self, rows: Rows, vi: int, server: ServerInfo) -> list[Result]:
        """aggregate: max - one result for the worst row, naming whose session it is."""
        scored = [(v, row) for row in rows.rows if (v := self._value(row[vi])) is not None]
        unit = f" {self.unit}" if self.unit else ""
        metrics = {"count": float(len(rows.rows))}
        if not scored:
            result = self.measured(0.0, unit=self.unit, summary=f"{self.display_title} = 0{unit} (none)", metrics=metrics)
            return [result]
        value, worst = max(scored, key=lambda pair: pair[0])
        who = attribution(rows.columns, worst)
        of = f"{len(rows.rows)}{'+' if rows.truncated else ''}"
        summary = f"{self.display_title} = {fmt_number(value)}{unit}" + (f" ({who}; {of} in all)" if who else f" ({of} in all)")
        result = self.measured(value, unit=self.unit, summary=summary, metrics=metrics)
        if result.status != Status.OK and (details := self._details(rows, worst, server.dialect)):
            result.summary += f"; {details}"
        return [result]

    def finish(self, results: list[Result], ctx: RunContext) -> list[Result]:
        """With `delta`, turn counter readings into increases (or rates, or ratios) against earlier readings."""
        if self.delta == "none":
            return results
        state: dict[str, list[tuple[float, float, float]]] = ctx.resources.setdefault(f"sql-delta:{self.id}@{self.target}", {})
        now = ctx.clock()
        for r in results:
            if r.value is None or r.outcome != Outcome.OK:
                continue
            label = f"{self.display_title}{' ' + r.key if r.key else ''}"
            den = r.metrics.get(self.ratio.denominator, 0.0) if self.ratio is not None else 0.0
            history = state.setdefault(r.key, [])
            history.append((now, r.value, den))
            self._prune(history, now)
            r.metrics["counter"] = r.value
            if len(history) < 2:
                r.value = None
                r.status = Status.OK
                r.summary = f"{label}: first reading of the counter ({fmt_number(r.metrics['counter'])}), rate from the next run"
                continue
            increase = _increase([v for _, v, _ in history])
            elapsed = max(1e-6, now - history[0][0])
            span = self._span(elapsed)
            if self.ratio is not None:
                grown = _increase([d for _, _, d in history])
                r.metrics[f"{self.ratio.numerator}_increase"] = increase
                r.metrics[f"{self.ratio.denominator}_increase"] = grown
                if grown <= 0 or grown < self.ratio.min_denominator:
                    r.value = None
                    r.status = Status.OK
                    r.summary = f"{label}: {fmt_number(grown)} {self.ratio.denominator} {span}, too few to judge"
                    continue
                value = self.ratio.scale * increase / grown
                said = f"{fmt_number(value)}{' ' + self.unit if self.unit else ''} ({fmt_number(increase)} of {fmt_number(grown)} {span})"
            elif self.delta in _RATE_PERIODS:
                period, per = _RATE_PERIODS[self.delta]
                value = increase / elapsed * period
                said = f"{fmt_number(value)}{per} ({'+' + fmt_number(increase)} {span})"
            else:
                value = increase
                said = f"+{fmt_number(value)} {span}"
            r.value = value
            r.status = self.status_for(value)
            crossed = self.crit if r.status is Status.CRITICAL else self.warn if r.status is Status.WARNING else None
            r.summary = f"{label}: {said}" + (f" ({r.status.name.lower()} {crossed})" if crossed is not None else "")
        return results

    def _prune(self, history: list[tuple[float, float, float]], now: float) -> None:
        """Keep the readings the increase needs: the previous one, or those of the window plus the one before it."""
        if self.delta_window is None:
            del history[:-2]
            return
        while len(history) > 2 and history[1][0] <= now - self.delta_window:
            del history[0]

    def _span(self, elapsed: float) -> str:
        if self.delta_window is None:
            return "since last run"
        from checks.units import format_duration

        if elapsed >= self.delta_window * 0.99:
            return f"in the last {format_duration(self.delta_window)}"
        return f"in {format_duration(elapsed)} (window {format_duration(self.delta_window)} filling)"


def _increase(readings: list[float]) -> float:
    """Total growth of a counter over successive readings; a drop (server restart, reset) starts it from zero."""
    total = 0.0
    for previous, current in itertools.pairwise(readings):
        total += current - previous if current >= previous else current
    return total


def attribution(columns: Sequence[str], row: tuple[Any, ...]) -> str:
    """Whose session a row is ("session 4711, application HIS-web, user his_app"), from the columns it has."""
    parts = []
    for col in ATTRIBUTION_COLUMNS:
        if col in columns:
            cell = row[columns.index(col)]
            text = "" if cell is None else (cell.decode("utf-8", "replace") if isinstance(cell, bytes) else str(cell)).strip()
            if text:
                name = {"username": "user", "session_id": "session"}.get(col, col)
                parts.append(f"{name} {text[:80]}")
    return ", ".join(parts)


class SqlAssert(SqlCheck):
    kind_doc: ClassVar[str] = (
        "A data-integrity assertion: every returned row is a problem. The value is the row count; status is "
        "`severity` when any row comes back (or warn/crit on the count when given). Only the declared "
        "key_columns appear in the summary, so no other row content leaves the host."
    )

    example: ClassVar[str] = """
id: his.integrity.negative_stock
kind: sql.assert
target: his_db
schedule: "5 7 * * *"
query:
  oracle: SELECT drug_code, warehouse_id FROM his.pharmacy_stock WHERE quantity < 0
key_columns: [drug_code, warehouse_id]
"""

    kind: Literal["sql.assert"] = "sql.assert"
    key_columns: list[str] = Field(default_factory=list, description="Columns shown for offending rows, e.g. [order_id].")
    severity: Literal["warning", "critical"] = Field("critical", description="Status when any row is returned.")
    show_keys: int = Field(10, ge=0, le=100, description="How many offending rows to name in the summary.")

    @field_validator("key_columns")
    @classmethod
    def _lower_keys(cls, v: list[str]) -> list[str]:
        return _lower(v)

    def evaluate(self, rows: Rows, server: ServerInfo) -> list[Result]:
        try:
            idx = [self._column(rows, k, "key_columns entry") for k in self.key_columns]
        except ShapeError as exc:
            return self._shape_error(exc)
        count = float(len(rows.rows))
        if self.warn is not None or self.crit is not None:
            status = self.status_for(count)
        else:
            status = Status.OK if count == 0 else _STATUS_BY_NAME[self.severity]
        more = "+" if rows.truncated else ""
        if count == 0:
            summary = f"{self.display_title}: no offending rows"
        else:
            shown = []
            for row in rows.rows[: self.show_keys]:
                shown.append(", ".join(f"{self.key_columns[j]}={row[i]}" for j, i in enumerate(idx)) or "row")
            tail = "" if len(rows.rows) <= self.show_keys or not idx else ", ..."
            names = f": {'; '.join(shown)}{tail}" if idx and self.show_keys else ""
            summary = f"{self.display_title}: {fmt_number(count)}{more} offending rows{names}"
        return [Result(check_id=self.id, status=status, summary=summary, value=count, unit="rows")]


class SqlFindings(SqlCheck):
    kind_doc: ClassVar[str] = (
        "DBA findings: the top rows of a query (top SQL, unused indexes, stale statistics...) become Findings "
        "with a stable fingerprint from fingerprint_column (sql_id, query_hash, queryid, digest, object name), "
        "numeric evidence columns, an object column, SQL text normalized with literals stripped, and a "
        "recommendation from a {column} template. The result's value is the number of findings, or with "
        "value_column the largest value of that column (e.g. the longest lock wait), compared with warn/crit."
    )

    example: ClassVar[str] = """
id: lis.db.unused_indexes
kind: sql.findings
target: lis_pg
interval: 24h
query:
  postgres: |
    SELECT schemaname || '.' || indexrelname AS object, idx_scan
    FROM pg_stat_user_indexes WHERE idx_scan = 0 LIMIT 50
fingerprint_column: object
object_column: object
recommendation: "Confirm {object} is unused on every replica, then DROP INDEX CONCURRENTLY {object}."
"""

    kind: Literal["sql.findings"] = "sql.findings"
    fingerprint_column: list[str] = Field(description="Column(s) that identify a finding stably across runs.")
    finding_title: str = Field("", description="Title template, e.g. 'Unused index {index}'; defaults to the check title.")
    object_column: str | None = Field(None, description="Column naming the object concerned (schema.table.index).")
    sql_text_column: str | None = Field(None, description="Column with SQL text; normalized (literals → ?) before it leaves the host.")
    evidence_columns: list[str] | None = Field(None, description="Numeric columns kept as evidence; default every numeric column.")
    attribute_columns: list[str] = Field(default_factory=list, description="Text columns kept as attributes (declare only non-patient data).")
    recommendation: str = Field("", description="What to do, with {column} placeholders.")
    top_n: int = Field(10, ge=1, le=1000, description="Most findings reported per run (rows in query order).")
    value_column: str | None = Field(
        None, description="Report the largest value of this column over all returned rows (e.g. wait seconds) instead of the count."
    )
    unit: str = Field("findings", description="Unit of the value (number of findings, or of value_column).")

    @field_validator("fingerprint_column", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("fingerprint_column", "attribute_columns")
    @classmethod
    def _lower_list(cls, v: list[str]) -> list[str]:
        return _lower(v)

    @field_validator("evidence_columns")
    @classmethod
    def _lower_evidence(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _lower(v)

    @field_validator("object_column", "sql_text_column", "value_column")
    @classmethod
    def _lower_one(cls, v: str | None) -> str | None:
        return v.lower() if v else v

    @field_validator("finding_title", "recommendation")
    @classmethod
    def _template(cls, v: str) -> str:
        return check_template(v)

    @model_validator(mode="after")
    def _fingerprint_given(self) -> SqlFindings:
        if not self.fingerprint_column:
            raise ValueError("fingerprint_column: name at least one column")
        return self

    def evaluate(self, rows: Rows, server: ServerInfo) -> list[Result]:
        from checks.sql.normalize import normalize_sql

        try:
            fp_idx = [self._column(rows, c, "fingerprint_column") for c in self.fingerprint_column]
            obj_idx = self._column(rows, self.object_column, "object_column") if self.object_column else None
            sql_idx = self._column(rows, self.sql_text_column, "sql_text_column") if self.sql_text_column else None
            attr_idx = [self._column(rows, c, "attribute_columns entry") for c in self.attribute_columns]
            val_idx = self._column(rows, self.value_column, "value_column") if self.value_column else None
            ev_idx = [self._column(rows, c, "evidence_columns entry") for c in self.evidence_columns] if self.evidence_columns is not None else None
        except ShapeError as exc:
            return self._shape_error(exc)
        findings: list[Finding] = []
        for row in rows.rows[: self.top_n]:
            raw_fp = "/".join("" if row[i] is None else str(row[i]) for i in fp_idx)
            sql_text = normalize_sql(str(row[sql_idx]), server.dialect) if sql_idx is not None and row[sql_idx] is not None else ""
            if ev_idx is None:
                skip = set(fp_idx)
                evidence = {c: n for i, c in enumerate(rows.columns) if i not in skip and (n := number(row[i])) is not None}
            else:
                evidence = {rows.columns[i]: n for i in ev_idx if (n := number(row[i])) is not None}
            cells = Cells({c: "" if v is None else str(v) for c, v in zip(rows.columns, row, strict=False)})
            if sql_idx is not None:
                cells[rows.columns[sql_idx]] = sql_text
            for c, n in evidence.items():
                cells[c] = fmt_number(n)
            findings.append(
                Finding(
                    fingerprint=f"{self.id}:{raw_fp}",
                    title=(self.finding_title or self.display_title).format_map(cells),
                    object="" if obj_idx is None or row[obj_idx] is None else str(row[obj_idx]),
                    recommendation=self.recommendation.format_map(cells),
                    sql_text=sql_text,
                    evidence=evidence,
                    attributes={rows.columns[i]: ("" if row[i] is None else str(row[i])) for i in attr_idx},
                )
            )
        count = float(len(findings))
        value = count
        if val_idx is not None:
            values = [n for row in rows.rows if (n := number_or_text(row[val_idx])) is not None]
            value = max(values) if values else 0.0
        status = self.status_for(value)
        if findings:
            names = ", ".join(f.object or f.fingerprint.split(":", 1)[1] for f in findings[:5])
            tail = ", ..." if len(findings) > 5 else ""
            worst = f"; max {self.value_column} {fmt_number(value)}" if val_idx is not None else ""
            summary = f"{self.display_title}: {fmt_number(count)} findings ({names}{tail}){worst}"
        else:
            summary = f"{self.display_title}: no findings"
        return [Result(check_id=self.id, status=status, summary=summary, value=value, unit=self.unit, findings=findings)]


_PING: dict[str, str] = {"postgres": "SELECT 1", "mysql": "SELECT 1", "oracle": "SELECT 1 FROM dual", "mssql": "SELECT 1"}


class SqlReachable(SqlCheck):
    kind_doc: ClassVar[str] = (
        "Whether the target takes a new connection and answers a trivial query (SELECT 1), on a connection of its "
        "own each run, so it sees what a new client sees. It is the one check of a database target that reports a "
        "failure as CRITICAL, with the outcome: connection_refused, timeout, dns_error, tls_error, auth_failed or "
        "too_many_clients. Every other check on the target gets it as `parent`, so a database that is down is one "
        "CRITICAL with the others' UNKNOWN explained by it. The value is the time to connect and answer, in ms."
    )

    example: ClassVar[str] = """
id: his.db.reachable
kind: sql.reachable
target: his_db
interval: 30s
"""

    kind: Literal["sql.reachable"] = "sql.reachable"
    query: QueryField = Field(
        default_factory=lambda: QueryMap.model_validate(_PING),
        description="The trivial statement; SELECT 1 (FROM dual on Oracle) unless given.",
    )

    def probe(self, ctx: RunContext) -> list[Result]:
        from checks.sql.session import fresh_session, note_reachability

        started = ctx.clock()
        t0 = time.monotonic()
        target = self.target or ""
        try:
            session = fresh_session(ctx, target)
        except SqlFailure as failure:
            return self._stamp([unknown(self.id, failure.outcome, f"{self.display_title}: {failure.message}", target=target)],
                               started, t0)
        try:
            session.ensure_open(ctx.remaining(self.timeout))
            connected = time.monotonic()
            session.run(self.query, timeout=min(self.timeout, ctx.remaining(self.timeout)), max_rows=1, check_id=self.id)
        except SqlFailure as failure:
            note_reachability(ctx, target, failure if failure.outcome in UNREACHABLE else None)
            result = Result(check_id=self.id, status=Status.CRITICAL, outcome=failure.outcome, target=target,
                            summary=f"{self.display_title}: {target} cannot be reached ({failure.outcome}): {failure.message}")
            return self._stamp([result], started, t0)
        except Exception as exc:
            from checks.sql.secrets import scrub

            message = scrub(f"{type(exc).__name__}: {exc}")
            return self._stamp([unknown(self.id, Outcome.INTERNAL_ERROR, f"{self.display_title}: internal error: {message}",
                                        target=target)], started, t0)
        finally:
            info = session.info if session.is_open else None
            session.close()
        note_reachability(ctx, target, None)
        done = time.monotonic()
        total_ms = (done - t0) * 1000.0
        server = f" ({info.flavor} {info.version_text or '.'.join(map(str, info.version))})" if info is not None else ""
        result = self.measured(total_ms, unit="ms", summary=f"{self.display_title}: answered in {fmt_number(total_ms)} ms{server}",
                               metrics={"connect_ms": (connected - t0) * 1000.0, "query_ms": (done - connected) * 1000.0})
        return self._stamp([result], started, t0)

    def evaluate(self, rows: Rows, server: ServerInfo) -> list[Result]:
        return [Result(check_id=self.id, status=Status.OK, summary=f"{self.display_title}: answered")]


SPECS: dict[str, type[CheckSpec]] = {
    "sql.metric": SqlMetric,
    "sql.assert": SqlAssert,
    "sql.findings": SqlFindings,
    "sql.reachable": SqlReachable,
}

__all__ = ["SPECS", "QueryMap", "SqlAssert", "SqlCheck", "SqlFindings", "SqlMetric", "SqlReachable"]
