"""State engine: transitions, incident rules (raise_after/clear_after), dedupe by high-water mark, agent lost."""

from __future__ import annotations

from collector.events import AgentHello, CheckRule, IncidentOpen, IncidentResolve, IncidentUpdate
from collector.state import AgentLiveness, StateEngine
from collector.store import AgentRecord, OpenIncidentRecord, SeriesRecord, StoreSnapshot
from protos import patrol_pb2

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3


def hello(engine: StateEngine, *rules: CheckRule, agent: str = "his-app-01", at: float = 1000.0) -> None:
    engine.hello(AgentHello(agent, "his-app-01.local", {"site": "main"}, [], "0.1", "linux", 0, list(rules), at))


def result(seq: int, status: int, check: str = "his.disk", key: str = "/data", **kw: object) -> patrol_pb2.Result:
    return patrol_pb2.Result(seq=seq, check_id=check, key=key, status=status, summary=f"s{seq}",  # type: ignore[arg-type]
                             **kw)


def apply(engine: StateEngine, *statuses: int, start: int = 1, agent: str = "his-app-01", now: float = 2000.0):  # type: ignore[no-untyped-def]
    return engine.apply_batch(agent, [result(start + i, s) for i, s in enumerate(statuses)], now)


def test_first_result_is_a_transition_from_nothing_and_unchanged_results_are_not() -> None:
    engine = StateEngine()
    hello(engine, CheckRule("his.disk"))
    eff = apply(engine, OK, OK, OK)
    assert [(t.from_status, t.to_status, t.seq) for t in eff.transitions] == [(None, OK, 1)]
    assert eff.incidents == []
    assert eff.accepted == 3 and eff.high_water_seq == 3
    s = engine.agents["his-app-01"].series[("his.disk", "", "/data")]
    assert s.latest is not None and s.latest.seq == 3


def test_incident_opens_after_raise_after_bad_results_and_resolves_after_clear_after_ok() -> None:
    engine = StateEngine()
    hello(engine, CheckRule("his.disk", title="Data disk", priority="high", system="HIS", raise_after=3, clear_after=2))
    eff = apply(engine, OK, CRITICAL, CRITICAL)
    assert eff.incidents == []
    eff = apply(engine, CRITICAL, start=4)
    assert len(eff.incidents) == 1
    opened = eff.incidents[0]
    assert isinstance(opened, IncidentOpen)
    assert (opened.priority, opened.system, opened.status, opened.kind) == ("high", "HIS", CRITICAL, "check")
    assert opened.title == "Data disk CRITICAL on his-app-01 /data"
    assert opened.response_due_at == opened.at + 15 * 60
    eff = apply(engine, CRITICAL, OK, start=5)
    assert eff.incidents == []
    eff = apply(engine, OK, start=7)
    assert [type(a) for a in eff.incidents] == [IncidentResolve]


def test_one_open_incident_per_series_and_status_change_updates_it() -> None:
    engine = StateEngine()
    hello(engine, CheckRule("his.disk"))
    eff = apply(engine, WARNING, WARNING, CRITICAL, CRITICAL, UNKNOWN)
    kinds = [type(a) for a in eff.incidents]
    assert kinds == [IncidentOpen, IncidentUpdate, IncidentUpdate]
    assert [t.to_status for t in eff.transitions] == [WARNING, CRITICAL, UNKNOWN]


def test_a_bad_streak_broken_by_ok_starts_counting_again() -> None:
    engine = StateEngine()
    hello(engine, CheckRule("his.disk", raise_after=2))
    assert apply(engine, CRITICAL, OK, CRITICAL, OK).incidents == []
    assert [type(a) for a in apply(engine, CRITICAL, CRITICAL, start=5).incidents] == [IncidentOpen]


def test_unknown_is_bad_never_ok() -> None:
    engine = StateEngine()
    hello(engine, CheckRule("his.db.ping"))
    eff = engine.apply_batch("his-app-01", [result(1, UNKNOWN, check="his.db.ping", key="")], 1.0)
    assert isinstance(eff.incidents[0], IncidentOpen) and eff.incidents[0].status == UNKNOWN


