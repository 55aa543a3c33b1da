"""The state engine's incident decisions with an injected clock: raise/clear, for_s, flapping on and off,
dependencies on a parent check, a lost agent's stale series and silent children, ended series, resolve by hand."""

from __future__ import annotations

from collections.abc import Sequence

from checks.result import Status
from collector.events import (
    AgentHello,
    CheckRule,
    FlappingChange,
    IncidentAction,
    IncidentOpen,
    IncidentResolve,
    IncidentUpdate,
    SeriesStale,
)
from collector.incidents import AGENT_LOST, AGENT_LOST_CHECK, IncidentPolicy
from collector.silences import Silence, SilenceSet
from collector.state import StateEngine
from collector.workdays import WorkingCalendar
from protos import patrol_pb2
from tests.unit.incidents.test_workdays import at

T0 = at("2026-12-02 10:00")
CAL = WorkingCalendar.load()


class Agent:
    """One agent on a fresh engine; `send` applies results taken at `t` and returns the incident actions."""

    def __init__(self, rules: Sequence[CheckRule], engine: StateEngine | None = None, agent_id: str = "a") -> None:
        self.engine = engine or StateEngine(policy=IncidentPolicy(CAL))
        self.id = agent_id
        self.seq = 0
        self.engine.hello(AgentHello(agent_id, f"{agent_id}.host", {"system": "HIS"}, [], "", "", 0, list(rules), T0))

    def send(self, t: float, *results: tuple[str, int], target: str = "", key: str = "") -> list[IncidentAction]:
        batch = []
        for check, status in results:
            self.seq += 1
            batch.append(patrol_pb2.Result(seq=self.seq, check_id=check, target=target, key=key, status=status,  # type: ignore[arg-type]
                                           summary=f"{check} {status}", started_unix_ms=int(t * 1000)))
        return self.engine.apply_batch(self.id, batch, t).incidents


def kinds(actions: Sequence[IncidentAction]) -> list[str]:
    return [type(a).__name__ for a in actions]


def test_opens_after_raise_after_and_resolves_after_clear_after() -> None:
    a = Agent([CheckRule("c", raise_after=3, clear_after=2)])
    assert a.send(T0, ("c", 2)) == [] and a.send(T0 + 60, ("c", 1)) == []
    opened = a.send(T0 + 120, ("c", 2))
    assert kinds(opened) == ["IncidentOpen"]
    inc = opened[0]
    assert isinstance(inc, IncidentOpen)
    assert inc.response_due_at == T0 + 120 + 900, "15 minutes, around the clock"
    assert inc.resolution_due_at == at("2026-12-07 10:02"), "medium: 3 working days, over the weekend"
    assert inc.system == "HIS", "from the agent's labels when the check names none"
    assert inc.host == "a.host" and inc.labels["check"] == "c"
    assert a.send(T0 + 180, ("c", 0)) == []
    assert kinds(a.send(T0 + 240, ("c", 0))) == ["IncidentResolve"]


def test_status_changes_update_an_open_incident() -> None:
    a = Agent([CheckRule("c")])
    a.send(T0, ("c", 1))
    update = a.send(T0 + 60, ("c", 2))
    assert kinds(update) == ["IncidentUpdate"] and isinstance(update[0], IncidentUpdate) and update[0].status == 2


def test_for_s_holds_the_incident_until_the_series_has_been_bad_that_long() -> None:
    a = Agent([CheckRule("c", for_s=300)])
    assert a.send(T0, ("c", 2)) == []
    assert a.send(T0 + 120, ("c", 1)) == [], "still bad, 2 minutes"
    assert kinds(a.send(T0 + 300, ("c", 2))) == ["IncidentOpen"], "bad for 5 minutes"
    b = Agent([CheckRule("c", for_s=300)])
    b.send(T0, ("c", 2))
    b.send(T0 + 200, ("c", 0))
    assert b.send(T0 + 400, ("c", 2)) == [], "the clock restarts after an OK result"


def test_flapping_on_holds_the_incident_and_off_resolves_it() -> None:
    a = Agent([CheckRule("c")])
    actions: list[IncidentAction] = []
    t = T0
    for i in range(12):
        t += 60
        actions += a.send(t, ("c", 2 if i % 2 == 0 else 0))
    flaps = [x for x in actions if isinstance(x, FlappingChange)]
    assert flaps and flaps[0].flapping and flaps[0].percent > 30
    after = actions[actions.index(flaps[0]) + 1:]
    assert not [x for x in after if isinstance(x, IncidentResolve)], "while flapping, OK does not resolve"
    reopened = [x for x in after if isinstance(x, IncidentOpen)]
    assert len(reopened) <= 1 and all(x.flapping for x in reopened), \
        "one incident at most, opened flagged flapping (quiet), and it stays open"
    steady: list[IncidentAction] = []
    for _ in range(25):
        t += 60
        steady += a.send(t, ("c", 0))
    stop = [x for x in steady if isinstance(x, FlappingChange)]
    assert stop and not stop[0].flapping and stop[0].percent <= 25
    assert kinds(steady[steady.index(stop[0]):]) == ["FlappingChange", "IncidentResolve"], \
        "the OK series resolves once it stops flapping"


