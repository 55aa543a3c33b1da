"""Statements built from config (table and column names, job names, dates) as sqlglot trees, never as text.

A kind that needs SQL shaped by its options (a job-log table and its columns, the tables to reconcile, a day
range) writes a fixed template of its own with `__marker__` names where config goes, and `fill()` puts quoted
identifiers and literals into the parsed tree. The rendering is then handed to `statement()`, which makes it a
QueryMap: the guard verifies it and the target's allow-list (with its site exceptions) checks every name,
exactly as for SQL written in a pack. Nothing from config is ever pasted into SQL text.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import sqlglot
from sqlglot import exp

from checks.sql.allow import split_name
from checks.sql.guard import SQLGLOT_DIALECTS, canonical
from checks.sql.query import QueryMap

_MARKER = re.compile(r"^__[a-z0-9_]+__$")
Value = exp.Expression | str | int | dt.date
"""What fill() accepts for a marker: a built expression, or a value made a literal (str, int, date)."""

SERVER_TODAY = QueryMap.model_validate({
    "postgres": "SELECT CURRENT_DATE AS today",
    "mysql": "SELECT CURRENT_DATE AS today",
    "oracle": "SELECT TRUNC(SYSDATE) AS today FROM dual",
    "mssql": "SELECT CAST(CURRENT_TIMESTAMP AS date) AS today",
})
"""The database server's date (its clock and time zone), from which "yesterday" and "last month" are counted."""


class BadName(ValueError):
    """A configured name that is not a plain (optionally quoted) dotted name."""


def name_parts(text: str, dialect: str, *, max_parts: int = 3) -> tuple[str, ...]:
    """A configured name as the server resolves it: unquoted parts folded on PostgreSQL (lower) and Oracle
    (upper), kept as written on MySQL and SQL Server (whose table names may be case-sensitive on disk)."""
    try:
        parts = split_name(text)
    except ValueError as exc:
        raise BadName(str(exc)) from None
    if not 1 <= len(parts) <= max_parts or any(p == "" or "*" in p for p, _ in parts):
        raise BadName(f"expected a name of at most {max_parts} parts such as schema.table, got {text!r}")
    read = SQLGLOT_DIALECTS[dialect]
    if read in ("postgres", "oracle"):
        return tuple(canonical(p, quoted, read) for p, quoted in parts)
    return tuple(p for p, _ in parts)


def identifier(name: str) -> exp.Identifier:
    return exp.Identifier(this=name, quoted=True)


def table(text: str, dialect: str) -> exp.Table:
    """`schema.table` (or `db.schema.table`) as a Table of quoted identifiers."""
    parts = [identifier(p) for p in name_parts(text, dialect)]
    args: dict[str, exp.Expression] = {"this": parts[-1]}
    if len(parts) >= 2:
        args["db"] = parts[-2]
    if len(parts) == 3:
        args["catalog"] = parts[0]
    return exp.Table(**args)


def column(text: str, dialect: str, source: str | None = None) -> exp.Column:
    """A configured column name (one part), optionally qualified by a source alias of the template."""
    (name,) = name_parts(text, dialect, max_parts=1)
    return exp.Column(this=identifier(name), table=identifier(source) if source else None)


def date_literal(day: dt.date, dialect: str) -> exp.Expression:
    """A date as a typed literal; on Oracle TO_DATE with an explicit format, so NLS settings cannot change it."""
    text = exp.Literal.string(day.isoformat())
    if SQLGLOT_DIALECTS[dialect] == "oracle":
        return exp.Anonymous(this="TO_DATE", expressions=[text, exp.Literal.string("YYYY-MM-DD")])
    return exp.Cast(this=text, to=exp.DataType.build("DATE"))


def literal(value: str | int | dt.date, dialect: str) -> exp.Expression:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return date_literal(value, dialect)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"no literal for {type(value).__name__}")
    if isinstance(value, int):
        return exp.Literal.number(value)
    if SQLGLOT_DIALECTS[dialect] == "tsql" and not value.isascii():
        return exp.National(this=value)
    return exp.Literal.string(value)


