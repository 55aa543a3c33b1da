"""Attacks against the live PostgreSQL and MariaDB, as superuser (the worst case) and as the granted account,
through both drivers.

1. Statements the previous guard accepted, each of which changed something (a lock held after the check, a
   session setting switched off, rows deleted, a file written), are now refused before anything is sent, and
   nothing changed.
2. Statements that pass the guard on purpose (site-allowed custom functions that try to write, flip the
   session or keep a lock) are stopped by the read-only transaction or by the verification after the check,
   which closes the connection (unsafe_session); again nothing stays changed.

Tests build their objects with their own admin connections in throwaway schemas/tables, and the granted
account under a unique name, so parallel runs do not collide.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

from checks.context import RunContext
from checks.result import Outcome, Result, Status
from checks.sql.kinds import SqlMetric
from checks.sql.query import QueryMap, QueryVariant
from checks.sql.session import Session, close_sessions
from checks.sql.target import Target
from tests.conftest import require
from tests.integration.sql.conftest import MY, PG, my_target, pg_target

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def unguarded(target: Target, sql: str) -> SqlMetric:
    """A spec built in code, skipping the load-time checks: only the run-time guard stands in the way."""
    key = "postgres" if target.dialect == "postgres" else "mysql"
    variant = QueryVariant.model_construct(sql=sql, show=None, min_version=None, max_version=None, flavor=None)
    return SqlMetric.model_construct(id="t.attack", kind="sql.metric", target=target.name,
                                     query=QueryMap.model_construct(**{key: [variant]}), timeout=10.0)


def metric(target: Target, sql: str) -> SqlMetric:
    key = "postgres" if target.dialect == "postgres" else "mysql"
    return SqlMetric.model_validate({"id": "t.metric", "target": target.name, "query": {key: sql}, "timeout": 10})


def probe(ctx: RunContext, target: Target, spec: SqlMetric) -> Result:
    ctx.targets = {**ctx.targets, target.name: target}
    (result,) = spec.probe(ctx)
    return result


@pytest.fixture(params=["superuser", "granted"])
def account(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# --- PostgreSQL ------------------------------------------------------------------------------------------------

@pytest.fixture
def pg_lab(pg_admin: psycopg.Connection[Any], pg_schema: str, account: str,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A victim table, views and functions that would do harm, and the account to run as."""
    s = pg_schema
    marker = Path("/tmp") / f"{s}_attack_file.txt"  # where the server's own user may write
    pg_admin.execute(f"CREATE TABLE {s}.victim (v int)")
    pg_admin.execute(f"INSERT INTO {s}.victim SELECT generate_series(1, 10)")
    pg_admin.execute(f"CREATE VIEW {s}.v_flip AS SELECT set_config('statement_timeout', '0', false) AS value")
    pg_admin.execute(f"CREATE VIEW {s}.v_lock AS SELECT pg_advisory_lock(4243)::text AS value")
    pg_admin.execute(f"""CREATE FUNCTION {s}.write_file() RETURNS int LANGUAGE plpgsql AS $$
        BEGIN COPY (SELECT 'x') TO '{marker}'; RETURN 1; END $$""")
    pg_admin.execute(f"CREATE VIEW {s}.v_file AS SELECT {s}.write_file() AS value")
    pg_admin.execute(f"""CREATE FUNCTION {s}.write_row() RETURNS int LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO {s}.victim VALUES (99); DELETE FROM {s}.victim WHERE v < 5; RETURN 1; END $$""")
    pg_admin.execute(f"""CREATE FUNCTION {s}.flip() RETURNS int LANGUAGE plpgsql AS $$
        BEGIN PERFORM set_config('default_transaction_read_only', 'off', false);
              PERFORM set_config('statement_timeout', '0', false); RETURN 1; END $$""")
    pg_admin.execute(f"""CREATE FUNCTION {s}.keep_lock() RETURNS int LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_lock(4244); RETURN 1; END $$""")
    role = None
    extra: dict[str, Any] = {}
    if account == "granted":
        require(shutil.which("psql") is not None, "psql (postgresql-client) to run deploy/db-grants/postgres.sql")
        role = f"xj_mon_{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(12)
        script = (ROOT / "deploy" / "db-grants" / "postgres.sql").read_text().replace("xunjian_mon", role)
        subprocess.run(["psql", "-X", "-q", "-h", PG["host"], "-p", str(PG["port"]), "-U", "postgres", "-d", "test",
                        "-v", f"mon_password={password}", "-v", "lock_down_public=off",  # shared server: PUBLIC stays
                        "-f", "-"], input=script.encode(), check=True,
                       capture_output=True, env={**os.environ, "PGCONNECT_TIMEOUT": "5"})
        monkeypatch.setenv("XJ_TEST_ATTACK_PW", password)
        extra = {"user": role, "password_env": "XJ_TEST_ATTACK_PW"}
    try:
        yield {"schema": s, "file": marker, "target": extra}
    finally:
        marker.unlink(missing_ok=True)
        if role:
            pg_admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            pg_admin.execute(f"DROP OWNED BY {role}")
            pg_admin.execute(f"DROP ROLE IF EXISTS {role}")


