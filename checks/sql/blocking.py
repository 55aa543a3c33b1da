"""sql.blocking: who is at the head of each blocking chain, and a history of it that outlives the chain.

The query returns one row per session taking part in lock waits: waiting sessions with the session that blocks
them (`blocked_by`) and how long they have waited, and the blockers themselves (`blocked_by` NULL). The kind
finds the root of every chain (a blocker that waits for no one), follows it from run to run as one episode,
and reports one finding per root blocker with how long it blocked, how many sessions it held up and whose
session it is (application, program, user, client), one last time when it has ended, so the DBA sees who
blocked at 03:10 even though nothing blocks at 08:00. The result's value is the longest current lock wait.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from checks.context import RunContext
from checks.result import Finding, Result, Status
from checks.spec import CheckSpec, Duration
from checks.sql.kinds import Cells, ShapeError, SqlCheck, check_template, fmt_number, number_or_text
from checks.sql.maintenance import Remembered, SessionFilter
from checks.sql.rows import Rows, ServerInfo, cell_text, iso_utc

if TYPE_CHECKING:
    from checks.sql.session import Session

REQUIRED = ("session_id", "blocked_by", "wait_seconds")
ATTRIBUTES = ("application", "program", "username", "client", "state")


@dataclass
class Forest:
    """The blocking chains of one run: edges waiter -> blocker, each session's row, each waiter's wait."""

    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    blockers: dict[str, set[str]] = field(default_factory=dict)
    """waiter -> the sessions it waits for."""
    waits: dict[str, float] = field(default_factory=dict)

    def roots(self) -> dict[str, set[str]]:
        """Root blocker -> every session held up behind it, directly or down the chain."""
        waiters_of: dict[str, set[str]] = {}
        for waiter, blockers in self.blockers.items():
            for b in blockers:
                waiters_of.setdefault(b, set()).add(waiter)
        out: dict[str, set[str]] = {}
        for blocker in waiters_of:
            if self.blockers.get(blocker):
                continue  # it waits itself: not the head of its chain
            victims: set[str] = set()
            pending = [blocker]
            while pending:
                for w in waiters_of.get(pending.pop(), ()):
                    if w not in victims and w != blocker:
                        victims.add(w)
                        pending.append(w)
            out[blocker] = victims
        return out


def forest_of(rows: Rows) -> Forest:
    """Build the chains from the rows; raises ShapeError when a required column is missing."""
    missing = [c for c in REQUIRED if c not in rows.columns]
    if missing:
        raise ShapeError(f"sql.blocking needs columns {', '.join(REQUIRED)}; missing {', '.join(missing)} "
                          f"(the query has {', '.join(rows.columns)})")
    idx = {c: i for i, c in enumerate(rows.columns)}
    forest = Forest()
    for row in rows.rows:
        sid = cell_text(row[idx["session_id"]])
        if not sid:
            continue
        cells = {c: row[i] for c, i in idx.items()}
        known = forest.sessions.setdefault(sid, {})
        for c, v in cells.items():
            if v is not None and cell_text(v) and not cell_text(known.get(c)):
                known[c] = v
        blocker = cell_text(row[idx["blocked_by"]])
        if blocker and blocker != sid:
            forest.blockers.setdefault(sid, set()).add(blocker)
            forest.sessions.setdefault(blocker, {"session_id": blocker})
            wait = number_or_text(row[idx["wait_seconds"]])
            if wait is not None:
                forest.waits[sid] = max(forest.waits.get(sid, 0.0), wait)
    return forest


@dataclass
class Episode:
    """One root blocker followed across runs."""

    session_id: str
    identity: str
    first_seen: float
    last_seen: float
    attributes: dict[str, str]
    query: str = ""
    longest_wait: float = 0.0
    most_victims: int = 0
    victims_seen: set[str] = field(default_factory=set)
    duration: float = 0.0


class SqlBlocking(SqlCheck):
    kind_doc: ClassVar[str] = (
        "Blocking chains and their history. The query returns the sessions in lock waits: `session_id`, "
        "`blocked_by` (the session it waits for; NULL on a blocker's own row), `wait_seconds`, optionally "
        "`session_start` (so a reused session id is a new episode), `application`, `program`, `username`, "
        "`client`, `state` and `query`. Every root blocker (blocking others, waiting for no one) is followed from "
        "run to run; once it has blocked for `min_duration` it is a finding (fingerprint: its session and start) "
        "with how long it blocked, how many sessions it held up and whose session it is, reported again when it "
        "ends (`ended`), so the history outlives the chain. With `exclude_maintenance`, chains headed by a "
        "maintenance session are left out. The value is the longest current lock wait, compared with warn/crit."
    )

    example: ClassVar[str] = """
