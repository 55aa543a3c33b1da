"""The engine against the live servers: the guard stops writes before they reach the database, the session is
read-only anyway, the server cancels overlong statements, failures become named UNKNOWN outcomes without
secrets, and one connection per target is reused and re-opened after the server drops it."""

from __future__ import annotations

import secrets
from typing import Any

import psycopg
import pymysql
import pytest

from checks.context import RunContext
from checks.result import Outcome, Result, Status
from checks.sql.kinds import SqlMetric
from checks.sql.query import QueryMap, QueryVariant
from checks.sql.session import Session
from checks.sql.target import Target
from tests.integration.sql.conftest import my_target, pg_target

pytestmark = pytest.mark.integration


def unguarded_metric(target: Target, sql: str, timeout: float = 10.0) -> SqlMetric:
    """A spec built in code without the load-time guard, to prove the run-time guard stops it."""
    key = "postgres" if target.dialect == "postgres" else "mysql"
    variant = QueryVariant.model_construct(sql=sql, min_version=None, max_version=None, flavor=None)
    query = QueryMap.model_construct(**{key: [variant]})
    return SqlMetric.model_construct(id="t.unguarded", kind="sql.metric", target=target.name, query=query, timeout=timeout)


def metric(target: Target, sql: str, timeout: float = 10.0) -> SqlMetric:
    key = "postgres" if target.dialect == "postgres" else "mysql"
    return SqlMetric.model_validate({"id": "t.metric", "target": target.name, "query": {key: sql}, "timeout": timeout})


def probe(ctx: RunContext, target: Target, spec: SqlMetric) -> Result:
    ctx.targets = {target.name: target}
    results = spec.probe(ctx)
    assert len(results) == 1
    return results[0]


# --- the guard, before anything reaches the server -------------------------------------------------------------

PG_REFUSED = [
    "DELETE FROM {s}.guarded",
    "UPDATE {s}.guarded SET v = 0",
    "DROP TABLE {s}.guarded",
    "TRUNCATE {s}.guarded",
    "SELECT 1 AS value; DELETE FROM {s}.guarded",
    "SELECT nextval('{s}.guarded_seq') AS value",
    "WITH gone AS (DELETE FROM {s}.guarded RETURNING 1) SELECT count(*) AS value FROM gone",
    "SELECT setval('{s}.guarded_seq', 1000) AS value",
]


@pytest.mark.parametrize("sql", PG_REFUSED)
def test_pg_guard_refuses_before_the_server(sql: str, driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any],
                                            pg_schema: str) -> None:
    pg_admin.execute(f"CREATE TABLE {pg_schema}.guarded (v int)")
    pg_admin.execute(f"INSERT INTO {pg_schema}.guarded SELECT generate_series(1, 10)")
    pg_admin.execute(f"CREATE SEQUENCE {pg_schema}.guarded_seq")
    pg_admin.execute(f"SELECT setval('{pg_schema}.guarded_seq', 5)")
    target = pg_target(driver)
    marker = f"xj_guard_{secrets.token_hex(4)}"
    res = probe(ctx, target, unguarded_metric(target, f"/* {marker} */ " + sql.format(s=pg_schema)))
    assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.PERMISSION_DENIED)
    assert "refused by the read-only guard" in res.summary
    # nothing changed, and the statement never appeared on the server
    assert pg_admin.execute(f"SELECT count(*), sum(v) FROM {pg_schema}.guarded").fetchone() == (10, 55)
    assert pg_admin.execute(f"SELECT last_value FROM {pg_schema}.guarded_seq").fetchone() == (5,)
    seen = pg_admin.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
                            (f"%{marker}%",)).fetchone()
    assert seen == (0,)


MY_REFUSED = [
    "DELETE FROM {t}",
    "UPDATE {t} SET v = 0",
    "DROP TABLE {t}",
    "SELECT 1 AS value; DELETE FROM {t}",
    "SELECT GET_LOCK('xj_guard', 1) AS value",
    "INSERT INTO {t} VALUES (99)",
]


@pytest.mark.parametrize("sql", MY_REFUSED)
def test_mysql_guard_refuses_before_the_server(sql: str, driver: str, ctx: RunContext, my_admin: pymysql.connections.Connection,
                                               my_table_prefix: str) -> None:
    table = f"test.{my_table_prefix}_guarded"
    with my_admin.cursor() as cur:
        cur.execute(f"CREATE TABLE {table} (v INT) ENGINE=InnoDB")
        cur.execute(f"INSERT INTO {table} VALUES (1), (2), (3)")
        cur.execute("SHOW GLOBAL STATUS LIKE 'Com_delete'")
        deletes_before = cur.fetchone()
    target = my_target(driver)
    res = probe(ctx, target, unguarded_metric(target, sql.format(t=table)))
    assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.PERMISSION_DENIED)
    with my_admin.cursor() as cur:
        cur.execute(f"SELECT COUNT(*), SUM(v) FROM {table}")
        assert cur.fetchone() == (3, 6)
        cur.execute("SHOW GLOBAL STATUS LIKE 'Com_delete'")
        assert cur.fetchone() == deletes_before, "no DELETE statement reached the server"
        cur.execute("SELECT IS_FREE_LOCK('xj_guard')")
        assert cur.fetchone() == (1,)


