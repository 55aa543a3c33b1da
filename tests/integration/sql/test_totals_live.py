"""reconcile.totals against live servers: the HIS's insurance settlements of last month on PostgreSQL summed per
insurance type, against a GBK totals file and against the insurance front end's table on MariaDB."""

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
from checks.reconcile.totals import ReconcileTotals
from checks.result import Status
from tests.integration.sql.conftest import my_target, pg_target

pytestmark = pytest.mark.integration

TYPES = {"310": ("城镇职工", 30, decimal.Decimal("123.45")), "390": ("城乡居民", 20, decimal.Decimal("67.80"))}


def settlements(first: dt.date) -> list[tuple[Any, ...]]:
    rows = []
    for code, (_, n, fund) in TYPES.items():
        for i in range(n):
            at = dt.datetime.combine(first, dt.time(9)) + dt.timedelta(hours=7 * i)
            rows.append((code, at, fund, fund * 2, "1"))
    rows.append(("310", dt.datetime.combine(first, dt.time(9)) - dt.timedelta(days=1), decimal.Decimal(999), 0, "1"))
    return rows


@pytest.fixture
def his(pg_admin: psycopg.Connection[Any], pg_schema: str) -> tuple[str, dt.date]:
    today = pg_admin.execute("SELECT CURRENT_DATE").fetchone()[0]  # type: ignore[index]
    first = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    pg_admin.execute(f"CREATE TABLE {pg_schema}.insur_settle (insur_type varchar(10), settle_time timestamp, "
                     "fund_pay numeric(12,2), total_cost numeric(12,2), status char(1), patient_id varchar(20))")
    with pg_admin.cursor() as cur:
        cur.executemany(f"INSERT INTO {pg_schema}.insur_settle (insur_type, settle_time, fund_pay, total_cost, status) "
                        "VALUES (%s, %s, %s, %s, %s)", settlements(first))
    return f"{pg_schema}.insur_settle", first


def spec(table: str, other: dict[str, Any]) -> ReconcileTotals:
    return ReconcileTotals.model_validate({
        "id": "insurance.monthly", "kind": "reconcile.totals", "target": "pg",
        "his": {"query": {"postgres": f"SELECT insur_type, settle_time, fund_pay, total_cost FROM {table} WHERE status = '1'"},
                "key_column": "insur_type", "date_column": "settle_time", "amount_columns": ["fund_pay", "total_cost"]},
        "key_map": {code: name for code, (name, _, _) in TYPES.items()}, "other": other})


def test_his_against_a_gbk_totals_file(his: tuple[str, dt.date], tmp_path: Path, ctx: RunContext) -> None:
    table, first = his
    lines = ["险种,结算笔数,统筹支付,医疗总费用"]
    for name, n, fund in TYPES.values():
        lines.append(f"{name},{n},{fund * n},{fund * 2 * n}")
    (tmp_path / f"{first:%Y%m}.csv").write_text("\r\n".join(lines) + "\r\n", encoding="gbk")
    other = {"name": "医保平台", "file": {"path": str(tmp_path / "{period:%Y%m}.csv"), "key": "险种",
                                       "amounts": {"fund_pay": "统筹支付", "total_cost": "医疗总费用"},
                                       "count": "结算笔数"}}
    ctx.targets = {"pg": pg_target("native", allow={"reviewed_by": "test", "relations": [table]})}
    ok = spec(table, other).probe(ctx)[0]
    assert (ok.status, ok.value) == (Status.OK, 0.0), ok.summary
    lines[1] = lines[1].replace(f"{TYPES['310'][2] * 30}", f"{TYPES['310'][2] * 30 - 1}")
    (tmp_path / f"{first:%Y%m}.csv").write_text("\r\n".join(lines) + "\r\n", encoding="gbk")
    bad = spec(table, other).probe(ctx)[0]
    assert (bad.status, bad.value) == (Status.CRITICAL, 1.0), bad.summary
    [finding] = bad.findings
    assert (finding.object, finding.attributes["difference_fund_pay"]) == ("城镇职工", "1.00")


@pytest.fixture
def front_end(my_admin: pymysql.connections.Connection) -> Iterator[str]:
    db = f"xj_test_{secrets.token_hex(4)}"
    with my_admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {db}")
        cur.execute(f"CREATE TABLE {db}.settle_result (xzlx varchar(20), jssj datetime, tczf decimal(12,2), "
                    "ylzfy decimal(12,2))")
        try:
            yield db
        finally:
            cur.execute(f"DROP DATABASE {db}")


def test_his_on_postgres_against_the_front_end_table_on_mariadb(his: tuple[str, dt.date], front_end: str,
                                                                my_admin: pymysql.connections.Connection,
                                                                ctx: RunContext) -> None:
    table, first = his
    with my_admin.cursor() as cur:
        rows = [(TYPES[code][0], at, fund, total) for code, at, fund, total, _ in settlements(first)]
        cur.executemany(f"INSERT INTO {front_end}.settle_result VALUES (%s, %s, %s, %s)", rows[:-2])
    other = {"name": "医保前置机", "table": {"target": "my", "query": {
        "mysql": f"SELECT xzlx, jssj, tczf, ylzfy FROM {front_end}.settle_result"},
        "key_column": "xzlx", "date_column": "jssj", "amount_columns": ["tczf", "ylzfy"]}}
    ctx.targets = {"pg": pg_target("native", allow={"reviewed_by": "test", "relations": [table]}),
                   "my": my_target("native", allow={"reviewed_by": "test", "relations": [f"{front_end}.*"]})}
    result = spec(table, other).probe(ctx)[0]
    assert (result.status, result.value) == (Status.CRITICAL, 1.0), result.summary
    [finding] = result.findings
    assert finding.object == "城乡居民" and "settlements HIS 20 vs 医保前置机 19" in finding.recommendation
