"""The built-in database packs load, cover the database patrol catalogue (docs/databases.md), cite their sources and run rarely when costly."""

from __future__ import annotations

import re

import pytest

from checks.pack import PackRef, load_checks
from checks.sql.kinds import SqlCheck

CATALOGUE = {
    "postgres": [
        "pg.connections", "pg.xid_wraparound", "pg.vacuum.age", "pg.analyze.age", "pg.dead_tuples", "pg.long_queries",
        "pg.idle_in_transaction", "pg.blocking", "pg.replication.lag",
        "pg.replication.slots_inactive", "pg.wal_archiving", "pg.top_sql", "pg.unused_indexes", "pg.invalid_indexes",
        "pg.sequence_exhaustion", "pg.deadlocks", "pg.conflicts", "pg.prepared_xacts",
    ],
    "mysql": [
        "mysql.connections", "mysql.replication.lag", "mysql.aborted_connects", "mysql.slow_queries",
        "mysql.tmp_disk_tables", "mysql.buffer_pool", "mysql.top_sql", "mysql.unused_indexes",
        "mysql.redundant_indexes", "mysql.full_scans", "mysql.blocking", "mysql.long_transactions",
    ],
}
EXPENSIVE = {"pg.top_sql", "pg.unused_indexes", "mysql.top_sql", "mysql.unused_indexes", "mysql.redundant_indexes",
             "mysql.full_scans"}
SOURCE = re.compile(r"\((CP|PMM|ZPG|ZMY|PGW|ours)\b|\bours\b|\b(PMM|PGW|CP|MySQLTuner|pt-variable-advisor)\b")


@pytest.mark.parametrize("pack", ["postgres", "mysql"])
def test_pack_covers_catalogue(pack: str) -> None:
    specs = load_checks([PackRef(f"builtin:{pack}", "db")]).specs
    ids = {s.id for s in specs}
    assert set(CATALOGUE[pack]) <= ids
    for spec in specs:
        assert isinstance(spec, SqlCheck) and spec.target == "db"
        assert pack in spec.query.dialects()
        assert len(spec.runbook) > 80, f"{spec.id}: runbook too thin for a DBA to act on"
        if spec.warn is not None or spec.crit is not None:
            assert SOURCE.search(spec.runbook), f"{spec.id}: thresholds must cite their source"
        if spec.id in EXPENSIVE:
            assert spec.schedule is not None or spec.interval >= 3600, f"{spec.id} is costly and must run rarely"


def test_mariadb_variants_exist_where_catalogs_differ() -> None:
    specs = {s.id: s for s in load_checks([PackRef("builtin:mysql", "db")]).specs}
    for cid in ("mysql.connections", "mysql.replication.lag", "mysql.unused_indexes", "mysql.blocking"):
        assert specs[cid].query.mariadb is not None, cid
