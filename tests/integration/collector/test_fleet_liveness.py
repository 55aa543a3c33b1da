"""The lost-agent check at fleet size, and two collectors sharing one store, against a real SQLite store."""

from __future__ import annotations

from collector.events import AgentHeartbeat, AgentHello, IncidentAction, IncidentOpen, IncidentResolve
from collector.sqlstore import SqlStore
from collector.state import AgentLiveness, StateEngine

LOST_AFTER = 90.0
T0 = 1_800_000_000.0


def hello(engine: StateEngine, store: SqlStore, agent_id: str, at: float) -> None:
    h = AgentHello(agent_id, f"{agent_id}.local", {"site": "main"}, [], "0.1", "linux", 0, [], at)
    engine.hello(h)
    with store.transaction() as tx:
        tx.write_hello(h)


def beat(engine: StateEngine, store: SqlStore, agent_id: str, at: float) -> list[IncidentAction]:
    b = AgentHeartbeat(agent_id, 0, 0, 0, at)
    actions = engine.heartbeat(b)
    with store.transaction() as tx:
        tx.write_heartbeat(b)
        tx.write_incident_actions(actions)
    return actions


def check(engine: StateEngine, store: SqlStore, now: float) -> list[IncidentAction]:
    """What Collector.check_lost_agents does: the store's rows, the engine's decision, the actions committed."""
    rows = [AgentLiveness(*row) for row in store.agent_liveness(now - LOST_AFTER)]
    actions = engine.lost_agents(now, LOST_AFTER, rows)
    with store.transaction() as tx:
        tx.write_incident_actions(actions)
    return actions


def opened(actions: list[IncidentAction]) -> list[str]:
    return sorted(a.agent_id for a in actions if isinstance(a, IncidentOpen) and a.kind == "agent_lost")


def lost_open(store: SqlStore) -> list[str]:
    return sorted(r["agent_id"] for r in store.list_incidents("active", 10_000, {}) if r["kind"] == "agent_lost")


def test_a_thousand_agents_only_the_silent_ones_are_lost_and_the_store_reads_only_them(store: SqlStore) -> None:
    engine = StateEngine()
    fleet = [f"ward-{n:04d}" for n in range(1000)]
    for agent_id in fleet:
        hello(engine, store, agent_id, T0)
    silent = fleet[::100]
    for agent_id in fleet:
        if agent_id not in silent:
            beat(engine, store, agent_id, T0 + 80)
    assert check(engine, store, T0 + 85) == []
    assert opened(check(engine, store, T0 + 91)) == silent
    assert sorted(r[0] for r in store.agent_liveness(T0 + 91 - LOST_AFTER)) == silent, \
        "the store answers with the silent agents only, not the fleet"
    assert check(engine, store, T0 + 120) == [], "one incident per lost agent"
    assert lost_open(store) == silent
    back = beat(engine, store, silent[0], T0 + 130)
    assert [type(a) for a in back] == [IncidentResolve]
    assert lost_open(store) == silent[1:]
    assert check(engine, store, T0 + 140) == []


def test_an_agent_streaming_to_the_other_collector_of_the_store_is_not_lost(store: SqlStore) -> None:
    here, there = StateEngine(), StateEngine()
    hello(here, store, "his-app-01", T0)
    hello(there, store, "pacs-01", T0)
    here.restore(store.load_snapshot(), T0)
    there.restore(store.load_snapshot(), T0)
    for minute in range(1, 6):  # each agent streams to one collector only; both collectors check
        now = T0 + 60 * minute
        beat(here, store, "his-app-01", now)
        beat(there, store, "pacs-01", now)
        assert check(here, store, now + 1) == [], "pacs-01 is seen by the other collector"
        assert check(there, store, now + 1) == [], "his-app-01 is seen by the other collector"
    assert not here.agents["pacs-01"].lost and not there.agents["his-app-01"].lost
    stop = T0 + 300  # pacs-01 stops; his-app-01 goes on
    beat(here, store, "his-app-01", stop + 60)
    assert opened(check(here, store, stop + 91)) == ["pacs-01"], "silent everywhere: lost"
    assert check(there, store, stop + 92) == [], "the incident is open already: not a second one"
    assert lost_open(store) == ["pacs-01"]
    back = beat(there, store, "pacs-01", stop + 100)
    assert [type(a) for a in back] == [IncidentResolve]
    assert lost_open(store) == []
    assert opened(check(here, store, stop + 110)) == [] and not here.agents["pacs-01"].lost


def test_an_agent_lost_before_a_restart_is_neither_resolved_nor_opened_again(store: SqlStore) -> None:
    engine = StateEngine()
    hello(engine, store, "his-app-01", T0)
    assert opened(check(engine, store, T0 + 91)) == ["his-app-01"]
    restarted = StateEngine()
    restarted.restore(store.load_snapshot(), T0 + 500)
    assert restarted.agents["his-app-01"].lost
    assert check(restarted, store, T0 + 510) == []
    assert lost_open(store) == ["his-app-01"]


def test_many_checks_of_a_quiet_fleet_look_at_no_agent_between_deadlines() -> None:
    engine = StateEngine()
    for n in range(200):
        engine.heartbeat(AgentHeartbeat(f"ward-{n:03d}", 0, 0, 0, T0))
    assert engine.lost_agents(T0 + 10, LOST_AFTER, []) == []
    assert len(engine._liveness) == 200 and not engine._silent
    for n in range(200):
        engine.heartbeat(AgentHeartbeat(f"ward-{n:03d}", 0, 0, 0, T0 + 60))
    assert engine.lost_agents(T0 + 80, LOST_AFTER, []) == []
    assert len(engine._liveness) == 200, "a frame does not add heap entries; a due entry is filed again once"
    assert engine.lost_agents(T0 + 95, LOST_AFTER, []) == []
    assert len(engine._liveness) == 200 and not engine._silent
