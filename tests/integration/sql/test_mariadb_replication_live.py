"""A throwaway MariaDB primary (binary log on) and its replica, started by this module:

- a healthy replica: IO and SQL threads running, no lag;
- the replica's IO thread stopped: CRITICAL, naming it, while the SQL thread stays OK;
- a long mysqldump --single-transaction is no long-query and no long-transaction alarm, while a real long query
  still is;
- a changed global variable is a drift finding, and the replica (declared replica_of the primary) reports it
  differs.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest

from checks.context import RunContext
from checks.result import Result, Status
from checks.sql.target import Target
from tests.conftest import require
from tests.integration.sql.conftest import Background, pack_check, targets_context, wait_for
from tests.integration.sql.throwaway import mariadb_instance

pytestmark = pytest.mark.integration


@dataclass
class Pair:
    primary: int
    replica: int

    def admin(self, port: int) -> pymysql.connections.Connection:
        return pymysql.connect(host="127.0.0.1", port=port, user="root", password="", autocommit=True)

    def targets(self) -> dict[str, Target]:
        base = {"dialect": "mysql", "host": "127.0.0.1", "user": "root", "database": "mysql"}
        return {"pri": Target.model_validate({**base, "name": "pri", "port": self.primary}),
                "rep": Target.model_validate({**base, "name": "rep", "port": self.replica, "replica_of": "pri"})}


def slave_status(conn: pymysql.connections.Connection) -> dict[str, Any]:
    with conn.cursor(pymysql.cursors.DictCursor) as cur:
        cur.execute("SHOW SLAVE STATUS")
        return dict(cur.fetchone() or {})


def execute(conn: pymysql.connections.Connection, sql: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with mariadb_instance("--log-bin=mysql-bin", "--server-id=1", "--binlog-format=ROW") as primary, \
            mariadb_instance("--server-id=2") as replica:
        p = Pair(primary, replica)
        rep = p.admin(replica)
        try:
            execute(rep, f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={primary}, MASTER_USER='root', "
                         "MASTER_PASSWORD='', MASTER_CONNECT_RETRY=1")
            execute(rep, "START SLAVE")
            wait_for(lambda: slave_status(rep).get("Slave_IO_Running") == "Yes"
                     and slave_status(rep).get("Slave_SQL_Running") == "Yes", "replication to run", timeout=30)
        finally:
            rep.close()
        yield p


@pytest.fixture
def ctx(pair: Pair, tmp_path: Path) -> Iterator[RunContext]:
    with targets_context(dict(pair.targets()), tmp_path / "state") as context:
        yield context


def check(ctx: RunContext, target: str, check_id: str, overrides: dict[str, dict[str, Any]] | None = None) -> list[Result]:
    return pack_check(ctx, "mysql", target, check_id, overrides)


def test_a_healthy_replica(pair: Pair, ctx: RunContext) -> None:
    for check_id in ("mysql.replication.io_thread", "mysql.replication.sql_thread", "mysql.replication.lag"):
        (r,) = check(ctx, "rep", check_id)
        assert (r.status, r.value) == (Status.OK, 0), r.summary
    (none,) = check(ctx, "pri", "mysql.replication.io_thread")
    assert none.status == Status.OK and none.summary.endswith("not a replica (no replication configured)")


def test_the_replicas_io_thread_stopped_is_critical(pair: Pair, ctx: RunContext) -> None:
    rep = pair.admin(pair.replica)
    try:
        execute(rep, "STOP SLAVE IO_THREAD")
        wait_for(lambda: slave_status(rep).get("Slave_IO_Running") == "No", "the IO thread to stop")
        (io,) = check(ctx, "rep", "mysql.replication.io_thread")
        assert (io.status, io.value) == (Status.CRITICAL, 2), io.summary
        (sql,) = check(ctx, "rep", "mysql.replication.sql_thread")
        assert sql.status == Status.OK
    finally:
        execute(rep, "START SLAVE IO_THREAD")
        wait_for(lambda: slave_status(rep).get("Slave_IO_Running") == "Yes", "the IO thread to run again")
        rep.close()
    (back,) = check(ctx, "rep", "mysql.replication.io_thread")
    assert back.status == Status.OK


def test_a_long_mysqldump_is_not_a_long_query_nor_a_long_transaction(pair: Pair, ctx: RunContext) -> None:
    dump_tool = next((t for t in ("mariadb-dump", "mysqldump") if subprocess.run(["which", t], capture_output=True)
                      .returncode == 0), None)
    require(dump_tool is not None, "mariadb-dump or mysqldump (apt: mariadb-client)")
    assert dump_tool is not None
    pri = pair.admin(pair.primary)
    execute(pri, "CREATE DATABASE IF NOT EXISTS his")
    execute(pri, "CREATE TABLE IF NOT EXISTS his.visit_archive (id INT PRIMARY KEY, note VARCHAR(250)) ENGINE=InnoDB")
    execute(pri, "INSERT IGNORE INTO his.visit_archive SELECT seq, REPEAT('x', 200) FROM his.seq_1_to_100000")
    # The dump writes into a pipe nobody reads: its table read stays on the server, as a big nightly dump does.
    dump = subprocess.Popen([dump_tool, "-h", "127.0.0.1", "-P", str(pair.primary), "-u", "root",
                             "--single-transaction", "--quick", "his", "visit_archive"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    sleeper = pair.admin(pair.primary)
    slow = Background(lambda: execute(sleeper, "SELECT SLEEP(20)"))

    def running() -> int:
        with pri.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query' AND TIME >= 2 "
                        "AND (INFO LIKE 'SELECT /*!40001 SQL_NO_CACHE */%' OR INFO = 'SELECT SLEEP(20)')")
            row = cur.fetchone()
        return int(row[0]) if row else 0

    try:
        wait_for(lambda: running() == 2, "the dump's table read and the report query to run for a while")
        over_a_second = {"mysql.long_queries": {"warn": "> 1", "crit": "> 600"},
                         "mysql.long_transactions": {"warn": "> 1", "crit": "> 600"}}
        (queries,) = check(ctx, "pri", "mysql.long_queries", over_a_second)
        assert queries.status == Status.WARNING and f"session {sleeper.thread_id()}" in queries.summary, queries.summary
        assert "1 maintenance session left out: query pattern" in queries.summary
        with pri.cursor() as cur:
            cur.execute(f"KILL QUERY {sleeper.thread_id()}")
        slow.join()
        (quiet,) = check(ctx, "pri", "mysql.long_queries", over_a_second)
        assert quiet.status == Status.OK, quiet.summary
        time.sleep(1.2)
        (trx,) = check(ctx, "pri", "mysql.long_transactions", over_a_second)
        assert trx.status == Status.OK and trx.metrics.get("maintenance_sessions") == 1, trx.summary
    finally:
        dump.kill()
        dump.wait()
        assert dump.stdout is not None
        dump.stdout.close()
        sleeper.close()
        pri.close()


def test_a_changed_variable_is_a_drift_finding_and_a_difference_on_the_replica(pair: Pair, ctx: RunContext) -> None:
    (first,) = check(ctx, "pri", "mysql.settings")
    assert "snapshot of" in first.summary
    pri = pair.admin(pair.primary)
    try:
        execute(pri, "SET GLOBAL max_connections = 321")
        (run,) = check(ctx, "pri", "mysql.settings")
        (finding,) = [f for f in run.findings if f.object == "max_connections"]
        assert finding.title == "Setting max_connections changed: 151 -> 321"
        (replica,) = check(ctx, "rep", "mysql.settings")
        differs = {f.object: f for f in replica.findings if f.fingerprint.startswith("mysql.settings:differs:")}
        assert differs["max_connections"].attributes == {"setting": "max_connections", "replica": "151",
                                                         "primary": "321", "primary_target": "pri"}
        assert "server_id" not in differs and "log_bin" in differs, "server ids differ by design; the binlog does not"
    finally:
        execute(pri, "SET GLOBAL max_connections = 151")
        pri.close()