def test_session_is_read_only_beneath_the_guard(driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any],
                                                my_admin: pymysql.connections.Connection, pg_schema: str,
                                                my_table_prefix: str) -> None:
    """Second layer: even a statement that slipped past the guard could not write on these sessions."""
    pg_admin.execute(f"CREATE TABLE {pg_schema}.ro (v int)")
    with my_admin.cursor() as cur:
        cur.execute(f"CREATE TABLE test.{my_table_prefix}_ro (v INT) ENGINE=InnoDB")
    for target, write in ((pg_target(driver), f"INSERT INTO {pg_schema}.ro VALUES (1)"),
                          (my_target(driver), f"INSERT INTO test.{my_table_prefix}_ro VALUES (1)")):
        assert probe(ctx, target, metric(target, "SELECT 1 AS value")).status == Status.OK
        session = ctx.resources[f"sql:{target.name}"]
        assert isinstance(session, Session) and session.is_open
        conn = session._conn  # the raw connection, deliberately bypassing the guard
        assert conn is not None
        with pytest.raises(Exception, match=r"(?i)read[- ]only transaction"):
            conn._exec(write)
    assert pg_admin.execute(f"SELECT count(*) FROM {pg_schema}.ro").fetchone() == (0,)


# --- server-side timeouts ----------------------------------------------------------------------------------------

def test_pg_statement_cancelled_by_server(driver: str, ctx: RunContext) -> None:
    target = pg_target(driver)
    res = probe(ctx, target, metric(target, "SELECT pg_sleep(20) AS value", timeout=1.0))
    assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.TIMEOUT)
    assert "canceling statement due to statement timeout" in res.summary
    assert probe(ctx, target, metric(target, "SELECT 7 AS value")).value == 7.0, "the target is usable right after"


def test_mysql_statement_cancelled_by_server(driver: str, ctx: RunContext) -> None:
    target = my_target(driver)
    res = probe(ctx, target, metric(target, "SELECT SLEEP(20) AS value", timeout=1.0))
    assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.TIMEOUT)
    assert "max_statement_time exceeded" in res.summary
    assert probe(ctx, target, metric(target, "SELECT 7 AS value")).value == 7.0


def test_target_statement_timeout_caps_a_longer_check(ctx: RunContext) -> None:
    target = pg_target("native", statement_timeout=1)
    res = probe(ctx, target, metric(target, "SELECT pg_sleep(20) AS value", timeout=30.0))
    assert res.outcome == Outcome.TIMEOUT


# --- failures as named outcomes, secrets never shown ----------------------------------------------------------------

def test_connection_refused(driver: str, ctx: RunContext) -> None:
    for target in (pg_target(driver, port=1), my_target(driver, port=1)):
        res = probe(ctx, target, metric(target, "SELECT 1 AS value"))
        assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.CONNECTION_REFUSED), res.summary


def test_dns_error(ctx: RunContext) -> None:
    for target in (pg_target("native", host="no-such-host.invalid", connect_timeout=3),
                   my_target("native", host="no-such-host.invalid", connect_timeout=3)):
        res = probe(ctx, target, metric(target, "SELECT 1 AS value"))
        assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.DNS_ERROR), res.summary


def test_auth_failed_without_leaking_the_password(driver: str, ctx: RunContext, my_admin: pymysql.connections.Connection,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    password = "Wr0ng-" + secrets.token_hex(6)
    monkeypatch.setenv("XJ_TEST_BAD_PW", password)
    user = f"xj_auth_{secrets.token_hex(3)}"
    with my_admin.cursor() as cur:
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'right-{password}'")
    try:
        target = my_target(driver, user=user, password_env="XJ_TEST_BAD_PW")
        res = probe(ctx, target, metric(target, "SELECT 1 AS value"))
        assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.AUTH_FAILED), res.summary
        assert password not in str(res.to_json())
    finally:
        with my_admin.cursor() as cur:
            cur.execute(f"DROP USER '{user}'@'%'")
    pg = pg_target(driver, user="xj_no_such_role")
    res = probe(ctx, pg, metric(pg, "SELECT 1 AS value"))
    assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.AUTH_FAILED), res.summary