def test_undeclared_check_gets_default_rules() -> None:
    engine = StateEngine()
    hello(engine)
    eff = engine.apply_batch("his-app-01", [result(1, CRITICAL, check="not.declared")], 1.0)
    assert isinstance(eff.incidents[0], IncidentOpen) and eff.incidents[0].priority == "medium"


def test_dedupe_drops_seqs_at_or_below_the_high_water_mark() -> None:
    engine = StateEngine()
    hello(engine, CheckRule("his.disk"))
    apply(engine, OK, OK, OK, OK, OK)
    whole = apply(engine, CRITICAL, CRITICAL, start=2)
    assert (whole.accepted, whole.duplicates, whole.incidents, whole.high_water_seq) == (0, 2, [], 5)
    part = apply(engine, OK, OK, CRITICAL, start=4)
    assert (part.accepted, part.duplicates, part.high_water_seq) == (1, 2, 6)
    assert [t.seq for t in part.transitions] == [6]
    assert engine.agents["his-app-01"].duplicates_total == 4


def test_reload_after_a_failed_commit_takes_the_store_s_word() -> None:
    engine = StateEngine()
    hello(engine, CheckRule("his.disk"))
    apply(engine, OK, OK)
    eff = apply(engine, CRITICAL, start=3)
    assert eff.from_seq == 2 and eff.incidents, "memory opened an incident the store never got"
    snap = StoreSnapshot(agents=[AgentRecord("his-app-01", "h", {}, 2, 3, 0, 0, 100.0)],
                         rules={"his-app-01": [CheckRule("his.disk")]},
                         series=[SeriesRecord("his-app-01", "his.disk", "", "/data", OK, 90.0)])
    engine.reload_agent("his-app-01", snap, 200.0)
    resent = apply(engine, CRITICAL, start=3)
    assert (resent.accepted, resent.from_seq) == (1, 2)
    assert [type(a) for a in resent.incidents] == [IncidentOpen]


def test_agent_lost_after_silence_and_resolved_when_it_comes_back() -> None:
    engine = StateEngine()
    hello(engine, at=1000.0)
    assert engine.lost_agents(1089.0, 90.0) == []
    lost = engine.lost_agents(1091.0, 90.0)
    assert len(lost) == 1 and isinstance(lost[0], IncidentOpen)
    assert (lost[0].kind, lost[0].priority, lost[0].check_id) == ("agent_lost", "high", "agent.lost")
    assert lost[0].title == "Agent his-app-01 (his-app-01.local) lost"
    assert engine.lost_agents(2000.0, 90.0) == [], "one incident while it stays lost"
    back = engine.apply_batch("his-app-01", [result(1, OK)], 2001.0)
    assert [type(a) for a in back.incidents] == [IncidentResolve]
    assert back.incidents[0].check_id == "agent.lost"


def test_agent_lost_agrees_with_other_collectors_through_the_store() -> None:
    engine = StateEngine()
    hello(engine, at=1000.0)
    elsewhere = [AgentLiveness("his-app-01", "h", 1080.0, False), AgentLiveness("pacs-01", "pacs", 900.0, False),
                 AgentLiveness("lis-01", "lis", 1095.0, True)]
    actions = engine.lost_agents(1100.0, 90.0, elsewhere)
    assert [(type(a).__name__, a.agent_id) for a in actions] == [
        ("IncidentOpen", "pacs-01"), ("IncidentResolve", "lis-01")], \
        "his-app-01 streams to another collector; pacs-01 is silent everywhere; lis-01 came back elsewhere"
    assert not engine.agents["his-app-01"].lost


def test_findings_are_collected_only_for_findings_kinds() -> None:
    engine = StateEngine()
    hello(engine, CheckRule("db.top_sql", target="his_db", kind="sql.findings", labels={"engine": "oracle"}),
          CheckRule("his.disk", kind="host.disk"))
    finding = patrol_pb2.Finding(fingerprint="sql_id:abc", title="Slow SQL", evidence={"elapsed_s": 12.5})
    rs = [patrol_pb2.Result(seq=1, check_id="db.top_sql", target="his_db", status=0, findings=[finding]),
          patrol_pb2.Result(seq=2, check_id="his.disk", key="/", status=0, findings=[finding])]
    eff = engine.apply_batch("his-app-01", rs, 5.0)
    assert [(f.check_id, f.target, f.engine, f.finding.fingerprint) for f in eff.findings] == [
        ("db.top_sql", "his_db", "oracle", "sql_id:abc")]


