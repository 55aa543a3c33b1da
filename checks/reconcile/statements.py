"""Channel statement files (对账单) read as a stream of transactions: WeChat Pay and Alipay bills in their real
layouts, and a bank's aggregated-payment file by column mapping. UTF-8 (with or without BOM), GBK/GB18030.

WeChat Pay (商户平台/API "交易账单", bill type ALL): a header row (交易时间,公众账号ID,商户号,...), detail rows whose
every field starts with a backtick (so Excel keeps long numbers), then a summary header (总交易单数,...) and one
summary row. 交易状态 SUCCESS is a payment, REFUND a refund (with 商户退款单号 and 申请退款金额), REVOKED a payment
revoked. The summary's count is checked against the rows read, so a truncated download is not a clean day.

Alipay (业务明细, usually GBK): comment lines starting with # before the header (#支付宝业务明细查询, #账号, the
dates, a ---- line) and after the rows (a ---- end line, #交易合计：N笔..., #退款合计：N笔..., #导出时间); fields end in
a tab. 业务类型 交易 is a payment, 退款 a refund (negative 订单金额, with 退款批次号/请求号). The 合计 counts, when the
footer has them, are checked like WeChat's.

Only the declared identifiers, the amount, the time and the kind are kept; nothing else of a row is read further.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import datetime as dt
import gzip
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from checks.reconcile import canonical
from checks.sql.probing import InputUnreadable

Kind = Literal["payment", "refund", "revoked"]
Encoding = Literal["auto", "utf-8", "gbk", "gb18030"]
_SNIFF = 64 * 1024
_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M",
                 "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y%m%d")


class StatementError(InputUnreadable):
    """A statement file that cannot be read as its format says: names the file, line and column, never the row."""


@dataclass(frozen=True, slots=True)
class Transaction:
    order_no: str
    kind: Kind
    cents: int
    at: str
    """YYYY-MM-DD HH:MM:SS, or "" when the file has no time for it."""
    txn_id: str = ""
    refund_no: str = ""


class MappedColumns(BaseModel):
    """Which column of a bank file holds what: a header name, or a 1-based column number."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    order_no: str | int = Field(description="The merchant order number the HIS records (商户订单号).")
    amount: str | int = Field(description="The amount.")
    time: str | int | None = Field(None, description="When it happened.")
    kind: str | int | None = Field(None, description="Payment or refund (see refund_values); without it a negative "
                                   "amount is a refund.")
    txn_id: str | int | None = Field(None, description="The bank's or channel's transaction id.")
    refund_no: str | int | None = Field(None, description="The refund's number.")