def test_a_child_of_a_failing_parent_check_opens_silent_and_linked() -> None:
    rules = [CheckRule("db.up", "his_db", priority="high"), CheckRule("db.ts", "his_db", parent="db.up")]
    a = Agent(rules)
    a.send(T0, ("db.up", 2), target="his_db")
    child = a.send(T0 + 10, ("db.ts", 3), target="his_db")
    assert isinstance(child[0], IncidentOpen)
    assert child[0].suppressed == "parent check db.up is failing" and child[0].parent_check == "db.up"
    assert child[0].parent_target == "his_db"


def test_a_parent_opening_after_its_children_adopts_them() -> None:
    rules = [CheckRule("db.up", "his_db", raise_after=2), CheckRule("db.ts", "his_db", parent="db.up"),
             CheckRule("db.locks", "his_db", parent="db.up"), CheckRule("db.ts", "lis_db", parent="db.up")]
    a = Agent(rules)
    a.send(T0, ("db.ts", 3), ("db.locks", 3), target="his_db")
    a.send(T0, ("db.ts", 3), target="lis_db")
    a.send(T0 + 10, ("db.up", 2), target="his_db")
    opened = a.send(T0 + 20, ("db.up", 2), target="his_db")
    assert isinstance(opened[0], IncidentOpen) and not opened[0].suppressed
    assert sorted(opened[0].adopt) == [("db.locks", "his_db", ""), ("db.ts", "his_db", "")], \
        "children on the same target only"


def test_a_lost_agent_reads_unknown_with_one_parent_and_silent_children() -> None:
    a = Agent([CheckRule("c1"), CheckRule("c2"), CheckRule("c3")])
    a.send(T0, ("c1", 0), ("c2", 0), ("c3", 2))
    actions = a.engine.lost_agents(T0 + 200, 90.0)
    lost = [x for x in actions if isinstance(x, IncidentOpen) and x.check_id == AGENT_LOST_CHECK]
    assert len(lost) == 1 and lost[0].adopt == (("c3", "", ""),), "the open incident becomes a child"
    stale = [x for x in actions if isinstance(x, SeriesStale)]
    assert sorted(x.check_id for x in stale) == ["c1", "c2", "c3"]
    children = [x for x in actions if isinstance(x, IncidentOpen) and x.check_id != AGENT_LOST_CHECK]
    assert sorted(c.check_id for c in children) == ["c1", "c2"]
    assert all(c.suppressed == AGENT_LOST and c.parent_check == AGENT_LOST_CHECK for c in children)
    views = {v.check_id: v.series for v in a.engine.series_views()}
    assert all(s.latest is not None and s.latest.status == Status.UNKNOWN and s.latest.outcome == "agent_lost"
               and s.stale for s in views.values()), "stale, not OK"
    assert a.engine.lost_agents(T0 + 300, 90.0) == [], "once"
    back = a.send(T0 + 400, ("c1", 0), ("c2", 0), ("c3", 0))
    assert kinds(back) == ["IncidentResolve"] * 4, "agent back, and each child on its fresh OK result"
    assert not any(v.series.stale for v in a.engine.series_views())


def test_an_incident_opened_while_silenced_says_by_which_silence() -> None:
    silences = SilenceSet(CAL)
    silences.replace([Silence(7, {"check": "his.*"}, "once", "ops", "upgrade", T0, T0, T0 + 3600)])
    engine = StateEngine(policy=IncidentPolicy(CAL, silences=silences))
    a = Agent([CheckRule("his.web"), CheckRule("lis.web")], engine)
    opened = a.send(T0 + 60, ("his.web", 2), ("lis.web", 2))
    assert [(x.check_id, x.silence_id) for x in opened if isinstance(x, IncidentOpen)] == [("his.web", 7),
                                                                                            ("lis.web", None)]


def test_resolved_by_hand_while_bad_opens_nothing_until_ok() -> None:
    a = Agent([CheckRule("c")])
    a.send(T0, ("c", 2))
    a.engine.resolved_by_hand("a", "c", "", "")
    assert a.send(T0 + 60, ("c", 2)) == []
    assert a.send(T0 + 120, ("c", 0)) == []
    assert kinds(a.send(T0 + 180, ("c", 2))) == ["IncidentOpen"]


def test_a_check_removed_by_reload_ends_its_series_and_incident() -> None:
    a = Agent([CheckRule("c"), CheckRule("d")])
    a.send(T0, ("c", 2))
    effects = a.engine.hello(AgentHello("a", "a.host", {}, [], "", "", 0, [CheckRule("d")], T0 + 60))
    assert effects.ended == [("c", "")]
    assert [(x.check_id, x.summary) for x in effects.incidents if isinstance(x, IncidentResolve)] == [
        ("c", "check removed from the agent's packs")]
