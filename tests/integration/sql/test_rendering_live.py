"""Every statement of the built-in postgres and mysql packs, as the guard renders it, returns the same rows on
the live servers as the author's text, through the native drivers and through ODBC.

Both texts run in one read-only snapshot (PostgreSQL: REPEATABLE READ, where now() and the statistics
snapshot stay fixed; MariaDB: a consistent-snapshot transaction with the session clock frozen by SET
TIMESTAMP), so volatile figures compare equal. A variant written for another server version fails the same
way in both forms. Counters that other sessions on this shared server move between the two statements are
retried a few times before the comparison counts as a difference.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pymysql
import pyodbc
import pytest

from checks.sql.allow import prepare
from checks.sql.dialects import odbc_connection_string
from tests.integration.sql.conftest import MY, PG, my_target, pg_target
from tests.unit.sql.test_guard import STATEMENTS

pytestmark = pytest.mark.integration
Run = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]


@contextmanager
def snapshot(engine: str, driver: str) -> Iterator[Run]:
    """A read-only snapshot transaction on a raw connection; yields a function running one statement in it."""
    if engine == "postgres":
        target = pg_target(driver)
        raw: Any = (psycopg.connect(**PG, autocommit=True) if driver == "native"
                    else pyodbc.connect(odbc_connection_string(target, None), autocommit=True))
        begin = ["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"]
    else:
        target = my_target(driver)
        raw = (pymysql.connect(**MY, autocommit=True) if driver == "native"
               else pyodbc.connect(odbc_connection_string(target, None), autocommit=True))
        begin = ["SET TIMESTAMP = UNIX_TIMESTAMP()", "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"]
    cur = raw.cursor()
    for statement in begin:
        cur.execute(statement)

    def run(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur.execute(sql)
        columns = [str(d[0]).lower() for d in cur.description or ()]
        return columns, [tuple(r) for r in cur.fetchall()] if cur.description else []

    try:
        yield run
    finally:
        try:
            cur.execute("ROLLBACK")
        finally:
            raw.close()


def outcome(run: Run, sql: str) -> tuple[str, Any]:
    try:
        return "rows", run(sql)
    except Exception as exc:
        return "error", type(exc).__name__


def compare(engine: str, driver: str, key: str, author: str) -> str:
    """'same', 'both failed' (a variant for another server), or a description of the difference."""
    rendered = prepare(author, key).sql
    last = ""
    for _ in range(4):
        with snapshot(engine, driver) as run:
            first = outcome(run, author)
            second = outcome(run, rendered)
        if first == second:
            return "both failed" if first[0] == "error" else "same"
        if first[0] == "error" and second[0] == "error":
            return "both failed"
        last = f"author: {first!r:.300}\nrendered: {second!r:.300}"
    return last


@pytest.mark.parametrize(("engine", "keys"), [("postgres", ("postgres",)), ("mysql", ("mysql", "mariadb"))])
def test_rendering_returns_the_same_rows_as_the_authors_text(engine: str, keys: tuple[str, ...], driver: str) -> None:
    statements = [(check_id, key, sql) for pack, check_id, key, sql in STATEMENTS if pack == engine and key in keys]
    verdicts = {f"{check_id} [{key}] {sql[:50]!r}": compare(engine, driver, key, sql) for check_id, key, sql in statements}
    different = {k: v for k, v in verdicts.items() if v not in ("same", "both failed")}
    assert not different, "\n\n".join(f"{k}\n{v}" for k, v in different.items())
    same = sum(v == "same" for v in verdicts.values())
    assert same >= 0.75 * len(verdicts), f"only {same} of {len(verdicts)} statements ran on this server"
