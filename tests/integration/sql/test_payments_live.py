"""reconcile.payments against HIS payment records on live PostgreSQL and MariaDB, and statement files the test
writes in the real WeChat Pay (UTF-8) and Alipay (GBK) layouts and a bank's (GBK, by mapping): a clean day reads
OK, every kind of 单边账 and mismatch is found with the right ids, and midnight payments match across days."""

from __future__ import annotations

import datetime as dt
import decimal
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

from checks.context import RunContext
from checks.reconcile.payments import ReconcilePayments
from checks.result import Outcome, Result, Status
from checks.sql.target import Target
from tests.integration.sql.conftest import my_target, pg_target
from tests.unit.reconcile.bills import Txn, write_alipay, write_bank, write_wechat

pytestmark = pytest.mark.integration

HIS_COLUMNS = "out_trade_no, channel, pay_type, amount, pay_time, trade_no, refund_no, patient_id"


def clean_day(day: dt.date, n: int = 300) -> list[Txn]:
    """n payments through the day, every tenth refunded two hours later, one at 23:59:59."""
    txns = []
    for i in range(n):
        at = dt.datetime.combine(day, dt.time(7)) + dt.timedelta(seconds=97 * i)
        order = f"MZ{day:%Y%m%d}{i:06d}"
        txn_id = f"42000{day:%Y%m%d}{i:010d}"
        txns.append(Txn(order, "payment", 500 + 13 * i, at, txn_id))
        if i % 10 == 0:
            txns.append(Txn(order, "refund", 500 + 13 * i, at + dt.timedelta(hours=2), txn_id, f"TF{order}"))
    txns.append(Txn(f"MZ{day:%Y%m%d}LATE", "payment", 2000, dt.datetime.combine(day, dt.time(23, 59, 59)), "42000LATE"))
    return txns


def his_rows(txns: list[Txn], channel: str) -> list[tuple[Any, ...]]:
    rows = []
    for t in txns:
        at = t.at + dt.timedelta(seconds=3)  # HIS books the payment when the channel's notification arrives
        rows.append((t.order_no, channel, "REFUND" if t.kind == "refund" else "PAY",
                     decimal.Decimal(t.cents) / 100, at, t.txn_id, t.refund_no or None, f"P{len(rows) % 500:06d}"))
    return rows


BROKEN = {
    "channel_only": "MZCHANNELONLY1",
    "his_only": "MZHISONLY1",
    "amount_mismatch": "MZAMOUNT1",
    "status_mismatch": "MZSTATUS1",
}


def break_day(day: dt.date) -> tuple[list[Txn], list[Txn]]:
    """(extra channel transactions, extra HIS transactions) that make each problem once, plus a refund HIS booked
    that the channel never made."""
    at = dt.datetime.combine(day, dt.time(15))
    channel = [Txn(BROKEN["channel_only"], "payment", 3300, at, "4200CO1"),
               Txn(BROKEN["amount_mismatch"], "payment", 1250, at, "4200AM1"),
               Txn(BROKEN["status_mismatch"], "payment", 800, at, "4200SM1")]
    his = [Txn(BROKEN["his_only"], "payment", 4400, at, "4200HO1"),
           Txn(BROKEN["amount_mismatch"], "payment", 1200, at, "4200AM1"),
           Txn(BROKEN["status_mismatch"], "refund", 800, at, "4200SM1", "TFSM1"),
           Txn(f"MZ{day:%Y%m%d}000001", "refund", 513, at, f"42000{day:%Y%m%d}{1:010d}", "TFHIS1")]
    return channel, his


def spec(target: str, statement: dict[str, Any], table: str, channel: str) -> ReconcilePayments:
    return ReconcilePayments.model_validate({
        "id": f"his.pay.{channel.lower()}", "kind": "reconcile.payments", "target": target, "timeout": "60s",
        "channel": channel.lower(), "statement": statement,
        "his": {"query": {"postgres": f"SELECT out_trade_no, amount, pay_time, pay_type, trade_no, refund_no FROM {table} "
                                      f"WHERE channel = '{channel}'",
                          "mysql": f"SELECT out_trade_no, amount, pay_time, pay_type, trade_no, refund_no FROM {table} "
                                   f"WHERE channel = '{channel}'"},
                "order_column": "out_trade_no", "amount_column": "amount", "time_column": "pay_time",
                "kind_column": "pay_type", "txn_column": "trade_no", "refund_no_column": "refund_no"}})