def pg_unchanged(admin: psycopg.Connection[Any], lab: dict[str, Any]) -> None:
    s = lab["schema"]
    assert admin.execute(f"SELECT count(*), sum(v) FROM {s}.victim").fetchone() == (10, 55), "rows changed"
    locks = admin.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid IN (4242, 4243, 4244)")
    assert locks.fetchone() == (0,), "an advisory lock is held"
    assert not lab["file"].exists(), "a file was written on the database host"


PG_PREVIOUSLY_ACCEPTED = [
    ('SELECT U&"\\0070g_advisory_lock"(4242) AS value', "Unicode-escaped name"),
    ("SELECT * FROM {s}.v_flip", "not on the read-only allow-list: {s}.v_flip"),
    ("SELECT * FROM {s}.v_lock", "not on the read-only allow-list: {s}.v_lock"),
    ("SELECT * FROM {s}.v_file", "not on the read-only allow-list: {s}.v_file"),
    ("SELECT count(*) AS value FROM ts_stat('WITH d AS (DELETE FROM {s}.victim RETURNING ''a''::text AS t) "
     "SELECT to_tsvector(t) FROM d')", "not on the read-only allow-list: ts_stat()"),
    ("SELECT {s}.write_row() AS value", "not on the read-only allow-list: {s}.write_row()"),
]


@pytest.mark.parametrize(("sql", "why"), PG_PREVIOUSLY_ACCEPTED)
def test_pg_previously_accepted_attack_is_refused(sql: str, why: str, driver: str, ctx: RunContext,
                                                  pg_admin: psycopg.Connection[Any], pg_lab: dict[str, Any]) -> None:
    s = pg_lab["schema"]
    target = pg_target(driver, **pg_lab["target"])
    res = probe(ctx, target, unguarded(target, sql.format(s=s)))
    assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.PERMISSION_DENIED), res.summary
    assert why.format(s=s) in res.summary
    pg_unchanged(pg_admin, pg_lab)
    after = probe(ctx, target, metric(target, "SELECT current_setting('statement_timeout') AS key, 1 AS value"))
    assert after.outcome == Outcome.OK


def test_pg_allowed_function_that_writes_is_stopped_by_the_read_only_transaction(
        driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any], pg_lab: dict[str, Any]) -> None:
    s = pg_lab["schema"]
    target = pg_target(driver, **pg_lab["target"], allow={"reviewed_by": "test", "functions": [f"{s}.write_row"]})
    res = probe(ctx, target, metric(target, f"SELECT {s}.write_row() AS value"))
    assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.PERMISSION_DENIED), res.summary
    pg_unchanged(pg_admin, pg_lab)


def test_pg_allowed_function_that_flips_the_session_is_rolled_back(
        driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any], pg_lab: dict[str, Any]) -> None:
    s = pg_lab["schema"]
    target = pg_target(driver, **pg_lab["target"], allow={"reviewed_by": "test", "functions": [f"{s}.flip"]})
    res = probe(ctx, target, metric(target, f"SELECT {s}.flip() AS value"))
    assert res.outcome == Outcome.OK, "the flip happened inside the check's transaction, which was rolled back"
    session = ctx.resources[f"sql:{target.name}"]
    assert isinstance(session, Session) and session._conn is not None
    assert session._conn.verify() == []
    row = session._conn._exec("SELECT current_setting('default_transaction_read_only'), current_setting('statement_timeout')")
    assert row[0][0] == "on" and row[0][1] != "0"
    with pytest.raises(Exception, match=r"(?i)read[- ]only transaction"):
        session._conn._exec(f"INSERT INTO {s}.victim VALUES (1)")
    pg_unchanged(pg_admin, pg_lab)


def test_pg_allowed_function_that_keeps_a_lock_makes_the_session_unsafe(
        driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any], pg_lab: dict[str, Any]) -> None:
    s = pg_lab["schema"]
    target = pg_target(driver, **pg_lab["target"], allow={"reviewed_by": "test", "functions": [f"{s}.keep_lock"]})
    pid = probe(ctx, target, metric(target, "SELECT pg_backend_pid() AS value")).value
    res = probe(ctx, target, metric(target, f"SELECT {s}.keep_lock() AS value"))
    assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.UNSAFE_SESSION), res.summary
    assert "holds 1 advisory lock(s)" in res.summary and res.value is None
    wait = pg_admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (int(pid or 0),))
    for _ in range(50):
        if wait.fetchone() == (0,):
            break
        wait = pg_admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (int(pid or 0),))
    pg_unchanged(pg_admin, pg_lab)
    again = probe(ctx, target, metric(target, "SELECT pg_backend_pid() AS value"))
    assert again.outcome == Outcome.OK and again.value != pid, "the next check runs on a new connection"


