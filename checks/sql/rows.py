"""What a query hands to a check kind: the rows (column names lower-cased) and the server they came from."""

from __future__ import annotations

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
