"""Maintenance sessions: backups and nightly jobs that legitimately run long, hold transactions open or block.

The session checks (long queries, long or idle transactions, blocking) return one row per session with the
columns a site may filter on, and rows of maintenance sessions are dropped on the agent before the check is
evaluated: the statements cannot take the per-target lists as parameters (the guard refuses placeholders),
and filtering on the agent keeps them plain catalog reads. Which columns a row offers:

- `application`: PostgreSQL application_name, Oracle module, SQL Server program_name, MySQL's connect
  attribute program_name (performance_schema);
- `program`: Oracle program (`rman@host (TNS V1-V3)`), SQL Server client interface / host process;
- `username`: the login;
- `query`: the statement text; `command`: SQL Server's request command (`BACKUP DATABASE`), both matched by
  the query patterns.

Application, program and user patterns are shell-style globs, case-blind (`pg_dump*`); query patterns are
regular expressions searched in the text. The built-in list (pg_dump, pg_basebackup, mysqldump, RMAN,
BACKUP/RESTORE...) applies unless a target says `builtin: false`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from checks.spec import Regex
from checks.sql.rows import cell_text

SESSION_COLUMNS = ("application", "program", "username", "query", "command")
"""Row columns the filter reads (lower-cased, as the rows carry them)."""


@dataclass(frozen=True)
class Builtin:
    """The sessions every site treats as maintenance, per dialect."""

    applications: tuple[str, ...] = ()
    programs: tuple[str, ...] = ()
    queries: tuple[str, ...] = ()


BUILTIN: dict[str, Builtin] = {
    "postgres": Builtin(
        applications=("pg_dump", "pg_dumpall", "pg_basebackup", "pg_restore", "pgbackrest*", "barman*", "wal-g*",
                      "pg_probackup*", "pg_rman*"),
    ),
    "mysql": Builtin(
        applications=("mysqldump", "mariadb-dump", "mysqlpump", "mariabackup", "mariadb-backup", "xtrabackup",
                      "mysqlbackup"),
        queries=(r"^\s*SELECT\s+/\*!40001\s+SQL_NO_CACHE\s*\*/", r"^\s*BACKUP\s+STAGE\b",
                 r"^\s*FLUSH\s+(NO_WRITE_TO_BINLOG\s+)?TABLES\b.*\bREAD\s+LOCK"),
    ),
    "oracle": Builtin(
        applications=("backup *", "rman*", "Data Pump*", "DBMS_DATAPUMP*"),
        programs=("rman*", "*(DW[0-9][0-9])", "*(DM[0-9][0-9])"),
    ),
    "mssql": Builtin(
        queries=(r"^\s*BACKUP\s", r"^\s*RESTORE\s"),
    ),
}
"""pg_dump and friends set application_name; mysqldump's table reads carry its /*!40001 SQL_NO_CACHE */
marker and MariaDB's backup its BACKUP STAGE; RMAN channels have program rman@host and module `backup ...`,
Data Pump workers run as (DWnn)/(DMnn); SQL Server reports a running backup or restore as the request's
command, whichever job or tool started it (SQL Agent, Ola Hallengren's DatabaseBackup, a vendor agent)."""


class MaintenanceSessions(BaseModel):
    """agent.yaml `targets.NAME.maintenance_sessions`: sessions the session checks leave out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    applications: tuple[str, ...] = Field((), description="Application names (globs), e.g. nightly-yeardb-*.")
    programs: tuple[str, ...] = Field((), description="Client programs (globs), e.g. expdp*.")
    users: tuple[str, ...] = Field((), description="Logins (globs) whose sessions are maintenance, e.g. etl_batch.")
    queries: tuple[Regex, ...] = Field((), description=r"Regular expressions searched in the statement text, e.g. ^CALL his\.move_year.")
    builtin: bool = Field(True, description="Also leave out pg_dump, pg_basebackup, mysqldump, RMAN, BACKUP/RESTORE...")


@dataclass(frozen=True)
class SessionFilter:
    """The compiled patterns of one target: `matches(row)` says whether a session row is maintenance."""

    applications: tuple[str, ...]
    programs: tuple[str, ...]
    users: tuple[str, ...]
    queries: tuple[str, ...]

    @cached_property
    def _compiled(self) -> tuple[re.Pattern[str], ...]:
        return tuple(re.compile(q, re.IGNORECASE | re.DOTALL) for q in self.queries)

    def matches(self, row: Mapping[str, Any]) -> str | None:
        """What made the row maintenance ("application pg_dump"), or None."""
        for column, patterns in (("application", self.applications), ("program", self.programs),
                                 ("username", self.users)):
            value = cell_text(row.get(column))
            if value and any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in patterns):
                return f"{column} {value}"
        for column in ("command", "query"):
            text = cell_text(row.get(column))
            if text and any(p.search(text) for p in self._compiled):
                return f"{column} pattern"
        return None


@lru_cache(maxsize=256)
def session_filter(dialect: str, site: MaintenanceSessions | None) -> SessionFilter:
    """The target's filter: the built-in sessions of its dialect (unless switched off) and the site's own."""
    site = site or MaintenanceSessions.model_validate({})
    base = BUILTIN.get(dialect, Builtin()) if site.builtin else Builtin()
    return SessionFilter(
        applications=(*base.applications, *site.applications),
        programs=(*base.programs, *site.programs),
        users=tuple(site.users),
        queries=(*base.queries, *site.queries),
    )


REMEMBER_S = 86400.0
"""How long a session once seen as maintenance stays so without being seen again."""


@dataclass
class Remembered:
    """Sessions seen as maintenance before, per target: mysqldump between two tables runs no statement that
    names it, yet it is the same session (and transaction) that was dumping a table a minute ago. A session is
    known by its id and start (`session_start`), so a reused id is a new session."""

    seen: dict[str, float]
    now: float

    @staticmethod
    def key(row: Mapping[str, Any]) -> str | None:
        sid = cell_text(row.get("session_id"))
        return f"{sid}@{cell_text(row.get('session_start'))}" if sid else None

    def judge(self, row: Mapping[str, Any], which: SessionFilter) -> str | None:
        """Why the session of `row` is maintenance (now or earlier), remembering it; None when it is not."""
        key = self.key(row)
        why = which.matches(row)
        if why is None and key is not None and key in self.seen:
            why = "seen as maintenance earlier"
        if why is not None and key is not None:
            self.seen[key] = self.now
        return why

    def forget_old(self) -> None:
        for key in [k for k, at in self.seen.items() if self.now - at > REMEMBER_S]:
            del self.seen[key]


def split_sessions(columns: Sequence[str], rows: Sequence[tuple[Any, ...]], which: SessionFilter,
                   memory: Remembered | None = None) -> tuple[list[tuple[Any, ...]], list[str]]:
    """(rows that are not maintenance, one reason per row left out)."""
    index = {c: i for i, c in enumerate(columns) if c in (*SESSION_COLUMNS, "session_id", "session_start")}
    if not any(c in index for c in SESSION_COLUMNS):
        return list(rows), []
    kept: list[tuple[Any, ...]] = []
    reasons: list[str] = []
    for row in rows:
        cells = {c: row[i] for c, i in index.items()}
        why = memory.judge(cells, which) if memory is not None else which.matches(cells)
        if why is None:
            kept.append(row)
        else:
            reasons.append(why)
    if memory is not None:
        memory.forget_old()
    return kept, reasons
