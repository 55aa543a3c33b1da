"""`reconcile.totals`: two-sided totals per key for a period, such as the monthly insurance reconciliation
(医保对账): the HIS's settlements summed per insurance type against the totals the insurance platform returns,
as a file or a table. The HIS side is summed by the database (the pack's query wrapped as a sqlglot tree);
the other side is summed while its file is read, or by its database.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlglot import exp

from checks.context import RunContext
from checks.reconcile import canonical
from checks.reconcile.server_date import server_today
from checks.reconcile.statements import Encoding, csv_rows, open_text
from checks.result import Finding, Result, Status
from checks.spec import CheckSpec
from checks.sql.build import BadName, day_range, source_column, wrap
from checks.sql.guard import SQLGLOT_DIALECTS
from checks.sql.probing import DatabaseCheck, InputMissing
from checks.sql.query import QueryField, QueryMap

Period = Literal["month", "day"]


class SqlTotals(BaseModel):
    """Rows (one per settlement) from a query, summed per key over the period by the database."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str | None = Field(None, description="For the other side only: its target (defaults to the check's).")
    query: QueryField = Field(description="SQL per dialect returning one row per settlement (no date condition: the "
                              "kind adds the period).")
    key_column: str = Field(description="The column totals are kept per, e.g. the insurance type.")
    date_column: str = Field(description="The settlement date/time the period applies to.")
    amount_columns: list[str] = Field(min_length=1, description="Columns summed, e.g. [fund_pay, total_cost].")

    def wrapped(self, first: dt.date, end: dt.date) -> QueryMap:
        """SELECT key, COUNT(*), SUM(...) FROM (query) q WHERE date in [first, end) GROUP BY key, per variant."""

        def outer(source: exp.Expression, key: str) -> exp.Expression:
            group = source_column(self.key_column, key, "q")
            select: list[exp.Expr] = [exp.alias_(group.copy(), "total_key"),
                                      exp.alias_(exp.Count(this=exp.Star()), "row_count")]
            for i, c in enumerate(self.amount_columns):
                total: exp.Expression = exp.Sum(this=source_column(c, key, "q"))
                if SQLGLOT_DIALECTS[key] == "oracle":
                    total = exp.Anonymous(this="TO_CHAR", expressions=[total])
                select.append(exp.alias_(total, f"sum_{i}"))
            date = source_column(self.date_column, key, "q")
            return exp.select(*select).from_(source).where(day_range(date, first, end, key)).group_by(group)

        return wrap(self.query, outer, "totals")


class FileTotals(BaseModel):
    """A totals file the other party returns: one row per key (rows of the same key are added up)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field(description="The period's file: {period:%Y%m} is the period's first day formatted, e.g. "
                      "/data/insurance/{period:%Y%m}/settle_total.csv.")
    encoding: Encoding = Field("auto", description="auto, utf-8, gbk or gb18030.")
    delimiter: str = Field(",", min_length=1, max_length=1, description="Field separator.")
    header_line: int = Field(1, ge=1, description="1-based line of the header row.")
    skip_prefixes: list[str] = Field(["#", "合计", "总计"], description="Rows starting with these are not totals.")
    key: str = Field(description="Header of the key column (e.g. 险种).")
    amounts: dict[str, str] = Field(description="HIS amount column -> this file's header, e.g. {fund_pay: 统筹支付}.")
    count: str | None = Field(None, description="Header of the number of settlements, compared with the HIS count.")

    @field_validator("path")
    @classmethod
    def _period_in_path(cls, v: str) -> str:
        for m in re.finditer(r"\{([^}]*)\}", v):
            if not re.fullmatch(r"period(:[^{}]*)?", m.group(1)):
                raise ValueError(f"the only placeholder in path is {{period}} or {{period:FORMAT}}, not {{{m.group(1)}}}")
        return v

    def file_for(self, first: dt.date) -> Path:
        return Path(re.sub(r"\{period(?::([^}]*))?\}", lambda m: first.strftime(m.group(1) or "%Y-%m"),
                           self.path)).expanduser()


class OtherSide(BaseModel):
    """What the HIS totals are compared with: a file, or a query on a target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("insurance platform", description="What the other side is called in results, e.g. 医保平台.")
    file: FileTotals | None = Field(None, description="A totals file the other party returns.")
    table: SqlTotals | None = Field(None, description="Or a query on a target (e.g. the insurance front-end DB).")

    @model_validator(mode="after")
    def _one(self) -> OtherSide:
        if (self.file is None) == (self.table is None):
            raise ValueError("give either file or table")
        return self


@dataclass
class Side:
    rows: dict[str, tuple[int | None, tuple[decimal.Decimal, ...]]]
    """key -> (count or None when this side has none, sums in amount_columns order)."""


class ReconcileTotals(DatabaseCheck):
    kind_doc: ClassVar[str] = (
        "Two-sided totals per key for a period, such as the monthly insurance reconciliation: the HIS's settlements "
        "(`his`: a query with declared key, date and amount columns, summed per key by the database over last month "
        "or yesterday on the HIS server's clock) against the other party's totals (`other`: a file with one row per "
        "key, UTF-8 or GBK, or a query on a target). `key_map` maps HIS codes to the other side's keys. A key on one "
        "side only, or an amount (or count) differing by more than `tolerance`, is a finding (category insurance) "
        "naming the key, both amounts and the difference. The value is the number of keys that differ; a missing "
        "file is UNKNOWN not_found."
    )

    example: ClassVar[str] = """
id: insurance.monthly.totals
kind: reconcile.totals
target: his_db
schedule: "0 9 3 * *"
period: month
his:
  query:
    oracle: SELECT insur_type, settle_time, fund_pay, total_cost FROM his.insur_settle WHERE status = '1'
  key_column: insur_type
  date_column: settle_time
  amount_columns: [fund_pay, total_cost]
key_map: {"310": 城镇职工, "390": 城乡居民}
other:
  name: 医保平台
  file:
    path: /data/insurance/{period:%Y%m}/settle_total.csv
    key: 险种
    amounts: {fund_pay: 统筹支付, total_cost: 医疗总费用}
    count: 结算笔数
"""

    value_unit: ClassVar[str | None] = "count"

    kind: Literal["reconcile.totals"] = "reconcile.totals"
    period: Period = Field("month", description="month (the last full calendar month) or day (yesterday).")
    his: SqlTotals = Field(description="The HIS side.")
    other: OtherSide = Field(description="The other party's totals.")
    key_map: dict[str, str] = Field(default_factory=dict, description="HIS key -> the other side's key.")
    tolerance: decimal.Decimal = Field(decimal.Decimal("0"), ge=0, description="Largest difference in an amount still "
                                       "counted equal (yuan).")
    scale: int = Field(2, ge=0, le=8, description="Decimals the amounts are compared at.")
    max_findings: int = Field(100, ge=0, le=1000, description="Most findings per run.")
    severity: Literal["warning", "critical"] = Field("critical", description="Status when any key differs.")

    @model_validator(mode="after")
    def _consistent(self) -> ReconcileTotals:
        if self.his.target is not None:
            raise ValueError("his.target: the HIS side runs on the check's target")
        if self.other.file is not None:
            unknown_cols = sorted(set(self.other.file.amounts) - set(self.his.amount_columns))
            if unknown_cols:
                raise ValueError(f"other.file.amounts names {', '.join(unknown_cols)}, which his.amount_columns does not have")
        if self.other.table is not None and len(self.other.table.amount_columns) != len(self.his.amount_columns):
            raise ValueError("other.table.amount_columns must list as many columns as his.amount_columns, in order")
        try:
            today = dt.date.today()
            self.his.wrapped(today, today)
            if self.other.table is not None:
                self.other.table.wrapped(today, today)
        except BadName as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def other_target(self) -> str:
        table = self.other.table
        return (table.target if table is not None and table.target else None) or self.target or ""

    def sql_queries(self) -> list[tuple[str, QueryMap]]:
        return [(f, q) for _, f, q in self.sql_queries_by_target()]

    def sql_queries_by_target(self) -> list[tuple[str, str, QueryMap]]:
        today = dt.date.today()
        out = [(self.target or "", "his.query", self.his.wrapped(today, today))]
        if self.other.table is not None:
            out.append((self.other_target, "other.table.query", self.other.table.wrapped(today, today)))
        return out

    def period_of(self, today: dt.date) -> tuple[dt.date, dt.date]:
        """[first, end) of the period before `today`: last calendar month, or yesterday."""
        if self.period == "day":
            return today - dt.timedelta(days=1), today
        end = today.replace(day=1)
        return (end - dt.timedelta(days=1)).replace(day=1), end

    def probe(self, ctx: RunContext) -> list[Result]:
        from checks.sql.session import session_for

        def run() -> list[Result]:
            with session_for(ctx, self.target or "", wait=ctx.remaining(self.timeout)) as session:
                first, end = self.period_of(server_today(session, self.timeout_left(ctx), self.id))
                his = self._sql_side(session, self.his, first, end, ctx)
            if self.other.table is not None:
                with session_for(ctx, self.other_target, wait=ctx.remaining(self.timeout)) as session:
                    other = self._sql_side(session, self.other.table, first, end, ctx)
            else:
                other = self._file_side(first)
            return [self.compare(his, other, first, end)]

        return self.guarded(ctx, run)

    def _sql_side(self, session: Any, totals: SqlTotals, first: dt.date, end: dt.date, ctx: RunContext) -> Side:
        rows = session.run(totals.wrapped(first, end), timeout=self.timeout_left(ctx), max_rows=10_000, check_id=self.id)
        index = {c: i for i, c in enumerate(rows.columns)}
        out: dict[str, tuple[int | None, tuple[decimal.Decimal, ...]]] = {}
        for row in rows.rows:
            sums = tuple(canonical.decimal_of(row[index[f"sum_{i}"]]) or decimal.Decimal(0)
                         for i in range(len(totals.amount_columns)))
            out[canonical.key(row[index["total_key"]])] = (canonical.count(row[index["row_count"]]), sums)
        return Side(out)

    def _file_side(self, first: dt.date) -> Side:
        f = self.other.file
        assert f is not None
        path = f.file_for(first)
        if not path.is_file():
            raise InputMissing(f"no {self.other.name} totals file {path}")
        out: dict[str, tuple[int | None, tuple[decimal.Decimal, ...]]] = {}
        with open_text(path, f.encoding) as text:
            header: list[str] | None = None
            for row in csv_rows(text, f.delimiter):
                cells = [c.strip().strip("`\t\"'=") for c in row]
                if text.number < f.header_line or not "".join(cells):
                    continue
                if header is None:
                    header = cells
                    missing = [h for h in [f.key, *f.amounts.values(), *([f.count] if f.count else [])] if h not in header]
                    if missing:
                        raise text.error(f"no column {', '.join(missing)} in the header")
                    continue
                if any(cells[0].startswith(p) for p in f.skip_prefixes):
                    continue
                key = canonical.key(_cell(text, header, cells, f.key))
                sums = []
                for col in self.his.amount_columns:
                    name = f.amounts.get(col)
                    try:
                        value = canonical.decimal_of(_cell(text, header, cells, name)) if name else None
                    except canonical.CanonicalError as exc:
                        raise text.error(f"{name}: {exc}") from None
                    sums.append(value or decimal.Decimal(0))
                count: int | None = None
                if f.count:
                    try:
                        count = canonical.count(_cell(text, header, cells, f.count))
                    except canonical.CanonicalError as exc:
                        raise text.error(f"{f.count}: {exc}") from None
                before = out.get(key)
                if before is not None:
                    sums = [a + b for a, b in zip(before[1], sums, strict=True)]
                    count = None if count is None or before[0] is None else before[0] + count
                out[key] = (count, tuple(sums))
        return Side(out)

    def compare(self, his: Side, other: Side, first: dt.date, end: dt.date) -> Result:
        """The result of comparing the two sides' totals for the period [first, end) (pure)."""
        period = f"{first:%Y-%m}" if self.period == "month" else first.isoformat()
        mapped: dict[str, tuple[int | None, tuple[decimal.Decimal, ...]]] = {}
        for key, value in his.rows.items():
            k = self.key_map.get(key, key)
            if k in mapped:
                prev = mapped[k]
                value = ((prev[0] or 0) + (value[0] or 0), tuple(a + b for a, b in zip(prev[1], value[1], strict=True)))
            mapped[k] = value
        name = self.other.name
        findings: list[Finding] = []
        texts: list[str] = []
        for key in sorted(mapped.keys() | other.rows.keys()):
            h, o = mapped.get(key), other.rows.get(key)
            problems: list[str] = []
            evidence: dict[str, float] = {}
            attributes = {"period": period, "key": key, "other": name}
            if h is None or o is None:
                which = "his_only" if o is None else "other_only"
                present = h or o
                assert present is not None
                amounts = ", ".join(f"{c} {_yuan(v, self.scale)}" for c, v in zip(self.his.amount_columns, present[1], strict=True))
                text = f"{key}: only in {'HIS' if o is None else name} ({amounts})"
                problems.append(which)
                attributes["problem"] = which
            else:
                diffs = []
                for c, a, b in zip(self.his.amount_columns, h[1], o[1], strict=True):
                    evidence[f"his_{c}"], evidence[f"other_{c}"] = float(a), float(b)
                    if abs(a - b) > self.tolerance:
                        diffs.append(f"{c} HIS {_yuan(a, self.scale)} vs {name} {_yuan(b, self.scale)} "
                                     f"(difference {_yuan(a - b, self.scale)})")
                        attributes[f"difference_{c}"] = canonical.amount(a - b, self.scale)
                if h[0] is not None and o[0] is not None and h[0] != o[0]:
                    diffs.append(f"settlements HIS {h[0]} vs {name} {o[0]}")
                    evidence["his_count"], evidence["other_count"] = float(h[0]), float(o[0])
                if not diffs:
                    continue
                problems.append("differs")
                attributes["problem"] = "differs"
                text = f"{key}: " + "; ".join(diffs)
            texts.append(text)
            if len(findings) < self.max_findings:
                findings.append(Finding(
                    fingerprint=f"{self.id}:{period}:{key}:{problems[0]}",
                    title=f"{period} {key}: HIS and {name} totals differ" if problems[0] == "differs"
                    else f"{period} {key}: only in {'HIS' if problems[0] == 'his_only' else name}",
                    object=key, evidence=evidence, attributes=attributes, category="insurance",
                    recommendation=f"{text}. Compare the settlement details of {key} for {period} with {name}'s "
                                   "(missing uploads, rejected or re-settled claims), correct and re-declare, then "
                                   "accept this finding with the explanation."))
        metrics = {"keys": float(len(mapped.keys() | other.rows.keys())), "differing_keys": float(len(texts))}
        for i, c in enumerate(self.his.amount_columns):
            metrics[f"his_{c}"] = float(sum((v[1][i] for v in mapped.values()), decimal.Decimal(0)))
            metrics[f"other_{c}"] = float(sum((v[1][i] for v in other.rows.values()), decimal.Decimal(0)))
        if not texts:
            return Result(check_id=self.id, status=Status.OK, value=0.0, unit="keys", metrics=metrics,
                          summary=f"{self.display_title}: {period}: {len(mapped)} keys agree with {name}")
        status = self.status_for(float(len(texts))) if (self.warn or self.crit) else (
            Status.CRITICAL if self.severity == "critical" else Status.WARNING)
        shown = "; ".join(texts[:3]) + (f"; and {len(texts) - 3} more" if len(texts) > 3 else "")
        return Result(check_id=self.id, status=status, value=float(len(texts)), unit="keys", metrics=metrics,
                      findings=findings, summary=f"{self.display_title}: {period}: {len(texts)} keys differ: {shown}")


def _cell(text: Any, header: list[str], cells: list[str], name: str) -> str:
    i = header.index(name)
    if i >= len(cells):
        raise text.error(f"the row has {len(cells)} fields; {name} is number {i + 1}")
    return cells[i]


def _yuan(value: decimal.Decimal, scale: int) -> str:
    return canonical.amount(value, scale)


SPECS: dict[str, type[CheckSpec]] = {"reconcile.totals": ReconcileTotals}
