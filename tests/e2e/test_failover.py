"""Two collectors, each with its own SQLite store, and an agent with both in `collector.addresses`: when the one
it streams to stops, the agent moves to the next, and back again later. What docs/deploy.md promises about that
set-up: every result is stored, none twice in one store, and each store holds the part of the stream it got."""

from __future__ import annotations

import pytest

from tests.e2e.harness import Collector, Fleet, steady_pack, wait_for

pytestmark = pytest.mark.e2e

AGENT = "his-app-01"


def connected(c: Collector) -> bool:
    a = c.agent(AGENT)
    return bool(a and a["connected"])


def test_agent_fails_over_in_order_and_every_result_is_in_one_store(fleet: Fleet) -> None:
    a = fleet.collector(name="collector-a", lost_after="3s").start()
    b = fleet.collector(name="collector-b", lost_after="3s").start()
    a.wait_healthy()
    b.wait_healthy()
    agent = fleet.agent(AGENT, [a.grpc, b.grpc], steady_pack()).start()
    wait_for(lambda: a.high_water(AGENT) > 20, timeout=30, what="the agent streaming to the first address")
    assert b.agent(AGENT) is None, "the agent connected to the second collector while the first was up"

    a.stop()
    wait_for(lambda: connected(b) and b.high_water(AGENT) > 20, timeout=30,
             what="the agent failed over to collector-b")
    a.start()
    a.wait_healthy()
    # collector-a comes back: the agent stays where it is (it moves only when its collector fails), so for
    # collector-a the agent is silent and, after lost_after, lost.
    wait_for(lambda: any(i["agent_id"] == AGENT for i in a.get("/api/v1/incidents?status=open")), timeout=30,
             what="collector-a reporting the agent lost")
    assert connected(b)

    b.stop()
    back = a.high_water(AGENT)
    wait_for(lambda: connected(a) and a.high_water(AGENT) > back + 20, timeout=30,
             what="the agent back on collector-a")
    agent.stop()

    b.start()
    b.wait_healthy()
    stored = {c.name: [r["seq"] for r in c.results(AGENT)] for c in (a, b)}
    for name, seqs in stored.items():
        assert len(seqs) == len(set(seqs)), f"{name} stored some results twice"
    union = set(stored["collector-a"]) | set(stored["collector-b"])
    top = max(union)
    missing = sorted(set(range(1, top + 1)) - union)
    assert not missing, f"{len(missing)} results in neither store, e.g. {missing[:10]}"
    assert stored["collector-b"], "collector-b stored nothing while the agent streamed to it"
