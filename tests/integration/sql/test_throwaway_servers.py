"""The real paths of checks whose prerequisites the shared servers lack, on throwaway instances started here:
pg_stat_statements preloaded (pg.top_sql), and MariaDB with performance_schema and user statistics on
(mysql.top_sql, mysql.full_scans, mysql.unused_indexes). The shared servers' configuration is never changed."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from typing import Any

import psycopg
import pymysql
import pytest

from checks.context import RunContext
from checks.result import Outcome, Status
from checks.sql.session import close_sessions
from checks.sql.target import Target
from tests.integration.sql.conftest import run_check
from tests.integration.sql.throwaway import mariadb_instance, postgres_cluster

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pss_port() -> Iterator[int]:
    with postgres_cluster("shared_preload_libraries=pg_stat_statements") as port:
        yield port


@pytest.fixture(scope="module")
def maria_port() -> Iterator[int]:
    with mariadb_instance("--performance-schema=ON", "--userstat=1") as port:
        yield port


@pytest.mark.parametrize("driver", ["native", "odbc"])
def test_pg_top_sql_from_pg_stat_statements(pss_port: int, driver: str) -> None:
    conn_args: dict[str, Any] = {"host": "127.0.0.1", "port": pss_port, "user": "postgres", "dbname": "postgres"}
    target = Target.model_validate({"name": "pss", "dialect": "postgres", "driver": driver, "host": "127.0.0.1",
                                    "port": pss_port, "user": "postgres", "database": "postgres"})
    ctx = RunContext()
    try:
        with psycopg.connect(**conn_args, autocommit=True) as admin:
            admin.execute("DROP EXTENSION IF EXISTS pg_stat_statements")
            missing = run_check(ctx, target, "postgres", "pg.top_sql")[0]
            assert (missing.status, missing.outcome) == (Status.UNKNOWN, Outcome.NOT_FOUND)
            close_sessions(ctx.resources)
            admin.execute("CREATE EXTENSION pg_stat_statements")
            admin.execute("DROP TABLE IF EXISTS patient")
            admin.execute("CREATE TABLE patient (id int, name text)")
            for i in range(20):
                admin.execute(f"INSERT INTO patient VALUES ({i}, '张三{i}')")
                admin.execute(f"SELECT count(*) FROM patient WHERE name = '张三{i}'").fetchone()
        res = run_check(ctx, target, "postgres", "pg.top_sql")[0]
    finally:
        close_sessions(ctx.resources)
    assert res.outcome == Outcome.OK and res.status == Status.OK, res.summary
    assert 2 <= len(res.findings) <= 15
    by_text = {f.sql_text: f for f in res.findings}
    insert = by_text["INSERT INTO patient VALUES ($1, $2)"]
    assert insert.evidence["calls"] == 20 and insert.object == "postgres"
    assert insert.fingerprint.startswith("pg.top_sql:")
    assert "SELECT count(*) FROM patient WHERE name = $1" in by_text
    assert "张三" not in str(res.to_json())


@pytest.mark.parametrize("driver", ["native", "odbc"])
def test_mariadb_with_performance_schema_and_userstat(maria_port: int, driver: str) -> None:
    target = Target.model_validate({"name": "maria", "dialect": "mysql", "driver": driver, "host": "127.0.0.1",
                                    "port": maria_port, "user": "root", "database": "mysql"})
    admin = pymysql.connect(host="127.0.0.1", port=maria_port, user="root", password="", autocommit=True)
    ctx = RunContext()
    try:
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS his")
            cur.execute("CREATE TABLE IF NOT EXISTS his.visit (id INT PRIMARY KEY, patient_id INT, ward VARCHAR(20), "
                        "INDEX by_patient (patient_id), INDEX by_ward (ward))")
            cur.execute("INSERT IGNORE INTO his.visit SELECT seq, seq % 50, CONCAT('w', seq % 7) FROM his.seq_1_to_500")
            for i in range(5):
                cur.execute("SELECT COUNT(*) FROM his.visit WHERE patient_id = %s", (i,))
                cur.execute("SELECT COUNT(*) FROM his.visit WHERE id + 0 = %s", (i,))
        top = run_check(ctx, target, "mysql", "mysql.top_sql")[0]
        scans = run_check(ctx, target, "mysql", "mysql.full_scans")[0]
        unused = run_check(ctx, target, "mysql", "mysql.unused_indexes")[0]
    finally:
        close_sessions(ctx.resources)
        admin.close()
    assert top.outcome == Outcome.OK and top.findings, top.summary
    texts = [f.sql_text for f in top.findings]
    assert any("FROM `his` . `visit` WHERE `patient_id` = ?" in t or "FROM his.visit WHERE patient_id = ?" in t.replace("`", "")
               .replace(" . ", ".") for t in texts), texts
    assert scans.outcome == Outcome.OK
    assert any("ID + ? = ?" in f.sql_text.upper() for f in scans.findings), [f.sql_text for f in scans.findings]
    assert all(re.fullmatch(r"mysql\.full_scans:[a-z_]*/[0-9a-f]{32}", f.fingerprint) for f in scans.findings)
    objects = {f.object for f in unused.findings}
    assert "his.visit.by_ward" in objects, objects
    assert "his.visit.by_patient" not in objects, "used through the patient_id lookups"


def test_throwaway_mariadb_keeps_its_temporary_tables_to_itself(maria_port: int) -> None:
    """A starting mariadbd deletes every #sql* file in its tmpdir; in the machine's /tmp those belong to the
    shared MariaDB's running statements, and losing one crashes MariaDB 10.11 (docs/databases.md)."""
    admin = pymysql.connect(host="127.0.0.1", port=maria_port, user="root", password="", autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT @@tmpdir, @@datadir")
            row = cur.fetchone()
    finally:
        admin.close()
    assert row is not None
    tmpdir, datadir = (os.path.realpath(str(v).rstrip("/")) for v in row)
    assert tmpdir != os.path.realpath(tempfile.gettempdir())
    assert os.path.dirname(tmpdir) == os.path.dirname(datadir)
