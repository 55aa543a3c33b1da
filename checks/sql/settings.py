"""sql.settings: a snapshot of a server's settings per target, a finding for each change, and primary vs replica.

The first run records the snapshot (kept in the agent's state directory, so a restart does not forget it); every
later run compares and reports each setting that changed (before, after, when it was noticed) for
`report_for`, then the snapshot moves on. When the target is declared `replica_of` another in agent.yaml, the
same query runs on the primary and every setting that differs is a finding too, except those that differ by
design (`replica_ignore`: a standby's recovery settings, server ids).
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from checks.context import RunContext
from checks.probe_state import ProbeState
from checks.result import Finding, Outcome, Result, Status
from checks.spec import CheckSpec, Duration
from checks.sql.errors import SqlFailure
from checks.sql.kinds import ShapeError, SqlCheck
from checks.sql.rows import Rows, ServerInfo, cell_text, iso_utc

if TYPE_CHECKING:
    from checks.sql.session import Session

Snapshot = dict[str, str]


class SqlSettings(SqlCheck):
    kind_doc: ClassVar[str] = (
        "Configuration drift. The query returns one row per setting, columns `name` and `value`. The first run "
        "keeps a snapshot per target (in the agent's state directory); each later run reports every setting that "
        "changed as a finding (before, after, when noticed) for `report_for`. On a target declared `replica_of` "
        "another in agent.yaml, the query also runs on that primary and every setting that differs is a finding, "
        "except `replica_ignore`. The value is the number of changes and differences reported."
    )

    example: ClassVar[str] = """
id: lis.db.settings
kind: sql.settings
target: lis_pg
interval: 15m
query:
  postgres: SELECT name, setting AS value FROM pg_settings WHERE source NOT IN ('session', 'client')
