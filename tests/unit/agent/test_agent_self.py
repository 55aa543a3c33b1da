"""Kind agent.spool: the agent's own spool as a check, with the spool the daemon lends it."""

from __future__ import annotations

from pathlib import Path

from agent.runner import run_check
from agent.spool import Spool
from checks.agent_self import AgentSpool
from checks.context import RunContext
from checks.kinds import spec_class
from checks.result import Outcome, Result, Status


def test_registered_as_a_kind() -> None:
    assert spec_class("agent.spool") is AgentSpool


def test_depth_bytes_and_drops_with_thresholds(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", max_bytes=64 * 1024)
    try:
        spool.append([Result(check_id=f"c{i}", status=Status.OK, summary="x" * 1000) for i in range(70)])
        st = spool.stats()
        assert st.dropped_total > 0
        spec = AgentSpool(id="agent.spool", kind="agent.spool", warn="> 10", crit=f"> {st.depth + 1}")
        [r] = run_check(spec, RunContext(resources={"spool": spool}))
        assert (r.status, r.value, r.unit, r.outcome) == (Status.WARNING, float(st.depth), "results", Outcome.OK)
        assert r.metrics == {"spool_depth": float(st.depth), "spool_bytes": float(st.bytes),
                             "spool_dropped_total": float(st.dropped_total)}
        assert r.summary == (f"{st.depth} results waiting for the collector, {st.bytes} bytes, "
                             f"{st.dropped_total} dropped since the spool was created (spool full)")
        spool.ack(st.last_seq)
        [r] = run_check(spec, RunContext(resources={"spool": spool}))
        assert (r.status, r.value) == (Status.OK, 0.0)
    finally:
        spool.close()


def test_outside_the_agent_it_cannot_tell() -> None:
    [r] = run_check(AgentSpool(id="agent.spool", kind="agent.spool"), RunContext())
    assert (r.status, r.outcome) == (Status.UNKNOWN, Outcome.NOT_FOUND)
    assert r.summary == "no spool here: agent.spool runs only inside the agent"