def run(ctx: RunContext, target: Target, s: ReconcilePayments) -> Result:
    ctx.targets = {target.name: target}
    [result] = s.probe(ctx)
    return result


def assert_every_problem(result: Result, day: dt.date) -> None:
    assert (result.status, result.outcome, result.value) == (Status.CRITICAL, Outcome.OK, 5.0), result.summary
    found = {(f.attributes["problem"], f.object, f.attributes["kind"]): f for f in result.findings}
    assert set(found) == {
        ("channel_only", BROKEN["channel_only"], "payment"), ("his_only", BROKEN["his_only"], "payment"),
        ("amount_mismatch", BROKEN["amount_mismatch"], "payment"),
        ("status_mismatch", BROKEN["status_mismatch"], "refund/payment"),
        ("his_only", f"MZ{day:%Y%m%d}000001", "refund")}
    co = found[("channel_only", BROKEN["channel_only"], "payment")]
    assert co.attributes["channel_txn_id"] == "4200CO1" and co.evidence == {"his_amount": 0.0, "channel_amount": 33.0,
                                                                            "difference": -33.0}
    assert co.attributes["channel_time"].startswith(day.isoformat()) and co.category == "payment"
    am = found[("amount_mismatch", BROKEN["amount_mismatch"], "payment")]
    assert (am.evidence["his_amount"], am.evidence["channel_amount"]) == (12.0, 12.5)
    refund = found[("his_only", f"MZ{day:%Y%m%d}000001", "refund")]
    assert refund.attributes["his_refund_no"] == "TFHIS1"
    assert "patient_id" not in str(result.findings) and "P0000" not in str(result.findings)
    assert result.metrics["channel_only"] == 1 and result.metrics["his_only"] == 2


@pytest.fixture
def pg_pay(pg_admin: psycopg.Connection[Any], pg_schema: str) -> tuple[str, dt.date, Any]:
    today = pg_admin.execute("SELECT CURRENT_DATE").fetchone()[0]  # type: ignore[index]
    pg_admin.execute(f"CREATE TABLE {pg_schema}.pay_record (id serial PRIMARY KEY, out_trade_no varchar(40) NOT NULL, "
                     "channel varchar(10), pay_type varchar(10), amount numeric(12,2), pay_time timestamp, "
                     "trade_no varchar(40), refund_no varchar(40), patient_id varchar(20))")

    def insert(rows: list[tuple[Any, ...]]) -> None:
        with pg_admin.cursor() as cur:
            cur.executemany(f"INSERT INTO {pg_schema}.pay_record ({HIS_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", rows)

    return f"{pg_schema}.pay_record", today - dt.timedelta(days=1), insert


def test_wechat_on_postgres_clean_then_every_discrepancy(pg_pay: tuple[str, dt.date, Any], tmp_path: Path,
                                                         driver: str, ctx: RunContext) -> None:
    table, day, insert = pg_pay
    txns = clean_day(day)
    write_wechat(tmp_path / f"{day:%Y%m%d}.csv", txns)
    insert(his_rows(txns, "WECHAT"))
    target = pg_target(driver, allow={"reviewed_by": "test", "relations": [table]})
    s = spec(target.name, {"format": "wechat", "path": str(tmp_path / "{date:%Y%m%d}.csv")}, table, "WECHAT")
    clean = run(ctx, target, s)
    assert (clean.status, clean.value, clean.findings) == (Status.OK, 0.0, []), clean.summary
    assert clean.metrics["channel_transactions"] == len(txns)
    assert clean.metrics["his_transactions"] == len(txns) - 1, "HIS booked the 23:59:59 payment at 00:00:02"
    assert clean.metrics["net_difference"] == -20.0, "... so the day's sums differ by it, but it matched"

    channel, his = break_day(day)
    write_wechat(tmp_path / f"{day:%Y%m%d}.csv", txns + channel)
    insert(his_rows(his, "WECHAT"))
    assert_every_problem(run(ctx, target, s), day)


