"""`migration.reconcile`: the running DB against the year/history DB, day by day, from aggregates the databases
compute (row count, sums of the amount columns, smallest and largest key per business day).

No table is read into memory: each side answers one GROUP BY per table over a half-open range of an indexed
business date, a few hundred rows at most. The two sides may be different engines, so every value is brought to
one written form first (canonical.py). Comparing (pure, `compare`) is separate from reading.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlglot import exp

from checks.context import RunContext
from checks.reconcile import canonical
from checks.reconcile.server_date import server_today
from checks.result import Finding, Result, Status, unknown
from checks.spec import CheckSpec
from checks.sql.build import BadName, date_literal, day_range, merge, source_column, statement, table
from checks.sql.guard import SQLGLOT_DIALECTS
from checks.sql.probing import DatabaseCheck
from checks.sql.query import QueryMap
from checks.sql.target import DIALECTS

MAX_DAYS = 731
_YEAR = re.compile(r"\{year\}")
Problem = Literal["missing_day", "short", "extra", "amount_mismatch", "key_mismatch", "empty_day", "still_in_source"]
PROBLEM_WORDS = {
    "missing_day": "never moved", "short": "rows missing in the destination", "extra": "extra rows in the destination",
    "amount_mismatch": "amounts differ", "key_mismatch": "key range differs", "empty_day": "no rows on either side",
    "still_in_source": "rows still in the running DB",
}


class MigratedTable(BaseModel):
    """One table moved from the running DB to the year/history DB."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(description="Table in the running DB, with its schema, e.g. his.outpatient_charge.")
    dest: str | None = Field(
        None, description="Table in the year/history DB; {year} is replaced by the business day's year, e.g. "
        "his_{year}.outpatient_charge. Defaults to the source name.",
    )
    date_column: str = Field(description="The business date or time column (indexed, date/datetime type).")
    amount_columns: list[str] = Field(default_factory=list, description="Columns whose per-day sums must agree.")
    key_column: str | None = Field(None, description="A key whose per-day smallest and largest values must agree.")
    scale: int = Field(2, ge=0, le=8, description="Decimals the amounts are compared at.")
    keep_days: int | None = Field(
        None, ge=1, description="Rows older than this many days must have left the running DB (moved, then "
        "deleted), e.g. 366 for outpatient charges, 731 for inpatient ones; unset: the running DB keeps them.",
    )

    def cutoff(self, today: dt.date) -> dt.date | None:
        return today - dt.timedelta(days=self.keep_days) if self.keep_days is not None else None

    @field_validator("dest")
    @classmethod
    def _year_only(cls, v: str | None) -> str | None:
        if v is not None and re.search(r"\{(?!year\})", v):
            raise ValueError("the only placeholder a destination name may have is {year}")
        return v

    def dest_name(self, year: int) -> str:
        return _YEAR.sub(str(year), self.dest or self.source)

    @property
    def per_year(self) -> bool:
        return self.dest is not None and "{year}" in self.dest


@dataclass(frozen=True)
class DayAggregate:
    rows: int
    sums: tuple[str, ...]
    """Canonical text per amount column, in amount_columns order."""
    min_key: str = canonical.NULL
    max_key: str = canonical.NULL


@dataclass
class Discrepancy:
    problem: Problem
    day: str
    text: str
    evidence: dict[str, float] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)


# --- statements ---------------------------------------------------------------------------------------------------

def aggregate_query(tbl: MigratedTable, name: str, dialect: str, first: dt.date, end: dt.date) -> QueryMap:
    """Per-day COUNT, SUMs and MIN/MAX key of `name` for days in [first, end) on `dialect`."""
    read = SQLGLOT_DIALECTS[dialect]
    date_col = source_column(tbl.date_column, dialect, "t")
    day_expr: exp.Expression = (exp.Anonymous(this="TRUNC", expressions=[date_col.copy()]) if read == "oracle"
                                else exp.Cast(this=date_col.copy(), to=exp.DataType.build("DATE")))
    select: list[exp.Expr] = [exp.alias_(day_expr.copy(), "business_day"),
                                    exp.alias_(exp.Count(this=exp.Star()), "row_count")]
    for i, col in enumerate(tbl.amount_columns):
        select.append(exp.alias_(_sum(source_column(col, dialect, "t"), dialect, tbl.scale), f"sum_{i}"))
    if tbl.key_column is not None:
        key = source_column(tbl.key_column, dialect, "t")
        select += [exp.alias_(exp.Min(this=key.copy()), "min_key"), exp.alias_(exp.Max(this=key), "max_key")]
    tree = (exp.select(*select).from_(exp.alias_(table(name, dialect), "t", table=True))
            .where(day_range(date_col, first, end, dialect)).group_by(day_expr))
    return statement(tree, dialect)


