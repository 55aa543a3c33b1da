"""A real collector and real agents: incidents open and resolve, and no result is lost or stored twice
across collector SIGKILLs, agent SIGKILLs, collector outages and a full spool."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.spool import Spool
from tests.conftest import ROOT
from tests.e2e.harness import Collector, Fleet, wait_for

pytestmark = pytest.mark.e2e


def flag_pack(flag: Path) -> str:
    """One check that is OK while `flag` exists and CRITICAL (not_found) when it is gone, plus a steady one."""
    return f"""\
pack: e2e
defaults: {{interval: 200ms, timeout: 2s, system: HIS}}
checks:
  - id: e2e.flag
    title: Flag file present
    kind: host.file
    path: {flag}
    priority: high
  - id: e2e.memory
    kind: host.memory
"""


def busy_pack(n: int, interval: str = "100ms") -> str:
    """`n` cheap checks at a high rate, so a stream is always carrying results when something is killed."""
    checks = "\n".join(f"  - {{id: e2e.mem{i}, kind: host.memory}}" for i in range(n))
    return f"pack: busy\ndefaults: {{interval: {interval}, timeout: 2s}}\nchecks:\n{checks}\n"


def open_incident(c: Collector, agent: str, check: str) -> dict[str, object] | None:
    for i in c.get("/api/v1/incidents?status=open"):
        if i["agent_id"] == agent and i["check_id"] == check:
            return dict(i)
    return None


def hwm(c: Collector, agent: str) -> int:
    a = c.agent(agent)
    return int(a["high_water_seq"]) if a else 0


def assert_exactly_once(c: Collector, agent: str, up_to: int, first: int = 1) -> None:
    seqs = [r["seq"] for r in c.results(agent) if r["seq"] <= up_to]
    assert len(seqs) == len(set(seqs)), f"{agent}: some seqs stored twice"
    missing = sorted(set(range(first, up_to + 1)) - set(seqs))
    assert not missing, f"{agent}: {len(missing)} seqs never stored, e.g. {missing[:10]}"
    assert min(seqs) == first


def spool_last_seq(fleet: Fleet, agent: str) -> int:
    spool = Spool(fleet.root / agent / "spool.db")
    try:
        return spool.last_seq
    finally:
        spool.close()


def test_status_flip_opens_then_resolves_incident_with_two_agents(fleet: Fleet) -> None:
    c = fleet.collector().start()
    c.wait_healthy()
    flags = {}
    for name in ("his-app-01", "lis-app-01"):
        flags[name] = fleet.root / f"{name}.flag"
        flags[name].write_text("ok")
        fleet.agent(name, [c.grpc], flag_pack(flags[name])).start()
    for name in flags:
        wait_for(lambda n=name: (a := c.agent(n)) and a["connected"] and a["high_water_seq"] > 2,
                 timeout=20, what=f"{name} streaming")

    flags["his-app-01"].unlink()
    incident = wait_for(lambda: open_incident(c, "his-app-01", "e2e.flag"), timeout=10, what="incident opened")
    assert incident["priority"] == "high" and incident["system"] == "HIS"
    assert open_incident(c, "lis-app-01", "e2e.flag") is None
    series = [s for s in c.get("/api/v1/checks") if s["agent"] == "his-app-01" and s["check_id"] == "e2e.flag"]
    assert series and series[0]["status"] == "CRITICAL" and series[0]["outcome"] == "not_found"

    env = dict(os.environ, XUNJIAN_URL=f"http://{c.http}")
    status = subprocess.run([sys.executable, "-m", "xunjian", "status"], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=30)
    assert status.returncode == 0, status.stderr
    assert "his-app-01" in status.stdout and "lis-app-01" in status.stdout and "e2e.flag" in status.stdout

    flags["his-app-01"].write_text("back")
    wait_for(lambda: open_incident(c, "his-app-01", "e2e.flag") is None, timeout=10, what="incident resolved")
    resolved = [i for i in c.get("/api/v1/incidents?status=resolved") if i["check_id"] == "e2e.flag"]
    assert len(resolved) == 1 and resolved[0]["resolved_at"] >= resolved[0]["opened_at"]

    metrics = c.text("/metrics")
    assert 'xunjian_agent_up{agent="his-app-01"' in metrics or 'agent="his-app-01"' in metrics


def test_collector_sigkill_mid_stream_stores_every_seq_exactly_once(fleet: Fleet) -> None:
    c = fleet.collector(history="all")
    c.start()
    c.wait_healthy()
    agents = ["his-app-01", "his-db-01"]
    procs = [fleet.agent(a, [c.grpc], busy_pack(10)).start() for a in agents]
    for a in agents:
        wait_for(lambda a=a: hwm(c, a) > 50, timeout=20, what=f"{a} delivering")

    c.kill()
    time.sleep(1.0)
    c.start()
    c.wait_healthy()
    before = {a: hwm(c, a) for a in agents}
    for a in agents:
        wait_for(lambda a=a: hwm(c, a) > before[a] + 50, timeout=20, what=f"{a} delivering after restart")
    for p in procs:
        assert p.stop() == 0, p.output()
    last = {a: spool_last_seq(fleet, a) for a in agents}
    for p in procs:
        p.start()
    for a in agents:
        wait_for(lambda a=a: hwm(c, a) >= last[a], timeout=30, what=f"{a} spool drained up to {last[a]}")
        assert_exactly_once(c, a, last[a])


def test_agent_sigkill_resumes_seq_and_loses_nothing_spooled(fleet: Fleet) -> None:
    c = fleet.collector(history="all").start()
    c.wait_healthy()
    agent = fleet.agent("his-app-01", [c.grpc], busy_pack(5)).start()
    wait_for(lambda: hwm(c, "his-app-01") > 20, timeout=20, what="delivering")

    assert c.stop() == 0
    time.sleep(1.5)
    agent.kill()
    spool = Spool(fleet.root / "his-app-01" / "spool.db")
    stats = spool.stats()
    spool.close()
    spooled_up_to, acked_before = stats.last_seq, stats.acked_seq
    assert stats.depth > 0, "the agent should have spooled results while the collector was down"

    c.start()
    c.wait_healthy()
    agent.start()
    wait_for(lambda: hwm(c, "his-app-01") > spooled_up_to + 5, timeout=30, what="spool delivered and new results")
    assert_exactly_once(c, "his-app-01", spooled_up_to)
    assert hwm(c, "his-app-01") > spooled_up_to > acked_before, "seq resumed after the restart, not from 1"


def test_collector_outage_agents_spool_then_deliver_everything(fleet: Fleet) -> None:
    c = fleet.collector(history="all").start()
    c.wait_healthy()
    agent = fleet.agent("his-app-01", [c.grpc], busy_pack(5)).start()
    wait_for(lambda: hwm(c, "his-app-01") > 10, timeout=20, what="delivering")
    assert c.stop() == 0
    time.sleep(3)
    c.start()
    c.wait_healthy()
    a = wait_for(lambda: c.agent("his-app-01"), timeout=10, what="agent known")
    wait_for(lambda: (x := c.agent("his-app-01")) and x["connected"], timeout=20, what="agent reconnected")
    assert a is not None
    assert agent.stop() == 0
    last = spool_last_seq(fleet, "his-app-01")
    agent.start()
    wait_for(lambda: hwm(c, "his-app-01") >= last, timeout=30, what="everything delivered")
    assert_exactly_once(c, "his-app-01", last)


def test_full_spool_drops_oldest_counts_and_reports_them(fleet: Fleet) -> None:
    c = fleet.collector(history="all")
    agent = fleet.agent("his-app-01", [c.grpc], busy_pack(20, "50ms"), spool_max="64KiB").start()

    def dropped() -> int:
        spool = Spool(fleet.root / "his-app-01" / "spool.db")
        try:
            return spool.stats().dropped_total
        finally:
            spool.close()

    wait_for(lambda: dropped() > 100, timeout=40, what="the spool to overflow with no collector")
    c.start()
    c.wait_healthy()
    info = wait_for(lambda: (a := c.agent("his-app-01")) and a["dropped"] > 100 and a, timeout=20,
                    what="dropped count reported in a heartbeat")
    assert info["dropped"] >= 100
    metrics = c.text("/metrics")
    line = next(x for x in metrics.splitlines()
                if x.startswith("xunjian_agent_spool_dropped_total") and 'agent="his-app-01"' in x)
    assert float(line.rsplit(" ", 1)[1]) >= 100
    wait_for(lambda: hwm(c, "his-app-01") > 0, timeout=20, what="delivery after the outage")
    assert agent.stop() == 0
    last = spool_last_seq(fleet, "his-app-01")
    agent.start()
    wait_for(lambda: hwm(c, "his-app-01") >= last, timeout=30, what="drained")
    seqs = [r["seq"] for r in c.results("his-app-01") if r["seq"] <= last]
    assert min(seqs) > 1, "the oldest results should have been dropped"
    assert len(seqs) == len(set(seqs))
    assert sorted(seqs) == list(range(min(seqs), last + 1)), "only the oldest are dropped: the rest is contiguous"
