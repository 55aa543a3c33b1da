"""Durations and sizes as people write them in YAML ("90s", "5m", "256MiB"), in base units."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_FACTORS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, None: 1.0}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|k|K|M|G|T)?\s*$")
_SIZE_FACTORS = {
    None: 1, "B": 1,
    "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
    "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4,
    "k": 1024, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4,
}


def parse_duration(text: str | int | float) -> float:
    """Seconds from "250ms", "90s", "5m", "2h", "1d", "1w" or a bare number of seconds."""
    if isinstance(text, bool):
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {text!r}")
    if isinstance(text, (int, float)):
        return float(text)
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"expected a duration such as 30s, 5m or 1h, got {text!r}")
    return float(m.group(1)) * _DURATION_FACTORS[m.group(2)]


def parse_size(text: str | int) -> int:
    """Bytes from "512", "64KiB", "256MiB", "1GB"."""
    if isinstance(text, bool):
        raise ValueError(f"expected a size such as 64MiB or 1GB, got {text!r}")
    if isinstance(text, int):
        return text
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"expected a size such as 64MiB or 1GB, got {text!r}")
    return int(float(m.group(1)) * _SIZE_FACTORS[m.group(2)])


def format_duration(seconds: float) -> str:
    """The shortest exact way people write `seconds`: 90s, 15m, 1h, 1d (one decimal when not whole)."""
    for unit, factor in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= factor:
            n = seconds / factor
            return f"{n:g}{unit}" if n.is_integer() else f"{n:.1f}{unit}"
    return f"{seconds:g}s" if float(seconds).is_integer() else f"{seconds:.1f}s"
