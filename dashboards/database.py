"""Database: one target at a time, for all four engines through the same panels (see signals.py)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards import panels as p
from dashboards.packs import Step
from dashboards.promql import AGENT, SITE, SYSTEM, TARGET, sel, status_now, worst_now
from dashboards.signals import (
    BACKUP_AGE,
    BACKUP_AND_JOB_CHECKS,
    CONNECTIONS,
    DEADLOCKS,
    IDLE_IN_TRANSACTION,
    JOB_OVERDUE,
    LOCK_WAIT,
    LONG_QUERY,
    MAINTENANCE_AGE,
    REPLICATION_LAG,
    STALE_STATISTICS,
    TOP_SQL,
    UPTIME,
    XID_AGE,
)

NEW = 'state="new"'
DBA = 'category="dba"'
"""Tuning findings only: reconciliation discrepancies (payment, insurance, migration) are reviewed elsewhere."""
JOB_CHECKS = 'check=~"' + "|".join(c.replace(".", "[.]") for c in BACKUP_AND_JOB_CHECKS) + '"'


def build() -> db.Dashboard:
    d = (
        p.dashboard("database", "Xunjian · Database", "One database target (PostgreSQL, MySQL/MariaDB, Oracle or SQL "
                    "Server): sessions, locks, long statements, findings, maintenance, replication, backups and jobs. "
                    "Panels map each engine's own checks; a panel whose checks this target's engine lacks stays empty.")
        .with_variable(p.query_variable("site", "Site", "label_values(xunjian_agent_up, site)"))
        .with_variable(p.query_variable("system", "System", f"label_values(xunjian_check_status{{{SITE}}}, system)"))
        .with_variable(p.query_variable("agent", "Agent", f"label_values(xunjian_check_status{{{SITE}, {SYSTEM}, "
                                        'engine!=""}, agent)'))
        .with_variable(p.query_variable("target", "Database target", f"label_values(xunjian_check_status{{{SITE}, "
                                        f'{SYSTEM}, {AGENT}, engine!=""}}, target)', multi=False))
        .with_variable(p.console_variable())
    )
    where = [SITE, AGENT, TARGET]
    status = sel("xunjian_check_status", *where)
    d = (
        d.with_row(p.row("Overview"))
        .with_panel(p.status_tiles("Worst status", "The worst current status of every check of this target.",
                                   worst_now(status, "target"), "{{target}}", ranked=True, w=4, h=8,
                                   links=[p.link("Console", p.CONSOLE)]))
        .with_panel(p.status_table("Checks of this target", "Every check series of the target with its status "
                                   "(UNKNOWN for all when its agent is connected to no collector).",
                                   status_now(status), w=14))
        .with_panel(p.big_number(
            "DBA findings to review", "Findings in state new across all targets (top SQL, unused or invalid "
            "indexes, blocking chains...): review them in the console or with `xunjian findings list`.",
            f"sum({sel('xunjian_findings', SITE, NEW, DBA)})", "", "none", [Step(None, "blue")], w=6, h=8,
            links=[p.link("Findings in the console", p.CONSOLE)]))
    )
    d = (
        d.with_row(p.row("Sessions"))
        .with_panel(p.signal_graph(CONNECTIONS, where, "{{check}} {{key}}", w=8))
        .with_panel(p.signal_graph(IDLE_IN_TRANSACTION, where, "{{check}}", w=8))
        .with_panel(p.signal_graph(UPTIME, where, "{{check}}", w=8))
        .with_row(p.row("Waits and long statements"))
        .with_panel(p.signal_graph(LOCK_WAIT, where, "{{check}} {{key}}", w=8))
        .with_panel(p.signal_graph(LONG_QUERY, where, "{{check}}", w=8))
        .with_panel(p.signal_graph(DEADLOCKS, where, "{{check}} {{key}}", w=8))
        .with_row(p.row("Findings and maintenance"))
        .with_panel(p.signal_bars(TOP_SQL, where, "{{check}}", w=6, h=8))
        .with_panel(p.value_table(
            "Findings per check", "Rows each findings check of this target reported in its last run; each row is "
            "a DBA finding kept, deduplicated, in the collector.",
            sel("xunjian_check_value", *where, 'unit="findings"'), "none", w=6))
        .with_panel(p.signal_graph(MAINTENANCE_AGE, where, "{{check}}", w=6))
        .with_panel(p.signal_bars(STALE_STATISTICS, where, "{{check}}", w=6, h=8))
        .with_panel(p.signal_bars(XID_AGE, where, "{{key}}", w=6, h=8))
        .with_row(p.row("Replication, backups and jobs"))
        .with_panel(p.signal_graph(REPLICATION_LAG, where, "{{check}} {{key}}", w=8))
        .with_panel(p.signal_bars(BACKUP_AGE, where, "{{check}} {{key}}", w=8, h=8))
        .with_panel(p.signal_bars(JOB_OVERDUE, where, "{{key}}", w=8, h=8))
        .with_panel(p.status_table(
            "Backup, archiving and job checks", "Checks answered by a status more than a number: WAL archiving, "
            "archive destinations, RMAN status, scheduler and SQL Server Agent jobs.",
            status_now(sel("xunjian_check_status", *where, JOB_CHECKS)), w=24))
    )
    return d
