"""Synthetic channel statement files in the real layouts, written as a stream (a day of 100,000 transactions
is fine): the WeChat Pay trade bill (bill type ALL, backtick-prefixed fields, summary block), the Alipay
business detail (业务明细: # comment header and footer, tab-suffixed fields, usually GBK) and a bank file.

Used by the tests and by bench/reconcile.py. The layouts follow the channels' published formats; the values
(app ids, merchant numbers, openids) are made up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

WECHAT_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
                 "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
                 "手续费,费率,订单金额,申请退款金额,费率备注")
WECHAT_SUMMARY = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
ALIPAY_HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,"
                 "商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,"
                 "商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")


@dataclass(frozen=True)
class Txn:
    """One transaction as the channel reports it."""

    order_no: str
    kind: str
    """payment, refund or revoked."""
    cents: int
    at: dt.datetime
    txn_id: str = ""
    refund_no: str = ""


def yuan(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def write_wechat(path: Path, txns: Iterable[Txn], *, encoding: str = "utf-8", bom: bool = True,
                 truncate_after: int | None = None, summary_count: int | None = None) -> int:
    """A WeChat Pay bill (ALL); returns the number of detail rows written. `truncate_after` cuts the file
    there (no summary, as a broken download); `summary_count` makes the summary lie."""
    n = paid = refunded = fee = 0
    with path.open("w", encoding=("utf-8-sig" if bom else encoding) if encoding == "utf-8" else encoding,
                   newline="") as f:
        f.write(WECHAT_HEADER + "\r\n")
        for t in txns:
            if truncate_after is not None and n >= truncate_after:
                return n
            status = {"payment": "SUCCESS", "refund": "REFUND", "revoked": "REVOKED"}[t.kind]
            refund = t.kind == "refund"
            charge = 0 if refund else t.cents
            commission = round(t.cents * 6 / 1000) * (-1 if refund else 1)
            fields = [
                f"{t.at:%Y-%m-%d %H:%M:%S}", "wx8888888888888888", "1900000109", "0", "", t.txn_id, t.order_no,
                "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "JSAPI", status, "OTHERS", "CNY", yuan(charge), "0.00",
                f"50000{t.txn_id[-10:]}" if refund else "0", t.refund_no if refund else "0",
                yuan(t.cents) if refund else "0.00", "0.00", "ORIGINAL" if refund else "", "SUCCESS" if refund else "",
                "门诊缴费", "", yuan(commission), "0.60%", yuan(charge), yuan(t.cents) if refund else "0.00", "",
            ]
            f.write(",".join("`" + x for x in fields) + "\r\n")
            n += 1
            paid += charge
            refunded += t.cents if refund else 0
            fee += commission
        f.write(WECHAT_SUMMARY + "\r\n")
        count = n if summary_count is None else summary_count
        f.write(",".join("`" + x for x in (str(count), yuan(paid), yuan(refunded), "0.00", yuan(fee), yuan(paid),
                                           yuan(refunded))) + "\r\n")
    return n


def write_alipay(path: Path, txns: Iterable[Txn], day: dt.date, *, encoding: str = "gbk",
                 footer_counts: tuple[int, int] | None = None) -> int:
    """An Alipay 业务明细 (GBK by default) with its # header and footer; `footer_counts` makes the footer lie."""
    n = payments = refunds = 0
    paid = refunded = 0
    with path.open("w", encoding=encoding, newline="") as f:
        f.write("#支付宝业务明细查询\r\n#账号：[20880000000000000156]\r\n")
        f.write(f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{day + dt.timedelta(days=1):%Y年%m月%d日} 00:00:00]\r\n")
        f.write("#-----------------------------------------业务明细列表----------------------------------------\r\n")
        f.write(ALIPAY_HEADER + "\r\n")
        for t in txns:
            refund = t.kind == "refund"
            amount = -t.cents if refund else t.cents
            fields = [
                f"{t.txn_id}\t", f"{t.order_no}\t", "退款" if refund else "交易", "门诊缴费",
                f"{t.at:%Y-%m-%d %H:%M:%S}", f"{t.at + dt.timedelta(seconds=4):%Y-%m-%d %H:%M:%S}", "\t", "\t", "\t", "\t",
                "*张(138****0000)\t", yuan(amount), yuan(amount), "0.00", "0.00", "0.00", "0.00", "0.00", "", "0.00\t",
                "0.00", f"{t.refund_no}\t" if refund else "\t", yuan(-round(t.cents * 6 / 1000)), "0.00", "",
            ]
            f.write(",".join(fields) + "\r\n")
            n += 1
            if refund:
                refunds += 1
                refunded += t.cents
            else:
                payments += 1
                paid += t.cents
        declared = footer_counts or (payments, refunds)
        f.write("#-----------------------------------------业务明细列表结束------------------------------------\r\n")
        f.write(f"#交易合计：{declared[0]}笔，商家实收共：{yuan(paid)}元，商家优惠共：0.00元\r\n")
        f.write(f"#退款合计：{declared[1]}笔，商家实收退款共：{yuan(-refunded)}元，商家优惠退款共：0.00元\r\n")
        f.write(f"#导出时间：[{day + dt.timedelta(days=1):%Y年%m月%d日} 09:00:00]\r\n")
    return n


def write_bank(path: Path, txns: Iterable[Txn], *, encoding: str = "gbk") -> int:
    """A bank aggregated-payment file: a title line, a header, tab-separated rows in fen, a total line."""
    n = total = 0
    with path.open("w", encoding=encoding, newline="") as f:
        f.write("聚合支付交易明细\r\n")
        f.write("清算日期\t交易时间\t商户订单号\t银行流水号\t交易类型\t交易金额(分)\r\n")
        for t in txns:
            kind = {"payment": "消费", "refund": "退货", "revoked": "撤销"}[t.kind]
            f.write(f"{t.at:%Y%m%d}\t{t.at:%Y%m%d%H%M%S}\t{t.order_no}\t{t.txn_id}\t{kind}\t{t.cents}\r\n")
            n += 1
            total += t.cents
        f.write(f"合计\t\t\t\t{n}笔\t{total}\r\n")
    return n
