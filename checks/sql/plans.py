"""sql.plans: plan regressions and mean-time jumps of statements, with before and after.

The query returns cumulative counters per statement and plan: `statement` (sql_id, query_hash, queryid),
`plan` (plan_hash_value, query_plan_hash; empty where the engine has none, as pg_stat_statements),
`executions`, `total_ms` and optionally `query` (text, normalized before it leaves the host) and `object`
(database or schema). Each run takes the increase since the previous run per (statement, plan): a statement
that runs on a new plan at least `factor` times slower per execution than its usual plan is a plan regression;
one whose mean time per execution jumps by `factor` on the same plan is a mean-time jump. Each is a finding
with the plans and mean times before and after, reported while it lasts (at most `report_for`, after which the
new plan is the usual one). Baselines are kept in the agent's state directory, so a restart does not lose them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from checks.context import RunContext
from checks.probe_state import ProbeState
from checks.result import Finding, Result, Status
from checks.spec import CheckSpec, Duration
from checks.sql.kinds import ShapeError, SqlCheck, fmt_number, number_or_text
from checks.sql.rows import Rows, ServerInfo, cell_text, iso_utc

if TYPE_CHECKING:
    from checks.sql.session import Session

REQUIRED = ("statement", "executions", "total_ms")
FORGET_AFTER_S = 7 * 86400.0
"""A statement not seen for this long leaves the state (it left the plan cache / top list)."""


class SqlPlans(SqlCheck):
    kind_doc: ClassVar[str] = (
        "Plan regressions as findings with before and after. The query returns cumulative counters per statement "
        "and plan: `statement`, `plan` (optional: plan hash), `executions`, `total_ms`, optionally `query` and "
        "`object`. Each run compares the increase since the previous run with the statement's usual plan and mean "
        "time (kept in the agent's state directory): a new plan at least `factor` times slower per execution, or "
        "the same plan's mean time jumping by `factor`, is a finding with both plans and mean times. The first run "
        "records the baseline. The value is the number of regressions reported."
    )

    example: ClassVar[str] = """
id: his.db.plan_regressions
kind: sql.plans
target: his_db
interval: 15m
query:
  oracle: |
    SELECT sql_id AS statement, plan_hash_value AS plan, executions, elapsed_time / 1000 AS total_ms, sql_text AS query
    FROM v$sqlstats WHERE executions > 0 ORDER BY elapsed_time DESC FETCH FIRST 200 ROWS ONLY
