"""Threshold grammar: comparisons ("> 85", "<= 10", "!= 0", "> 2s") and Nagios ranges ("10:20", "@10:20", "~:5").

A threshold *matches* when the value is a problem, as in the Nagios plugin guidelines:
a range alerts when the value lies outside it (or inside it with a leading "@").
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from checks.units import parse_duration, parse_size

_COMPARISON = re.compile(r"^\s*(>=|<=|==|!=|>|<|=)\s*(.+?)\s*$")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "=": operator.eq, "!=": operator.ne,
}
_NUMBER = re.compile(r"^[+-]?(\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")


NUMBER = "number"
PERCENT = "percent"
DURATION = "duration"
SIZE = "size"
"""What a threshold's quantity was written as: a plain number, "95%", "2s" (seconds) or "1GiB" (bytes)."""


def quantity(text: str) -> tuple[float, str]:
    """The value of a number, optionally with a duration ("2s", "500ms") or size ("1GiB") unit or a "%" sign,
    and which of those it was written as."""
    t = text.strip()
    if t.endswith("%"):
        t = t[:-1].strip()
        if _NUMBER.match(t):
            return float(t), PERCENT
    elif _NUMBER.match(t):
        return float(t), NUMBER
    for parse, kind in ((parse_duration, DURATION), (parse_size, SIZE)):
        try:
            return float(parse(t)), kind
        except ValueError:
            pass
    raise ValueError(f"expected a number (optionally with a unit such as 2s or 1GiB), got {text!r}")


def parse_quantity(text: str) -> float:
    """The value of `quantity(text)` alone, in base units (seconds, bytes)."""
    return quantity(text)[0]


@dataclass(frozen=True, slots=True)
class Threshold:
    text: str
    _test: Callable[[float], bool]
    op: str | None = None
    """The comparison (">", "<=", ...), None for a Nagios range."""
    limit: float | None = None
    """The comparison's limit in base units, None for a Nagios range."""
    written_as: str = NUMBER
    """NUMBER, PERCENT, DURATION or SIZE: how the limit (or a range end) was written."""

    def matches(self, value: float) -> bool:
        """True when `value` is a problem at this level."""
        if math.isnan(value):
            return True
        return self._test(value)

    def __str__(self) -> str:
        return self.text


def parse_threshold(text: str | int | float) -> Threshold:
    """Parse a comparison or a Nagios range; a bare number N is the Nagios range 0:N."""
    raw = str(text).strip()
    if not raw:
        raise ValueError("expected a threshold such as \"> 85\" or a Nagios range such as 10:20, got an empty string")
    m = _COMPARISON.match(raw)
    if m:
        op = _OPS[m.group(1)]
        try:
            limit, written_as = quantity(m.group(2))
        except ValueError as exc:
            raise ValueError(f"bad threshold {raw!r}: {exc}") from None
        return Threshold(raw, lambda v: op(v, limit), m.group(1), limit, written_as)
    test, written_as = _parse_range(raw)
    return Threshold(raw, test, written_as=written_as)


def _parse_range(raw: str) -> tuple[Callable[[float], bool], str]:
    inside = raw.startswith("@")
    body = raw[1:] if inside else raw
    kinds = set()
    try:
        if ":" in body:
            lo_text, hi_text = body.split(":", 1)
            lo, hi = 0.0, math.inf
            if lo_text.strip() == "~":
                lo = -math.inf
            elif lo_text.strip():
                lo, kind = quantity(lo_text)
                kinds.add(kind)
            if hi_text.strip():
                hi, kind = quantity(hi_text)
                kinds.add(kind)
        else:
            lo = 0.0
            hi, kind = quantity(body)
            kinds.add(kind)
    except ValueError:
        raise ValueError(
            f"bad threshold {raw!r}: expected a comparison such as \"> 85\" or a Nagios range such as 10:20, @10:20, ~:5"
        ) from None
    if lo > hi:
        raise ValueError(f"bad threshold {raw!r}: range start {lo:g} is above its end {hi:g}")
    written_as = next(iter(sorted(kinds - {NUMBER})), NUMBER)
    if inside:
        return (lambda v: lo <= v <= hi), written_as
    return (lambda v: v < lo or v > hi), written_as
