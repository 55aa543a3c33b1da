"""The sql.* check kinds: sql.metric, sql.assert and sql.findings.

Running a query (session, guard, timeouts, errors → outcomes) is separate from turning its rows into
results (`evaluate`), so the row handling is tested with rows shaped like each engine's catalog views.
"""

from __future__ import annotations

import datetime as dt
import decimal
import string
import time
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from checks.context import RunContext
from checks.result import Finding, Outcome, Result, Status, unknown
from checks.spec import CheckSpec
from checks.sql.query import QueryField, QueryMap
from checks.sql.rows import Rows, ServerInfo

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


def _fmt(value: float | None) -> str:
    if value is None:
        return "NULL"
    if float(value).is_integer():
        return str(int(value))
    text = f"{value:.2f}" if abs(value) >= 1 else f"{value:.4g}"
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def _check_template(text: str) -> str:
    """A recommendation/title template: literal text with {column} placeholders."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise ValueError(f"bad template ({exc}); use {{column}} placeholders and {{{{ }}}} for braces") from None
    for f in fields:
        if not f or not f.replace("_", "").isalnum():
            raise ValueError(f"template placeholder {{{f}}} must be a plain column name")
    return text


class _Cells(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _lower(names: Sequence[str]) -> list[str]:
    return [n.lower() for n in names]


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

    def sql_queries(self) -> list[tuple[str, QueryMap]]:
        """The statements this check may send, for the allow-list check when it is bound (checks/sql/binding.py)."""
        return [("query", self.query)] + ([("requires", self.requires)] if self.requires is not None else [])

    def probe(self, ctx: RunContext) -> list[Result]:
        from checks.sql.session import SqlFailure, session_for

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
                results = self.finish(self.evaluate(rows, session.info), ctx)
        except SqlFailure as failure:
            results = [unknown(self.id, failure.outcome, f"{self.display_title}: {failure.message}", target=target)]
        except Exception as exc:
            from checks.sql.secrets import scrub

            message = scrub(f"{type(exc).__name__}: {exc}")
            results = [unknown(self.id, Outcome.INTERNAL_ERROR, f"{self.display_title}: internal error: {message}", target=target)]
        return self._stamp(results, started, t0)

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
            raise _ShapeError(f"{option} {name!r} is not among the query's columns ({', '.join(rows.columns)})") from None

    def _shape_error(self, exc: _ShapeError) -> list[Result]:
        return [unknown(self.id, Outcome.CONTENT_MISMATCH, f"{self.display_title}: {exc}", target=self.target or "")]


class _ShapeError(Exception):
    """The rows do not have the columns the check declares."""


class SqlMetric(SqlCheck):
    kind_doc: ClassVar[str] = (
        "One number from a query, or one per row key. Columns `key` and `value` by default "
        "(key_column/value_column, each a name or a list of alternatives: the first present is used); a query "
        "without the key column must return one row. Other numeric columns become metrics of the row's "
        "result. warn/crit apply to the value, or with `delta` to its increase since the previous run."
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
    delta: Literal["none", "increase", "per_second"] = Field(
        "none",
        description="For cumulative counters (deadlocks, Aborted_connects): report the increase since the previous "
        "run, or that increase per second. The first run only records the counter.",
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

    def evaluate(self, rows: Rows, server: ServerInfo) -> list[Result]:
        vi = next((rows.columns.index(c) for c in self.value_column if c in rows.columns), None)
        if vi is None:
            return self._shape_error(_ShapeError(
                f"value_column {' or '.join(self.value_column)} is not among the query's columns ({', '.join(rows.columns)})"
            ))
        ki = next((rows.columns.index(c) for c in self.key_column if c in rows.columns), None)
        if not rows.rows:
            status = _STATUS_BY_NAME[self.if_empty]
            outcome = Outcome.CONTENT_MISMATCH if status == Status.UNKNOWN else Outcome.OK
            return [Result(check_id=self.id, status=status, summary=f"{self.display_title}: {self.empty_summary}",
                           unit=self.unit, outcome=outcome)]
        if ki is None and len(rows.rows) > 1:
            return self._shape_error(_ShapeError(f"expected one row without a {self.key_column[0]!r} column, got {len(rows.rows)}"))
        out: list[Result] = []
        for row in rows.rows:
            key = "" if ki is None or row[ki] is None else str(row[ki])
            value = number_or_text(row[vi])
            metrics = {
                col: n
                for i, col in enumerate(rows.columns)
                if i not in (vi, ki) and (n := number(row[i])) is not None
            }
            label = f"{self.display_title}{' ' + key if key else ''}"
            if value is None:
                if self.if_null == "skip":
                    continue
                status = _STATUS_BY_NAME[self.if_null]
                outcome = Outcome.CONTENT_MISMATCH if status == Status.UNKNOWN else Outcome.OK
                out.append(Result(check_id=self.id, status=status, summary=f"{label}: no value (NULL)", key=key,
                                  unit=self.unit, outcome=outcome, metrics=metrics))
                continue
            status = self.status_for(value) if self.delta == "none" else Status.OK
            unit = f" {self.unit}" if self.unit else ""
            out.append(Result(check_id=self.id, status=status, summary=f"{label} = {_fmt(value)}{unit}", key=key,
                              value=value, unit=self.unit, metrics=metrics))
        if rows.truncated:
            for r in out:
                r.summary += f" (first {len(rows.rows)} rows only)"
        return out

    def finish(self, results: list[Result], ctx: RunContext) -> list[Result]:
        """With `delta`, turn counter readings into increases against the previous run's readings."""
        if self.delta == "none":
            return results
        state: dict[str, tuple[float, float]] = ctx.resources.setdefault(f"sql-delta:{self.id}@{self.target}", {})
        now = ctx.clock()
        for r in results:
            if r.value is None or r.outcome != Outcome.OK:
                continue
            label = f"{self.display_title}{' ' + r.key if r.key else ''}"
            previous = state.get(r.key)
            state[r.key] = (r.value, now)
            r.metrics["counter"] = r.value
            if previous is None:
                r.value = None
                r.status = Status.OK
                r.summary = f"{label}: first reading of the counter ({_fmt(r.metrics['counter'])}), rate from the next run"
                continue
            increase = r.value - previous[0]
            if increase < 0:
                increase = r.value
            value = increase / max(1e-6, now - previous[1]) if self.delta == "per_second" else increase
            r.value = value
            r.status = self.status_for(value)
            per = "/s" if self.delta == "per_second" else " since last run"
            r.summary = f"{label}: +{_fmt(value)}{per}"
        return results


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
        except _ShapeError as exc:
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
            summary = f"{self.display_title}: {_fmt(count)}{more} offending rows{names}"
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
        return _check_template(v)

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
        except _ShapeError as exc:
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
            cells = _Cells({c: "" if v is None else str(v) for c, v in zip(rows.columns, row, strict=False)})
            if sql_idx is not None:
                cells[rows.columns[sql_idx]] = sql_text
            for c, n in evidence.items():
                cells[c] = _fmt(n)
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
            worst = f"; max {self.value_column} {_fmt(value)}" if val_idx is not None else ""
            summary = f"{self.display_title}: {_fmt(count)} findings ({names}{tail}){worst}"
        else:
            summary = f"{self.display_title}: no findings"
        return [Result(check_id=self.id, status=status, summary=summary, value=value, unit=self.unit, findings=findings)]


SPECS: dict[str, type[CheckSpec]] = {
    "sql.metric": SqlMetric,
    "sql.assert": SqlAssert,
    "sql.findings": SqlFindings,
}

__all__ = ["SPECS", "QueryMap", "SqlAssert", "SqlCheck", "SqlFindings", "SqlMetric"]
