"""`reconcile.payments`: the HIS's payments and refunds of one channel against the channel's statement files,
transaction by transaction, for one business day; every 单边账 and mismatch a finding an engineer settles.

The HIS side is the pack's query with declared columns, wrapped (as a sqlglot tree) in a filter on the day and
streamed in batches; the files are read line by line; both go to a temporary SQLite file (matcher.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlglot import exp

from checks.context import RunContext
from checks.reconcile import canonical
from checks.reconcile.matcher import Discrepancy, Group, Ledger, Record
from checks.reconcile.server_date import server_today
from checks.reconcile.statements import StatementFormat, Transaction
from checks.result import Finding, Result, Status
from checks.spec import CheckSpec
from checks.sql.build import BadName, day_range, source_column, wrap
from checks.sql.probing import DatabaseCheck, InputMissing, InputUnreadable
from checks.sql.query import QueryField, QueryMap

BATCH = 5000
CHANNEL_WORDS = {"wechat": "WeChat Pay", "alipay": "Alipay", "mapped": "bank"}
PROBLEMS = {
    "channel_only": ("单边账: on the channel, not in HIS",
                     "The channel has it but HIS has no record: the patient paid (or was refunded) and HIS does not know "
                     "it, so the patient may pay twice. Check the HIS payment callback log for this order, then book it "
                     "in HIS or refund the patient (人工退费), and accept this finding with the voucher number."),
    "his_only": ("单边账: in HIS, not on the channel",
                 "HIS recorded it but the channel statement does not have it: query the order on the channel's merchant "
                 "platform; if no money moved, reverse it in HIS (and for a refund, refund the patient for real)."),
    "amount_mismatch": ("amounts differ",
                        "Both sides have the order with different amounts: compare the HIS charge with the channel "
                        "order; correct HIS or refund the difference."),
    "status_mismatch": ("status differs",
                        "One side has a payment and the other a refund or revocation for the order: find which is "
                        "right on the channel's merchant platform and correct the other."),
}


class HisRecords(BaseModel):
    """The HIS's payment and refund records of this channel: a query and what its columns mean."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    query: QueryField = Field(description="SQL per dialect returning this channel's payment/refund records (no ORDER "
                              "BY); the kind adds the filter on the day, so the query has no date condition.")
    order_column: str = Field(description="The merchant order number (商户订单号 / out_trade_no) the channel has too.")
    amount_column: str = Field(description="The amount of the payment or refund.")
    time_column: str = Field(description="When it was paid or refunded (date/time, server clock).")
    kind_column: str | None = Field(None, description="Which rows are refunds (see refund_values); without it a "
                                    "negative amount is a refund.")
    txn_column: str | None = Field(None, description="The channel's transaction id, if HIS keeps it (shown in findings).")
    refund_no_column: str | None = Field(None, description="The refund's number, if HIS keeps it.")
    refund_values: list[str] = Field(["REFUND", "退费", "退款", "R", "-1"], description="kind_column values of a refund.")
    revoked_values: list[str] = Field(["REVOKED", "撤销", "冲正"], description="kind_column values of a revoked payment.")
    amount_unit: Literal["yuan", "fen"] = Field("yuan", description="yuan (12.34) or fen (1234).")

    @field_validator("refund_values", "revoked_values")
    @classmethod
    def _fold(cls, v: list[str]) -> list[str]:
        return [x.strip().casefold() for x in v]

    def columns(self) -> list[tuple[str, str]]:
        """(output alias, configured column) in the order the wrapped statement returns them."""
        cols = [("order_no", self.order_column), ("amount", self.amount_column), ("at", self.time_column),
                ("kind", self.kind_column), ("txn_id", self.txn_column), ("refund_no", self.refund_no_column)]
        return [(alias, c) for alias, c in cols if c is not None]

    def kind_of(self, kind: Any, cents: int) -> str:
        if self.kind_column is None:
            return "refund" if cents < 0 else "payment"
        text = ("" if kind is None else str(kind)).strip().casefold()
        return "refund" if text in self.refund_values else "revoked" if text in self.revoked_values else "payment"


