"""The guard's vocabulary without the guard: dialect keys, names, its verdict and its refusal.

Kept apart from checks/sql/guard.py because that module loads sqlglot (about 12 MB), and an agent with no SQL
checks names these when it validates agent.yaml but never parses a statement.
"""

from __future__ import annotations

from dataclasses import dataclass

SQLGLOT_DIALECTS: dict[str, str] = {
    "postgres": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "oracle": "oracle",
    "mssql": "tsql",
}
"""Our dialect (and query keys) to sqlglot's reader."""

ALLOW_DIALECT: dict[str, str] = {"postgres": "postgres", "mysql": "mysql", "mariadb": "mysql", "oracle": "oracle",
                                 "mssql": "mssql"}
"""Query key to the allow-list (and target dialect) it is checked against."""

Name = tuple[str, ...]
"""A relation, function or type name as the server resolves it, one string per part (schema.table)."""


class GuardError(Exception):
    """A statement the guard refuses; the message names the construct, never echoes the statement."""


@dataclass(frozen=True)
class Verified:
    """One statement that passed the structural checks: what to send, and what it reads and calls."""

    sql: str
    """sqlglot's rendering of the verified tree: identifiers quoted, comments dropped. This is what is sent."""
    relations: frozenset[Name]
    functions: frozenset[Name]
    types: frozenset[Name]
    """Cast targets sqlglot does not know as built-in types (regclass, pg_lsn, a domain...)."""
