"""What a query hands to a check kind: the rows (column names lower-cased) and the server they came from."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from checks.sql.version import Version


@dataclass(frozen=True)
class ServerInfo:
    """Detected once per connection; picks query variants and the normalizer's dialect."""

    dialect: str
    flavor: str
    version: Version
    version_text: str = ""


@dataclass
class Rows:
    columns: list[str]
    """Lower-cased, so packs name columns the same way on Oracle (upper) and PostgreSQL (lower)."""
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    truncated: bool = False
    """More rows were available than max_rows."""


def cell_text(value: Any) -> str:
    """A cell as text for names and keys: NULL as "", bytes decoded (hex for binary hashes), 12.0 as "12"."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        try:
            text = value.decode("utf-8").strip()
        except UnicodeDecodeError:
            return "0x" + value.hex().upper()
        return text if text.isprintable() else "0x" + value.hex().upper()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def iso_utc(unix: float) -> str:
    """Unix seconds as an ISO 8601 UTC time for finding attributes ("" for 0: not known)."""
    return dt.datetime.fromtimestamp(unix, dt.timezone.utc).isoformat(timespec="seconds") if unix else ""
