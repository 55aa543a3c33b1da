"""What each panel of a check's value shows, and which check of which engine feeds it.

The four database packs name their checks differently (pg.connections, mysql.connections,
oracle.sessions.pct_of_limit...). A Signal maps one meaning to the check of each engine that measures it, so
the wall and the one Database dashboard show all four engines through the same panels instead of four
dashboards that drift apart. An engine missing from a signal has no such check in its pack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

ENGINES = ("postgres", "mysql", "oracle", "mssql")
"""Values of the `engine` label: the dialect of the target the check runs against."""


@dataclass(frozen=True)
class Signal:
    title: str
    description: str
    unit: str
    """Grafana unit id; each check's own unit must map to it (a test holds them together)."""
    checks: Mapping[str, tuple[str, ...]]
    """Engine (or "host" for host checks) to the ids of the checks that measure this signal."""

    def check_ids(self) -> list[str]:
        return [c for ids in self.checks.values() for c in ids]


# --- databases ---------------------------------------------------------------------------------------------
CONNECTIONS = Signal(
    "Connections used", "Sessions in use as a share of the server's limit (max_connections, sessions/processes). "
    "When it reaches 100 % new logins of the HIS fail. SQL Server has no limit check in its pack.", "percent",
    {"postgres": ("pg.connections",), "mysql": ("mysql.connections",), "oracle": ("oracle.sessions.pct_of_limit",)})
LOCK_WAIT = Signal(
    "Longest lock wait", "Seconds the longest-waiting session has waited for a lock. A cashier or nurse screen "
    "that hangs is usually this; the root blockers are DBA findings, kept after the chain ends.", "s",
    {"postgres": ("pg.blocking",), "mysql": ("mysql.blocking",), "oracle": ("oracle.locks.blocking",),
     "mssql": ("mssql.locks.blocking",)})
IDLE_IN_TRANSACTION = Signal(
    "Longest idle open transaction", "Seconds the oldest session has sat idle inside an open transaction: it "
    "holds locks and stops cleanup.", "s",
    {"postgres": ("pg.idle_in_transaction",), "mysql": ("mysql.idle_in_transaction",),
     "oracle": ("oracle.transactions.idle",), "mssql": ("mssql.sessions.sleeping_open_tran",)})
LONG_QUERY = Signal(
    "Longest running statement", "Seconds the longest active statement (or transaction) has run; backups and "
    "other maintenance sessions are left out. Report queries belong on a replica or the year database.", "s",
    {"postgres": ("pg.long_queries",), "mysql": ("mysql.long_queries", "mysql.long_transactions"),
     "oracle": ("oracle.sessions.long_running", "oracle.transactions.long"),
     "mssql": ("mssql.requests.long_running", "mssql.transactions.long")})
UPTIME = Signal(
    "Server uptime", "Seconds since the database server started; yellow for ten minutes after a restart, which "
    "is a crash or an OOM kill unless it was planned.", "s",
    {"postgres": ("pg.uptime",), "mysql": ("mysql.uptime",)})
DEADLOCKS = Signal(
    "Deadlocks", "Deadlocks since the previous run (PostgreSQL, per database) or in the last day (SQL Server).",
    "short", {"postgres": ("pg.deadlocks",), "mssql": ("mssql.deadlocks.per_day",)})
REPLICATION_LAG = Signal(
    "Replication lag", "Seconds a standby or replica is behind its primary (per standby on a PostgreSQL "
    "primary, replay delay on a standby, Data Guard apply lag, Always On secondary lag). Empty where no "
    "replica is configured.", "s",
    {"postgres": ("pg.replication.lag", "pg.replication.replay_delay"), "mysql": ("mysql.replication.lag",),
     "oracle": ("oracle.dataguard.lag",), "mssql": ("mssql.ag.secondary_lag",)})
BACKUP_AGE = Signal(
    "Backup age", "Seconds since the last good backup (PostgreSQL base backups while WAL archiving is on, RMAN "
    "database and archive log backups, SQL Server full, differential and log backups).", "s",
    {"postgres": ("pg.backup.age",), "oracle": ("oracle.rman.backup_age",),
     "mssql": ("mssql.backup.full_age", "mssql.backup.diff_age", "mssql.backup.log_age")})
