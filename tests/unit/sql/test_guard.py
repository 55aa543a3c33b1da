"""The read-only guard and allow-list: every attack in the catalogue is refused with its message, every built-in
pack statement is accepted and rendered, and what is sent is the rendering, never the author's text."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import pytest
import yaml

from checks.sql.allow import REFUSAL, SiteAllowance, builtin, parse_name, prepare
from checks.sql.guard import GuardError, check_statement, verify
from checks.sql.query import QueryMap
from checks.sql.show import SHOW_STATEMENTS, show_name_for
from tests.unit.sql.attacks import ATTACKS, Attack

ROOT = Path(__file__).resolve().parents[3]
CASES = [(cls, *attack) for cls, attacks in ATTACKS.items() for attack in attacks]


def _id(case: tuple[str, str, str, str]) -> str:
    cls, key, sql, _ = case
    return f"{cls}|{key}|{sql[:60]}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_attack_refused_with_its_message(case: tuple[str, str, str, str]) -> None:
    _, key, sql, why = case
    with pytest.raises(GuardError) as err:
        prepare(sql, key)
    assert why.lower() in str(err.value).lower()


def test_attack_catalogue_covers_four_dialects_and_every_class() -> None:
    per_dialect = Counter({"mariadb": 0} | Counter(key for _, key, _, _ in CASES))
    assert len(CASES) >= 150
    assert per_dialect["postgres"] >= 40 and per_dialect["mysql"] + per_dialect["mariadb"] >= 40
    assert per_dialect["oracle"] >= 30 and per_dialect["mssql"] >= 30
    assert all(ATTACKS.values())
    assert len({(k, s) for _, k, s, _ in CASES}) == len(CASES), "an attack is listed twice"


def test_refusal_of_an_unknown_name_is_the_documented_sentence() -> None:
    with pytest.raises(GuardError) as err:
        prepare("SELECT order_id FROM his.orders", "oracle")
    assert str(err.value) == ("not on the read-only allow-list: HIS.ORDERS; allow it for this target in agent.yaml "
                              "if you have checked it is read-only")
    assert str(err.value) == REFUSAL.format(name="HIS.ORDERS")
    with pytest.raises(GuardError) as err:
        prepare("SELECT his_audit(1)", "postgres")
    assert "not on the read-only allow-list: his_audit();" in str(err.value)


# --- every built-in pack statement ---------------------------------------------------------------------------------

def pack_statements() -> list[tuple[str, str, str, str]]:
    """(pack, check id, query key, sql) for every SQL statement of the four database packs (SHOW excluded)."""
    out = []
    for pack in ("postgres", "mysql", "oracle", "mssql"):
        data = yaml.safe_load((ROOT / "checks" / "packs" / f"{pack}.yaml").read_text(encoding="utf-8"))
        for check in data["checks"]:
            for field in ("query", "requires"):
                if check.get(field) is None:
                    continue
                for key, _, variant in QueryMap.model_validate(check[field]).variants():
                    if variant.sql is not None:
                        out.append((pack, check["id"], key, variant.sql))
    return out


STATEMENTS = pack_statements()


def test_every_database_pack_has_statements() -> None:
    assert Counter(p for p, *_ in STATEMENTS) .keys() == {"postgres", "mysql", "oracle", "mssql"}
    assert len(STATEMENTS) > 100


@pytest.mark.parametrize(("pack", "check_id", "key", "sql"), STATEMENTS, ids=[f"{c}-{k}-{i}" for i, (_, c, k, _) in enumerate(STATEMENTS)])
def test_builtin_statement_accepted_and_rendered(pack: str, check_id: str, key: str, sql: str) -> None:
    prepared = prepare(sql, key)
    assert prepared.site_uses == ()
    assert prepared.sql == verify(sql, key).sql, "what is sent is the rendering, not the author's text"
    assert prepare(prepared.sql, key).sql == prepared.sql, "the rendering is stable: verified again, sent unchanged"
    assert "--" not in prepared.sql and "/*" not in prepared.sql


# --- what is sent ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("key", "sql", "sent"),
    [
        ("postgres", "SELECT datname FROM pg_database -- a comment\n", 'SELECT "datname" FROM "pg_database"'),
        ("postgres", "select Count(*) AS N FROM Pg_Stat_Activity", 'SELECT COUNT(*) AS "n" FROM "pg_stat_activity"'),
        ("postgres", "SELECT current_user, now()", "SELECT CURRENT_USER, CURRENT_TIMESTAMP"),
        ("mysql", "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS /* x */",
         "SELECT `VARIABLE_VALUE` FROM `information_schema`.`GLOBAL_STATUS`"),
        ("oracle", "SELECT sid, rownum FROM v$session WHERE ROWNUM <= 5",
         'SELECT "SID", ROWNUM FROM "V$SESSION" WHERE ROWNUM <= 5'),
        ("oracle", "SELECT level FROM dual CONNECT BY level < 3", 'SELECT LEVEL FROM "DUAL" CONNECT BY LEVEL < 3'),
        ("mssql", "SELECT TOP (5) name AS [key] FROM sys.databases WITH (NOLOCK)",
         "SELECT TOP 5 [name] AS [key] FROM [sys].[databases] WITH (NOLOCK)"),
        ("mssql", "SELECT 1 AS [DELETE]", "SELECT 1 AS [DELETE]"),
    ],
)
def test_sent_text_is_the_rendering(key: str, sql: str, sent: str) -> None:
    assert prepare(sql, key).sql == sent


def test_mariadb_reads_the_mysql_lists() -> None:
    assert prepare("SELECT SLEEP(1) AS value FROM information_schema.PROCESSLIST", "mariadb").sql.startswith("SELECT SLEEP")


ALLOWED = [
    ("postgres", "SELECT 1"),
    ("postgres", "SELECT 1;"),
    ("postgres", "(SELECT 1) UNION ALL (SELECT 2)"),
    ("postgres", "WITH x AS (SELECT datname FROM pg_database) SELECT count(*) FROM x"),
    ("postgres", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r"),
    ("postgres", "SELECT pg_sleep(1)"),
    ("postgres", "SELECT c.oid::regclass, now() - interval '1 day' FROM pg_class c WHERE c.relkind = ANY(ARRAY['r'])"),
    ("postgres", "SELECT 'pg_terminate_backend'::regproc"),
    ("postgres", "SELECT * FROM pg_stat_activity w CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS b(pid)"),
    ("postgres", "SELECT pg_catalog.pg_relation_size(c.oid) FROM pg_catalog.pg_class c"),
    ("postgres", "SELECT ctid, xmin FROM pg_class LIMIT 1"),
    ("postgres", "SELECT * FROM generate_series(1, 3) AS g(n)"),
    ("postgres", "SELECT table_name FROM information_schema.tables"),
    ("mysql", "SELECT @@max_connections, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"),
    ("mysql", "SELECT SLEEP(1)"),
    ("mysql", "SELECT sys.format_bytes(1024)"),
    ("oracle", "SELECT tablespace_name AS key, used_percent AS value FROM dba_tablespace_usage_metrics"),
    ("oracle", "SELECT sql_id FROM v$sqlstats ORDER BY elapsed_time DESC FETCH FIRST 15 ROWS ONLY"),
    ("oracle", "SELECT * FROM TABLE(dbms_xplan.display_cursor())"),
    ("oracle", "SELECT SYS.DBMS_STATS.GET_PREFS('STALE_PERCENT') FROM dual"),
    ("oracle", "SELECT SYS_CONTEXT('USERENV', 'SID') FROM dual"),
    ("mssql", "SELECT TOP 10 query_hash FROM sys.dm_exec_query_stats ORDER BY total_elapsed_time DESC"),
    ("mssql", "SELECT s.session_id FROM sys.dm_exec_sessions s CROSS APPLY sys.dm_exec_sql_text(s.most_recent_sql_handle) t"),
    ("mssql", "SELECT name FROM msdb.sys.databases"),
    ("mssql", "SELECT x.r.value('(./a)[1]', 'int') FROM (SELECT CONVERT(xml, '<a>1</a>') AS r) AS x"),
]


@pytest.mark.parametrize(("key", "sql"), ALLOWED)
def test_allowed(key: str, sql: str) -> None:
    prepare(sql, key)


def test_unknown_dialect() -> None:
    with pytest.raises(GuardError, match="unknown dialect"):
        check_statement("SELECT 1", "db2")


def test_refusal_does_not_echo_the_statement() -> None:
    """A refused statement may carry literals (patient names); the reason must not repeat it."""
    for sql in ("DELETE FROM patients WHERE name = 'Zhang San'", "SELECT 'Zhang San' FROM his.patients",
                "SELECT 1 /*! 'Zhang San' */", "SELECT GET_LOCK('Zhang San', 1)"):
        with pytest.raises(GuardError) as err:
            prepare(sql, "mysql")
        assert "Zhang" not in str(err.value)


def test_parser_warnings_never_reach_the_log() -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    root = logging.getLogger()
    handler = Keep(logging.DEBUG)
    root.addHandler(handler)
    try:
        with pytest.raises(GuardError, match="VACUUM"):
            check_statement("VACUUM patients_zhang_san", "postgres")
    finally:
        root.removeHandler(handler)
    assert not [r for r in seen if "zhang" in r.getMessage()]


def test_repeat_costs_a_cache_lookup() -> None:
    from checks.sql import allow

    sql = "SELECT count(*) AS value FROM pg_stat_activity WHERE state = 'xj-cache-test'"
    first = prepare(sql, "postgres")
    hits = allow._prepare_cached.cache_info().hits
    assert prepare(sql, "postgres") is first
    assert allow._prepare_cached.cache_info().hits == hits + 1
    with pytest.raises(GuardError):
        prepare("SELECT pg_advisory_lock(42424242)", "postgres")
    hits = allow._prepare_cached.cache_info().hits
    with pytest.raises(GuardError):
        prepare("SELECT pg_advisory_lock(42424242)", "postgres")
    assert allow._prepare_cached.cache_info().hits == hits + 1, "refusals are cached too"


# --- site exceptions ------------------------------------------------------------------------------------------------

def test_site_exception_allows_named_relations_and_functions_only() -> None:
    site = SiteAllowance(reviewed_by="Li Wei (DBA), 2026-11-30", relations=("his.job_log", "pay.*"),
                         functions=("his.job_window_ok",))
    sql = "SELECT count(*) FROM his.job_log j JOIN pay.channel_stmt c ON c.id = j.id WHERE his.job_window_ok(j.id) = 1"
    prepared = prepare(sql, "postgres", site)
    assert prepared.site_uses == ("his.job_log", "pay.channel_stmt", "his.job_window_ok()")
    with pytest.raises(GuardError, match=r"not on the read-only allow-list: his\.orders"):
        prepare("SELECT * FROM his.orders", "postgres", site)
    with pytest.raises(GuardError, match=r"his\.other_fn"):
        prepare("SELECT his.other_fn()", "postgres", site)
    with pytest.raises(GuardError, match="not on the read-only allow-list"):
        prepare(sql, "postgres")


def test_site_exception_follows_the_dialect_case_rules() -> None:
    site = SiteAllowance(reviewed_by="x", relations=("his.job_log",))
    assert prepare("SELECT * FROM HIS.JOB_LOG", "oracle", site).site_uses == ("HIS.JOB_LOG",)
    with pytest.raises(GuardError):
        prepare('SELECT * FROM "his"."job_log"', "oracle", site)
    with pytest.raises(GuardError):
        prepare('SELECT * FROM "HIS"."Job_Log"', "postgres", site)


def test_site_exception_can_allow_what_is_excluded_by_default() -> None:
    with pytest.raises(GuardError):
        prepare("SELECT * FROM pg_file_settings", "postgres")
    site = SiteAllowance(reviewed_by="x", relations=("pg_file_settings",))
    assert prepare("SELECT * FROM pg_file_settings", "postgres", site).site_uses == ("pg_file_settings",)


def test_site_exception_needs_a_reviewer_and_a_bounded_name() -> None:
    with pytest.raises(ValueError, match="reviewed_by"):
        SiteAllowance.model_validate({"relations": ["his.job_log"]})
    for too_much in ("*", "*.*", "*.job_log"):
        with pytest.raises(ValueError, match="allows too much"):
            SiteAllowance.model_validate({"reviewed_by": "x", "relations": [too_much]})
    with pytest.raises(ValueError, match="expected a name"):
        SiteAllowance.model_validate({"reviewed_by": "x", "relations": ["his..job"]})


def test_names_parse_as_the_server_resolves_them() -> None:
    assert parse_name('his."Job Log"', "postgres") == ("his", "Job Log")
    assert parse_name("his.job_log", "oracle") == ("HIS", "JOB_LOG")
    assert parse_name("[msdb].[dbo].[sysjobs]", "mssql") == ("msdb", "dbo", "sysjobs")
    assert parse_name("`Sys`.x", "mysql") == ("sys", "x")


def test_builtin_lists_load_for_every_dialect() -> None:
    for dialect in ("postgres", "mysql", "mariadb", "oracle", "mssql"):
        lists = builtin(dialect)
        assert lists.relations and lists.functions
    pg = builtin("postgres")
    assert pg.allows_relation(("pg_stat_activity",)) and pg.allows_relation(("pg_catalog", "pg_stat_activity"))
    assert pg.allows_relation(("pg_catalog", "pg_stat_io")) and not pg.allows_relation(("pg_catalog", "pg_authid"))
    assert not pg.allows_relation(("public", "pg_stat_activity"))
    assert pg.allows_function(("pg_catalog", "pg_blocking_pids")) and not pg.allows_function(("public", "pg_blocking_pids"))


def test_catalog_coverage_for_new_pack_queries() -> None:
    """Later pack queries (reachability, replication, corruption, drift, blocking history) need these."""
    pg = builtin("postgres")
    for view in ("pg_stat_wal_receiver", "pg_stat_replication_slots", "pg_stat_database_conflicts", "pg_settings",
                 "pg_stat_checkpointer", "pg_stat_io", "pg_stat_progress_vacuum", "pg_control_checkpoint"):
        assert pg.allows_relation((view,)) or pg.allows_function((view,)), view
    for fn in ("bt_index_check", "verify_heapam", "pg_control_checkpoint", "pg_wal_lsn_diff", "pgstattuple_approx"):
        assert pg.allows_function((fn,)), fn
    ora = builtin("oracle")
    for view in ("V$DATAGUARD_STATUS", "V$DATABASE_BLOCK_CORRUPTION", "DBA_REGISTRY", "GV$SESSION", "V$LOCK",
                 "DBA_HIST_ACTIVE_SESS_HISTORY"):
        assert ora.allows_relation((view,)) == (not view.startswith("DBA_HIST")), view
    ms = builtin("mssql")
    assert ms.allows_relation(("sys", "dm_hadr_database_replica_states"))
    assert ms.allows_relation(("msdb", "dbo", "suspect_pages"))
    assert ms.allows_function(("sys", "dm_db_index_physical_stats"))
    my = builtin("mysql")
    assert my.allows_relation(("performance_schema", "replication_applier_status_by_worker"))
    assert my.allows_relation(("information_schema", "innodb_metrics"))


# --- SHOW on MySQL/MariaDB ----------------------------------------------------------------------------------------

def test_show_statements_are_named_and_sent_as_fixed_text() -> None:
    q = QueryMap.model_validate({"mariadb": {"show": "all_slaves_status"}, "mysql": [{"show": "replica_status"}]})
    variant, key = q.select("mysql", "mariadb", (10, 11)) or (None, "")
    assert variant is not None and variant.statement(key).sql == "SHOW ALL SLAVES STATUS"


@pytest.mark.parametrize("text", ["SHOW SLAVE STATUS", "show  slave\nstatus;", "SHOW ALL SLAVES STATUS"])
def test_written_show_of_an_older_pack_becomes_the_named_one(text: str) -> None:
    q = QueryMap.model_validate({"mysql": text})
    (variant,) = q.mysql or []
    assert variant.sql is None and variant.show in SHOW_STATEMENTS
    assert variant.statement("mysql").sql == SHOW_STATEMENTS[variant.show]


@pytest.mark.parametrize(
    "text",
    ["SHOW /*!50000 SLAVE */ STATUS", "SHOW SLAVE STATUS; DROP TABLE t", "SHOW GLOBAL STATUS LIKE 'x'; KILL 1",
     "SHOW GRANTS", "SHOW CREATE TABLE t", "SHOW SLAVE STATUS -- x", "SHOW PROCESSLIST"],
)
def test_anything_else_beginning_with_show_is_refused(text: str) -> None:
    assert show_name_for(text) is None
    with pytest.raises(ValueError, match="SHOW statements are named"):
        QueryMap.model_validate({"mysql": text})


def test_show_is_for_mysql_only() -> None:
    with pytest.raises(ValueError, match="show: is for mysql/mariadb"):
        QueryMap.model_validate({"postgres": {"show": "global_status"}})
    with pytest.raises(ValueError, match="unknown SHOW statement"):
        QueryMap.model_validate({"mysql": {"show": "grants"}})
    with pytest.raises(ValueError, match="either sql"):
        QueryMap.model_validate({"mysql": {"show": "global_status", "sql": "SELECT 1"}})


def test_verify_reports_what_a_statement_reads() -> None:
    v = verify("SELECT a.pid FROM pg_stat_activity a JOIN his.x ON true WHERE pg_backend_pid() > 0", "postgres")
    assert v.relations == {("pg_stat_activity",), ("his", "x")}
    assert v.functions == {("pg_backend_pid",)}


def _attacks_of(key: str) -> list[Attack]:
    return [a for attacks in ATTACKS.values() for a in attacks if a[0] == key]


def test_each_dialect_has_its_own_attacks() -> None:
    assert all(_attacks_of(k) for k in ("postgres", "mysql", "mariadb", "oracle", "mssql"))