def test_pg_catalog_names_resolve_in_pg_catalog_whatever_the_search_path(
        driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any], pg_lab: dict[str, Any]) -> None:
    """A schema owner's view named like a catalog view, first on a search_path that a role or database default
    (ALTER ROLE/DATABASE ... SET search_path) gives the session, is never what a check reads."""
    s = pg_lab["schema"]
    pg_admin.execute(f"CREATE VIEW {s}.pg_stat_activity AS SELECT 4242 AS pid")
    pg_admin.execute(f"GRANT USAGE ON SCHEMA {s} TO PUBLIC")
    pg_admin.execute(f"GRANT SELECT ON {s}.pg_stat_activity TO PUBLIC")
    target = pg_target(driver, **pg_lab["target"])
    spec = metric(target, "SELECT count(*) AS value FROM pg_stat_activity WHERE pid = 4242")
    assert probe(ctx, target, spec).value == 0
    session = ctx.resources[f"sql:{target.name}"]
    assert isinstance(session, Session) and session._conn is not None
    session._conn._exec(f'SET search_path = "{s}", pg_catalog')
    assert session._conn._exec("SELECT count(*) FROM pg_stat_activity WHERE pid = 4242") == [(1,)], "the shadow is real"
    res = probe(ctx, target, spec)
    assert (res.outcome, res.value) == (Outcome.OK, 0), res.summary


def test_pg_allowed_file_writer_is_stopped_by_the_grants_only(
        driver: str, account: str, ctx: RunContext, pg_admin: psycopg.Connection[Any], pg_lab: dict[str, Any]) -> None:
    """What the guard and the transaction cannot stop: a function the site allowed, run as superuser, may write a
    file (COPY TO is allowed in a read-only transaction). The granted account cannot (layer 3)."""
    s = pg_lab["schema"]
    target = pg_target(driver, **pg_lab["target"], allow={"reviewed_by": "test", "functions": [f"{s}.write_file"]})
    res = probe(ctx, target, metric(target, f"SELECT {s}.write_file() AS value"))
    if account == "granted":
        assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.PERMISSION_DENIED), res.summary
        pg_unchanged(pg_admin, pg_lab)
    else:
        assert res.outcome == Outcome.OK and pg_lab["file"].exists(), "documented: superuser + allowed function"
        pg_lab["file"].unlink()


# --- MariaDB -----------------------------------------------------------------------------------------------------

