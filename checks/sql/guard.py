"""The read-only guard: every statement is parsed in its dialect and refused unless it is one plain SELECT/WITH.

The guard runs when a pack loads (so a bad query is a ConfigError with file:line) and again before each
execution, so nothing that could write reaches a hospital database even if a spec was built in code.
It is one of three layers: the session is also read-only where the engine supports it, and the
monitoring account has only read grants (deploy/db-grants/).
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

SQLGLOT_DIALECTS: dict[str, str] = {
    "postgres": "postgres",
    "mysql": "mysql",
    "mariadb": "mysql",
    "oracle": "oracle",
    "mssql": "tsql",
}
"""Our dialect (and query keys) to sqlglot's reader."""


logging.getLogger("sqlglot").setLevel(logging.ERROR)
"""sqlglot warns about unsupported syntax by quoting the statement; statements may carry patient data, so
its warnings are kept out of the agent's log (the guard's own refusal names the reason instead)."""


class GuardError(Exception):
    """A statement the guard refuses; the message says why, without echoing the statement."""


_SHOW_ALLOWED: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        r"SHOW (GLOBAL |SESSION )?(STATUS|VARIABLES)( LIKE '[A-Za-z0-9_%]*')?",
        r"SHOW (REPLICA|SLAVE) STATUS( FOR CHANNEL '[A-Za-z0-9_\-]*')?",
        r"SHOW ALL (REPLICAS|SLAVES) STATUS",
        r"SHOW (MASTER|BINARY LOG) STATUS",
        r"SHOW (BINARY|MASTER) LOGS",
    )
)
"""MySQL/MariaDB only: replica state (Seconds_Behind_Master, thread states) has no SELECT-able source on
MariaDB and on MySQL < 8.0, so these read-only SHOW forms are allowed verbatim; nothing else that is not a
SELECT passes."""

_DENY_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "postgres": (
        "nextval", "setval", "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf",
        "pg_rotate_logfile", "pg_log_backend_memory_contexts", "pg_switch_wal", "pg_switch_xlog",
        "pg_create_restore_point", "pg_start_backup", "pg_stop_backup", "pg_backup_start", "pg_backup_stop",
        "pg_promote", "pg_wal_replay_pause", "pg_wal_replay_resume", "pg_xlog_replay_pause",
        "pg_xlog_replay_resume", "pg_create_physical_replication_slot", "pg_create_logical_replication_slot",
        "pg_drop_replication_slot", "pg_replication_slot_advance", "pg_copy_physical_replication_slot",
        "pg_copy_logical_replication_slot", "pg_logical_emit_message", "pg_logical_slot_get_changes",
        "pg_logical_slot_get_binary_changes", "pg_replication_origin_*", "dblink*", "lo_*", "lowrite",
        "loread", "pg_advisory_*", "pg_try_advisory_*", "set_config", "pg_stat_reset*",
        "pg_stat_statements_reset", "pg_file_*", "pg_read_file", "pg_read_binary_file", "pg_notify",
        "txid_current", "pg_current_xact_id", "pg_import_system_collations", "query_to_xml*",
        "table_to_xml*", "cursor_to_xml*", "database_to_xml*", "schema_to_xml*", "pg_truncate_visibility_map",
        "pg_prewarm", "pg_export_snapshot",
    ),
    "mysql": (
        "get_lock", "release_lock", "release_all_locks", "load_file", "benchmark", "master_pos_wait",
        "source_pos_wait", "master_gtid_wait", "wait_for_executed_gtid_set", "wait_until_sql_thread_after_gtids",
        "last_insert_id", "nextval", "setval", "lastval", "sys_exec", "sys_eval",
    ),
    "oracle": (
        "dbms_lock.*", "dbms_pipe.*", "dbms_alert.*", "dbms_sql.*", "dbms_xmlgen.*", "dbms_scheduler.*",
        "dbms_job.*", "dbms_aq*", "dbms_system.*", "dbms_session.*", "dbms_output.*", "dbms_lob.write*",
        "dbms_lob.append", "dbms_lob.erase", "dbms_lob.trim", "dbms_lob.copy", "dbms_stats.*",
        "utl_http.*", "utl_tcp.*", "utl_smtp.*", "utl_mail.*", "utl_file.*", "utl_inaddr.*", "httpuritype*",
        "dbms_xmlquery.*", "sys.*", "nextval",
    ),
    "mssql": (
        "openquery", "openrowset", "opendatasource", "openxml", "xp_*", "sp_*", "newsequentialid",
        "fn_get_audit_file", "fn_xe_file_target_read_file*",
    ),
}
"""Functions with side effects (writes, locks, signals to other sessions, outbound connections, running a
statement given as a string). Names ending in * are prefixes; dotted names match package-qualified calls."""

