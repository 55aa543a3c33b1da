"""DBA findings end to end: a real agent patrols the real PostgreSQL with the built-in pack, the collector
deduplicates the finding across runs, a DBA accepts it with the CLI, and it is fixed once the index goes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT, require
from tests.e2e.harness import Collector, Fleet, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SCHEMA = "xj_e2e_findings"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}


@pytest.fixture
def pg_unused_index() -> Iterator[Any]:
    psycopg = pytest.importorskip("psycopg")
    try:
        conn = psycopg.connect(**PG, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        require(False, f"PostgreSQL on 127.0.0.1:5432 ({exc})")
    conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    conn.execute(f"CREATE SCHEMA {SCHEMA}")
    conn.execute(f"CREATE TABLE {SCHEMA}.orders (id int PRIMARY KEY, patient_ref text)")
    conn.execute(f"INSERT INTO {SCHEMA}.orders SELECT g, 'p' || g FROM generate_series(1, 1000) g")
    conn.execute(f"CREATE INDEX orders_patient_ref_idx ON {SCHEMA}.orders (patient_ref)")
    try:
        yield conn
    finally:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.close()


def xunjian(c: Collector, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, XUNJIAN_URL=f"http://{c.http}")
    return subprocess.run([sys.executable, "-m", "xunjian", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=30)


def our_finding(c: Collector) -> dict[str, Any] | None:
    found = [f for f in c.get("/api/v1/findings?target=lis_pg") if f["object"] == f"{SCHEMA}.orders_patient_ref_idx"]
    assert len(found) <= 1, f"the same finding stored more than once: {found}"
    return found[0] if found else None


def test_unused_index_finding_is_deduplicated_accepted_and_fixed(fleet: Fleet, pg_unused_index: Any) -> None:
    c = fleet.collector(extra="findings: {fixed_after: 3s}\n").start()
    c.wait_healthy()
    agent = fleet.agent(
        "lis-db-01", [c.grpc], "pack: none\nchecks: []\n",
        packs="[{pack: 'builtin:postgres', target: lis_pg}]",
        extra=(
            "targets:\n"
            "  lis_pg: {dialect: postgres, host: 127.0.0.1, port: 5432, database: test, user: postgres}\n"
            "overrides:\n  pg.unused_indexes: {interval: 1s}\n"
        ),
    ).start()

    first = wait_for(lambda: our_finding(c), timeout=40, what="the unused-index finding at the collector")
    assert first["engine"] == "postgres" and first["state"] == "new"
    assert first["check_id"] == "pg.unused_indexes"
    assert "patient" not in json.dumps(first.get("evidence", {}))
    again = wait_for(lambda: (f := our_finding(c)) and f["seen_count"] >= 3 and f, timeout=30,
                     what="the finding seen again in later runs")
    assert again["id"] == first["id"] and again["first_seen"] == first["first_seen"]

    listed = xunjian(c, "findings", "list", "--engine", "postgres", "--state", "new")
    assert listed.returncode == 0 and "orders_patient_ref_idx" in listed.stdout, listed.stderr
    accepted = xunjian(c, "findings", "accept", str(first["id"]), "--reviewer", "dba.wang",
                       "--note", "drop it after month-end")
    assert accepted.returncode == 0, accepted.stderr
    shown = json.loads(xunjian(c, "findings", "show", str(first["id"]), "--json").stdout)
    assert shown["state"] == "accepted" and shown["reviewer"] == "dba.wang"

    pg_unused_index.execute(f"DROP INDEX {SCHEMA}.orders_patient_ref_idx")
    fixed = wait_for(lambda: (f := c.get(f"/api/v1/findings/{first['id']}")) and f["state"] == "fixed" and f,
                     timeout=40, what="the finding marked fixed once the index is gone")
    assert fixed["seen_count"] >= again["seen_count"]
    metrics = c.text("/metrics")
    assert any(line.startswith("xunjian_findings") and 'state="fixed"' in line for line in metrics.splitlines())
    assert agent.running()
