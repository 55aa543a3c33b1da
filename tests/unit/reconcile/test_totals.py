"""reconcile.totals offline: the period, the wrapped statements in every dialect, reading a totals file (GBK), and
the comparison per key with a key map and a tolerance."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from checks.reconcile.totals import ReconcileTotals, Side
from checks.result import Status
from checks.sql.allow import SiteAllowance, prepare
from checks.sql.guard import GuardError
from tests.unit.sql_packs.recorded import output_columns

D = decimal.Decimal
SQL = "SELECT insur_type, settle_time, fund_pay, total_cost FROM his.insur_settle WHERE status = '1'"


def spec(tmp_path: Path, **extra: Any) -> ReconcileTotals:
    body: dict[str, Any] = {
        "id": "insurance.monthly", "kind": "reconcile.totals", "target": "his",
        "his": {"query": {d: SQL for d in ("postgres", "mysql", "oracle", "mssql")}, "key_column": "insur_type",
                "date_column": "settle_time", "amount_columns": ["fund_pay", "total_cost"]},
        "key_map": {"310": "城镇职工", "390": "城乡居民"},
        "other": {"name": "医保平台", "file": {"path": str(tmp_path / "{period:%Y%m}.csv"), "key": "险种",
                                            "amounts": {"fund_pay": "统筹支付", "total_cost": "医疗总费用"},
                                            "count": "结算笔数"}}}
    body.update(extra)
    return ReconcileTotals.model_validate(body)


def test_the_period_is_last_month_or_yesterday(tmp_path: Path) -> None:
    assert spec(tmp_path).period_of(dt.date(2025, 3, 3)) == (dt.date(2025, 2, 1), dt.date(2025, 3, 1))
    assert spec(tmp_path).period_of(dt.date(2025, 1, 1)) == (dt.date(2024, 12, 1), dt.date(2025, 1, 1))
    assert spec(tmp_path, period="day").period_of(dt.date(2025, 3, 1)) == (dt.date(2025, 2, 28), dt.date(2025, 3, 1))


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "oracle", "mssql"])
def test_his_totals_are_summed_by_the_database(tmp_path: Path, dialect: str) -> None:
    query = spec(tmp_path).his.wrapped(dt.date(2025, 2, 1), dt.date(2025, 3, 1))
    [(key, _, variant)] = [v for v in query.variants() if v[0] == dialect]
    sql = variant.sql or ""
    assert "GROUP BY" in sql and ("2025-02-01" in sql)
    with pytest.raises(GuardError, match="not on the read-only allow-list"):
        prepare(sql, key, None)
    prepare(sql, key, SiteAllowance(reviewed_by="DBA", relations=("his.insur_settle",)))
    assert output_columns(sql, key) == ["total_key", "row_count", "sum_0", "sum_1"]


def write_totals(path: Path, rows: list[tuple[str, str, str, str]], encoding: str = "gbk") -> None:
    lines = ["医保结算汇总,2025年02月", "险种,结算笔数,统筹支付,医疗总费用",
             *(",".join(r) for r in rows), "合计,,,"]
    path.write_text("\r\n".join(lines) + "\r\n", encoding=encoding)


def test_a_gbk_totals_file_against_the_his_totals(tmp_path: Path) -> None:
    write_totals(tmp_path / "202502.csv", [("城镇职工", "120", "\"8,000.00\"", "12000.50"), ("城乡居民", "40", "900.00", "1500.00"),
                                           ("离休", "2", "10.00", "10.00")])
    s = spec(tmp_path, other={"name": "医保平台", "file": {
        "path": str(tmp_path / "{period:%Y%m}.csv"), "header_line": 2, "key": "险种",
        "amounts": {"fund_pay": "统筹支付", "total_cost": "医疗总费用"}, "count": "结算笔数"}})
    other = s._file_side(dt.date(2025, 2, 1))
    assert other.rows["城镇职工"] == (120, (D("8000.00"), D("12000.50")))
    his = Side({"310": (120, (D("8000.00"), D("12000.50"))), "390": (41, (D("905.00"), D("1500.00"))),
                "999": (1, (D("1"), D("1")))})
    result = s.compare(his, other, dt.date(2025, 2, 1), dt.date(2025, 3, 1))
    assert (result.status, result.value) == (Status.CRITICAL, 3.0)
    by_key = {f.object: f for f in result.findings}
    assert set(by_key) == {"城乡居民", "999", "离休"}
    assert by_key["城乡居民"].attributes["difference_fund_pay"] == "5.00"
    assert "settlements HIS 41 vs 医保平台 40" in by_key["城乡居民"].recommendation
    assert by_key["999"].attributes["problem"] == "his_only" and by_key["离休"].attributes["problem"] == "other_only"
    assert {f.category for f in result.findings} == {"insurance"}


def test_within_tolerance_agrees(tmp_path: Path) -> None:
    s = spec(tmp_path, tolerance="0.05")
    his = Side({"310": (None, (D("100.00"), D("200.00")))})
    other = Side({"城镇职工": (3, (D("100.04"), D("200.00")))})
    result = s.compare(his, other, dt.date(2025, 2, 1), dt.date(2025, 3, 1))
    assert (result.status, result.value) == (Status.OK, 0.0)
    assert result.summary == "insurance.monthly: 2025-02: 1 keys agree with 医保平台"


def test_totals_file_errors_are_named(tmp_path: Path) -> None:
    write_totals(tmp_path / "202502.csv", [("城镇职工", "x", "1", "2")])
    s = spec(tmp_path, other={"file": {"path": str(tmp_path / "{period:%Y%m}.csv"), "header_line": 2, "key": "险种",
                                       "amounts": {"fund_pay": "统筹支付"}, "count": "结算笔数"}})
    from checks.reconcile.statements import StatementError

    with pytest.raises(StatementError, match=r"202502\.csv:3: 结算笔数: expected a number"):
        s._file_side(dt.date(2025, 2, 1))


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"which his\.amount_columns does not have"):
        spec(tmp_path, other={"file": {"path": "/x/{period}", "key": "k", "amounts": {"nope": "x"}}})
    with pytest.raises(ValidationError, match="give either file or table"):
        spec(tmp_path, other={"name": "x"})
    with pytest.raises(ValidationError, match=r"only placeholder in path is \{period\}"):
        spec(tmp_path, other={"file": {"path": "/x/{date}", "key": "k", "amounts": {}}})