_ORACLE_DENY_PSEUDO_COLUMNS = frozenset({"nextval"})
_MSSQL_DENY_HINTS = frozenset({"UPDLOCK", "XLOCK", "TABLOCK", "TABLOCKX", "HOLDLOCK", "PAGLOCK", "SERIALIZABLE",
                               "REPEATABLEREAD"})
_REFUSED_NODES: tuple[tuple[type, str], ...] = (
    (exp.DML, "data modification (INSERT/UPDATE/DELETE/MERGE/COPY)"),
    (exp.DDL, "DDL"),
    (exp.Into, "SELECT ... INTO"),
    (exp.Lock, "a locking clause (FOR UPDATE / FOR SHARE)"),
    (exp.NextValueFor, "NEXT VALUE FOR (advances a sequence)"),
    (exp.Command, "a statement the parser does not know as a query"),
    (exp.Set, "SET"),
    (exp.Transaction, "a transaction statement"),
    (exp.Commit, "COMMIT"),
    (exp.Rollback, "ROLLBACK"),
)


def check_statement(sql: str, dialect: str) -> None:
    """Raise GuardError unless `sql` is a single read-only SELECT/WITH (or an allowed SHOW on MySQL)."""
    _check_cached(sql, dialect)


@lru_cache(maxsize=1024)
def _check_cached(sql: str, dialect: str) -> None:
    if dialect not in SQLGLOT_DIALECTS:
        raise GuardError(f"unknown dialect {dialect!r}")
    read = SQLGLOT_DIALECTS[dialect]
    if read == "mysql" and _is_allowed_show(sql):
        return
    try:
        statements = [s for s in sqlglot.parse(sql, read=read) if s is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GuardError(f"cannot parse as {dialect} SQL ({first}); only statements the guard understands run") from None
    if len(statements) != 1:
        raise GuardError(f"expected exactly one statement, found {len(statements)}")
    root = statements[0]
    while isinstance(root, exp.Subquery):
        root = root.this
    if not isinstance(root, exp.Query):
        raise GuardError(f"only SELECT/WITH may run, not {_statement_name(root)}")
    for node in root.walk():
        for cls, what in _REFUSED_NODES:
            if isinstance(node, cls):
                raise GuardError(f"refused: {what}")
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if _denied(name, dialect):
                raise GuardError(f"refused: calls {name}(), which has side effects")
        elif dialect == "oracle" and isinstance(node, exp.Column) and node.name.lower() in _ORACLE_DENY_PSEUDO_COLUMNS:
            raise GuardError("refused: NEXTVAL advances a sequence")
        elif dialect == "mssql" and isinstance(node, exp.WithTableHint):
            hints = {e.sql(dialect="tsql").upper() for e in node.expressions}
            bad = sorted(hints & _MSSQL_DENY_HINTS)
            if bad:
                raise GuardError(f"refused: locking table hint {', '.join(bad)}")


def _is_allowed_show(sql: str) -> bool:
    text = " ".join(_strip_comments(sql).split()).rstrip(";").strip()
    if ";" in text:
        return False
    return any(p.fullmatch(text) for p in _SHOW_ALLOWED)


def _strip_comments(sql: str) -> str:
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.DOTALL)
    return re.sub(r"(--|#)[^\n]*", " ", sql)


def _statement_name(node: object) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    return type(node).__name__.upper()


def _function_name(node: exp.Func) -> str:
    """Lower-case name including a package/schema qualifier when written (dbms_lock.sleep, pg_catalog.nextval)."""
    name = node.name if isinstance(node, exp.Anonymous) else node.sql_name()
    name = (name or type(node).__name__).lower()
    parent = node.parent
    if isinstance(parent, exp.Dot) and parent.expression is node:
        qualifier = parent.this.sql(dialect="").strip('"`[]').lower()
        return f"{qualifier}.{name}"
    return name


def _denied(name: str, dialect: str) -> bool:
    key = "mysql" if dialect == "mariadb" else dialect
    candidates = {name, name.rsplit(".", 1)[-1]}
    if name.startswith("pg_catalog."):
        candidates.add(name[len("pg_catalog."):])
    for pattern in _DENY_FUNCTIONS.get(key, ()):
        for cand in candidates:
            if (pattern.endswith("*") and cand.startswith(pattern[:-1])) or cand == pattern:
                return True
    return False