@pytest.fixture
def my_lab(my_admin: pymysql.connections.Connection, my_table_prefix: str, account: str,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    p = my_table_prefix
    table = f"test.{p}_victim"
    functions = {"write": f"test.{p}_write", "lock": f"test.{p}_lock", "flip": f"test.{p}_flip"}
    with my_admin.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (v INT) ENGINE=InnoDB")
        cur.execute(f"INSERT INTO {table} VALUES (1), (2), (3)")
        cur.execute(f"CREATE FUNCTION {functions['write']}() RETURNS INT NOT DETERMINISTIC MODIFIES SQL DATA "
                    f"BEGIN DELETE FROM {table}; RETURN 1; END")
        cur.execute(f"CREATE FUNCTION {functions['lock']}() RETURNS INT NOT DETERMINISTIC "
                    f"RETURN GET_LOCK('{p}_held', 0)")
        cur.execute(f"CREATE FUNCTION {functions['flip']}() RETURNS INT NOT DETERMINISTIC "
                    "BEGIN SET SESSION max_statement_time = 0; SET SESSION lock_wait_timeout = 999; RETURN 1; END")
        cur.execute("SHOW GLOBAL STATUS LIKE 'Com_delete'")
        deletes = cur.fetchone()
    user = None
    extra: dict[str, Any] = {}
    if account == "granted":
        require(shutil.which("mysql") is not None, "mysql client (mariadb-client) to run deploy/db-grants/mysql.sql")
        user = f"xj_mon_{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(12)
        script = (ROOT / "deploy" / "db-grants" / "mysql.sql").read_text()
        script = script.replace("xunjian_mon", user).replace("CHANGE_ME", password)
        subprocess.run(["mysql", "-h", MY["host"], "-P", str(MY["port"]), "-u", "root"], input=script.encode(),
                       check=True, capture_output=True)
        with my_admin.cursor() as cur:
            for fn in functions.values():  # the site granted EXECUTE on the functions it allowed
                cur.execute(f"GRANT EXECUTE ON FUNCTION {fn} TO '{user}'@'%'")
        monkeypatch.setenv("XJ_TEST_ATTACK_PW", password)
        extra = {"user": user, "password_env": "XJ_TEST_ATTACK_PW"}
    try:
        yield {"prefix": p, "table": table, "functions": functions, "deletes": deletes, "target": extra}
    finally:
        with my_admin.cursor() as cur:
            for fn in functions.values():
                cur.execute(f"DROP FUNCTION IF EXISTS {fn}")
            if user:
                cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")


def my_unchanged(admin: pymysql.connections.Connection, lab: dict[str, Any]) -> None:
    with admin.cursor() as cur:
        cur.execute(f"SELECT COUNT(*), SUM(v) FROM {lab['table']}")
        assert cur.fetchone() == (3, 6), "rows changed"
        cur.execute(f"SELECT IS_FREE_LOCK('{lab['prefix']}_held'), IS_FREE_LOCK('{lab['prefix']}_attack')")
        assert cur.fetchone() == (1, 1), "a named lock is held"


MY_PREVIOUSLY_ACCEPTED = [
    ("SELECT 1 AS value /*!, GET_LOCK('{p}_attack', 0) */", "executable comment"),
    ("SELECT /*!100000 GET_LOCK('{p}_attack', 0) AS */ value FROM information_schema.ENGINES LIMIT 1",
     "executable comment"),
    ("SHOW GLOBAL STATUS /*!; DELETE FROM {t} */", "executable comment"),
    ("SHOW SLAVE STATUS /*M!100000 ; DELETE FROM {t} */", "executable comment"),
    ("SELECT {f_flip}() AS value", "not on the read-only allow-list"),
    ("SELECT {f_lock}() AS value", "not on the read-only allow-list"),
]


@pytest.mark.parametrize(("sql", "why"), MY_PREVIOUSLY_ACCEPTED)
def test_mysql_previously_accepted_attack_is_refused(sql: str, why: str, driver: str, ctx: RunContext,
                                                     my_admin: pymysql.connections.Connection,
                                                     my_lab: dict[str, Any]) -> None:
    target = my_target(driver, **my_lab["target"])
    text = sql.format(p=my_lab["prefix"], t=my_lab["table"], f_flip=my_lab["functions"]["flip"],
                      f_lock=my_lab["functions"]["lock"])
    res = probe(ctx, target, unguarded(target, text))
    assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.PERMISSION_DENIED), res.summary
    assert why in res.summary
    my_unchanged(my_admin, my_lab)
    with my_admin.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'Com_delete'")
        assert cur.fetchone() == my_lab["deletes"], "no DELETE reached the server"


def test_mysql_allowed_function_that_writes_is_stopped_by_the_read_only_transaction(
        driver: str, ctx: RunContext, my_admin: pymysql.connections.Connection, my_lab: dict[str, Any]) -> None:
    fn = my_lab["functions"]["write"]
    target = my_target(driver, **my_lab["target"], allow={"reviewed_by": "test", "functions": [fn]})
    res = probe(ctx, target, metric(target, f"SELECT {fn}() AS value"))
    assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.PERMISSION_DENIED), res.summary
    my_unchanged(my_admin, my_lab)


@pytest.mark.parametrize(("which", "problem"), [("lock", "held 1 named lock(s) (GET_LOCK)"),
                                                ("flip", "max_statement_time is 0")])
def test_mysql_allowed_function_that_turns_the_session_makes_it_unsafe(
        which: str, problem: str, driver: str, ctx: RunContext, my_admin: pymysql.connections.Connection,
        my_lab: dict[str, Any]) -> None:
    fn = my_lab["functions"][which]
    target = my_target(driver, **my_lab["target"], allow={"reviewed_by": "test", "functions": [fn]})
    first = probe(ctx, target, metric(target, "SELECT CONNECTION_ID() AS value")).value
    res = probe(ctx, target, metric(target, f"SELECT {fn}() AS value"))
    assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.UNSAFE_SESSION), res.summary
    assert problem in res.summary and res.value is None
    my_unchanged(my_admin, my_lab)
    again = probe(ctx, target, metric(target, "SELECT CONNECTION_ID() AS value"))
    assert again.outcome == Outcome.OK and again.value != first, "the next check runs on a new connection"
    session = ctx.resources[f"sql:{target.name}"]
    assert isinstance(session, Session) and session._conn is not None and session._conn.verify() == []
    close_sessions(ctx.resources)
