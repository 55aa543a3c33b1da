"""The read-only guard refuses anything but one SELECT/WITH, per dialect, before a statement can be sent."""

from __future__ import annotations

import pytest

from checks.sql.guard import GuardError, check_statement

REFUSED = [
    ("postgres", "INSERT INTO t VALUES (1)", "INSERT"),
    ("postgres", "UPDATE t SET a = 1", "UPDATE"),
    ("postgres", "DELETE FROM t", "DELETE"),
    ("postgres", "TRUNCATE t", "TRUNCATE"),
    ("postgres", "DROP TABLE t", "DROP"),
    ("postgres", "CREATE TABLE t (a int)", "CREATE"),
    ("postgres", "ALTER TABLE t ADD COLUMN b int", "ALTER"),
    ("postgres", "VACUUM t", "VACUUM"),
    ("postgres", "COPY t TO '/tmp/x'", "COPY"),
    ("postgres", "SET statement_timeout = 0", "SET"),
    ("postgres", "SELECT 1; DELETE FROM t", "one statement"),
    ("postgres", "SELECT 1; SELECT 2", "one statement"),
    ("postgres", "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "data modification"),
    ("postgres", "SELECT * INTO t2 FROM t", "INTO"),
    ("postgres", "SELECT * FROM t FOR UPDATE", "locking"),
    ("postgres", "SELECT * FROM t FOR SHARE", "locking"),
    ("postgres", "SELECT nextval('s')", "nextval"),
    ("postgres", "SELECT pg_catalog.setval('s', 1)", "setval"),
    ("postgres", "SELECT pg_terminate_backend(123)", "pg_terminate_backend"),
    ("postgres", "SELECT pg_cancel_backend(123)", "pg_cancel_backend"),
    ("postgres", "SELECT dblink_exec('host=x', 'DELETE FROM t')", "dblink_exec"),
    ("postgres", "SELECT lo_import('/etc/passwd')", "lo_import"),
    ("postgres", "SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
    ("postgres", "SELECT pg_try_advisory_xact_lock(1)", "pg_try_advisory"),
    ("postgres", "SELECT set_config('default_transaction_read_only', 'off', false)", "set_config"),
    ("postgres", "SELECT query_to_xml('DELETE FROM t', true, true, '')", "query_to_xml"),
    ("postgres", "SELECT a FROM t WHERE a = (SELECT nextval('s'))", "nextval"),
    ("postgres", "DO $$ BEGIN DELETE FROM t; END $$", "DO"),
    ("postgres", "CALL p()", "CALL"),
    ("postgres", "EXPLAIN ANALYZE DELETE FROM t", "EXPLAIN"),
    ("postgres", "BEGIN", "transaction"),
    ("postgres", "SELECT * FROM dblink('host=x', 'DELETE FROM t RETURNING 1') AS r(a int)", "dblink"),
    ("postgres", "SELECT * FROM t FOR NO KEY UPDATE", "locking"),
    ("postgres", 'SELECT "nextval"(\'s\')', "nextval"),
    ("mysql", "SELECT 1 INTO @x", "INTO"),
    ("mysql", "SELECT GET_LOCK('a', 10)", "get_lock"),
    ("mysql", "SELECT LOAD_FILE('/etc/passwd')", "load_file"),
    ("mysql", "SELECT BENCHMARK(100000000, MD5('a'))", "benchmark"),
    ("mysql", "SELECT * FROM t INTO OUTFILE '/tmp/x'", "parse"),
    ("mysql", "SELECT 1 LOCK IN SHARE MODE", "parse"),
    ("mysql", "SHOW GLOBAL STATUS; DROP TABLE t", "one statement"),
    ("mysql", "SHOW GRANTS", "SHOW"),
    ("mysql", "SHOW CREATE TABLE t", "SHOW"),
    ("mysql", "LOAD DATA INFILE 'x' INTO TABLE t", "parse"),
    ("mysql", "REPLACE INTO t VALUES (1)", ""),
    ("mariadb", "SELECT NEXT VALUE FOR s", ""),
    ("mariadb", "SELECT NEXTVAL(s)", "nextval"),
    ("oracle", "SELECT dbms_lock.sleep(5) FROM dual", "dbms_lock.sleep"),
    ("oracle", "SELECT s.nextval FROM dual", "NEXTVAL"),
    ("oracle", "SELECT utl_http.request('http://x') FROM dual", "utl_http"),
    ("oracle", "SELECT dbms_xmlgen.getxml('DELETE FROM t') FROM dual", "dbms_xmlgen"),
    ("oracle", "SELECT * FROM t FOR UPDATE", "locking"),
    ("oracle", "BEGIN NULL; END;", ""),
    ("mssql", "EXEC sp_who2", "EXECUTE"),
    ("mssql", "SELECT * FROM OPENQUERY(lnk, 'DELETE FROM t')", "openquery"),
    ("mssql", "SELECT * FROM OPENROWSET('SQLNCLI', 'x', 'SELECT 1')", "openrowset"),
    ("mssql", "SELECT NEXT VALUE FOR dbo.s", "NEXT VALUE"),
    ("mssql", "SELECT * FROM t WITH (UPDLOCK)", "UPDLOCK"),
    ("mssql", "SELECT * FROM t WITH (XLOCK, ROWLOCK)", "XLOCK"),
    ("mssql", "SELECT * INTO #t FROM sys.databases", "INTO"),
    ("mssql", "WAITFOR DELAY '00:00:10'", ""),
]

ALLOWED = [
    ("postgres", "SELECT 1"),
    ("postgres", "SELECT 1;"),
    ("postgres", "(SELECT 1) UNION ALL (SELECT 2)"),
    ("postgres", "WITH x AS (SELECT datname FROM pg_database) SELECT count(*) FROM x"),
    ("postgres", "SELECT pg_sleep(1)"),
    ("postgres", "SELECT c.oid::regclass, now() - interval '1 day' FROM pg_class c WHERE c.relkind = ANY(ARRAY['r'])"),
    ("postgres", "SELECT count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity"),
    ("postgres", "SELECT * FROM pg_stat_activity w CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS b(pid)"),
    ("mysql", "SELECT @@max_connections, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS"),
    ("mysql", "SHOW GLOBAL STATUS LIKE 'Threads%'"),
    ("mysql", "show slave status"),
    ("mysql", "SHOW REPLICA STATUS"),
    ("mysql", "SHOW ALL SLAVES STATUS"),
    ("mysql", "SHOW REPLICA STATUS FOR CHANNEL 'c1'"),
    ("mariadb", "SHOW ALL SLAVES STATUS"),
    ("mysql", "SELECT SLEEP(1)"),
    ("oracle", "SELECT tablespace_name AS key, used_percent AS value FROM dba_tablespace_usage_metrics"),
    ("oracle", "SELECT sql_id FROM v$sqlstats ORDER BY elapsed_time DESC FETCH FIRST 15 ROWS ONLY"),
    ("mssql", "SELECT TOP 10 query_hash FROM sys.dm_exec_query_stats ORDER BY total_elapsed_time DESC"),
    ("mssql", "SELECT name FROM sys.databases WITH (NOLOCK)"),
    ("mssql", "SELECT s.session_id FROM sys.dm_exec_sessions s CROSS APPLY sys.dm_exec_sql_text(s.most_recent_sql_handle) t"),
    ("oracle", "SELECT * FROM TABLE(dbms_xplan.display_cursor())"),
]


@pytest.mark.parametrize(("dialect", "sql", "why"), REFUSED)
def test_refused(dialect: str, sql: str, why: str) -> None:
    with pytest.raises(GuardError) as err:
        check_statement(sql, dialect)
    assert why.lower() in str(err.value).lower()


@pytest.mark.parametrize(("dialect", "sql"), ALLOWED)
def test_allowed(dialect: str, sql: str) -> None:
    check_statement(sql, dialect)


def test_show_is_not_allowed_outside_mysql() -> None:
    with pytest.raises(GuardError):
        check_statement("SHOW server_version", "postgres")


def test_unknown_dialect() -> None:
    with pytest.raises(GuardError, match="unknown dialect"):
        check_statement("SELECT 1", "db2")


def test_refusal_does_not_echo_the_statement() -> None:
    """A refused statement may carry literals (patient names); the reason must not repeat it."""
    with pytest.raises(GuardError) as err:
        check_statement("DELETE FROM patients WHERE name = 'Zhang San'", "postgres")
    assert "Zhang" not in str(err.value)


def test_refused_statement_text_stays_out_of_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    with pytest.raises(GuardError):
        check_statement("VACUUM patients_zhang_san", "postgres")
    assert "zhang_san" not in caplog.text
