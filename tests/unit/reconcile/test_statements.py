"""Channel statement files: WeChat Pay and Alipay bills in their layouts (UTF-8 with BOM, GBK), a bank file by
mapping, and every way a file can be wrong named by file and line, never by echoing the row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from checks.reconcile.matcher import Ledger, Record
from checks.reconcile.statements import StatementError, StatementFormat, Transaction
from tests.unit.reconcile.bills import Txn, write_alipay, write_bank, write_wechat

DAY = dt.date(2025, 3, 9)
AT = dt.datetime(2025, 3, 9, 10, 0, 3)
TXNS = [
    Txn("MZ20250309000001", "payment", 1200, AT, "4200002345202503091234567890"),
    Txn("MZ20250309000002", "payment", 88, AT, "4200002345202503091234567891"),
    Txn("MZ20250309000001", "refund", 1200, AT + dt.timedelta(hours=2), "4200002345202503091234567890", "TF0001"),
    Txn("MZ20250309000003", "revoked", 500, AT, "4200002345202503091234567892"),
]


def fmt(kind: str, tmp_path: Path, **extra: object) -> StatementFormat:
    return StatementFormat.model_validate({"format": kind, "path": str(tmp_path / "{date:%Y%m%d}.csv"), **extra})


def read(f: StatementFormat) -> list[Transaction]:
    [path] = f.files_for(DAY)
    return list(f.read(path))


EXPECTED = [
    Transaction("MZ20250309000001", "payment", 1200, "2025-03-09 10:00:03", "4200002345202503091234567890", ""),
    Transaction("MZ20250309000002", "payment", 88, "2025-03-09 10:00:03", "4200002345202503091234567891", ""),
    Transaction("MZ20250309000001", "refund", 1200, "2025-03-09 12:00:03", "4200002345202503091234567890", "TF0001"),
]


@pytest.mark.parametrize("encoding, bom", [("utf-8", True), ("utf-8", False), ("gbk", False)])
def test_wechat_bill(tmp_path: Path, encoding: str, bom: bool) -> None:
    write_wechat(tmp_path / "20250309.csv", TXNS, encoding=encoding, bom=bom)
    got = read(fmt("wechat", tmp_path))
    assert got[:3] == EXPECTED
    assert got[3].kind == "revoked" and got[3].cents == 500


def test_wechat_bill_with_no_transactions(tmp_path: Path) -> None:
    write_wechat(tmp_path / "20250309.csv", [])
    assert read(fmt("wechat", tmp_path)) == []


def test_a_truncated_wechat_bill_is_an_error_not_a_clean_day(tmp_path: Path) -> None:
    write_wechat(tmp_path / "20250309.csv", TXNS, truncate_after=2)
    with pytest.raises(StatementError, match=r"20250309.csv:3: no summary \(总交易单数\) after 2 rows"):
        read(fmt("wechat", tmp_path))
    write_wechat(tmp_path / "20250309.csv", TXNS, summary_count=9)
    with pytest.raises(StatementError, match="the summary says 9 transactions, the file has 4"):
        read(fmt("wechat", tmp_path))


def test_wechat_bad_rows_are_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "20250309.csv"
    write_wechat(path, TXNS)
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    lines[2] = lines[2].replace("`SUCCESS", "`PAID")
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(StatementError, match=r"20250309.csv:3: 交易状态 'PAID' is not SUCCESS, REFUND or REVOKED"):
        read(fmt("wechat", tmp_path))
    lines[2] = lines[2].replace("`PAID", "`SUCCESS").replace("`0.88", "`abc")
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(StatementError, match=r"20250309\.csv:3: amount: expected a number, got 'abc'"):
        read(fmt("wechat", tmp_path))
    path.write_text("not,a,bill\n", encoding="utf-8")
    with pytest.raises(StatementError, match="expected the WeChat Pay bill header"):
        read(fmt("wechat", tmp_path))


def test_alipay_bill_in_gbk_with_its_comment_header_and_footer(tmp_path: Path) -> None:
    write_alipay(tmp_path / "20250309.csv", TXNS[:3], DAY)
    got = read(fmt("alipay", tmp_path))
    assert [(t.order_no, t.kind, t.cents, t.txn_id, t.refund_no) for t in got] == [
        (e.order_no, e.kind, e.cents, e.txn_id, e.refund_no) for e in EXPECTED]
    assert got[0].at == "2025-03-09 10:00:07", "the completion time (完成时间)"


def test_alipay_footer_counts_catch_a_truncated_file(tmp_path: Path) -> None:
    write_alipay(tmp_path / "20250309.csv", TXNS[:3], DAY, footer_counts=(5, 1))
    with pytest.raises(StatementError, match="the footer says 5 交易 rows"):
        read(fmt("alipay", tmp_path))


def test_a_gbk_file_read_as_utf8_is_named(tmp_path: Path) -> None:
    write_alipay(tmp_path / "20250309.csv", TXNS[:3], DAY)
    with pytest.raises(StatementError, match=r"20250309.csv:1: not utf-8 text .*give encoding"):
        read(fmt("alipay", tmp_path, encoding="utf-8"))


def test_bank_file_by_column_mapping(tmp_path: Path) -> None:
    write_bank(tmp_path / "20250309.csv", TXNS)
    bank = fmt("mapped", tmp_path, delimiter="\t", header_line=2, amount_unit="fen", time_format="%Y%m%d%H%M%S",
               refund_values=["退货"], revoked_values=["撤销"],
               columns={"order_no": "商户订单号", "amount": "交易金额(分)", "time": "交易时间", "kind": "交易类型",
                        "txn_id": "银行流水号"})
    got = read(bank)
    assert [(t.order_no, t.kind, t.cents) for t in got] == [(t.order_no, t.kind, t.cents) for t in TXNS]
    bad = fmt("mapped", tmp_path, delimiter="\t", header_line=2, columns={"order_no": "订单号", "amount": "交易金额(分)"})
    with pytest.raises(StatementError, match=r"columns\.order_no: no column '订单号' in the header"):
        read(bad)


def test_bank_file_without_header_and_negative_refunds(tmp_path: Path) -> None:
    (tmp_path / "20250309.csv").write_text("A1;12.50;2025-03-09 08:00:00\nA2;-3.00;2025-03-09 09:00:00\n合计;9.50;\n",
                                           encoding="utf-8")
    f = fmt("mapped", tmp_path, delimiter=";", header_line=0, columns={"order_no": 1, "amount": 2, "time": 3})
    assert [(t.order_no, t.kind, t.cents) for t in read(f)] == [("A1", "payment", 1250), ("A2", "refund", 300)]


def test_statement_options_are_checked_when_the_pack_loads(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"must contain \{date\}"):
        StatementFormat.model_validate({"format": "wechat", "path": "/data/bill.csv"})
    with pytest.raises(ValidationError, match=r"only placeholder in path is \{date\}"):
        StatementFormat.model_validate({"format": "wechat", "path": "/data/{date.__class__}/{date}"})
    with pytest.raises(ValidationError, match="format mapped needs columns"):
        StatementFormat.model_validate({"format": "mapped", "path": "/d/{date}"})


def test_files_of_a_day_by_glob(tmp_path: Path) -> None:
    (tmp_path / "20250309_mch1.csv").write_text("x")
    (tmp_path / "20250309_mch2.csv").write_text("x")
    (tmp_path / "20250310_mch1.csv").write_text("x")
    f = StatementFormat.model_validate({"format": "wechat", "path": str(tmp_path / "{date:%Y%m%d}_*.csv")})
    assert [p.name for p in f.files_for(DAY)] == ["20250309_mch1.csv", "20250309_mch2.csv"]
    assert f.files_for(dt.date(2025, 3, 11)) == []


def rec(key: str, kind: str, cents: int, reported: bool = True, txn: str = "") -> Record:
    return Record(key, kind, cents, "2025-03-09 10:00:00", txn, "", reported)


def test_matching_finds_every_kind_of_discrepancy(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        ledger.add("his", [rec("A", "payment", 100), rec("B", "payment", 200), rec("C", "payment", 300),
                           rec("D", "refund", 50), rec("E", "payment", 70), rec("F", "payment", 10, reported=False),
                           rec("G", "payment", 5), rec("G", "payment", 5)])
        ledger.add("channel", [rec("A", "payment", 100, txn="wxA"), rec("B", "payment", 250), rec("D", "payment", 50),
                               rec("E", "payment", 70), rec("E", "refund", 70, reported=False), rec("H", "payment", 9),
                               rec("G", "payment", 10)])
        found = [(d.problem, d.key, d.kinds) for d in ledger.discrepancies()]
        totals = ledger.totals()
    assert found == [("amount_mismatch", "B", ("payment",)), ("his_only", "C", ("payment",)),
                     ("status_mismatch", "D", ("refund", "payment")), ("channel_only", "E", ("refund",)),
                     ("channel_only", "H", ("payment",))]
    assert (totals["his"].count, totals["his"].net) == (7, 680 - 50)
    assert (totals["channel"].count, totals["channel"].net) == (6, 489)


def test_records_only_on_a_neighbouring_day_are_not_reported(tmp_path: Path) -> None:
    with Ledger(tmp_path) as ledger:
        ledger.add("his", [rec("X", "payment", 1, reported=False)])
        assert list(ledger.discrepancies()) == []
    assert not any(tmp_path.iterdir()), "the spill file is removed"


@pytest.mark.parametrize("garbage", [b"\x00\x00\x00", b'"' + b"x" * 200_000, b"a" * 300_000])
def test_hostile_bytes_are_a_named_error_not_a_crash(tmp_path: Path, garbage: bytes) -> None:
    good = (tmp_path / "20250309.csv")
    write_wechat(good, TXNS)
    data = good.read_bytes().split(b"\r\n")
    data.insert(2, garbage)
    good.write_bytes(b"\r\n".join(data))
    with pytest.raises(StatementError, match=r"20250309\.csv:\d+: "):
        read(fmt("wechat", tmp_path))


def test_bills_as_the_channels_deliver_them_gzip_and_zip(tmp_path: Path) -> None:
    import gzip
    import zipfile

    src = tmp_path / "plain.csv"
    write_wechat(src, TXNS)
    (tmp_path / "20250309.csv").write_bytes(gzip.compress(src.read_bytes()))
    assert read(fmt("wechat", tmp_path))[:3] == EXPECTED
    detail, summary = tmp_path / "detail.csv", tmp_path / "summary.csv"
    write_alipay(detail, TXNS[:3], DAY)
    summary.write_text("#支付宝业务明细查询（汇总）\n", encoding="gbk")
    with zipfile.ZipFile(tmp_path / "20250309.csv", "w") as z:
        z.write(detail, "20880000000000000156_20250309_业务明细.csv")
        z.write(summary, "20880000000000000156_20250309_业务明细(汇总).csv")
    got = read(fmt("alipay", tmp_path))
    assert [(t.order_no, t.kind) for t in got] == [(e.order_no, e.kind) for e in EXPECTED]
    (tmp_path / "20250309.csv").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(StatementError, match="not a readable zip"):
        read(fmt("alipay", tmp_path))
