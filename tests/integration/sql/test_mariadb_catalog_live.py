"""MariaDB reads of information_schema that open no view, on a throwaway mariadbd (private tmpdir).

A MariaDB 10.11 server crashes (signal 11 in ha_maria::drop_table) when an on-disk internal temporary table it
has just created cannot be opened: its file deleted by another mariadbd starting with the same tmpdir, or no
file descriptor left. To fill information_schema.TABLES/COLUMNS the server opens every view it lists and builds
such a temporary table for each information_schema table a view (the sys schema's, an application's) or the
information_schema schema itself names: the old mysql.auto_increment_exhaustion created ~20 of them per run
and was the query caught in the crash. No pack query may open a view now, and the auto-increment check keeps its
answers (docs/databases.md, "MariaDB information_schema and views").

Tried and not needed for the crash (so not what the pack avoids): max_statement_time firing, the server-side
prepared-statement path (the text protocol crashes alike), the granted account's missing privileges, DDL and
GRANT/REVOKE running concurrently, CPU load. The crash itself is not provoked here: no query shape can avoid
every on-disk temporary table (reading COLUMNS or PROCESSLIST makes one), so it stays a server bug whose
trigger the operator removes (one tmpdir per instance, file-descriptor headroom).
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from checks.context import RunContext
from checks.pack import PackRef, load_checks
from checks.result import Outcome, Status
from checks.sql.query import QueryMap
from checks.sql.session import close_sessions
from checks.sql.target import Target
from checks.sql.version import parse_version
from tests.conftest import require
from tests.integration.sql.conftest import pack_check
from tests.integration.sql.throwaway import mariadb_instance

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
MONITOR = "xunjian_mon"

SEED = [
    "CREATE DATABASE ward",
    "CREATE TABLE ward.orders (id INT AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT = 2000000000",
    "CREATE TABLE ward.ticket (id TINYINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, note TEXT) AUTO_INCREMENT = 250",
    "CREATE TABLE ward.visit (id BIGINT AUTO_INCREMENT PRIMARY KEY)",
    "CREATE DATABASE ward_views",
    # views over information_schema, the kind the sys schema is full of; one named like ward's base table
    "CREATE VIEW ward_views.catalog AS SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS",
    "CREATE VIEW ward_views.ticket AS SELECT TABLE_NAME FROM information_schema.TABLES",
    "CREATE VIEW ward_views.recent AS SELECT id FROM ward.visit",
    "CREATE TABLE ward_views.counter (id SMALLINT UNSIGNED AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT = 60000",
]
STATUS = ("Opened_views", "Created_tmp_disk_tables")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, str]]:
    """A throwaway mariadbd with the seeded schemas and the least-privilege account of deploy/db-grants/mysql.sql."""
    require(shutil.which("mysql") is not None, "mysql client (mariadb-client) to run deploy/db-grants/mysql.sql")
    password = secrets.token_urlsafe(12)
    with mariadb_instance() as port:
        admin = pymysql.connect(host="127.0.0.1", port=port, user="root", password="", autocommit=True)
        try:
            with admin.cursor() as cur:
                for statement in SEED:
                    cur.execute(statement)
        finally:
            admin.close()
        script = (ROOT / "deploy" / "db-grants" / "mysql.sql").read_text().replace("CHANGE_ME", password)
        subprocess.run(["mysql", "-h", "127.0.0.1", "-P", str(port), "-u", "root"], input=script.encode(), check=True,
                       capture_output=True)
        yield port, password


def _monitor(port: int, password: str) -> pymysql.connections.Connection:
    return pymysql.connect(host="127.0.0.1", port=port, user=MONITOR, password=password, autocommit=True)


def _status(cur: Any) -> dict[str, int]:
    cur.execute("SHOW SESSION STATUS WHERE Variable_name IN ('Opened_views', 'Created_tmp_disk_tables')")
    return {str(name): int(value) for name, value in cur.fetchall()}


def _pack_statements(version_text: str) -> list[tuple[str, str]]:
    """(check id, SQL as sent) of every statement of the mysql pack that a MariaDB of this version runs."""
    version = parse_version(version_text)
    out = []
    for spec in load_checks([PackRef("builtin:mysql", "db")]).specs:
        queries: list[tuple[str, QueryMap]] = spec.sql_queries() if hasattr(spec, "sql_queries") else []
        for _, query in queries:
            chosen = query.select("mysql", "mariadb", version)
            if chosen is not None and chosen[0].sql is not None:
                variant, key = chosen
                out.append((spec.id, variant.statement(key).sql))
    return out


def test_no_pack_query_opens_a_view(server: tuple[int, str]) -> None:
    """Measured by the server itself: the session's Opened_views counter stays put for every statement."""
    port, password = server
    conn = _monitor(port, password)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            row = cur.fetchone()
            assert row is not None
            statements = _pack_statements(str(row[0]))
            assert {"mysql.auto_increment_exhaustion", "mysql.database_size", "mysql.redundant_indexes"} <= {
                check_id for check_id, _ in statements}
            opened = {}
            for check_id, sql in statements:
                before = _status(cur)
                cur.execute(sql)
                cur.fetchall()
                after = _status(cur)
                opened[check_id] = {k: after[k] - before[k] for k in STATUS}
    finally:
        conn.close()
    assert {c: d["Opened_views"] for c, d in opened.items() if d["Opened_views"]} == {}
    # one on-disk temporary table (information_schema.COLUMNS has TEXT columns) instead of one per view
    assert opened["mysql.auto_increment_exhaustion"]["Created_tmp_disk_tables"] <= 1


@pytest.mark.parametrize("driver", ["native", "odbc"])
def test_auto_increment_answers_are_kept(server: tuple[int, str], driver: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Base tables in a schema full of views, and one named like a view elsewhere, are still read."""
    port, password = server
    monkeypatch.setenv("XJ_TEST_CATALOG_PW", password)
    target = Target.model_validate({"name": "ward_db", "dialect": "mysql", "driver": driver, "host": "127.0.0.1",
                                    "port": port, "user": MONITOR, "password_env": "XJ_TEST_CATALOG_PW"})
    ctx = RunContext()
    ctx.targets = {target.name: target}
    try:
        res = pack_check(ctx, "mysql", target.name, "mysql.auto_increment_exhaustion")[0]
    finally:
        close_sessions(ctx.resources)
    assert res.outcome == Outcome.OK, res.summary
    found = {f.object: f.evidence for f in res.findings}
    assert set(found) == {"ward.orders.id", "ward.ticket.id", "ward_views.counter.id"}
    assert found["ward.ticket.id"]["max_value"] == 255 and found["ward.ticket.id"]["percent_used"] == pytest.approx(98.04)
    assert found["ward_views.counter.id"]["max_value"] == 65535
    assert found["ward.orders.id"]["percent_used"] == pytest.approx(93.13)
    assert res.status == Status.CRITICAL