def wrapped(his: HisRecords, first: dt.date, end: dt.date) -> QueryMap:
    """The pack's query as a subquery, its declared columns picked by name and filtered to [first, end)."""

    def outer(source: exp.Expression, key: str) -> exp.Expression:
        select = [exp.alias_(source_column(c, key, "q"), alias) for alias, c in his.columns()]
        return exp.select(*select).from_(source).where(day_range(source_column(his.time_column, key, "q"), first,
                                                                 end, key))

    return wrap(his.query, outer, "payments")


class ReconcilePayments(DatabaseCheck):
    kind_doc: ClassVar[str] = (
        "Third-party payment reconciliation for one business day (by default yesterday on the HIS database server's "
        "clock): the HIS's payments and refunds of one channel (`his`: a query with declared columns, streamed) "
        "against that channel's statement files (`statement`: the WeChat Pay or Alipay bill in its own layout, or a "
        "bank's aggregated-payment file by column mapping; UTF-8 or GBK), matched on the merchant order number in "
        "a temporary SQLite file on the agent (bounded memory). Every order that is only on the channel or only in "
        "HIS (单边账), whose amounts differ, or which is a payment on one side and a refund or revocation on the "
        "other becomes a finding (category payment) with the order number, transaction and refund ids, amounts and "
        "times, for an engineer to settle and accept with a note; nothing else of a row leaves the host. The "
        "neighbouring days' records are read too so that a payment just before midnight that HIS booked just after "
        "still matches. The value is the number of discrepancies; the metrics give each side's count and net amount "
        "for the day. A missing statement file is UNKNOWN not_found; a file that does not read as its format (a "
        "truncated download: its own summary disagrees) is UNKNOWN content_mismatch naming the line."
    )

    example: ClassVar[str] = """
id: his.pay.wechat.reconcile
kind: reconcile.payments
target: his_db
schedule: "30 10 * * *"
timeout: 5m
channel: wechat
statement:
  format: wechat
  path: /data/bills/wechat/{date:%Y%m%d}*.csv
his:
  query:
    oracle: |
      SELECT out_trade_no, amount, pay_time, pay_type, trade_no
      FROM his.pay_record WHERE channel = 'WECHAT'
  order_column: out_trade_no
  amount_column: amount
  time_column: pay_time
  kind_column: pay_type
  txn_column: trade_no
"""

    value_unit: ClassVar[str | None] = "count"

    kind: Literal["reconcile.payments"] = "reconcile.payments"
    channel: str = Field("", description="Name of the channel in results and findings, e.g. wechat, alipay, icbc; "
                         "defaults to the statement format.")
    statement: StatementFormat = Field(description="The channel's statement files and their layout.")
    his: HisRecords = Field(description="The HIS's records of this channel.")
    day_offset: int = Field(1, ge=0, le=60, description="Which day: 1 = yesterday on the HIS server's clock.")
    match_on: Literal["order_no", "txn_id"] = Field(
        "order_no", description="order_no (商户订单号, default) or txn_id (the channel's transaction id, when HIS keeps "
        "that instead; his.txn_column is then required).",
    )
    neighbour_days: int = Field(1, ge=0, le=3, description="Days either side read only to match across midnight.")
    max_findings: int = Field(200, ge=0, le=5000, description="Most findings per run (the counts stay exact).")
    max_transactions: int = Field(5_000_000, ge=1, description="Most records read per side, a bound on the run.")
    severity: Literal["warning", "critical"] = Field("critical", description="Status when there is any discrepancy "
                                                     "(unless warn/crit on the count).")

    @model_validator(mode="after")
    def _consistent(self) -> ReconcilePayments:
        if self.match_on == "txn_id" and self.his.txn_column is None:
            raise ValueError("match_on txn_id needs his.txn_column")
        try:
            today = dt.date.today()
            wrapped(self.his, today, today)
        except BadName as exc:
            raise ValueError(f"his: {exc}") from None
        return self

    @property
    def channel_name(self) -> str:
        return self.channel or self.statement.format

    def sql_queries(self) -> list[tuple[str, QueryMap]]:
        today = dt.date.today()
        return [("his.query", wrapped(self.his, today, today))]

    def probe(self, ctx: RunContext) -> list[Result]:
        from checks.sql.session import session_for

        def run() -> list[Result]:
            with Ledger(_spill_dir(ctx)) as ledger:
                with session_for(ctx, self.target or "", wait=ctx.remaining(self.timeout)) as session:
                    day = server_today(session, self.timeout_left(ctx), self.id) - dt.timedelta(days=self.day_offset)
                    self._load_statements(ledger, day)
                    self._load_his(ledger, session, day, ctx)
                return [self._result(ledger, day)]

        return self.guarded(ctx, run, key=self.channel_name)

    def _load_statements(self, ledger: Ledger, day: dt.date) -> None:
        files = self.statement.files_for(day)
        if not files:
            raise InputMissing(f"no {CHANNEL_WORDS[self.statement.format]} statement file for {day} "
                           f"({self.statement.path}); has the bill been downloaded?")
        for offset in range(-self.neighbour_days, self.neighbour_days + 1):
            other = day + dt.timedelta(days=offset)
            for path in files if offset == 0 else self.statement.files_for(other):
                for batch in _batches(self._records(self.statement.read(path), offset == 0)):
                    ledger.add("channel", batch)
                    if ledger.counts["channel"] > self.max_transactions:
                        raise InputUnreadable(f"more than max_transactions {self.max_transactions} statement records")

    def _records(self, transactions: Iterator[Transaction], reported: bool) -> Iterator[Record]:
        for t in transactions:
            key = t.order_no if self.match_on == "order_no" else t.txn_id
            yield Record(key, t.kind, t.cents, t.at, t.txn_id, t.refund_no, reported)

    def _load_his(self, ledger: Ledger, session: Any, day: dt.date, ctx: RunContext) -> None:
        first = day - dt.timedelta(days=self.neighbour_days)
        end = day + dt.timedelta(days=self.neighbour_days + 1)
        query = wrapped(self.his, first, end)
        with session.stream(query, timeout=self.timeout_left(ctx), batch_rows=BATCH, check_id=self.id) as rows:
            index = {c: i for i, c in enumerate(rows.columns)}
            for batch in rows.batches():
                ledger.add("his", [self._his_record(row, index, day) for row in batch])
                if ledger.counts["his"] > self.max_transactions:
                    raise InputUnreadable(f"more than max_transactions {self.max_transactions} HIS records")

    def _his_record(self, row: Any, index: dict[str, int], day: dt.date) -> Record:
        h = self.his

        def cell(alias: str) -> Any:
            i = index.get(alias)
            return None if i is None else row[i]

        amount = cell("amount")
        cents = canonical.cents(amount, 2) if h.amount_unit == "yuan" else canonical.count(amount)
        if cents is None:
            raise canonical.CanonicalError(f"a HIS record of order {canonical.key(cell('order_no'))} has no amount")
        kind = h.kind_of(cell("kind"), cents)
        at = cell("at")
        moment = at if isinstance(at, dt.datetime) else None
        when = f"{moment:%Y-%m-%d %H:%M:%S}" if moment is not None else canonical.day(at) if at is not None else ""
        txn_id = canonical.key(cell("txn_id")) if h.txn_column else ""
        order_no = canonical.key(cell("order_no"))
        return Record(order_no if self.match_on == "order_no" else txn_id, kind, abs(cents), when, txn_id,
                      canonical.key(cell("refund_no")) if h.refund_no_column and kind == "refund" else "",
                      when[:10] == day.isoformat())

    def _result(self, ledger: Ledger, day: dt.date) -> Result:
        counts = {p: 0 for p in PROBLEMS}
        findings: list[Finding] = []
        for d in ledger.discrepancies():
            counts[d.problem] += 1
            if len(findings) < self.max_findings:
                findings.append(self._finding(d, day))
        totals = ledger.totals()
        his, chan = totals["his"], totals["channel"]
        problems = sum(counts.values())
        metrics = {
            "his_transactions": float(his.count), "channel_transactions": float(chan.count),
            "his_net_amount": his.net / 100, "channel_net_amount": chan.net / 100,
            "net_difference": (his.net - chan.net) / 100, **{p: float(n) for p, n in counts.items()},
        }
        name = CHANNEL_WORDS.get(self.channel_name, self.channel_name)
        sums = f"HIS {his.count} ({_yuan(his.net)}), {name} {chan.count} ({_yuan(chan.net)})"
        if not problems:
            return Result(check_id=self.id, status=Status.OK, value=0.0, unit="discrepancies", metrics=metrics,
                          summary=f"{self.display_title}: {day} reconciles: {sums}")
        status = self.status_for(float(problems)) if (self.warn or self.crit) else (
            Status.CRITICAL if self.severity == "critical" else Status.WARNING)
        words = ", ".join(f"{n} {p.replace('_', ' ')}" for p, n in counts.items() if n)
        shown = "; ".join(_short(f) for f in findings[:3])
        return Result(check_id=self.id, status=status, value=float(problems), unit="discrepancies", metrics=metrics,
                      findings=findings,
                      summary=f"{self.display_title}: {day}: {problems} discrepancies ({words}): {shown}; {sums}")

    def _finding(self, d: Discrepancy, day: dt.date) -> Finding:
        title, advice = PROBLEMS[d.problem]
        his_cents = sum(g.cents for g in d.his.values()) if d.problem == "status_mismatch" else _cents_of(d.his, d.kinds)
        chan_cents = (sum(g.cents for g in d.channel.values()) if d.problem == "status_mismatch"
                      else _cents_of(d.channel, d.kinds))
        attributes = {"channel": self.channel_name, "day": day.isoformat(), "problem": d.problem,
                      self.match_on: d.key, "kind": "/".join(d.kinds)}
        for side, groups in (("his", d.his), ("channel", d.channel)):
            if groups:
                attributes[f"{side}_kinds"] = ",".join(f"{k} {_yuan(g.cents)}" for k, g in sorted(groups.items()))
                attributes[f"{side}_time"] = min(g.at for g in groups.values() if g.at) if any(
                    g.at for g in groups.values()) else ""
                txn = ",".join(g.txn_ids for g in groups.values() if g.txn_ids)
                refunds = ",".join(g.refund_nos for g in groups.values() if g.refund_nos)
                if txn:
                    attributes[f"{side}_txn_id"] = txn[:200]
                if refunds:
                    attributes[f"{side}_refund_no"] = refunds[:200]
        return Finding(
            fingerprint=f"{self.id}:{self.channel_name}:{d.key}:{d.problem}:{'/'.join(d.kinds)}",
            title=f"{self.channel_name} {d.key}: {title} ({'/'.join(d.kinds)})",
            object=d.key,
            recommendation=advice,
            evidence={"his_amount": his_cents / 100, "channel_amount": chan_cents / 100,
                      "difference": (his_cents - chan_cents) / 100},
            attributes=attributes,
            category="payment",
        )


def _cents_of(groups: dict[str, Group], kinds: tuple[str, ...]) -> int:
    return sum(groups[k].cents for k in kinds if k in groups)


def _short(f: Finding) -> str:
    a = f.attributes
    amounts = f"HIS {_yuan_text(f.evidence['his_amount'])}, channel {_yuan_text(f.evidence['channel_amount'])}"
    return f"{a['problem']} {f.object} {a['kind']} ({amounts})"


def _yuan(cents: int) -> str:
    return f"¥{cents / 100:,.2f}"


def _yuan_text(value: float) -> str:
    return f"¥{value:,.2f}"


def _batches(records: Iterator[Record]) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for r in records:
        batch.append(r)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _spill_dir(ctx: RunContext) -> Path | None:
    if ctx.state_dir is None:
        return None
    path = Path(ctx.state_dir) / "reconcile"
    path.mkdir(parents=True, exist_ok=True)
    return path


SPECS: dict[str, type[CheckSpec]] = {"reconcile.payments": ReconcilePayments}