MAINTENANCE_AGE = Signal(
    "Vacuum and statistics age", "Hours since the most neglected table (over 1000 dead or changed rows) was "
    "last vacuumed or analyzed.", "h",
    {"postgres": ("pg.vacuum.age", "pg.analyze.age")})
STALE_STATISTICS = Signal(
    "Tables with stale statistics", "Tables whose optimizer statistics are stale, as DBA findings counted per "
    "run.", "short", {"oracle": ("oracle.stats.stale",), "mssql": ("mssql.db.stale_stats",)})
XID_AGE = Signal(
    "Transaction ID age", "age(datfrozenxid) per database; PostgreSQL stops accepting writes near 2.1 billion.",
    "short", {"postgres": ("pg.xid_wraparound",)})
TOP_SQL = Signal(
    "Top SQL statements reported", "Statements reported by the top-SQL checks in their last run (each is a DBA "
    "finding). Needs pg_stat_statements, performance_schema, the Oracle or SQL Server DMVs.", "short",
    {"postgres": ("pg.top_sql",), "mysql": ("mysql.top_sql",),
     "oracle": ("oracle.sql.top_elapsed", "oracle.sql.top_cpu"),
     "mssql": ("mssql.queries.top_elapsed", "mssql.queries.top_cpu")})
JOB_OVERDUE = Signal(
    "Jobs overdue", "Seconds the most overdue scheduler job is late (Oracle scheduler, SQL Server Agent).", "s",
    {"oracle": ("oracle.jobs.overdue",), "mssql": ("mssql.agent.job_overdue",)})

DATABASE_WALL = (CONNECTIONS, LOCK_WAIT, REPLICATION_LAG, BACKUP_AGE)
"""What the server-room wall shows per database target."""

BACKUP_AND_JOB_CHECKS = (
    "pg.wal_archiving", "oracle.archive.dest", "oracle.rman.last_status", "oracle.jobs.scheduler_failures",
    "oracle.jobs.scheduler_broken", "oracle.jobs.queue_processes", "oracle.jobs.dbms_job", "mssql.agent.service",
    "mssql.agent.job_outcome", "mssql.agent.job_not_scheduled", "mssql.agent.job_running_long",
)
"""Checks whose answer is a status more than a number: shown by status in the Database dashboard."""

# --- hosts (USE method) ------------------------------------------------------------------------------------
CPU = Signal("CPU busy", "Share of CPU time busy over the check's sampling window, per host.", "percent",
             {"host": ("host.cpu",)})
MEMORY = Signal("Memory in use", "Memory in use (not available to new processes), per host.", "percent",
                {"host": ("host.memory",)})
DISK = Signal("Disk space used", "Used space per real filesystem (key = mount point), as df shows it.", "percent",
              {"host": ("host.disk",)})
INODES = Signal("Inodes used", "Inodes used per filesystem: many small files fill a disk that still has space.",
                "percent", {"host": ("host.inodes",)})
LOAD = Signal("Load per core", "5-minute load average divided by the number of cores: above 1 processes wait.",
              "short", {"host": ("host.load",)})
SWAP = Signal("Swap in use", "Share of swap in use; heavy swapping slows every system on the host.", "percent",
              {"host": ("host.swap",)})
HOST_UPTIME = Signal("Host uptime", "Seconds since the host booted: a small value is a reboot.", "s",
                     {"host": ("host.uptime",)})
AGENT_SPOOL = Signal("Results waiting in the agent's spool (check)", "The agent.spool check: results the agent "
                     "holds because the collector has not acknowledged them.", "short", {"host": ("agent.spool",)})
HOST_UNITS = {"host.cpu": "percent", "host.memory": "percent", "host.disk": "percent", "host.inodes": "percent",
              "host.load": "short", "host.swap": "percent", "host.uptime": "s", "agent.spool": "short"}
"""Host kinds set their unit in the probe, not in the pack."""
