"""Plain-text tables for the CLI: fixed columns, wide characters (Chinese titles) measured by display width."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence


def display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _fit(text: str, width: int) -> str:
    if display_width(text) <= width:
        return text + " " * (width - display_width(text))
    out, used = "", 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out += ch
        used += w
    return out + "…" + " " * (width - used - 1)


def render(headers: Sequence[str], rows: Sequence[Sequence[object]], max_width: int = 60) -> str:
    """Left-aligned columns; the last column is never truncated."""
    cells = [[("" if v is None else str(v)).replace("\n", " ") for v in row] for row in rows]
    widths = [display_width(h) for h in headers]
    for row in cells:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], min(display_width(v), max_width))
    lines = []
    for row in [list(headers), *cells]:
        parts = [v if i == len(row) - 1 else _fit(v, widths[i]) for i, v in enumerate(row)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)