def test_permission_denied(driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any], pg_schema: str,
                           my_admin: pymysql.connections.Connection) -> None:
    role = f"xj_noperm_{secrets.token_hex(3)}"
    pg_admin.execute(f"CREATE TABLE {pg_schema}.secret (v int)")
    pg_admin.execute(f"CREATE ROLE {role} LOGIN")
    with my_admin.cursor() as cur:
        cur.execute(f"CREATE USER '{role}'@'%'")
    try:
        pg = pg_target(driver, user=role, allow={"reviewed_by": "test", "relations": [f"{pg_schema}.secret"]})
        res = probe(ctx, pg, metric(pg, f"SELECT count(*) AS value FROM {pg_schema}.secret"))
        assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.PERMISSION_DENIED), res.summary
        assert "refused by the read-only guard" not in res.summary, "the server refused, not the guard"
        my = my_target(driver, user=role, allow={"reviewed_by": "test", "relations": ["mysql.user"]})
        res = probe(ctx, my, metric(my, "SELECT COUNT(*) AS value FROM mysql.user"))
        assert "refused by the read-only guard" not in res.summary
        assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.PERMISSION_DENIED), res.summary
    finally:
        from checks.sql.session import close_sessions

        close_sessions(ctx.resources)
        pg_admin.execute(f"DROP OWNED BY {role}")
        pg_admin.execute(f"DROP ROLE {role}")
        with my_admin.cursor() as cur:
            cur.execute(f"DROP USER '{role}'@'%'")


def test_missing_object_is_not_found(driver: str, ctx: RunContext) -> None:
    site = {"reviewed_by": "test", "relations": ["test.xj_no_such_table", "public.xj_no_such_table"]}
    for target in (pg_target(driver, allow=site), my_target(driver, allow=site)):
        schema = "public" if target.dialect == "postgres" else "test"
        res = probe(ctx, target, metric(target, f"SELECT count(*) AS value FROM {schema}.xj_no_such_table"))
        assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.NOT_FOUND), res.summary


# --- one connection per target, reused, re-opened after the server drops it ------------------------------------------

def test_pg_connection_reused_and_reopened(driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any]) -> None:
    target = pg_target(driver)
    pid = metric(target, "SELECT pg_backend_pid() AS value")
    first = probe(ctx, target, pid).value
    assert probe(ctx, target, pid).value == first, "the connection is reused"
    pg_admin.execute("SELECT pg_terminate_backend(%s)", (int(first or 0),))
    again = probe(ctx, target, pid)
    assert again.status == Status.OK and again.value != first, again.summary


def test_mysql_connection_reused_and_reopened(driver: str, ctx: RunContext, my_admin: pymysql.connections.Connection) -> None:
    target = my_target(driver)
    cid = metric(target, "SELECT CONNECTION_ID() AS value")
    first = probe(ctx, target, cid).value
    assert probe(ctx, target, cid).value == first
    with my_admin.cursor() as cur:
        cur.execute(f"KILL {int(first or 0)}")
    again = probe(ctx, target, cid)
    assert again.status == Status.OK and again.value != first, again.summary


def test_native_and_odbc_report_the_same_server(ctx: RunContext) -> None:
    versions = set()
    for target in (pg_target("native", name="a"), pg_target("odbc", name="b")):
        probe(ctx, target, metric(target, "SELECT 1 AS value"))
        versions.add(ctx.resources[f"sql:{target.name}"].info)
    assert len(versions) == 1
    info = versions.pop()
    assert info.dialect == "postgres" and info.flavor == "postgres" and info.version >= (10,)
    for target in (my_target("native", name="c"), my_target("odbc", name="d")):
        probe(ctx, target, metric(target, "SELECT 1 AS value"))
    assert ctx.resources["sql:c"].info == ctx.resources["sql:d"].info
    assert ctx.resources["sql:c"].info.flavor == "mariadb"



def test_oracle_thin_driver_failures_are_named(ctx: RunContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Oracle server here, but python-oracledb's thin driver still really connects: refused and DNS failures."""
    pytest.importorskip("oracledb")
    monkeypatch.setenv("XJ_TEST_ORA_PW", "not-used")
    spec = SqlMetric.model_validate({"id": "t.ora", "target": "ora", "query": {"oracle": "SELECT 1 AS value FROM dual"}})
    for host, port, outcome in (("127.0.0.1", 1, Outcome.CONNECTION_REFUSED), ("no-such-host.invalid", 1521, Outcome.DNS_ERROR)):
        target = Target.model_validate({"name": "ora", "dialect": "oracle", "host": host, "port": port, "service": "HISPDB",
                                        "user": "xunjian_mon", "password_env": "XJ_TEST_ORA_PW", "connect_timeout": 3})
        res = probe(ctx, target, spec)
        assert (res.status, res.outcome) == (Status.UNKNOWN, outcome), res.summary