def test_history_all_keeps_every_accepted_result() -> None:
    engine = StateEngine(history_all=True)
    hello(engine)
    assert [r.seq for r in apply(engine, OK, OK).history] == [1, 2]


def test_restore_rebuilds_marks_statuses_and_open_incidents() -> None:
    engine = StateEngine()
    snap = StoreSnapshot(
        agents=[AgentRecord("a", "a.local", {}, 42, 50, 8, 0, 100.0)],
        rules={"a": [CheckRule("his.disk", clear_after=1)]},
        series=[SeriesRecord("a", "his.disk", "", "/data", CRITICAL, 90.0)],
        open_incidents=[OpenIncidentRecord("check", "a", "his.disk", "", "/data"),
                        OpenIncidentRecord("agent_lost", "a", "agent.lost", "", "")])
    engine.restore(snap, 500.0)
    a = engine.agents["a"]
    assert (a.stored_seq, a.accepted_seq, a.lost) == (42, 42, True)
    eff = engine.apply_batch("a", [result(43, CRITICAL)], 501.0)
    assert eff.transitions == [] and eff.duplicates == 0
    assert [a_.check_id for a_ in eff.incidents] == ["agent.lost"], "no second incident for the open series"
    eff = engine.apply_batch("a", [result(44, OK)], 502.0)
    assert [type(x) for x in eff.incidents] == [IncidentResolve]


def test_a_check_the_hello_no_longer_declares_ends_its_series_and_incidents() -> None:
    """A reload removed the check from the agent's packs: nothing of it may stay open or orphaned."""
    engine = StateEngine()
    hello(engine, CheckRule("his.disk"), CheckRule("his.load"))
    apply(engine, CRITICAL, CRITICAL)
    engine.apply_batch("his-app-01", [result(3, OK, check="his.load", key="")], 2000.0)
    effects = engine.hello(AgentHello("his-app-01", "h", {}, [], "0.1", "linux", 3, [CheckRule("his.load")], 3000.0))
    assert effects.ended == [("his.disk", "")]
    [resolved] = effects.incidents
    assert isinstance(resolved, IncidentResolve)
    assert (resolved.check_id, resolved.key, resolved.status, resolved.summary, resolved.at) == (
        "his.disk", "/data", CRITICAL, "check removed from the agent's packs", 3000.0)
    assert set(engine.agents["his-app-01"].series) == {("his.load", "", "")}


def test_results_of_a_removed_check_still_in_flight_do_not_revive_it() -> None:
    engine = StateEngine()
    hello(engine, CheckRule("his.disk"), CheckRule("his.load"))
    apply(engine, OK)
    hello(engine, CheckRule("his.load"))
    eff = engine.apply_batch("his-app-01", [result(2, CRITICAL), result(3, OK, check="his.load", key="")], 2000.0)
    assert eff.incidents == [] and eff.high_water_seq == 3 and eff.accepted == 2
    assert set(engine.agents["his-app-01"].series) == {("his.load", "", "")}
    hello(engine, CheckRule("his.disk"), CheckRule("his.load"))
    eff = engine.apply_batch("his-app-01", [result(4, CRITICAL)], 2000.0)
    assert [type(a) for a in eff.incidents] == [IncidentOpen], "declared again, it is watched again"


def test_an_undeclared_series_is_left_alone_by_a_hello() -> None:
    engine = StateEngine()
    hello(engine)
    apply(engine, CRITICAL)
    effects = engine.hello(
        AgentHello("his-app-01", "h", {}, [], "0.1", "linux", 1, [], 3000.0))
    assert effects.ended == [] and effects.incidents == []
    assert ("his.disk", "", "/data") in engine.agents["his-app-01"].series
