"""Real conditions on the live MariaDB, in throwaway tables, seen by the mysql pack's checks (PyMySQL and
MariaDB Connector/ODBC)."""

from __future__ import annotations

import time
from typing import Any

import pymysql
import pytest

from checks.context import RunContext
from checks.result import Outcome, Status
from tests.integration.sql.conftest import MY, Background, my_target, run_check, wait_for

pytestmark = pytest.mark.integration


def _one(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        row = cur.fetchone()
    return None if row is None else row[0]


def _exec(conn: pymysql.connections.Connection, sql: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql)


def test_blocking_lock(driver: str, ctx: RunContext, my_admin: pymysql.connections.Connection, my_table_prefix: str) -> None:
    table = f"test.{my_table_prefix}_account"
    _exec(my_admin, f"CREATE TABLE {table} (id INT PRIMARY KEY, balance INT) ENGINE=InnoDB")
    _exec(my_admin, f"INSERT INTO {table} VALUES (1, 0)")
    holder = pymysql.connect(**MY, autocommit=False)
    waiter = pymysql.connect(**MY, autocommit=True)
    try:
        _exec(holder, f"UPDATE {table} SET balance = 1 WHERE id = 1")
        _exec(waiter, "SET SESSION innodb_lock_wait_timeout = 40")
        blocked = Background(lambda: _exec(waiter, f"UPDATE {table} SET balance = 2 WHERE id = 1"))
        wait_for(lambda: _one(my_admin, "SELECT COUNT(*) FROM information_schema.INNODB_LOCK_WAITS") >= 1,
                 "the second session to wait for the row lock")
        time.sleep(2.2)
        fast = {"mysql.blocking": {"warn": "> 1", "min_duration": "1s"}}
        target = my_target(driver)
        res = run_check(ctx, target, "mysql", "mysql.blocking", fast)[0]
        assert res.status == Status.WARNING and res.value is not None and res.value >= 2
        mine = [f for f in res.findings if f.attributes["session_id"] == str(holder.thread_id())]
        assert len(mine) == 1, [f.title for f in res.findings]
        assert mine[0].fingerprint.startswith(f"mysql.blocking:{holder.thread_id()}@")
        assert mine[0].attributes["username"] == "root" and mine[0].evidence["most_blocked_at_once"] == 1
        assert f"Root blocker session {holder.thread_id()}" in mine[0].title
        again = run_check(ctx, target, "mysql", "mysql.blocking", fast)[0]
        assert [f.fingerprint for f in again.findings if f.attributes["session_id"] == str(holder.thread_id())] == \
            [mine[0].fingerprint], "one finding per root blocker, run after run"
    finally:
        holder.rollback()
        holder.close()
        blocked.join()
        waiter.close()
    assert blocked.error is None


def test_long_running_query(driver: str, ctx: RunContext, my_admin: pymysql.connections.Connection) -> None:
    runner = pymysql.connect(**MY, autocommit=True)
    thread = runner.thread_id()
    sleeping = Background(lambda: _exec(runner, "SELECT SLEEP(30)"))
    try:
        wait_for(lambda: _one(my_admin, "SELECT TIME FROM information_schema.PROCESSLIST WHERE ID = %s AND COMMAND = 'Query'",
                              (thread,)) is not None, "SLEEP to start")
        time.sleep(2.2)
        res = run_check(ctx, my_target(driver), "mysql", "mysql.long_queries", {"mysql.long_queries": {"warn": "> 1"}})[0]
        assert res.status == Status.WARNING and res.value is not None and res.value >= 2
        assert run_check(ctx, my_target(driver), "mysql", "mysql.long_queries")[0].status == Status.OK
    finally:
        _exec(my_admin, f"KILL QUERY {thread}")
        sleeping.join()
        runner.close()


def test_idle_in_transaction(driver: str, ctx: RunContext, my_admin: pymysql.connections.Connection, my_table_prefix: str) -> None:
    table = f"test.{my_table_prefix}_stock"
    _exec(my_admin, f"CREATE TABLE {table} (id INT PRIMARY KEY, qty INT) ENGINE=InnoDB")
    _exec(my_admin, f"INSERT INTO {table} VALUES (1, 5)")
    idle = pymysql.connect(**MY, autocommit=False)
    try:
        _exec(idle, f"UPDATE {table} SET qty = 4 WHERE id = 1")
        wait_for(lambda: _one(my_admin, "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id = %s",
                              (idle.thread_id(),)) == 1, "the open transaction")
        time.sleep(2.2)
        target = my_target(driver)
        res = run_check(ctx, target, "mysql", "mysql.idle_in_transaction", {"mysql.idle_in_transaction": {"warn": "> 1"}})[0]
        assert res.status == Status.WARNING and res.metrics["count"] >= 1
        trx = run_check(ctx, target, "mysql", "mysql.long_transactions", {"mysql.long_transactions": {"warn": "> 1"}})[0]
        assert trx.status == Status.WARNING and trx.metrics["count"] >= 1
    finally:
        idle.rollback()
        idle.close()


def test_auto_increment_near_exhaustion(driver: str, ctx: RunContext, my_admin: pymysql.connections.Connection,
                                        my_table_prefix: str) -> None:
    """MySQL's sequence exhaustion: a TINYINT AUTO_INCREMENT key about to run out."""
    table = f"{my_table_prefix}_ticket"
    _exec(my_admin, f"CREATE TABLE test.{table} (id TINYINT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB AUTO_INCREMENT=125")
    _exec(my_admin, f"CREATE TABLE test.{table}_big (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB")
    res = run_check(ctx, my_target(driver), "mysql", "mysql.auto_increment_exhaustion")[0]
    assert res.outcome == Outcome.OK, res.summary
    mine = [f for f in res.findings if f.object == f"test.{table}.id"]
    assert len(mine) == 1
    assert mine[0].evidence["max_value"] == 127 and mine[0].evidence["percent_used"] == pytest.approx(98.43)
    assert res.status == Status.CRITICAL


def test_unused_index_needs_usage_counting(driver: str, ctx: RunContext, my_admin: pymysql.connections.Connection) -> None:
    """This MariaDB runs with userstat and performance_schema off (Debian defaults): the check says so
    instead of listing every index as unused. The counting path is verified on a throwaway mariadbd
    (test_mariadb_instance.py)."""
    if _one(my_admin, "SELECT @@userstat"):
        pytest.skip("userstat is on here; the real path is exercised instead")
    res = run_check(ctx, my_target(driver), "mysql", "mysql.unused_indexes")[0]
    assert (res.status, res.outcome) == (Status.UNKNOWN, Outcome.NOT_FOUND)
    assert "SET GLOBAL userstat=1" in res.summary


def test_redundant_index(driver: str, ctx: RunContext, my_admin: pymysql.connections.Connection, my_table_prefix: str) -> None:
    table = f"{my_table_prefix}_visit"
    _exec(my_admin, f"CREATE TABLE test.{table} (id INT PRIMARY KEY, patient_id INT, visit_date DATE, "
                    "INDEX by_patient (patient_id), INDEX by_patient_date (patient_id, visit_date), INDEX by_date (visit_date))")
    res = run_check(ctx, my_target(driver), "mysql", "mysql.redundant_indexes")[0]
    mine = {f.object: f for f in res.findings if table in f.object}
    assert set(mine) == {f"test.{table}.by_patient"}
    assert mine[f"test.{table}.by_patient"].attributes["dominant_index"] == "by_patient_date"
