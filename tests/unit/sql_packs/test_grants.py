"""deploy/db-grants/ grants exactly what the built-in Oracle and SQL Server packs and job.window's scheduler
sources read, and nothing that writes."""

from __future__ import annotations

import re
from pathlib import Path

import sqlglot
from sqlglot import exp

from checks.jobs.sources import query_for
from checks.sql.dialects import OracleConnection
from checks.sql.guard import SQLGLOT_DIALECTS
from tests.unit.sql_packs.recorded import pack_specs

GRANTS = Path(__file__).resolve().parents[3] / "deploy" / "db-grants"


def objects_read(pack: str) -> set[str]:
    """Every table, view and table-valued function the pack's SQL (all variants) and the job.window sources of its
    engine read, lower-case and qualified."""
    dialect = "oracle" if pack == "oracle" else "mssql"
    found: set[str] = set()
    statements = [v.sql for spec in pack_specs(pack).values() for v in getattr(spec.query, dialect) or ()]  # type: ignore[attr-defined]
    sources = ("oracle_scheduler", "dbms_job") if pack == "oracle" else ("sqlagent",)
    statements += [v.sql for source in sources for _, _, v in query_for(source, "HIS.JOB" if source != "dbms_job" else "1", None).variants()]  # type: ignore[arg-type]
    for sql in statements:
        if sql:
            tree = sqlglot.parse_one(sql, read=SQLGLOT_DIALECTS[dialect])
            ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
            for table in tree.find_all(exp.Table):
                if isinstance(table.this, exp.Func):
                    found.add(f"{table.db}.{table.this.name}".lower())
                elif table.name.lower() not in ctes:
                    found.add(".".join(p for p in (table.catalog, table.db, table.name) if p).lower())
            for func in tree.find_all(exp.Anonymous):
                # Table-valued functions in APPLY: sys.dm_db_log_info(...), sys.dm_exec_sql_text(...).
                if isinstance(func.parent, exp.Dot) and func.parent.this.sql(dialect="").lower() == "sys":
                    found.add(f"sys.{func.name}".lower())
    return found


def test_oracle_grants_are_exactly_the_views_the_pack_reads() -> None:
    text = (GRANTS / "oracle.sql").read_text(encoding="utf-8")
    granted = {m.lower() for m in re.findall(r"^GRANT SELECT ON SYS\.([\w$]+) TO xunjian_mon;$", text, re.MULTILINE)}
    # V$ names are public synonyms of SYS.V_$ views, and those are what can be granted. V$LOCK is read by the
    # engine's own verification after every check (checks/sql/dialects.py).
    # DUAL needs no grant (PUBLIC may read it; the reachability check's SELECT 1 FROM dual).
    used = {name.replace("v$", "v_$") for name in objects_read("oracle")} - {"dual"} | {"v_$lock"}
    assert "v$lock" in OracleConnection.verify_sql.lower()
    assert granted == used, f"missing grants: {sorted(used - granted)}; granted but unused: {sorted(granted - used)}"


def test_oracle_grants_nothing_that_writes() -> None:
    text = (GRANTS / "oracle.sql").read_text(encoding="utf-8")
    grants = [line for line in text.splitlines() if line.startswith("GRANT")]
    assert "GRANT CREATE SESSION TO xunjian_mon;" in grants
    for line in grants:
        assert re.fullmatch(r"GRANT (CREATE SESSION|SELECT ON SYS\.[\w$]+) TO xunjian_mon;", line), line


def test_mssql_reads_only_system_views_and_msdb_history() -> None:
    for name in objects_read("mssql"):
        # master.sys.*: master's own catalog (TDE certificates live there), read as guest with VIEW ANY DEFINITION.
        assert name.startswith(("sys.", "master.sys.", "msdb.dbo.")), f"{name} is not a catalog view, DMV or msdb table"


def test_mssql_msdb_grants_are_exactly_the_tables_the_pack_reads() -> None:
    text = (GRANTS / "mssql.sql").read_text(encoding="utf-8")
    msdb = text.split("USE msdb;", 1)[1].split("USE [", 1)[0]
    granted = {m.lower() for m in re.findall(r"^GRANT SELECT ON dbo\.(\w+) TO xunjian_mon;$", msdb, re.MULTILINE)}
    used = {n.removeprefix("msdb.dbo.") for n in objects_read("mssql") if n.startswith("msdb.dbo.")}
    assert granted == used, f"missing grants: {sorted(used - granted)}; granted but unused: {sorted(granted - used)}"


def test_mssql_server_permissions_cover_dmvs_and_catalog_views() -> None:
    text = (GRANTS / "mssql.sql").read_text(encoding="utf-8")
    used = objects_read("mssql")
    assert any(n.startswith("sys.dm_") for n in used)
    assert "GRANT VIEW SERVER STATE TO xunjian_mon;" in text
    assert "GRANT VIEW SERVER PERFORMANCE STATE TO xunjian_mon;" in text
    assert {"sys.master_files", "sys.stats", "sys.indexes"} <= used
    assert "GRANT VIEW ANY DEFINITION TO xunjian_mon;" in text


def test_mssql_grants_no_data_access_or_execution() -> None:
    statements = [line for line in (GRANTS / "mssql.sql").read_text(encoding="utf-8").splitlines()
                  if not line.startswith("--")]
    body = "\n".join(statements).upper()
    for forbidden in ("DB_DATAREADER", "ALTER ROLE", "SP_ADDROLEMEMBER", "GRANT EXECUTE", "CONTROL", "DB_OWNER",
                      "SYSADMIN", "SQLAGENTREADERROLE", "ALTER ANY CONNECTION", "ADMINISTER BULK"):
        assert forbidden not in body, forbidden


def test_mssql_denies_application_locks_in_every_database_it_has_a_user_in() -> None:
    text = (GRANTS / "mssql.sql").read_text(encoding="utf-8")
    for section in text.split("CREATE USER xunjian_mon FOR LOGIN xunjian_mon;")[1:]:
        assert "DENY EXECUTE ON sys.sp_getapplock TO xunjian_mon;" in section
        assert "DENY EXECUTE ON sys.sp_releaseapplock TO xunjian_mon;" in section


def test_mysql_grants_no_file_or_admin_privilege() -> None:
    body = "\n".join(line for line in (GRANTS / "mysql.sql").read_text(encoding="utf-8").splitlines()
                     if not line.startswith("--")).upper()
    for forbidden in ("FILE", "SUPER", "ALL PRIVILEGES", "CONNECTION ADMIN", "ON MYSQL.", "EXECUTE", " INSERT", " UPDATE",
                      " DELETE"):
        assert forbidden not in body, forbidden