ignore: [transaction_read_only]
warn: "> 0"
"""

    kind: Literal["sql.settings"] = "sql.settings"
    ignore: list[str] = Field(default_factory=list, description="Settings never compared (globs, case-blind), e.g. gtid_*.")
    replica_ignore: list[str] = Field(
        default_factory=list, description="Settings that differ between a primary and its replica by design (globs)."
    )
    report_for: Duration = Field(86400.0, description="How long a change keeps being reported after it was noticed.")

    def _ignored(self, name: str, patterns: list[str]) -> bool:
        low = name.lower()
        return any(fnmatch.fnmatchcase(low, p.lower()) for p in patterns)

    def snapshot(self, rows: Rows) -> Snapshot:
        """name -> value from the rows, without ignored settings; raises ShapeError without name/value columns."""
        missing = [c for c in ("name", "value") if c not in rows.columns]
        if missing:
            raise ShapeError(f"sql.settings needs columns name and value (the query has {', '.join(rows.columns)})")
        ni, vi = rows.columns.index("name"), rows.columns.index("value")
        out: Snapshot = {}
        for row in rows.rows:
            name = cell_text(row[ni])
            if name and not self._ignored(name, self.ignore):
                out[name] = cell_text(row[vi])
        return out

    def evaluate(self, rows: Rows, server: ServerInfo) -> list[Result]:
        return self.compare(rows, {}, 0.0)

    def judge(self, rows: Rows, session: Session, ctx: RunContext) -> list[Result]:
        state = ProbeState(ctx, "settings", f"{self.id}@{self.target}")
        data = state.load()
        results = self.compare(rows, data, ctx.clock())
        primary_name = session.target.replica_of
        if primary_name and results[0].outcome == Outcome.OK and "snapshot" in data:
            self._against_primary(results[0], data["snapshot"], primary_name, ctx)
        state.save(data)
        return results

    def compare(self, rows: Rows, data: dict[str, Any], now: float) -> list[Result]:
        """Update `data` ({snapshot, taken_at, changes}) with this run's settings; one result with the changes."""
        try:
            current = self.snapshot(rows)
        except ShapeError as exc:
            return self._shape_error(exc)
        before: Snapshot | None = data.get("snapshot")
        changes: list[dict[str, Any]] = [c for c in data.get("changes", []) if now - float(c.get("at", 0)) < self.report_for]
        if before is None:
            data.update(snapshot=current, taken_at=now, changes=[])
            return [Result(check_id=self.id, status=Status.OK, value=0.0, unit="settings",
                           summary=f"{self.display_title}: snapshot of {len(current)} settings taken; changes are "
                                   "reported from the next run")]
        for name in sorted(set(before) | set(current)):
            old, new = before.get(name), current.get(name)
            if old != new:
                changes = [c for c in changes if c["name"] != name]
                changes.append({"name": name, "before": old, "after": new, "at": now})
        data.update(snapshot=current, changes=changes)
        findings = [self._change(c) for c in changes]
        count = float(len(findings))
        status = self.status_for(count)
        if findings:
            said = ", ".join(f"{c['name']} {_shown(c['before'])} -> {_shown(c['after'])}" for c in changes[:5])
            more = f" and {len(changes) - 5} more" if len(changes) > 5 else ""
            summary = f"{self.display_title}: {len(changes)} setting(s) changed: {said}{more}"
        else:
            summary = f"{self.display_title}: {len(current)} settings, none changed"
        return [Result(check_id=self.id, status=status, value=count, unit="settings", summary=summary, findings=findings)]

    def _change(self, change: dict[str, Any]) -> Finding:
        name, old, new = change["name"], change["before"], change["after"]
        what = "appeared" if old is None else "disappeared" if new is None else "changed"
        return Finding(
            fingerprint=f"{self.id}:changed:{name}={'' if new is None else new}",
            title=f"Setting {name} {what}: {_shown(old)} -> {_shown(new)}",
            object=name,
            recommendation=(f"{name} was {_shown(old)} and is {_shown(new)} since about {iso_utc(float(change['at']))}. "
                            "Confirm it was a planned, recorded change (the maintenance contract asks for a record of "
                            "every manual database operation); if not, find who changed it and set it back."),
            attributes={"setting": name, "before": _shown(old), "after": _shown(new), "noticed": iso_utc(float(change["at"]))},
        )

    def _against_primary(self, result: Result, mine: Snapshot, primary_name: str, ctx: RunContext) -> None:
        """Add a finding per setting that differs from the primary's (read with the same query, on its target)."""
        from checks.sql.session import session_for

        try:
            with session_for(ctx, primary_name, wait=ctx.remaining(self.timeout)) as primary:
                rows = primary.run(self.query, timeout=min(self.timeout, ctx.remaining(self.timeout)),
                                   max_rows=self.max_rows, check_id=self.id)
            theirs = self.snapshot(rows)
        except (SqlFailure, ShapeError) as exc:
            result.summary += f"; not compared with primary {primary_name} ({exc})"
            return
        differing = sorted(n for n in set(mine) & set(theirs)
                           if mine[n] != theirs[n] and not self._ignored(n, self.replica_ignore))
        for name in differing:
            result.findings.append(Finding(
                fingerprint=f"{self.id}:differs:{name}={mine[name]}|{theirs[name]}",
                title=f"Setting {name} differs from primary {primary_name}: {_shown(mine[name])} here, "
                      f"{_shown(theirs[name])} there",
                object=name,
                recommendation=(f"{name} is {_shown(mine[name])} on this replica and {_shown(theirs[name])} on "
                                f"{primary_name}. After a failover the replica runs with its own value: make them equal "
                                "unless the difference is intended (then add it to this check's replica_ignore)."),
                attributes={"setting": name, "replica": _shown(mine[name]), "primary": _shown(theirs[name]),
                            "primary_target": primary_name},
            ))
        result.value = float(len(result.findings))
        result.status = self.status_for(result.value)
        result.metrics["differ_from_primary"] = float(len(differing))
        if differing:
            result.summary += f"; {len(differing)} differ from primary {primary_name}: {', '.join(differing[:5])}"
        else:
            result.summary += f"; same as primary {primary_name}"


def _shown(value: str | None) -> str:
    if value is None:
        return "(absent)"
    return repr(value) if value == "" or value != value.strip() else value[:200]


SPECS: dict[str, type[CheckSpec]] = {"sql.settings": SqlSettings}
