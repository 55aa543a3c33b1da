"""Recorded DB-API connections shaped like python-oracledb's and pyodbc's, to run the built-in Oracle and
SQL Server packs offline through the real engine.

Oracle and SQL Server cannot run on this machine (docs/databases.md). What these tests prove is that each check's
SQL is selected for the right server version, passes the read-only guard, and that rows shaped like the real
driver's (python-oracledb: upper-case column names, NUMBER as int/float/Decimal, DATE as datetime; pyodbc:
column names as written, int/Decimal/bool/str) become the expected results. They do not prove the SQL runs on
a real server: that is tests/integration/sql_live, which runs when XUNJIAN_TEST_ORACLE_DSN /
XUNJIAN_TEST_MSSQL_DSN are set.
"""

from __future__ import annotations

import decimal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import oracledb
import pytest
import sqlglot
from sqlglot import exp

from checks.context import RunContext
from checks.pack import PackRef, load_checks
from checks.result import Result
from checks.spec import CheckSpec
from checks.sql import dialects
from checks.sql.dialects import MssqlConnection, OracleConnection
from checks.sql.guard import SQLGLOT_DIALECTS, check_statement
from checks.sql.session import close_sessions
from checks.sql.target import Target

ORACLE_TARGET = "his_db"
MSSQL_TARGET = "his_sql"

Column = tuple[str, Any]
"""(name as the query's select list writes it, driver type: an oracledb DbType or a Python type for pyodbc)."""


@dataclass
class Answer:
    """The rows one statement returns, with the DB-API description the driver would give."""

    columns: list[Column]
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def description(self, dialect: str) -> list[tuple[Any, ...]]:
        # python-oracledb reports unquoted identifiers upper-cased; pyodbc reports them as written.
        return [
            (name.upper() if dialect == "oracle" else name, type_code, None, None, None, None, True)
            for name, type_code in self.columns
        ]


class RecordedRow:
    """Like pyodbc.Row: a sequence of cells that also answers by column name and keeps the description."""

    def __init__(self, cells: tuple[Any, ...], description: list[tuple[Any, ...]]) -> None:
        self._cells = cells
        self.cursor_description = description

    def __getitem__(self, index: int) -> Any:
        return self._cells[index]

    def __len__(self) -> int:
        return len(self._cells)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cells)

    def __getattr__(self, name: str) -> Any:
        for i, column in enumerate(self.cursor_description):
            if column[0] == name:
                return self._cells[i]
        raise AttributeError(name)


class RecordedCursor:
    def __init__(self, conn: RecordedConnection) -> None:
        self._conn = conn
        self.description: list[tuple[Any, ...]] | None = None
        self._rows: list[Any] = []

    def execute(self, sql: str) -> None:
        self._conn.executed.append(sql)
        answer = self._conn.answer_for(sql)
        if answer is None:
            self.description, self._rows = None, []
            return
        self.description = answer.description(self._conn.dialect)
        if self._conn.dialect == "mssql":
            self._rows = [RecordedRow(r, self.description) for r in answer.rows]
        else:
            self._rows = list(answer.rows)  # python-oracledb fetches plain tuples

    def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    def fetchmany(self, size: int) -> list[Any]:
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    def close(self) -> None:
        self._rows = []


SESSION_STATEMENTS = ("SET ", "SELECT CAST(SERVERPROPERTY", "SELECT 1 FROM DUAL", "IF @@TRANCOUNT",
                      OracleConnection.verify_sql.upper(), MssqlConnection.verify_sql.upper())
"""What the engine itself sends around a check: session rules, version probe, the transaction, verification."""


