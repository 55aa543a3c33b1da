"""One written form for values that two engines (or a database and a file) return differently.

PostgreSQL and MySQL return DECIMAL sums as Decimal, a DOUBLE column's sum as float, Oracle (through TO_CHAR)
as text such as ".5"; dates come back as date, datetime (Oracle's TRUNC) or text; keys as int, Decimal or
padded CHAR. Compared in these forms, equal data would differ. Every side is first brought to the same text:
decimals at the column's scale without exponent, ISO dates, trimmed keys, and NULL as "NULL".
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import Any

from checks.sql.probing import InputUnreadable

NULL = "NULL"


class CanonicalError(InputUnreadable):
    """A value that cannot be read as the type it should have."""


def decimal_of(value: Any) -> decimal.Decimal | None:
    """A number cell or text (with thousands separators, a leading ¥/￥ or a trailing 元) as an exact Decimal."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise CanonicalError(f"expected a number, got {value!r}")
    if isinstance(value, decimal.Decimal):
        return value
    if isinstance(value, int):
        return decimal.Decimal(value)
    if isinstance(value, float):
        return decimal.Decimal(repr(value))
    text = (value.decode() if isinstance(value, (bytes, bytearray)) else str(value)).strip()
    text = text.replace(",", "").replace("，", "").lstrip("¥￥").removesuffix("元").strip()
    if text in ("", "-", NULL, "null", "None"):
        return None
    try:
        number = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise CanonicalError(f"expected a number, got {text[:40]!r}") from None
    if not number.is_finite():
        raise CanonicalError(f"expected a finite number, got {text[:40]!r}")
    return number


def amount(value: Any, scale: int) -> str:
    """A sum or amount at `scale` decimals (half up), plain notation, no negative zero; NULL stays NULL."""
    number = decimal_of(value)
    if number is None:
        return NULL
    quantum = decimal.Decimal(1).scaleb(-scale)
    q = number.quantize(quantum, rounding=decimal.ROUND_HALF_UP)
    if q == 0:
        q = abs(q)
    return format(q, "f")


_PLAIN_AMOUNT = re.compile(r"-?\d{1,15}(?:\.\d{1,2})?")


def cents(value: Any, scale: int = 2) -> int | None:
    """An amount as an integer number of 1/10**scale units (fen for scale 2): exact, and cheap to compare."""
    if scale == 2 and isinstance(value, str) and _PLAIN_AMOUNT.fullmatch(value):
        whole, _, frac = value.partition(".")
        return int(whole) * 100 + (-1 if whole.startswith("-") else 1) * int((frac + "00")[:2])
    number = decimal_of(value)
    if number is None:
        return None
    return int(number.scaleb(scale).quantize(decimal.Decimal(1), rounding=decimal.ROUND_HALF_UP))


def day(value: Any) -> str:
    """A business day as YYYY-MM-DD from a date, a datetime (Oracle's TRUNC) or text starting with the date."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()[:10]
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise CanonicalError(f"expected a date, got {str(value)[:40]!r}") from None


def key(value: Any) -> str:
    """A key (order number, row id) as text: integral numbers without decimals, text without CHAR padding."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (decimal.Decimal, float)):
        number = decimal_of(value)
        assert number is not None
        return str(int(number)) if number == number.to_integral_value() else format(number.normalize(), "f")
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace").rstrip()
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value).rstrip()


def count(value: Any) -> int:
    if value is None:
        return 0
    number = decimal_of(value)
    if number is None or number != number.to_integral_value():
        raise CanonicalError(f"expected a row count, got {value!r}")
    return int(number)