class StatementFormat(BaseModel):
    """Where a channel's statement files are and how to read them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["wechat", "alipay", "mapped"] = Field(description="wechat, alipay, or mapped (a bank's file).")
    path: str = Field(
        description="Files of one business day: {date} or {date:%Y%m%d} is the day, and * a wildcard, e.g. "
        "/data/bills/wechat/{date:%Y%m%d}/*.csv. Every file that matches is read (several merchant accounts).",
    )
    encoding: Encoding = Field("auto", description="auto (UTF-8, else GB18030, a superset of GBK), utf-8, gbk, gb18030.")
    delimiter: str = Field(",", min_length=1, max_length=1, description="mapped: the field separator.")
    header_line: int = Field(1, ge=0, description="mapped: 1-based line of the header row; 0 = no header (columns "
                             "by number).")
    skip_prefixes: list[str] = Field(["#", "合计", "总计", "小计"], description="mapped: rows whose first field starts "
                                     "with one of these are not transactions (comments, totals).")
    strip: str = Field("`\t \"'=", description="mapped: characters trimmed from every field.")
    columns: MappedColumns | None = Field(None, description="mapped: which column holds what.")
    refund_values: list[str] = Field(["退款", "退货", "REFUND", "R"], description="mapped: kind values of a refund.")
    revoked_values: list[str] = Field(["撤销", "冲正", "REVOKED"], description="mapped: kind values of a revoked payment.")
    amount_unit: Literal["yuan", "fen"] = Field("yuan", description="mapped: amounts in yuan (12.34) or fen (1234).")
    time_format: str | None = Field(None, description='mapped: strftime format of the time, e.g. "%Y%m%d%H%M%S"; '
                                    "default: the usual ISO-like forms.")

    @field_validator("path")
    @classmethod
    def _day_in_path(cls, v: str) -> str:
        if "{date" not in v:
            raise ValueError("the path must contain {date} (or {date:%Y%m%d}): the files of one business day")
        for m in re.finditer(r"\{([^}]*)\}", v):
            if not re.fullmatch(r"date(:[^{}]*)?", m.group(1)):
                raise ValueError(f"the only placeholder in path is {{date}} or {{date:FORMAT}}, not {{{m.group(1)}}}")
        return v

    @model_validator(mode="after")
    def _mapped_needs_columns(self) -> StatementFormat:
        if self.format == "mapped" and self.columns is None:
            raise ValueError("format mapped needs columns: {order_no, amount, ...}")
        if self.format != "mapped" and self.columns is not None:
            raise ValueError(f"columns are for format mapped; the {self.format} layout is built in")
        return self

    def files_for(self, day: dt.date) -> list[Path]:
        """The files of `day`, sorted; a pattern with wildcards may match none."""
        pattern = re.sub(r"\{date(?::([^}]*))?\}", lambda m: day.strftime(m.group(1) or "%Y-%m-%d"), self.path)
        path = Path(pattern).expanduser()
        anchor = Path(path.anchor) if path.is_absolute() else Path()
        relative = path.relative_to(anchor) if path.is_absolute() else path
        if not any(c in str(relative) for c in "*?["):
            return [path] if path.is_file() else []
        return sorted(p for p in anchor.glob(str(relative)) if p.is_file())

    def read(self, path: Path) -> Iterator[Transaction]:
        """The file's transactions; a .zip as the channels deliver them (Alipay's holds 业务明细.csv and a 汇总
        summary, which is skipped) is read member by member, a gzip file (WeChat's GZIP download) as is."""
        reader = {"wechat": _wechat, "alipay": _alipay, "mapped": _mapped}[self.format]
        for name, opener in _members(path):
            with opener() as stream, open_text(name, self.encoding, stream) as text:
                yield from reader(self, name, text)


# --- decoding --------------------------------------------------------------------------------------------------

class TextLines:
    """Text lines of a file with their numbers; a byte that is not in the encoding is a StatementError there."""

    def __init__(self, path: Path, stream: io.TextIOWrapper, encoding: str) -> None:
        self.path = path
        self.stream = stream
        self.encoding = encoding
        self.number = 0

    def __iter__(self) -> Iterator[str]:
        while True:
            try:
                line = self.stream.readline()
            except UnicodeDecodeError as exc:
                raise StatementError(f"{self.path}:{self.number + 1}: not {self.encoding} text "
                                     f"({exc.reason}); give encoding: in the check") from None
            if not line:
                return
            self.number += 1
            yield line.lstrip("\ufeff") if self.number == 1 else line

    def error(self, message: str) -> StatementError:
        return StatementError(f"{self.path}:{self.number}: {message}")


_ZIP, _GZIP = b"PK\x03\x04", b"\x1f\x8b"
_MAX_MEMBER = 4 * 2**30
"""A member larger than this (uncompressed) is refused: a zip bomb is not a statement."""


def _members(path: Path) -> Iterator[tuple[Path, Callable[[], BinaryIO]]]:
    """(name for messages, binary stream) of each statement in the file: itself, its gunzipped content, or the
    CSV/TXT members of a zip except summaries (汇总)."""
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise StatementError(f"{path}: cannot read ({exc.strerror})") from None
    if magic.startswith(_GZIP):
        yield path, lambda: cast(BinaryIO, gzip.GzipFile(path, "rb"))
        return
    if not magic.startswith(_ZIP):
        yield path, lambda: path.open("rb")
        return
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise StatementError(f"{path}: not a readable zip ({exc})") from None
    with archive:
        for info in sorted(archive.infolist(), key=lambda i: i.filename):
            name = _member_name(info)
            if info.is_dir() or "汇总" in name or not name.lower().endswith((".csv", ".txt")):
                continue
            if info.file_size > _MAX_MEMBER:
                raise StatementError(f"{path}!{name}: {info.file_size} bytes uncompressed, more than a statement has")
            yield Path(f"{path}!{name}"), lambda info=info: cast(BinaryIO, archive.open(info))  # type: ignore[misc]


def _member_name(info: zipfile.ZipInfo) -> str:
    """Member names without the UTF-8 flag are GBK in the channels' zips; zipfile read them as cp437."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


@contextlib.contextmanager
def open_text(path: Path, encoding: Encoding, stream: BinaryIO | None = None) -> Iterator[TextLines]:
    """The file (or `stream`) as text lines in its encoding: auto tries UTF-8 on the first 64 KiB, else GB18030
    (which reads GBK)."""
    try:
        raw = stream if stream is not None else path.open("rb")
    except OSError as exc:
        raise StatementError(f"{path}: cannot read ({exc.strerror})") from None
    with raw:
        name: str = encoding
        if name == "auto":
            head = raw.read(_SNIFF)
            raw.seek(0)  # gzip and zip members seek back by reading again from their start
            try:
                codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < _SNIFF)
                name = "utf-8"
            except UnicodeDecodeError:
                name = "gb18030"
        elif name == "gbk":
            name = "gb18030"  # a superset: GBK files read the same, and the odd GB18030-only character does not fail
        text = io.TextIOWrapper(raw, encoding="utf-8-sig" if name == "utf-8" else name, newline="")
        yield TextLines(path, text, name)


def csv_rows(lines: TextLines, delimiter: str = ",") -> Iterator[list[str]]:
    """CSV rows (quoted fields allowed), each with lines.number pointing at its line; a row the csv module cannot
    read (a NUL byte, a field over 128 KiB, an unterminated quote) is a StatementError there."""
    reader = csv.reader(lines, delimiter=delimiter)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise lines.error(f"not a CSV row ({exc})") from None
        yield row


# --- WeChat Pay ---------------------------------------------------------------------------------------------------

_WECHAT_KIND: dict[str, Kind] = {"SUCCESS": "payment", "REFUND": "refund", "REVOKED": "revoked"}


def _wechat(fmt: StatementFormat, path: Path, text: TextLines) -> Iterator[Transaction]:
    header: dict[str, int] | None = None
    rows = 0
    for row in csv_rows(text):
        if not row or not "".join(row).strip():
            continue
        first = row[0].strip().removeprefix("`").strip()
        if header is None:
            cells = [c.strip().removeprefix("`").strip() for c in row]
            if cells[0] == "交易时间":
                header = {name: i for i, name in enumerate(cells)}
                _need(text, header, ("交易时间", "商户订单号", "交易状态"), "WeChat Pay bill")
                if not any(n in header for n in ("订单金额", "总金额", "应结订单金额")):
                    raise text.error("the WeChat Pay bill header has no 订单金额/总金额 column")
                continue
            raise text.error("expected the WeChat Pay bill header (交易时间,公众账号ID,商户号,...) first")
        if first == "总交易单数":
            _wechat_summary(text, rows)
            return
        rows += 1
        yield _wechat_row(text, header, row)
    if header is None:
        raise text.error("no WeChat Pay bill header (交易时间,...) in the file")
    raise text.error(f"no summary (总交易单数) after {rows} rows: the file looks truncated")


def _wechat_row(text: TextLines, header: dict[str, int], cells: list[str]) -> Transaction:
    """One detail row; only the cells the reconciliation needs are read (and their backtick taken off)."""

    def cell(*names: str) -> str:
        for n in names:
            i = header.get(n)
            if i is not None:
                if i >= len(cells):
                    raise text.error(f"the row has {len(cells)} fields, the header {len(header)}")
                return cells[i].strip().removeprefix("`").strip()
        return ""

    status = cell("交易状态").upper()
    kind = _WECHAT_KIND.get(status)
    if kind is None:
        raise text.error(f"交易状态 {status[:20]!r} is not SUCCESS, REFUND or REVOKED")
    if kind == "refund":
        amount = cell("申请退款金额") or cell("退款金额")
    else:
        amount = cell("订单金额") or cell("总金额") or cell("应结订单金额")
    return Transaction(
        order_no=_required(text, cell("商户订单号"), "商户订单号"),
        kind=kind,
        cents=abs(_cents(text, amount, "amount", 100)),
        at=_time(text, cell("交易时间"), None),
        txn_id=cell("微信订单号"),
        refund_no=cell("商户退款单号") if kind == "refund" else "",
    )


def _wechat_summary(text: TextLines, rows: int) -> None:
    for row in csv_rows(text):
        cells = [c.strip().removeprefix("`").strip() for c in row]
        if not cells or not "".join(cells):
            continue
        try:
            declared = int(cells[0])
        except ValueError:
            raise text.error("the summary row's 总交易单数 is not a number") from None
        if declared != rows:
            raise text.error(f"the summary says {declared} transactions, the file has {rows}: truncated or edited")
        return
    raise text.error("the summary header (总交易单数) has no summary row: the file looks truncated")


# --- Alipay -------------------------------------------------------------------------------------------------------

_ALIPAY_KIND: dict[str, Kind] = {"交易": "payment", "退款": "refund"}
_ALIPAY_TOTAL = re.compile(r"^#\s*(交易|退款)合计[:：]\s*(\d+)\s*笔")


def _alipay(fmt: StatementFormat, path: Path, text: TextLines) -> Iterator[Transaction]:
    header: dict[str, int] | None = None
    counts: dict[str, int] = {"payment": 0, "refund": 0}
    declared: dict[str, int] = {}
    for row in csv_rows(text):
        if not row or not "".join(row).strip():
            continue
        first = row[0].strip()
        if first.startswith("#"):
            m = _ALIPAY_TOTAL.match(",".join(row).strip())
            if m:
                declared["payment" if m.group(1) == "交易" else "refund"] = int(m.group(2))
            continue
        cells = [c.strip() for c in row]
        if header is None:
            if cells[0] != "支付宝交易号":
                raise text.error("expected the Alipay bill header (支付宝交易号,商户订单号,业务类型,...)")
            header = {name: i for i, name in enumerate(cells)}
            _need(text, header, ("商户订单号", "业务类型", "订单金额（元）"), "Alipay bill")
            continue
        if len(cells) < len(header):
            raise text.error(f"the row has {len(cells)} fields, the header {len(header)}")
        kind_text = cells[header["业务类型"]]
        found = _ALIPAY_KIND.get(kind_text)
        if found is None:
            raise text.error(f"业务类型 {kind_text[:20]!r} is not 交易 or 退款")
        kind = found
        counts[kind] += 1
        at = cells[header["完成时间"]] if "完成时间" in header else ""
        at = at or (cells[header["创建时间"]] if "创建时间" in header else "")
        yield Transaction(
            order_no=_required(text, cells[header["商户订单号"]], "商户订单号"),
            kind=kind,
            cents=abs(_cents(text, cells[header["订单金额（元）"]], "订单金额（元）", 100)),
            at=_time(text, at, None) if at else "",
            txn_id=cells[header["支付宝交易号"]],
            refund_no=cells[header["退款批次号/请求号"]] if kind == "refund" and "退款批次号/请求号" in header else "",
        )
    if header is None:
        raise text.error("no Alipay bill header (支付宝交易号,...) in the file")
    for which, n in declared.items():
        if counts[which] != n:
            words = "交易" if which == "payment" else "退款"
            raise text.error(f"the footer says {n} {words} rows (#{words}合计), the file has {counts[which]}: truncated "
                             "or edited")


# --- a bank's file by column mapping -----------------------------------------------------------------------------

def _mapped(fmt: StatementFormat, path: Path, text: TextLines) -> Iterator[Transaction]:
    cols = fmt.columns
    assert cols is not None
    index: dict[str, int] | None = None if fmt.header_line else _by_number(cols)
    refunds = {v.strip().casefold() for v in fmt.refund_values}
    revoked = {v.strip().casefold() for v in fmt.revoked_values}
    scale = 0 if fmt.amount_unit == "fen" else 100
    for row in csv_rows(text, fmt.delimiter):
        if text.number < fmt.header_line:
            continue
        cells = [c.strip(fmt.strip) for c in row]
        if not cells or not "".join(cells):
            continue
        if index is None:
            index = _by_header(text, cols, cells)
            continue
        if any(cells[0].startswith(p) for p in fmt.skip_prefixes):
            continue
        got = {field: _cell(text, cells, field, i) for field, i in index.items()}
        cents = _cents(text, got.get("amount", ""), "amount", scale)
        kind_text = got.get("kind", "").casefold()
        kind: Kind
        if cols.kind is not None:
            kind = "refund" if kind_text in refunds else "revoked" if kind_text in revoked else "payment"
        else:
            kind = "refund" if cents < 0 else "payment"
        yield Transaction(order_no=_required(text, got.get("order_no", ""), "order_no"), kind=kind, cents=abs(cents),
                          at=_time(text, got["time"], fmt.time_format) if "time" in got else "",
                          txn_id=got.get("txn_id", ""), refund_no=got.get("refund_no", "") if kind == "refund" else "")


def _cell(text: TextLines, cells: list[str], field: str, i: int) -> str:
    if i >= len(cells):
        raise text.error(f"the row has {len(cells)} fields; column {field} is number {i + 1}")
    return cells[i]


def _by_number(cols: MappedColumns) -> dict[str, int]:
    out = {}
    for field, value in cols.model_dump().items():
        if value is None:
            continue
        if not isinstance(value, int):
            raise StatementError(f"columns.{field}: with header_line 0 columns are given by number, not {value!r}")
        out[field] = value - 1
    return out


def _by_header(text: TextLines, cols: MappedColumns, header: list[str]) -> dict[str, int]:
    out = {}
    for field, value in cols.model_dump().items():
        if value is None:
            continue
        if isinstance(value, int):
            out[field] = value - 1
        elif value in header:
            out[field] = header.index(value)
        else:
            raise text.error(f"columns.{field}: no column {value!r} in the header ({', '.join(header)[:200]})")
    return out


# --- cells --------------------------------------------------------------------------------------------------------

def _need(text: TextLines, header: dict[str, int], names: tuple[str, ...], what: str) -> None:
    missing = [n for n in names if n not in header]
    if missing:
        raise text.error(f"the {what} header has no {', '.join(missing)} column")


def _required(text: TextLines, value: str, what: str) -> str:
    if not value:
        raise text.error(f"empty {what}")
    return value


def _cents(text: TextLines, value: str, what: str, scale: int) -> int:
    """Yuan text as fen (scale 100), or fen text as fen (scale 0)."""
    try:
        if scale == 0:
            number = canonical.decimal_of(value)
            if number is None or number != number.to_integral_value():
                raise canonical.CanonicalError("not a whole number of fen")
            return int(number)
        cents = canonical.cents(value, 2)
    except canonical.CanonicalError as exc:
        raise text.error(f"{what}: {exc}") from None
    if cents is None:
        raise text.error(f"empty {what}")
    return cents


def _time(text: TextLines, value: str, fmt: str | None) -> str:
    value = value.strip()
    if fmt is None and len(value) == 19 and value[10] == " ":
        try:
            dt.datetime.fromisoformat(value)
            return value
        except ValueError:
            pass
    for f in (fmt,) if fmt else _TIME_FORMATS:
        try:
            return dt.datetime.strptime(value, f).strftime("%Y-%m-%d %H:%M:%S")
        except ValueError:
            continue
    raise text.error(f"time {value[:30]!r} is not a date and time" + (f" in the format {fmt}" if fmt else ""))