class RecordedConnection:
    """Answers the engine's session set-up and verification like the real server, every check query with `answer`.

    `session` is what the verification reads back, as a well-behaved server would answer; a test changes it
    to play a check that turned the session (a lock left held, a changed timeout).
    """

    def __init__(self, dialect: str, version: str, answer: Answer | None) -> None:
        self.dialect = dialect
        self.version = version
        """python-oracledb exposes the server version as connection.version."""
        self.answer = answer
        self.executed: list[str] = []
        self.rollbacks = 0
        self.call_timeout = 0
        self.timeout = 0
        self.snapshot_isolation = 0
        self.session: tuple[Any, ...] = (0, "XUNJIAN_MON", "XUNJIAN_MON") if dialect == "oracle" else (2000, 0, 0, -5)

    def answer_for(self, sql: str) -> Answer | None:
        text = sql.strip().upper()
        if text.startswith(("SET ", "IF @@TRANCOUNT")):
            return None
        if self.dialect == "mssql" and "SERVERPROPERTY('PRODUCTVERSION')" in text:
            return Answer([("", str), ("", int), ("", int)], [(self.version, 3, self.snapshot_isolation)])
        if self.dialect == "oracle" and text == "SELECT 1 FROM DUAL":
            return Answer([("1", oracledb.DB_TYPE_NUMBER)], [(1,)])
        if text in (OracleConnection.verify_sql.upper(), MssqlConnection.verify_sql.upper()):
            return Answer([(f"c{i}", int) for i in range(len(self.session))], [self.session])
        return self.answer

    def cursor(self) -> RecordedCursor:
        return RecordedCursor(self)

    def rollback(self) -> None:
        self.rollbacks += 1

    def close(self) -> None:
        return None

    @property
    def queries(self) -> list[str]:
        """The check statements sent, without the session set-up, transaction control and verification."""
        return [s for s in self.executed if not s.strip().upper().startswith(SESSION_STATEMENTS)]


@cache
def pack_specs(pack: str) -> dict[str, CheckSpec]:
    target = ORACLE_TARGET if pack == "oracle" else MSSQL_TARGET
    loaded = load_checks([PackRef(f"builtin:{pack}", target)])
    return {s.id: s for s in loaded.specs}


def target_for(dialect: str) -> Target:
    if dialect == "oracle":
        return Target.model_validate({"name": ORACLE_TARGET, "dialect": "oracle", "dsn": "his-db:1521/HISPDB",
                                      "user": "xunjian_mon"})
    # Built without validation: the validator wants Microsoft's ODBC driver installed, which pyodbc needs
    # only for a real connection.
    return Target.model_construct(name=MSSQL_TARGET, dialect="mssql", driver="odbc", host="his-sql",
                                  database="HISDB", odbc_driver="ODBC Driver 18 for SQL Server")


def recorded_context(dialect: str, target: str, clock: Callable[[], float] = time.time) -> RunContext:
    """A run context with the pack's target; pass one to run_recorded to keep state (counters, baselines)
    between runs, with a clock the test moves."""
    return RunContext(targets={target: target_for(dialect)}, clock=clock)


def run_recorded(
    monkeypatch: pytest.MonkeyPatch, spec: CheckSpec, dialect: str, version: str, answer: Answer | None,
    ctx: RunContext | None = None,
) -> tuple[list[Result], RecordedConnection]:
    """Run `spec.probe` through the real session with the driver's connect replaced by a recorded connection."""
    conn = RecordedConnection(dialect, version, answer)
    opener = "_open_oracledb" if dialect == "oracle" else "_open_pyodbc"
    monkeypatch.setattr(dialects, opener, lambda target, password, timeout: conn)
    if ctx is not None:
        close_sessions(ctx.resources)  # the next run opens the new recorded connection
    ctx = ctx if ctx is not None else recorded_context(dialect, spec.target or "")
    results = spec.probe(ctx)
    for sql in conn.queries:
        check_statement(sql, dialect)
    return results, conn


def plain(sql: str) -> str:
    """A rendered statement without identifier quotes, lower-cased, for "which variant was sent" markers."""
    return sql.replace('"', "").replace("[", "").replace("]", "").replace("`", "").lower()


def output_columns(sql: str, dialect: str) -> list[str]:
    """Names of the columns a statement returns, lower-cased, read from its select list with sqlglot."""
    return [n.lower() for n in _names(sqlglot.parse_one(sql, read=SQLGLOT_DIALECTS[dialect]))]


def _names(node: Any) -> list[str]:
    if isinstance(node, exp.Subquery):
        return _names(node.this)
    if isinstance(node, exp.SetOperation):
        return _names(node.left)
    assert isinstance(node, exp.Select), f"unexpected statement {type(node).__name__}"
    names: list[str] = []
    for e in node.expressions:
        if isinstance(e, exp.Star):
            source = (node.args.get("from_") or node.args["from"]).this
            names.extend(_names(source))
        else:
            names.append(e.alias_or_name)
    return names


def dec(text: str) -> decimal.Decimal:
    return decimal.Decimal(text)


def keyed(results: Sequence[Result]) -> dict[str, Result]:
    return {r.key: r for r in results}
