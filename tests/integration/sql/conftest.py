"""Live PostgreSQL and MariaDB on this machine, reached through the native drivers and through unixODBC.

Tests create their conditions with their own admin connections (never through the patrol code, which cannot
write) in throwaway schemas/tables named xj_test_*, and drop them afterwards.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pyodbc
import pytest

from checks.context import RunContext
from checks.pack import PackRef, load_checks
from checks.result import Result
from checks.sql.dialects import odbc_libpq_requires_scram
from checks.sql.session import close_sessions
from checks.sql.target import Target
from tests.conftest import require

PG = {"host": os.environ.get("XUNJIAN_TEST_PG_HOST", "127.0.0.1"), "port": int(os.environ.get("XUNJIAN_TEST_PG_PORT", "5432")),
      "user": "postgres", "dbname": "test"}
MY = {"host": os.environ.get("XUNJIAN_TEST_MYSQL_HOST", "127.0.0.1"), "port": int(os.environ.get("XUNJIAN_TEST_MYSQL_PORT", "3306")),
      "user": "root", "password": "", "database": "test"}


def _pg_up() -> bool:
    try:
        psycopg.connect(**PG, connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def _my_up() -> bool:
    try:
        pymysql.connect(**MY, connect_timeout=3).close()
    except pymysql.Error:
        return False
    return True


def pg_target(driver: str, name: str = "pg", **extra: Any) -> Target:
    if driver == "odbc":
        require("PostgreSQL Unicode" in pyodbc.drivers(), "ODBC driver 'PostgreSQL Unicode' (apt: odbc-postgresql)")
    require(_pg_up(), "PostgreSQL on 127.0.0.1:5432 (user postgres, database test)")
    body = {"name": name, "dialect": "postgres", "driver": driver, "host": PG["host"], "port": PG["port"],
            "user": PG["user"], "database": PG["dbname"], **extra}
    if driver == "odbc" and not odbc_libpq_requires_scram() and "password_env" in extra:
        # Test-only: this machine's PostgreSQL has no TLS (and trusts loopback, so no password is ever asked), and
        # psqlODBC's libpq is too old for require_auth, so the default would insist on TLS. Never in production.
        body.setdefault("tls", {"plaintext_password": "allow"})
    return Target.model_validate(body)


def my_target(driver: str, name: str = "my", **extra: Any) -> Target:
    if driver == "odbc":
        require("MariaDB Unicode" in pyodbc.drivers(), "ODBC driver 'MariaDB Unicode' (apt: odbc-mariadb)")
    require(_my_up(), "MariaDB on 127.0.0.1:3306 (root, empty password, database test)")
    body = {"name": name, "dialect": "mysql", "driver": driver, "host": MY["host"], "port": MY["port"],
            "user": MY["user"], "database": MY["database"], **extra}
    return Target.model_validate(body)


@pytest.fixture(params=["native", "odbc"])
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def ctx() -> Iterator[RunContext]:
    context = RunContext()
    yield context
    close_sessions(context.resources)


@pytest.fixture
def pg_admin() -> Iterator[psycopg.Connection[Any]]:
    require(_pg_up(), "PostgreSQL on 127.0.0.1:5432 (user postgres, database test)")
    conn = psycopg.connect(**PG, autocommit=True)
    yield conn
    conn.close()


@pytest.fixture
def my_admin() -> Iterator[pymysql.connections.Connection]:
    require(_my_up(), "MariaDB on 127.0.0.1:3306 (root, empty password, database test)")
    conn = pymysql.connect(**MY, autocommit=True)
    yield conn
    conn.close()


@pytest.fixture
def pg_schema(pg_admin: psycopg.Connection[Any]) -> Iterator[str]:
    name = f"xj_test_{secrets.token_hex(4)}"
    pg_admin.execute(f"CREATE SCHEMA {name}")
    yield name
    pg_admin.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture
def my_table_prefix(my_admin: pymysql.connections.Connection) -> Iterator[str]:
    prefix = f"xj_test_{secrets.token_hex(4)}"
    yield prefix
    with my_admin.cursor() as cur:
        cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'test' AND TABLE_NAME LIKE %s",
                    (prefix + "%",))
        for (table,) in cur.fetchall():
            cur.execute(f"DROP TABLE IF EXISTS test.`{table}`")


def run_check(ctx: RunContext, target: Target, pack: str, check_id: str,
              overrides: dict[str, dict[str, Any]] | None = None) -> list[Result]:
    """Load the built-in pack bound to `target` (with agent.yaml-style overrides) and run one check once."""
    ctx.targets = {**ctx.targets, target.name: target}
    specs = load_checks([PackRef(f"builtin:{pack}", target.name)], overrides=overrides).specs
    spec = next(s for s in specs if s.id == check_id)
    return spec.probe(ctx)


def pack_check(ctx: RunContext, pack: str, target: str, check_id: str,
               overrides: dict[str, dict[str, Any]] | None = None) -> list[Result]:
    """Run one check of a built-in pack bound to `target`, a target already in ctx.targets (a throwaway server)."""
    specs = load_checks([PackRef(f"builtin:{pack}", target)], overrides=overrides).specs
    return next(s for s in specs if s.id == check_id).probe(ctx)


@contextmanager
def targets_context(targets: dict[str, Target], state_dir: Path) -> Iterator[RunContext]:
    """A run context for throwaway servers' targets with a state directory (settings snapshots, baselines)."""
    context = RunContext(targets=targets, state_dir=state_dir)
    try:
        yield context
    finally:
        close_sessions(context.resources)


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll until the server shows the condition the test set up (sessions start asynchronously)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Background:
    """A statement running in its own thread and connection (the blocked or long-running session)."""

    def __init__(self, work: Callable[[], object]) -> None:
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], object]) -> None:
        try:
            work()
        except BaseException as exc:
            self.error = exc

    def join(self, timeout: float = 30.0) -> None:
        self._thread.join(timeout)