def older_rows_query(tbl: MigratedTable, dialect: str, cutoff: dt.date) -> QueryMap:
    """How many rows older than `cutoff` are still in the running DB, and their oldest and newest day."""
    date_col = source_column(tbl.date_column, dialect, "t")
    tree = (exp.select(exp.alias_(exp.Count(this=exp.Star()), "row_count"),
                       exp.alias_(exp.Min(this=date_col.copy()), "oldest"),
                       exp.alias_(exp.Max(this=date_col.copy()), "newest"))
            .from_(exp.alias_(table(tbl.source, dialect), "t", table=True))
            .where(exp.LT(this=date_col, expression=date_literal(cutoff, dialect))))
    return statement(tree, dialect)


def _sum(col: exp.Expression, dialect: str, scale: int) -> exp.Expression:
    """SUM as exact decimal text (Oracle: TO_CHAR, since python-oracledb returns NUMBER as float) or as DECIMAL
    (a DOUBLE column's float sum, or an INT column's sum overflowing on SQL Server, would not compare exactly)."""
    if SQLGLOT_DIALECTS[dialect] == "oracle":
        return exp.Anonymous(this="TO_CHAR", expressions=[exp.Sum(this=col)])
    decimal = exp.DataType.build(f"DECIMAL(38, {min(scale + 2, 10)})", dialect=SQLGLOT_DIALECTS[dialect])
    return exp.Sum(this=exp.Cast(this=col, to=decimal))


def read_aggregates(rows: Any, tbl: MigratedTable) -> dict[str, DayAggregate]:
    """Rows of aggregate_query by canonical day."""
    index = {c: i for i, c in enumerate(rows.columns)}
    out: dict[str, DayAggregate] = {}
    for row in rows.rows:
        sums = tuple(canonical.amount(row[index[f"sum_{i}"]], tbl.scale) for i in range(len(tbl.amount_columns)))
        keys = ((canonical.key(row[index["min_key"]]), canonical.key(row[index["max_key"]]))
                if tbl.key_column is not None else (canonical.NULL, canonical.NULL))
        out[canonical.day(row[index["business_day"]])] = DayAggregate(canonical.count(row[index["row_count"]]), sums,
                                                                       *keys)
    return out


# --- comparison (pure) --------------------------------------------------------------------------------------------

def compare(tbl: MigratedTable, days: list[dt.date], source: dict[str, DayAggregate], dest: dict[str, DayAggregate],
            cutoff: dt.date | None, expect_every_day: bool) -> list[Discrepancy]:
    """Every day's difference between the two sides, in day order."""
    out: list[Discrepancy] = []
    for d in days:
        name = d.isoformat()
        s, t = source.get(name), dest.get(name)
        moved_away = cutoff is not None and d < cutoff
        if s is None and t is None:
            if expect_every_day:
                out.append(Discrepancy("empty_day", name, "no rows on either side"))
            continue
        if t is None:
            assert s is not None
            out.append(Discrepancy("missing_day", name, f"never moved: {s.rows} rows in the running DB, none in the "
                                   "destination", {"source_rows": s.rows, "dest_rows": 0, "row_difference": -s.rows}))
            continue
        if s is None:
            if not moved_away:
                out.append(Discrepancy("extra", name, f"{t.rows} rows in the destination, none in the running DB",
                                       {"source_rows": 0, "dest_rows": t.rows, "row_difference": t.rows}))
            continue
        base = {"source_rows": float(s.rows), "dest_rows": float(t.rows), "row_difference": float(t.rows - s.rows)}
        sums = _sum_evidence(tbl, s, t)
        if t.rows < s.rows:
            out.append(Discrepancy("short", name, f"{s.rows - t.rows} rows missing in the destination (running DB "
                                   f"{s.rows}, destination {t.rows})", {**base, **sums[0]}, sums[1]))
        elif t.rows > s.rows:
            out.append(Discrepancy("extra", name, f"{t.rows - s.rows} more rows in the destination than in the "
                                   f"running DB ({t.rows} vs {s.rows})", {**base, **sums[0]}, sums[1]))
        elif s.sums != t.sums:
            differing = [c for c, a, b in zip(tbl.amount_columns, s.sums, t.sums, strict=True) if a != b]
            text = "; ".join(f"{c}: running DB {sums[1][f'source_sum_{c}']}, destination {sums[1][f'dest_sum_{c}']}"
                             for c in differing)
            out.append(Discrepancy("amount_mismatch", name, f"same {s.rows} rows but amounts differ ({text})",
                                   {**base, **sums[0]}, sums[1]))
        elif (s.min_key, s.max_key) != (t.min_key, t.max_key):
            out.append(Discrepancy("key_mismatch", name, f"key range differs: running DB {s.min_key}..{s.max_key}, "
                                   f"destination {t.min_key}..{t.max_key}", base,
                                   {"source_keys": f"{s.min_key}..{s.max_key}",
                                    "dest_keys": f"{t.min_key}..{t.max_key}"}))
    return out