factor: 3
warn: "> 0"
"""

    kind: Literal["sql.plans"] = "sql.plans"
    factor: float = Field(2.0, gt=1.0, description="How many times slower per execution counts as a regression.")
    min_mean_ms: float = Field(10.0, ge=0, description="Ignore statements faster than this per execution afterwards.")
    min_executions: int = Field(10, ge=1, description="Executions in the interval needed to judge a statement.")
    report_for: Duration = Field(86400.0, description="After this long a persisting regression becomes the new baseline.")

    def evaluate(self, rows: Rows, server: ServerInfo) -> list[Result]:
        return self.track(rows, server, {}, 0.0)

    def judge(self, rows: Rows, session: Session, ctx: RunContext) -> list[Result]:
        state = ProbeState(ctx, "plans", f"{self.id}@{self.target}")
        data = state.load()
        results = self.track(rows, session.info, data, ctx.clock())
        state.save(data)
        return results

    def readings(self, rows: Rows, dialect: str) -> dict[str, dict[str, Any]]:
        """statement -> {plans: {plan: [executions, total_ms]}, query, object} from the rows."""
        from checks.sql.normalize import normalize_sql

        missing = [c for c in REQUIRED if c not in rows.columns]
        if missing:
            raise ShapeError(f"sql.plans needs columns {', '.join(REQUIRED)}; missing {', '.join(missing)} "
                             f"(the query has {', '.join(rows.columns)})")
        idx = {c: i for i, c in enumerate(rows.columns)}
        out: dict[str, dict[str, Any]] = {}
        for row in rows.rows:
            stmt = cell_text(row[idx["statement"]])
            execs = number_or_text(row[idx["executions"]])
            total = number_or_text(row[idx["total_ms"]])
            if not stmt or execs is None or total is None:
                continue
            plan = cell_text(row[idx["plan"]]) if "plan" in idx else ""
            entry = out.setdefault(stmt, {"plans": {}, "query": "", "object": ""})
            seen = entry["plans"].get(plan, [0.0, 0.0])
            entry["plans"][plan] = [seen[0] + execs, seen[1] + total]
            if "query" in idx and row[idx["query"]] is not None and not entry["query"]:
                entry["query"] = normalize_sql(str(row[idx["query"]]), dialect)
            if "object" in idx and row[idx["object"]] is not None:
                entry["object"] = cell_text(row[idx["object"]])
        return out

    def track(self, rows: Rows, server: ServerInfo, data: dict[str, Any], now: float) -> list[Result]:
        """Update `data` ({statements, regressions}) with this run's counters; one result with the regressions."""
        try:
            current = self.readings(rows, server.dialect)
        except ShapeError as exc:
            return self._shape_error(exc)
        first = "statements" not in data
        known: dict[str, Any] = data.setdefault("statements", {})
        regressions: dict[str, Any] = data.setdefault("regressions", {})
        for stmt, entry in current.items():
            before = known.get(stmt) or {}
            entry["query"] = entry["query"] or before.get("query", "")
            self._one(stmt, entry, before, regressions, now)
            known[stmt] = {"plans": entry["plans"], "baseline": before.get("baseline") or _dominant(entry["plans"]),
                           "seen": now, "query": entry["query"]}
            regression = regressions.get(stmt)
            if regression is not None and regression.get("adopt"):
                known[stmt]["baseline"] = {"plan": regression["after_plan"], "mean_ms": regression["after_ms"]}
                del regressions[stmt]
            elif regression is None:
                known[stmt]["baseline"] = _dominant(entry["plans"]) or known[stmt]["baseline"]
        for stmt in [s for s, k in known.items() if now - float(k.get("seen", now)) > FORGET_AFTER_S]:
            del known[stmt]
            regressions.pop(stmt, None)
        if first:
            return [Result(check_id=self.id, status=Status.OK, value=0.0, unit="regressions",
                           summary=f"{self.display_title}: baseline of {len(current)} statements recorded; "
                                   "regressions are reported from the next run")]
        findings = [self._finding(stmt, r) for stmt, r in sorted(regressions.items())]
        count = float(len(findings))
        status = self.status_for(count)
        if findings:
            said = "; ".join(f"{stmt} {fmt_number(r['before_ms'])} -> {fmt_number(r['after_ms'])} ms"
                             for stmt, r in sorted(regressions.items())[:3])
            summary = f"{self.display_title}: {len(findings)} regression(s): {said}"
        else:
            summary = f"{self.display_title}: {len(current)} statements, no regression"
        return [Result(check_id=self.id, status=status, value=count, unit="regressions", summary=summary,
                       findings=findings)]

    def _one(self, stmt: str, entry: dict[str, Any], before: dict[str, Any] | None,
             regressions: dict[str, Any], now: float) -> None:
        """Judge one statement's increase since the previous run against its baseline; record or clear a regression."""
        if before is None or not before.get("baseline"):
            return
        baseline = before["baseline"]
        previous = before.get("plans", {})
        worst: tuple[float, str, float] | None = None
        for plan, (execs, total) in entry["plans"].items():
            old = previous.get(plan)
            if old is not None and execs >= old[0] and total >= old[1]:
                d_exec, d_ms = execs - old[0], total - old[1]
            else:
                d_exec, d_ms = execs, total  # a new plan, or counters reset: everything it has is new
            if d_exec < self.min_executions:
                continue
            mean = d_ms / d_exec
            if worst is None or mean > worst[0]:
                worst = (mean, plan, d_exec)
        open_regression = regressions.get(stmt)
        if worst is None:
            return
        mean, plan, d_exec = worst
        slower = mean >= self.factor * float(baseline["mean_ms"]) and mean >= self.min_mean_ms and float(baseline["mean_ms"]) > 0
        if open_regression is not None:
            if not slower and mean < self.factor * float(open_regression["before_ms"]):
                del regressions[stmt]  # back to normal: no longer reported, the collector marks it fixed
                return
            open_regression.update(after_ms=max(mean, 0.0), executions=d_exec, last_seen=now)
            if now - float(open_regression["noticed"]) >= self.report_for:
                open_regression["adopt"] = True
            return
        if not slower:
            return
        regressions[stmt] = {
            "kind": "plan change" if plan != baseline["plan"] else "mean time jump",
            "before_plan": baseline["plan"], "after_plan": plan, "before_ms": float(baseline["mean_ms"]),
            "after_ms": mean, "executions": d_exec, "noticed": now, "last_seen": now,
            "query": entry.get("query", ""), "object": entry.get("object", ""),
        }

    def _finding(self, stmt: str, r: dict[str, Any]) -> Finding:
        ratio = r["after_ms"] / r["before_ms"] if r["before_ms"] else 0.0
        if r["kind"] == "plan change":
            title = (f"Plan regression {stmt}: plan {r['before_plan']} -> {r['after_plan']}, "
                     f"{fmt_number(r['before_ms'])} -> {fmt_number(r['after_ms'])} ms per execution ({ratio:.1f}x)")
            what = (f"runs on plan {r['after_plan']} at {fmt_number(r['after_ms'])} ms per execution, "
                    f"{ratio:.1f} times its usual plan {r['before_plan']} ({fmt_number(r['before_ms'])} ms)")
        else:
            title = (f"Mean time jump {stmt}: {fmt_number(r['before_ms'])} -> {fmt_number(r['after_ms'])} ms per "
                     f"execution ({ratio:.1f}x)")
            what = f"takes {fmt_number(r['after_ms'])} ms per execution, {ratio:.1f} times its usual {fmt_number(r['before_ms'])} ms"
        return Finding(
            fingerprint=f"{self.id}:{stmt}:{r['after_plan']}" if r["after_plan"] else f"{self.id}:{stmt}",
            title=title,
            object=r.get("object") or stmt,
            recommendation=(f"Statement {stmt} {what} since about {iso_utc(float(r['noticed']))}. Compare the two plans "
                            "(Oracle: DBMS_XPLAN.DISPLAY_CURSOR / DISPLAY_AWR; SQL Server: Query Store or the plan "
                            "cache; PostgreSQL: EXPLAIN (ANALYZE, BUFFERS)); look for statistics gathered or an index "
                            "changed just before. Pin the good plan (SQL plan baseline, Query Store forcing) only with "
                            "the application owner's agreement."),
            sql_text=r.get("query", ""),
            evidence={"before_ms": round(r["before_ms"], 3), "after_ms": round(r["after_ms"], 3),
                      "ratio": round(ratio, 2), "executions": float(r["executions"])},
            attributes={"statement": stmt, "kind": r["kind"], "before_plan": r["before_plan"],
                        "after_plan": r["after_plan"], "noticed": iso_utc(float(r["noticed"]))},
        )


def _dominant(plans: dict[str, list[float]]) -> dict[str, Any] | None:
    """The plan with the most executions and its cumulative mean time: a statement's usual plan."""
    best = max(plans.items(), key=lambda kv: kv[1][0], default=None)
    if best is None or best[1][0] <= 0:
        return None
    return {"plan": best[0], "mean_ms": best[1][1] / best[1][0]}


SPECS: dict[str, type[CheckSpec]] = {"sql.plans": SqlPlans}