def fill(template: str, dialect: str, values: Mapping[str, Value]) -> exp.Expression:
    """Parse our `template` and replace each `__marker__` (where a table, a column or a value goes) by
    `values[marker]`. Every marker must be given, and every value used."""
    read = SQLGLOT_DIALECTS[dialect]
    tree = sqlglot.parse_one(template, read=read)
    used: set[str] = set()

    def expression_for(name: str) -> exp.Expression:
        if name not in values:
            raise KeyError(f"template marker {name} has no value")
        used.add(name)
        value = values[name]
        return value.copy() if isinstance(value, exp.Expression) else literal(value, dialect)

    def replace(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and _MARKER.match(node.name) and not node.args.get("db"):
            built = expression_for(node.name)
            if isinstance(built, exp.Table) and node.alias:
                built.set("alias", node.args["alias"].copy())
            return built
        if isinstance(node, exp.Column) and _MARKER.match(node.name):
            built = expression_for(node.name)
            source = node.args.get("table")
            if isinstance(built, exp.Column) and source is not None and not built.table:
                built.set("table", source.copy())
            return built
        return node

    tree = tree.transform(replace)
    unused = set(values) - used
    if unused:
        raise KeyError(f"values for markers the template does not have: {', '.join(sorted(unused))}")
    return tree


def source_column(text: str, dialect: str, source: str) -> exp.Column:
    """A configured column (one part) of the template's source alias `source` (t, q), quoted as the server folds it."""
    (name,) = name_parts(text, dialect, max_parts=1)
    return exp.Column(this=identifier(name), table=exp.to_identifier(source))


def day_range(col: exp.Expression, first: dt.date, end: dt.date, dialect: str) -> exp.Condition:
    """`col >= first AND col < end`: the half-open range an index on a date/time column serves."""
    return exp.and_(exp.GTE(this=col.copy(), expression=date_literal(first, dialect)),
                    exp.LT(this=col.copy(), expression=date_literal(end, dialect)))


def wrap(query: QueryMap, outer: Callable[[exp.Expression, str], exp.Expression], what: str) -> QueryMap:
    """Each SQL variant of a pack's `query` as the subquery `q` of the statement `outer(q, query key)` builds, its
    version gates kept (a site's payment query with the day's filter around it, say)."""
    variants: dict[str, list[dict[str, Any]]] = {}
    for key, _, variant in query.variants():
        if variant.sql is None:
            raise ValueError(f"query.{key}: a SHOW statement has no {what}")
        read = SQLGLOT_DIALECTS[key]
        source = exp.Subquery(this=sqlglot.parse_one(variant.sql, read=read),
                              alias=exp.TableAlias(this=exp.to_identifier("q")))
        gate = variant.model_dump(exclude={"sql", "show"}, exclude_none=True)
        variants.setdefault(key, []).append({"sql": outer(source, key).sql(dialect=read), **gate})
    return QueryMap.model_validate(variants)


def render(tree: exp.Expression, dialect: str) -> str:
    return tree.sql(dialect=SQLGLOT_DIALECTS[dialect])


def statement(tree: exp.Expression, dialect: str) -> QueryMap:
    """A built tree as the QueryMap sessions run: verified by the guard here, allow-listed when it is sent."""
    return QueryMap.model_validate({_query_key(dialect): render(tree, dialect)})


def merge(maps: Iterable[QueryMap]) -> QueryMap:
    """One QueryMap with the statements of several built for different dialects (the bound target picks)."""
    merged: dict[str, Any] = {}
    for m in maps:
        merged.update(m.model_dump(exclude_none=True))
    return QueryMap.model_validate(merged)


def _query_key(dialect: str) -> str:
    return "mysql" if dialect == "mariadb" else dialect
