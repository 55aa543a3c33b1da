"""Every check of the postgres and mysql packs runs against the live servers and returns a sensible status,
through the native drivers and through pyodbc with Debian's ODBC drivers, as superuser and as the
least-privilege account the grant scripts create."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

from checks.context import RunContext
from checks.pack import PackRef, load_checks
from checks.result import Outcome, Result, Status
from checks.sql.session import close_sessions
from checks.sql.target import Target
from tests.conftest import require
from tests.integration.sql.conftest import PG, my_target, pg_target

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def run_pack(pack: str, target: Target, ctx: RunContext) -> dict[str, list[Result]]:
    ctx.targets = {target.name: target}
    specs = load_checks([PackRef(f"builtin:{pack}", target.name)]).specs
    assert specs
    return {spec.id: spec.probe(ctx) for spec in specs}


def assert_sensible(results: dict[str, list[Result]], expect_not_found: dict[str, str]) -> None:
    """Each check answered: a status with outcome ok, or UNKNOWN not_found exactly where a prerequisite is absent."""
    for check_id, res in results.items():
        assert res, f"{check_id} returned no result"
        for r in res:
            if check_id in expect_not_found:
                assert (r.status, r.outcome) == (Status.UNKNOWN, Outcome.NOT_FOUND), f"{check_id}: {r.summary}"
                assert expect_not_found[check_id] in r.summary
                continue
            assert r.outcome == Outcome.OK, f"{check_id}: {r.outcome} {r.summary}"
            assert r.status in (Status.OK, Status.WARNING, Status.CRITICAL), f"{check_id}: {r.summary}"
            assert r.summary and r.check_id == check_id and r.target == "db"
            assert r.duration_ms > 0 and r.started_at > 0


def pg_expectations(admin: psycopg.Connection[Any]) -> dict[str, str]:
    expect = {}
    row = admin.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'").fetchone()
    if not (row and row[0]):
        expect["pg.top_sql"] = expect["pg.plan_regressions"] = "pg_stat_statements is not installed"
    mode = admin.execute("SELECT current_setting('archive_mode')").fetchone()
    if mode and mode[0] == "off":
        expect["pg.backup.age"] = "archive_mode is off"
    return expect


def my_expectations(admin: pymysql.connections.Connection) -> dict[str, str]:
    with admin.cursor() as cur:
        cur.execute("SELECT @@performance_schema, @@userstat")
        row = cur.fetchone()
    assert row is not None
    expect = {}
    if not row[0]:
        expect["mysql.top_sql"] = "performance_schema is OFF"
        expect["mysql.full_scans"] = "performance_schema is OFF"
    if not row[1]:
        expect["mysql.unused_indexes"] = "index usage is not being counted"
    return expect


def test_postgres_pack(driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any]) -> None:
    target = pg_target(driver, name="db")
    first = run_pack("postgres", target, ctx)
    assert_sensible(first, pg_expectations(pg_admin))
    second = run_pack("postgres", target, ctx)
    assert_sensible(second, pg_expectations(pg_admin))
    # counters: first run records, second reports an increase
    assert all(r.value is None for r in first["pg.deadlocks"])
    assert all(r.value is not None and r.value >= 0 for r in second["pg.deadlocks"])
    assert {r.key for r in second["pg.xid_wraparound"]} >= {"test", "postgres"}


def test_mysql_pack(driver: str, ctx: RunContext, my_admin: pymysql.connections.Connection) -> None:
    target = my_target(driver, name="db")
    first = run_pack("mysql", target, ctx)
    assert_sensible(first, my_expectations(my_admin))
    second = run_pack("mysql", target, ctx)
    assert_sensible(second, my_expectations(my_admin))
    assert second["mysql.aborted_connects"][0].value is not None
    assert second["mysql.replication.lag"][0].summary.endswith("not a replica (no replication configured)")


def test_postgres_pack_as_least_privilege_account(driver: str, ctx: RunContext, pg_admin: psycopg.Connection[Any],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/db-grants/postgres.sql gives the pack everything it needs, and nothing to write with."""
    require(shutil.which("psql") is not None, "psql (postgresql-client) to run deploy/db-grants/postgres.sql")
    password = secrets.token_urlsafe(12)
    script = ROOT / "deploy" / "db-grants" / "postgres.sql"
    psql = ["psql", "-X", "-q", "-h", PG["host"], "-p", str(PG["port"]), "-U", "postgres", "-d", "test"]
    try:
        # lock_down_public=off: the lock-down changes PUBLIC's rights, which a shared server must keep
        # (test_grants_lockdown_live.py proves it on a throwaway cluster).
        subprocess.run([*psql, "-v", f"mon_password={password}", "-v", "lock_down_public=off", "-f", str(script)],
                       check=True, capture_output=True,
                       env={**os.environ, "PGCONNECT_TIMEOUT": "5"})
        monkeypatch.setenv("XJ_TEST_MON_PW", password)
        target = pg_target(driver, name="db", user="xunjian_mon", password_env="XJ_TEST_MON_PW")
        results = run_pack("postgres", target, ctx)
        assert_sensible(results, pg_expectations(pg_admin))
        assert password not in repr(results)
    finally:
        close_sessions(ctx.resources)
        pg_admin.execute("DROP OWNED BY xunjian_mon")
        pg_admin.execute("DROP ROLE IF EXISTS xunjian_mon")


def test_mysql_pack_as_least_privilege_account(driver: str, ctx: RunContext, my_admin: pymysql.connections.Connection,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/db-grants/mysql.sql (with MariaDB's executable comments) is enough for the whole pack."""
    require(shutil.which("mysql") is not None, "mysql client (mariadb-client) to run deploy/db-grants/mysql.sql")
    password = secrets.token_urlsafe(12)
    script = (ROOT / "deploy" / "db-grants" / "mysql.sql").read_text().replace("CHANGE_ME", password)
    try:
        subprocess.run(["mysql", "-h", "127.0.0.1", "-u", "root"], input=script.encode(), check=True, capture_output=True)
        monkeypatch.setenv("XJ_TEST_MON_PW", password)
        target = my_target(driver, name="db", user="xunjian_mon", password_env="XJ_TEST_MON_PW")
        results = run_pack("mysql", target, ctx)
        assert_sensible(results, my_expectations(my_admin))
        assert password not in repr(results)
    finally:
        close_sessions(ctx.resources)
        with my_admin.cursor() as cur:
            cur.execute("DROP USER IF EXISTS 'xunjian_mon'@'%'")
