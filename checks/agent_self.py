"""The agent watching itself: how many results wait in its spool for the collector, and how many were dropped."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, Protocol

from checks.context import RunContext
from checks.result import Outcome, Result, unknown
from checks.spec import CheckSpec


class SpoolStatsLike(Protocol):
    depth: int
    bytes: int
    dropped_total: int


class AgentSpool(CheckSpec):
    value_unit: ClassVar[str | None] = "results"
    kind_doc: ClassVar[str] = (
        "Results waiting in the agent's durable spool for the collector's acknowledgement (the value), its size "
        "in bytes and how many results were dropped because the spool reached `spool.max_bytes`. A growing "
        "depth means the collector is unreachable or refusing this agent; warn/crit compare the depth. "
        "Runs only inside the agent, which lends it the spool."
    )

    kind: Literal["agent.spool"] = "agent.spool"

    def probe(self, ctx: RunContext) -> list[Result]:
        spool: Any = ctx.resources.get("spool")
        if spool is None:
            return [unknown(self.id, Outcome.NOT_FOUND, "no spool here: agent.spool runs only inside the agent",
                            target=self.target or "")]
        stats: SpoolStatsLike = spool.stats()
        depth = float(stats.depth)
        status = self.status_for(depth)
        summary = f"{stats.depth} results waiting for the collector, {stats.bytes} bytes"
        if stats.dropped_total:
            summary += f", {stats.dropped_total} dropped since the spool was created (spool full)"
        return [Result(
            check_id=self.id,
            status=status,
            summary=summary,
            target=self.target or "",
            value=depth,
            unit="results",
            metrics={
                "spool_depth": depth,
                "spool_bytes": float(stats.bytes),
                "spool_dropped_total": float(stats.dropped_total),
            },
        )]


SPECS: dict[str, type[CheckSpec]] = {"agent.spool": AgentSpool}
