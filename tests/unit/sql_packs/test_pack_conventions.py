"""House rules for the built-in Oracle and SQL Server packs: catalogue coverage, cited thresholds, polite
schedules for costly queries, and runbooks an on-call DBA can act on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from checks.pack import PackRef, load_checks
from checks.sql.kinds import SqlFindings, SqlMetric
from tests.unit.sql_packs.recorded import output_columns, pack_specs

SOURCES = re.compile(r"\b(ZORA|COH|ODM|ODE|FRK|FRK-I|FRK-F|FRK-C|ZMS|CMH|OLA|CP|sp_Blitz|Zabbix|broker)\b|Xunjian's own|\bours\b|catalogue")

CATALOGUE = {
    "oracle": [
        "oracle.instance.status", "oracle.tablespace.used_pct", "oracle.fra.used_pct", "oracle.archive.dest",
        "oracle.rman.backup_age", "oracle.rman.last_status", "oracle.dataguard.lag", "oracle.sessions.pct_of_limit",
        "oracle.locks.blocking", "oracle.sql.top_elapsed", "oracle.sql.top_cpu",
        "oracle.objects.invalid", "oracle.indexes.unusable", "oracle.stats.stale", "oracle.jobs.scheduler_failures",
        "oracle.jobs.queue_processes", "oracle.jobs.dbms_job", "oracle.jobs.overdue", "oracle.redo.switch_interval",
        "oracle.redo.free_groups", "oracle.memory.shared_pool_free_pct", "oracle.memory.pga_pct_of_target",
        "oracle.users.password_expiry", "oracle.blocks.corrupt", "oracle.sessions.long_operations",
    ],
    "mssql": [
        "mssql.backup.full_age", "mssql.backup.log_age", "mssql.backup.diff_age", "mssql.agent.job_outcome",
        "mssql.agent.job_overdue", "mssql.agent.job_running_long", "mssql.agent.job_not_scheduled",
        "mssql.log.used_pct", "mssql.log.vlf_count", "mssql.locks.blocking",
        "mssql.sessions.sleeping_open_tran", "mssql.deadlocks.per_day", "mssql.queries.top_cpu",
        "mssql.indexes.missing", "mssql.db.fragmentation", "mssql.db.stale_stats", "mssql.db.unused_indexes",
        "mssql.db.too_many_indexes", "mssql.waits.poison", "mssql.ag.sync_health", "mssql.ag.secondary_lag",
        "mssql.tempdb.layout", "mssql.io.latency", "mssql.memory.page_life_expectancy", "mssql.cpu.utilization",
        "mssql.databases.state",
    ],
}
COSTLY = ["oracle.sql.top_elapsed", "oracle.sql.top_cpu", "oracle.objects.invalid", "oracle.stats.stale",
          "oracle.indexes.unusable", "mssql.queries.top_cpu", "mssql.queries.top_elapsed", "mssql.indexes.missing",
          "mssql.db.fragmentation", "mssql.db.stale_stats", "mssql.db.unused_indexes"]


@pytest.mark.parametrize("pack", ["oracle", "mssql"])
def test_pack_covers_the_catalogue(pack: str) -> None:
    assert set(CATALOGUE[pack]) <= set(pack_specs(pack))


@pytest.mark.parametrize("pack", ["oracle", "mssql"])
def test_checks_are_bound_to_the_pack_target_and_documented(pack: str) -> None:
    for spec in pack_specs(pack).values():
        assert spec.target == ("his_db" if pack == "oracle" else "his_sql")
        assert spec.title and len(spec.runbook) > 200, spec.id
        if spec.warn is not None or spec.crit is not None:
            assert SOURCES.search(spec.runbook), f"{spec.id}: thresholds without a cited source"


def test_costly_queries_run_rarely() -> None:
    specs = {**pack_specs("oracle"), **pack_specs("mssql")}
    for check_id in COSTLY:
        spec = specs[check_id]
        assert spec.schedule is not None or spec.interval >= 3600, check_id


def test_fragmentation_is_weekly_and_limited() -> None:
    spec = pack_specs("mssql")["mssql.db.fragmentation"]
    assert spec.schedule is not None and spec.schedule.split()[4] != "*"
    sql = spec.query.mssql[0].sql  # type: ignore[attr-defined]
    assert "'LIMITED'" in sql and "page_count >= 1000" in sql


def test_findings_kinds_fingerprint_sql_by_its_id() -> None:
    for check_id, column in [("oracle.sql.top_elapsed", "sql_id"), ("oracle.sql.top_cpu", "sql_id"),
                             ("mssql.queries.top_cpu", "query_hash"), ("mssql.queries.top_elapsed", "query_hash")]:
        spec = {**pack_specs("oracle"), **pack_specs("mssql")}[check_id]
        assert isinstance(spec, SqlFindings)
        assert spec.fingerprint_column == [column]
        assert spec.sql_text_column == "sql_text"


def test_ages_are_seconds_so_thresholds_read_as_durations() -> None:
    for spec in [*pack_specs("oracle").values(), *pack_specs("mssql").values()]:
        if isinstance(spec, SqlMetric) and re.search(r"_age$|lag$|overdue$|running_long$", spec.id):
            assert spec.unit == "s", spec.id


@pytest.mark.parametrize("pack", ["oracle", "mssql"])
def test_every_check_is_in_the_database_docs(pack: str) -> None:
    doc = (Path(__file__).resolve().parents[3] / "docs" / "databases.md").read_text(encoding="utf-8")
    section = doc.split(f"### `builtin:{pack}`", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    for check_id in pack_specs(pack):
        assert f"`{check_id}`" in section, f"{check_id} is not in the builtin:{pack} table of docs/databases.md"


ALL_DB_PACKS = ["postgres", "mysql", "oracle", "mssql"]


@pytest.mark.parametrize("pack", ALL_DB_PACKS)
def test_the_reachability_check_comes_first_and_is_every_other_checks_parent(pack: str) -> None:
    specs = list(load_checks([PackRef(f"builtin:{pack}", "db")]).specs)
    first = specs[0]
    assert first.kind == "sql.reachable" and first.parent is None
    assert first.for_ == 0, "one failed connection is an outage: no waiting, as every anchor's 'service down'"
    assert all(s.parent == first.id for s in specs[1:])


@pytest.mark.parametrize("pack", ALL_DB_PACKS)
def test_every_check_has_a_for_duration_with_its_source(pack: str) -> None:
    """No DB check opens an incident on one bad sample unless it says why (a duration value, an outage)."""
    text = (Path(__file__).resolve().parents[3] / "checks" / "packs" / f"{pack}.yaml").read_text(encoding="utf-8")
    assert re.search(r"defaults: \{[^}]*for: 5m", text)
    header = text.split("checks:", 1)[0]
    assert re.search(r"for: 5m|5 minutes", header) and re.search(r"PMM|Zabbix", header), "the pack says where 5m comes from"
    for spec in load_checks([PackRef(f"builtin:{pack}", "db")]).specs:
        assert spec.for_ is not None, spec.id


@pytest.mark.parametrize("pack", ALL_DB_PACKS)
def test_session_checks_leave_maintenance_out_and_name_whose_session(pack: str) -> None:
    for spec in load_checks([PackRef(f"builtin:{pack}", "db")]).specs:
        if isinstance(spec, SqlMetric) and spec.aggregate == "max":
            assert spec.exclude_maintenance, spec.id
        if spec.kind == "sql.blocking" or (isinstance(spec, SqlMetric) and spec.aggregate == "max"):
            for _key, _i, variant in spec.query.variants():
                columns = output_columns(variant.sql or "", "mysql" if _key == "mariadb" else _key)
                assert "session_id" in columns and "session_start" in columns, spec.id
                assert {"application", "program", "username"} & set(columns), spec.id