def _sum_evidence(tbl: MigratedTable, s: DayAggregate, t: DayAggregate) -> tuple[dict[str, float], dict[str, str]]:
    evidence: dict[str, float] = {}
    exact: dict[str, str] = {}
    for c, a, b in zip(tbl.amount_columns, s.sums, t.sums, strict=True):
        exact[f"source_sum_{c}"], exact[f"dest_sum_{c}"] = a, b
        if a != canonical.NULL and b != canonical.NULL:
            diff = canonical.decimal_of(b) - canonical.decimal_of(a)  # type: ignore[operator]
            exact[f"difference_{c}"] = canonical.amount(diff, tbl.scale)
            evidence[f"difference_{c}"] = float(diff)
    return evidence, exact


# --- the kind -----------------------------------------------------------------------------------------------------

class MigrationReconcile(DatabaseCheck):
    kind_doc: ClassVar[str] = (
        "The nightly move of the running DB into the year DB (年库) or history DB, checked day by day: for each "
        "table and each business day in the range, the running DB (`target`) and the destination (`dest_target`, "
        "possibly another engine) each compute the row count, the sums of `amount_columns` and the smallest and "
        "largest `key_column`, and the two are compared in one canonical form (decimals at `scale`, ISO dates, "
        "NULL). Findings (category migration), one per table and day, name the problem and its size: missing_day "
        "(never moved), short (rows missing in the destination), extra, amount_mismatch, key_mismatch, empty_day "
        "(with expect_every_day), and still_in_source (rows older than the table's keep_days that should have left the "
        "running DB). One result per table, its value the number of problems. The range is the `days` days ending "
        "`lag_days` before the running DB server's today, or fixed `first_day`..`last_day`. The tables are site "
        "tables: each target allows them (and the destination's {year} schemas) as site exceptions."
    )

    example: ClassVar[str] = """
id: his.migration.year_db.reconcile
kind: migration.reconcile
target: his_running
dest_target: his_year
schedule: "0 6 * * *"
timeout: 5m
days: 31
tables:
  - source: his.outpatient_charge
    dest: his_{year}.outpatient_charge
    date_column: charge_time
    amount_columns: [amount, insurance_amount]
    key_column: charge_id
"""

    value_unit: ClassVar[str | None] = "count"

    kind: Literal["migration.reconcile"] = "migration.reconcile"
    dest_target: str | None = Field(None, description="The year/history DB's target; defaults to `target`.")
    tables: list[MigratedTable] = Field(min_length=1, description="The tables the migration moves.")
    days: int = Field(31, ge=1, le=MAX_DAYS, description="How many business days to compare.")
    lag_days: int = Field(1, ge=0, le=366, description="Days before today the newest compared day is (1 = yesterday).")
    first_day: dt.date | None = Field(None, description="A fixed range instead of `days`: its first day.")
    last_day: dt.date | None = Field(None, description="... and its last day (inclusive).")
    expect_every_day: bool = Field(False, description="A day without rows on both sides is a problem too.")
    max_findings: int = Field(100, ge=0, le=1000, description="Most findings per table and run (the count is exact).")
    severity: Literal["warning", "critical"] = Field(
        "critical", description="Status when a table has any problem (unless warn/crit on the count)."
    )

    @model_validator(mode="after")
    def _range_and_names(self) -> MigrationReconcile:
        if (self.first_day is None) != (self.last_day is None):
            raise ValueError("give both first_day and last_day, or neither (then `days` is used)")
        if self.first_day is not None and self.last_day is not None:
            if self.last_day < self.first_day:
                raise ValueError("last_day is before first_day")
            if (self.last_day - self.first_day).days + 1 > MAX_DAYS:
                raise ValueError(f"the range is more than {MAX_DAYS} days; check it in parts")
            if "days" in self.model_fields_set:
                raise ValueError("give either days or first_day/last_day")
        try:
            for dialect in DIALECTS:
                for tbl in self.tables:
                    self._sample(tbl, dialect)
        except BadName as exc:
            raise ValueError(str(exc)) from None
        return self

    def _sample(self, tbl: MigratedTable, dialect: str) -> tuple[QueryMap, QueryMap]:
        today = dt.date.today()
        return (aggregate_query(tbl, tbl.source, dialect, today, today),
                aggregate_query(tbl, tbl.dest_name(today.year), dialect, today, today))

    @property
    def dest(self) -> str:
        return self.dest_target or self.target or ""

    def sql_queries(self) -> list[tuple[str, QueryMap]]:
        return [(f, q) for _, f, q in self.sql_queries_by_target()]

    def sql_queries_by_target(self) -> list[tuple[str, str, QueryMap]]:
        """Every statement with the target it is sent to, for the allow-list check when packs are bound."""
        out: list[tuple[str, str, QueryMap]] = []
        for i, tbl in enumerate(self.tables):
            src, dst = zip(*(self._sample(tbl, d) for d in DIALECTS), strict=True)
            out.append((self.target or "", f"tables[{i}].source", merge(src)))
            out.append((self.dest, f"tables[{i}].dest", merge(dst)))
            if tbl.keep_days is not None:
                keeps = merge([older_rows_query(tbl, d, dt.date.today()) for d in DIALECTS])
                out.append((self.target or "", f"tables[{i}].source", keeps))
        return out

    def day_range(self, today: dt.date) -> list[dt.date]:
        if self.first_day is not None and self.last_day is not None:
            first, last = self.first_day, self.last_day
        else:
            last = today - dt.timedelta(days=self.lag_days)
            first = last - dt.timedelta(days=self.days - 1)
        return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]

    def probe(self, ctx: RunContext) -> list[Result]:
        return self.guarded(ctx, lambda: self._run(ctx))

    def _run(self, ctx: RunContext) -> list[Result]:
        from checks.sql.session import SqlFailure, session_for

        source: dict[int, dict[str, DayAggregate] | SqlFailure] = {}
        older: dict[int, tuple[int, Any, Any] | SqlFailure] = {}
        where = self.target or ""
        try:
            with session_for(ctx, where, wait=ctx.remaining(self.timeout)) as session:
                today = server_today(session, self.timeout_left(ctx), self.id)
                days = self.day_range(today)
                dialect = session.info.dialect
                for i, tbl in enumerate(self.tables):
                    source[i] = self._read(session, tbl, tbl.source, dialect, days, ctx, per_year=False)
                    cutoff = tbl.cutoff(today)
                    if cutoff is not None:
                        older[i] = self._older(session, tbl, dialect, cutoff, ctx)
            where = self.dest
            with session_for(ctx, where, wait=ctx.remaining(self.timeout)) as session:
                dialect = session.info.dialect
                dest = {i: self._read(session, tbl, "", dialect, days, ctx, per_year=True)
                        for i, tbl in enumerate(self.tables)}
        except SqlFailure as failure:
            raise SqlFailure(failure.outcome, f"{where}: {failure.message}") from None
        return [self._table_result(tbl, days, source[i], dest[i], older.get(i), tbl.cutoff(today))
                for i, tbl in enumerate(self.tables)]

    def _read(self, session: Any, tbl: MigratedTable, name: str, dialect: str, days: list[dt.date], ctx: RunContext,
              *, per_year: bool) -> dict[str, DayAggregate] | Any:
        from checks.sql.session import SqlFailure

        out: dict[str, DayAggregate] = {}
        try:
            for first, end in _chunks(days, by_year=per_year and tbl.per_year):
                query = aggregate_query(tbl, name or tbl.dest_name(first.year), dialect, first, end)
                rows = session.run(query, timeout=self.timeout_left(ctx), max_rows=(end - first).days + 1,
                                   check_id=self.id)
                out.update(read_aggregates(rows, tbl))
        except SqlFailure as failure:
            return failure
        return out

    def _older(self, session: Any, tbl: MigratedTable, dialect: str, cutoff: dt.date, ctx: RunContext) -> Any:
        from checks.sql.session import SqlFailure

        try:
            rows = session.run(older_rows_query(tbl, dialect, cutoff), timeout=self.timeout_left(ctx), max_rows=1,
                               check_id=self.id)
        except SqlFailure as failure:
            return failure
        count, oldest, newest = rows.rows[0] if rows.rows else (0, None, None)
        return canonical.count(count), oldest, newest

    def _table_result(self, tbl: MigratedTable, days: list[dt.date], source: Any, dest: Any, older: Any,
                      cutoff: dt.date | None) -> Result:
        from checks.sql.session import SqlFailure

        for side, got, target in (("running DB", source, self.target), ("destination", dest, self.dest)):
            if isinstance(got, SqlFailure):
                r = unknown(self.id, got.outcome, f"{self.display_title} {tbl.source}: {side} ({target}): {got.message}")
                r.key = tbl.source
                return r
        found = compare(tbl, days, source, dest, cutoff, self.expect_every_day)
        if isinstance(older, SqlFailure):
            r = unknown(self.id, older.outcome, f"{self.display_title} {tbl.source}: rows older than {cutoff}: "
                        f"{older.message}")
            r.key = tbl.source
            return r
        if older is not None and older[0] > 0:
            oldest, newest = (canonical.day(v) if v is not None else "?" for v in older[1:])
            found.insert(0, Discrepancy("still_in_source", f"before {cutoff}",
                                        f"{older[0]} rows older than {cutoff} still in the running DB "
                                        f"(days {oldest}..{newest}); they should have moved",
                                        {"source_rows": float(older[0])}, {"oldest_day": oldest, "newest_day": newest}))
        source_rows = sum(a.rows for a in source.values())
        dest_rows = sum(a.rows for a in dest.values())
        missing = sum(max(0, source[d].rows - (dest[d].rows if d in dest else 0)) for d in source)
        count = float(len(found))
        metrics = {"days_compared": float(len(days)), "source_rows": float(source_rows), "dest_rows": float(dest_rows),
                   "rows_missing": float(missing), "problems": count}
        span = f"{days[0]}..{days[-1]}"
        if not found:
            status, text = Status.OK, f"{len(days)} days {span} agree ({source_rows} rows)"
        else:
            status = self.status_for(count) if (self.warn or self.crit) else (
                Status.CRITICAL if self.severity == "critical" else Status.WARNING)
            shown = "; ".join(f"{p.day} {p.text}" for p in found[:3])
            more = f"; and {len(found) - 3} more" if len(found) > 3 else ""
            text = f"{len(found)} problem(s) in {len(days)} days {span}: {shown}{more}"
        findings = [self._finding(tbl, p) for p in found[: self.max_findings]]
        return Result(check_id=self.id, status=status, key=tbl.source, value=count, unit="problems",
                      summary=f"{self.display_title} {tbl.source}: {text}", metrics=metrics, findings=findings)

    def _finding(self, tbl: MigratedTable, p: Discrepancy) -> Finding:
        day_key = p.day if p.problem != "still_in_source" else "older"
        dest = tbl.dest_name(int(p.day[:4])) if p.day[:4].isdigit() else tbl.dest_name(dt.date.today().year)
        return Finding(
            fingerprint=f"{self.id}:{tbl.source}:{day_key}:{p.problem}",
            title=f"{tbl.source} {p.day}: {PROBLEM_WORDS[p.problem]}",
            object=tbl.source,
            recommendation=f"{p.text}. Compare {tbl.source} on {self.target} with {dest} on {self.dest} for that day "
                           "and re-run the migration for it, or explain it in the note.",
            evidence=p.evidence,
            attributes={"table": tbl.source, "dest_table": dest, "day": p.day, "problem": p.problem, **p.attributes},
            category="migration",
        )


def _chunks(days: list[dt.date], *, by_year: bool) -> Iterator[tuple[dt.date, dt.date]]:
    """[first, end) ranges covering `days`, split at new year when the destination is a per-year table."""
    first = days[0]
    for d in days[1:]:
        if by_year and d.year != first.year:
            yield first, d
            first = d
    yield first, days[-1] + dt.timedelta(days=1)


SPECS: dict[str, type[CheckSpec]] = {"migration.reconcile": MigrationReconcile}