id: lis.db.blocking
kind: sql.blocking
target: lis_pg
query:
  postgres: |
    WITH w AS (SELECT a.pid, b.pid AS blocker, extract(epoch FROM now() - a.query_start) AS wait_seconds
               FROM pg_stat_activity a CROSS JOIN LATERAL unnest(pg_blocking_pids(a.pid)) AS b(pid)
               WHERE a.wait_event_type = 'Lock')
    SELECT a.pid AS session_id, w.blocker AS blocked_by, w.wait_seconds, a.application_name AS application,
           a.usename AS username, a.state, a.query
    FROM pg_stat_activity a LEFT JOIN w ON w.pid = a.pid
    WHERE a.pid IN (SELECT pid FROM w UNION SELECT blocker FROM w)
warn: "> 60"
crit: "> 120"
"""

    kind: Literal["sql.blocking"] = "sql.blocking"
    min_duration: Duration = Field(30.0, description="A root blocker becomes a finding once it has blocked this long.")
    finding_title: str = Field(
        "Root blocker session {session_id} ({who}) blocked {victims} session(s) for {duration} s{ended}",
        description="Title template: {session_id}, {who}, {victims}, {duration}, {ended} and the row's columns.",
    )
    recommendation: str = Field(
        "Session {session_id} ({who}) held locks that {victims} session(s) waited for, for {duration} s (longest "
        "wait {longest_wait} s). If it sat idle in an open transaction, the application did not commit: give the "
        "vendor the application, user and statement. End it only with the system owner's consent.",
        description="What to do, with the same placeholders as finding_title.",
    )
    unit: str = Field("seconds", description="Unit of the value (the longest current lock wait).")

    @field_validator("finding_title", "recommendation")
    @classmethod
    def _template(cls, v: str) -> str:
        return check_template(v)

    def leave_out(self, rows: Rows, which: SessionFilter, memory: Remembered | None = None) -> tuple[Rows, list[str]]:
        """Drop whole chains whose root blocker is a maintenance session (the backup, not its victims, decides)."""
        try:
            forest = forest_of(rows)
        except ShapeError:
            return rows, []
        dropped: set[str] = set()
        reasons: list[str] = []
        for root, victims in forest.roots().items():
            row = forest.sessions.get(root, {})
            why = memory.judge(row, which) if memory is not None else which.matches(row)
            if why is not None:
                dropped |= {root, *victims}
                reasons.append(why)
        if not dropped:
            return rows, []
        i = rows.columns.index("session_id")
        kept = [row for row in rows.rows if cell_text(row[i]) not in dropped]
        return Rows(columns=rows.columns, rows=kept, truncated=rows.truncated), reasons

    def evaluate(self, rows: Rows, server: ServerInfo) -> list[Result]:
        return self.track(rows, server, {}, 0.0)

    def judge(self, rows: Rows, session: Session, ctx: RunContext) -> list[Result]:
        episodes: dict[str, Episode] = ctx.resources.setdefault(f"sql-blocking:{self.id}@{self.target}", {})
        return self.track(rows, session.info, episodes, ctx.clock())

    def track(self, rows: Rows, server: ServerInfo, episodes: dict[str, Episode], now: float) -> list[Result]:
        """Update `episodes` (root identity -> Episode) with this run's chains; one result with the findings."""
        try:
            forest = forest_of(rows)
        except ShapeError as exc:
            return self._shape_error(exc)
        from checks.sql.normalize import normalize_sql

        current: dict[str, tuple[str, set[str]]] = {}
        for root, victims in forest.roots().items():
            row = forest.sessions.get(root, {})
            identity = f"{root}@{cell_text(row.get('session_start'))}" if cell_text(row.get("session_start")) else root
            current[identity] = (root, victims)
        findings: list[Finding] = []
        longest_now = max((forest.waits.get(v, 0.0) for _, vs in current.values() for v in vs), default=0.0)
        for identity, (root, victims) in current.items():
            row = forest.sessions.get(root, {})
            ep = episodes.get(identity)
            if ep is None:
                ep = Episode(session_id=root, identity=identity, first_seen=now, last_seen=now,
                             attributes={c: cell_text(row.get(c)) for c in ATTRIBUTES if cell_text(row.get(c))})
                episodes[identity] = ep
            query = cell_text(row.get("query"))
            if query:
                ep.query = normalize_sql(query, server.dialect)
            wait = max((forest.waits.get(v, 0.0) for v in victims), default=0.0)
            ep.last_seen = now
            ep.longest_wait = max(ep.longest_wait, wait)
            ep.most_victims = max(ep.most_victims, len(victims))
            ep.victims_seen |= victims
            ep.duration = max(ep.duration, now - ep.first_seen, wait)
            if ep.duration >= self.min_duration:
                findings.append(self._finding(ep, row, ended=False))
        for identity in [i for i in episodes if i not in current]:
            ep = episodes.pop(identity)
            if ep.duration >= self.min_duration:
                findings.append(self._finding(ep, {}, ended=True, ended_at=now))
        active = len(current)
        status = self.status_for(longest_now)
        if active:
            heads = "; ".join(f"session {root} ({_who(forest.sessions.get(root, {})) or 'unknown'}) blocks {len(v)}"
                              for root, v in list(current.values())[:3])
            summary = f"{self.display_title}: longest lock wait {fmt_number(longest_now)} s; {active} root blocker(s): {heads}"
        else:
            summary = f"{self.display_title}: no blocking"
        ended = sum(1 for f in findings if f.attributes.get("ended") == "yes")
        if ended:
            summary += f" ({ended} blocking episode(s) ended since the last run)"
        crossed = self.crit if status is Status.CRITICAL else self.warn if status is Status.WARNING else None
        if crossed is not None:
            summary += f" ({status.name.lower()} {crossed})"
        return [Result(check_id=self.id, status=status, summary=summary, value=longest_now, unit=self.unit,
                       metrics={"root_blockers": float(active),
                                "blocked_sessions": float(sum(len(v) for _, v in current.values()))},
                       findings=findings)]

    def _finding(self, ep: Episode, row: dict[str, Any], *, ended: bool, ended_at: float | None = None) -> Finding:
        who = _who(ep.attributes)
        attributes = dict(ep.attributes)
        attributes.update(session_id=ep.session_id, first_seen=iso_utc(ep.first_seen), ended="yes" if ended else "no")
        if ended_at is not None:
            attributes["ended_at"] = iso_utc(ended_at)
        cells = Cells({c: cell_text(v) for c, v in row.items()})
        cells.update(session_id=ep.session_id, who=who or "unknown session", victims=str(max(ep.most_victims, len(ep.victims_seen))),
                     duration=fmt_number(round(ep.duration, 1)), longest_wait=fmt_number(round(ep.longest_wait, 1)),
                     ended=" (ended)" if ended else "")
        return Finding(
            fingerprint=f"{self.id}:{ep.identity}",
            title=self.finding_title.format_map(cells),
            object=who or ep.session_id,
            recommendation=self.recommendation.format_map(cells),
            sql_text=ep.query,
            evidence={"duration_seconds": round(ep.duration, 1), "longest_wait_seconds": round(ep.longest_wait, 1),
                      "most_blocked_at_once": float(ep.most_victims), "sessions_blocked": float(len(ep.victims_seen)),
                      "ended": 1.0 if ended else 0.0},
            attributes=attributes,
        )


def _who(attributes: dict[str, Any]) -> str:
    """application/program, user and client of a session, the attribution every session finding carries."""
    parts = []
    for col, name in (("application", "application"), ("program", "program"), ("username", "user"), ("client", "client")):
        text = cell_text(attributes.get(col))
        if text:
            parts.append(f"{name} {text[:80]}")
    return ", ".join(parts)


SPECS: dict[str, type[CheckSpec]] = {"sql.blocking": SqlBlocking}