@pytest.fixture
def my_pay(my_admin: pymysql.connections.Connection) -> Iterator[tuple[str, dt.date, Any]]:
    db = f"xj_test_{secrets.token_hex(4)}"
    cur = my_admin.cursor()
    cur.execute(f"CREATE DATABASE {db}")
    cur.execute("SELECT CURRENT_DATE")
    today = cur.fetchone()[0]
    cur.execute(f"CREATE TABLE {db}.pay_record (id int AUTO_INCREMENT PRIMARY KEY, out_trade_no varchar(40) NOT NULL, "
                "channel varchar(10), pay_type varchar(10), amount decimal(12,2), pay_time datetime, trade_no varchar(40), "
                "refund_no varchar(40), patient_id varchar(20), KEY (pay_time))")

    def insert(rows: list[tuple[Any, ...]]) -> None:
        cur.executemany(f"INSERT INTO {db}.pay_record ({HIS_COLUMNS}) VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", rows)

    try:
        yield f"{db}.pay_record", today - dt.timedelta(days=1), insert
    finally:
        cur.execute(f"DROP DATABASE {db}")
        cur.close()


def test_alipay_gbk_on_mariadb_clean_then_every_discrepancy(my_pay: tuple[str, dt.date, Any], tmp_path: Path,
                                                            driver: str, ctx: RunContext) -> None:
    table, day, insert = my_pay
    txns = clean_day(day)
    write_alipay(tmp_path / f"2088_{day:%Y%m%d}_业务明细.csv", txns, day)
    insert(his_rows(txns, "ALIPAY"))
    target = my_target(driver, allow={"reviewed_by": "test", "relations": [table]})
    s = spec(target.name, {"format": "alipay", "path": str(tmp_path / "2088_{date:%Y%m%d}_*.csv")}, table, "ALIPAY")
    clean = run(ctx, target, s)
    assert (clean.status, clean.value) == (Status.OK, 0.0), clean.summary
    channel, his = break_day(day)
    write_alipay(tmp_path / f"2088_{day:%Y%m%d}_业务明细.csv", txns + channel, day)
    insert(his_rows(his, "ALIPAY"))
    assert_every_problem(run(ctx, target, s), day)


def test_bank_file_by_mapping_and_a_missing_file(pg_pay: tuple[str, dt.date, Any], tmp_path: Path, ctx: RunContext) -> None:
    table, day, insert = pg_pay
    txns = clean_day(day, 50)
    target = pg_target("native", allow={"reviewed_by": "test", "relations": [table]})
    statement = {"format": "mapped", "path": str(tmp_path / "bank_{date:%Y%m%d}.txt"), "delimiter": "\t",
                 "header_line": 2, "amount_unit": "fen", "time_format": "%Y%m%d%H%M%S", "refund_values": ["退货"],
                 "columns": {"order_no": "商户订单号", "amount": "交易金额(分)", "time": "交易时间", "kind": "交易类型",
                             "txn_id": "银行流水号"}}
    s = spec(target.name, statement, table, "BANK")
    missing = run(ctx, target, s)
    assert (missing.status, missing.outcome) == (Status.UNKNOWN, Outcome.NOT_FOUND)
    assert f"no bank statement file for {day}" in missing.summary
    write_bank(tmp_path / f"bank_{day:%Y%m%d}.txt", txns)
    insert(his_rows(txns, "BANK"))
    assert run(ctx, target, s).status == Status.OK


def test_a_truncated_bill_is_unknown_not_a_clean_day(pg_pay: tuple[str, dt.date, Any], tmp_path: Path,
                                                     ctx: RunContext) -> None:
    table, day, insert = pg_pay
    txns = clean_day(day, 50)
    write_wechat(tmp_path / f"{day:%Y%m%d}.csv", txns, truncate_after=30)
    insert(his_rows(txns, "WECHAT"))
    target = pg_target("native", allow={"reviewed_by": "test", "relations": [table]})
    result = run(ctx, target, spec(target.name, {"format": "wechat", "path": str(tmp_path / "{date:%Y%m%d}.csv")},
                                   table, "WECHAT"))
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.CONTENT_MISMATCH)
    assert "the file looks truncated" in result.summary
