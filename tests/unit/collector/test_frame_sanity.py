"""Frame sanity in the state engine: what a broken or hostile agent sends is refused before it changes anything,
what a real agent may send by accident is clamped and counted; a reinstalled agent restarts its seqs."""

from __future__ import annotations

import math

import pytest

from collector.events import AgentHello, CheckRule, IncidentOpen, IncidentResolve
from collector.ingest import catalogue_audit, hello_record
from collector.sanity import MAX_SEQ, TRUNCATED, FrameRefused, check_hello
from collector.state import Limits, StateEngine
from protos import patrol_pb2

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
AGENT = "his-app-01"


def hello(engine: StateEngine, *rules: CheckRule, last_seq: int = 0, incarnation: str = "a1", at: float = 1000.0):  # type: ignore[no-untyped-def]
    return engine.hello(AgentHello(AGENT, "host", {}, [], "0.1", "linux", last_seq, list(rules), at, incarnation))


def result(seq: int, status: int = OK, check: str = "his.disk", key: str = "/data", **kw: object) -> patrol_pb2.Result:
    kw.setdefault("summary", f"s{seq}")
    return patrol_pb2.Result(seq=seq, check_id=check, key=key, status=status, **kw)  # type: ignore[arg-type]


def batch(engine: StateEngine, *results: patrol_pb2.Result, now: float = 2000.0):  # type: ignore[no-untyped-def]
    return engine.apply_batch(AGENT, list(results), now)


def refused(engine: StateEngine, *results: patrol_pb2.Result) -> FrameRefused:
    before = engine.agents[AGENT].accepted_seq, dict(engine.agents[AGENT].series)
    with pytest.raises(FrameRefused) as info:
        batch(engine, *results)
    after = engine.agents[AGENT].accepted_seq, dict(engine.agents[AGENT].series)
    assert after == before, "a refused frame changed the engine"
    return info.value


def test_out_of_order_batch_is_refused_whole_regression_ack_at_5_lost_100() -> None:
    engine = StateEngine()
    hello(engine, CheckRule("his.disk"), last_seq=100)
    exc = refused(engine, result(100), result(5))
    assert exc.reason == "seq_order" and "strictly increase" in str(exc)
    exc = refused(engine, result(7), result(7))
    assert exc.reason == "seq_order"
    eff = batch(engine, result(5), result(100))
    assert eff.high_water_seq == 100


def test_seq_jump_beyond_the_spool_is_refused_and_the_real_agent_goes_on() -> None:
    engine = StateEngine(limits=Limits(max_seq_ahead=1000))
    hello(engine, CheckRule("his.disk"), last_seq=10)
    batch(engine, result(1), result(2))
    for seq in (10**12, 2**63 - 1, MAX_SEQ + 1):
        exc = refused(engine, result(seq, CRITICAL, summary="ransomware detected"))
        assert exc.reason == "seq_ahead"
    assert engine.agents[AGENT].accepted_seq == 2
    eff = batch(engine, result(3), result(4))
    assert eff.accepted == 2 and eff.high_water_seq == 4 and eff.incidents == []


def test_a_forged_last_seq_does_not_widen_the_window_beyond_one_spool() -> None:
    engine = StateEngine(limits=Limits(max_seq_ahead=1000))
    hello(engine, CheckRule("his.disk"), last_seq=10**12)
    assert engine.seq_ceiling(AGENT) <= 2000
    refused(engine, result(10**12))


def test_status_outside_the_enum_is_left_out_and_opens_nothing_regression_status_minus_one() -> None:
    engine = StateEngine(history_all=True)
    hello(engine, CheckRule("his.disk"))
    eff = batch(engine, result(1, -1, key="/new"), result(2, 99, key="/new2"))
    assert engine.agents[AGENT].series == {} and eff.incidents == [] and eff.clamped == {"status": 2}
    assert eff.history == [] and eff.high_water_seq == 2
    batch(engine, result(3, CRITICAL))
    eff = batch(engine, result(4, -1), result(5, 7), result(6, CRITICAL))
    s = engine.agents[AGENT].series[("his.disk", "", "/data")]
    assert s.status == CRITICAL and s.latest is not None and s.latest.seq == 6
    assert eff.clamped == {"status": 2} and [r.seq for r in eff.history] == [6]
    assert engine.sanity.clamped["status"] == 4


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_value_is_dropped_with_its_text_kept_and_counted(value: float) -> None:
    engine = StateEngine()
    hello(engine, CheckRule("his.disk"))
    eff = batch(engine, result(1, WARNING, value=value))
    r = engine.agents[AGENT].series[("his.disk", "", "/data")].latest
    assert r is not None and not r.HasField("value")
    assert repr(value) in r.summary and "not a finite number" in r.summary
    assert eff.transitions[0].value is None
    assert engine.sanity.clamped["non_finite_value"] == 1


def test_long_summary_is_cut_to_the_limit() -> None:
    engine = StateEngine(limits=Limits(max_summary_chars=100))
    hello(engine, CheckRule("his.disk"))
    batch(engine, result(1, summary="x" * 15_000_000))
    r = engine.agents[AGENT].series[("his.disk", "", "/data")].latest
    assert r is not None and r.summary == "x" * 100 + TRUNCATED
    assert engine.sanity.clamped["summary"] == 1


@pytest.mark.parametrize("check,key", [("his.disk\r\nforged 1", ""), ("his disk", ""), ("x" * 200, ""),
                                       ("his.disk", "a\x00b"), ("his.disk", "line\nbreak"), ("his.disk", "k" * 300),
                                       ("", "")])
def test_unsafe_ids_never_make_a_series(check: str, key: str) -> None:
    engine = StateEngine()
    hello(engine, CheckRule("his.disk"))
    eff = batch(engine, result(1, CRITICAL, check=check, key=key), result(2, OK))
    assert set(engine.agents[AGENT].series) == {("his.disk", "", "/data")}
    assert eff.clamped == {"unsafe_id": 1} and eff.incidents == []
    assert eff.high_water_seq == 2


def test_unicode_keys_are_fine() -> None:
    engine = StateEngine()
    hello(engine, CheckRule("his.tbs"))
    batch(engine, result(1, check="his.tbs", key="用户表空间 USERS"))
    assert ("his.tbs", "", "用户表空间 USERS") in engine.agents[AGENT].series


def test_series_cap_per_agent_regression_100000_series_flood() -> None:
    engine = StateEngine(limits=Limits(max_series_per_agent=50))
    hello(engine, CheckRule("flood"))
    eff = batch(engine, *(result(i + 1, CRITICAL, check="flood", key=f"k{i}") for i in range(1000)))
    a = engine.agents[AGENT]
    assert len(a.series) == 50 and a.series_capped == 950
    assert eff.clamped == {"series_cap": 950}
    assert len([i for i in eff.incidents if isinstance(i, IncidentOpen)]) == 50
    eff = batch(engine, result(1001, OK, check="flood", key="k0"))
    assert eff.accepted == 1


def test_new_incarnation_restarts_the_seqs_regression_reinstalled_agent_dropped_97_results() -> None:
    engine = StateEngine(history_all=True)
    hello(engine, CheckRule("his.disk"), last_seq=500, incarnation="old")
    batch(engine, *(result(i) for i in range(1, 501)))
    engine.committed(AGENT, 500)
    eff = hello(engine, CheckRule("his.disk"), last_seq=97, incarnation="new")
    assert eff.new_incarnation and eff.previous_incarnation == "old" and eff.seq_base == 500
    a = engine.agents[AGENT]
    assert (a.accepted_seq, a.stored_seq) == (0, 0)
    eff = batch(engine, *(result(i, CRITICAL if i == 97 else OK) for i in range(1, 98)))
    assert eff.accepted == 97 and eff.duplicates == 0 and eff.from_seq == 0 and eff.seq_base == 500
    assert [t.seq for t in eff.transitions] == [597], "history numbers the new incarnation after the old one"


def test_same_incarnation_reconnecting_keeps_its_mark() -> None:
    engine = StateEngine()
    hello(engine, CheckRule("his.disk"), last_seq=3, incarnation="same")
    batch(engine, result(1), result(2), result(3))
    eff = hello(engine, CheckRule("his.disk"), last_seq=3, incarnation="same")
    assert not eff.new_incarnation and engine.agents[AGENT].accepted_seq == 3


def test_first_incarnation_of_a_known_agent_from_an_older_version_is_adopted_without_a_restart() -> None:
    engine = StateEngine()
    hello(engine, CheckRule("his.disk"), last_seq=3, incarnation="")
    batch(engine, result(1), result(2), result(3))
    eff = hello(engine, CheckRule("his.disk"), last_seq=3, incarnation="fresh")
    assert not eff.new_incarnation and engine.agents[AGENT].accepted_seq == 3


def test_rule_changes_are_reported_and_cannot_resolve_an_open_incident_early() -> None:
    engine = StateEngine()
    hello(engine, CheckRule("his.disk", raise_after=1, clear_after=3))
    eff = batch(engine, result(1, CRITICAL))
    assert [type(i) for i in eff.incidents] == [IncidentOpen]
    eff = hello(engine, CheckRule("his.disk", raise_after=1000, clear_after=1, priority="low"), incarnation="a1")
    assert {(c.field, c.old, c.new) for c in eff.rule_changes} == {
        ("raise_after", "1", "1000"), ("clear_after", "3", "1"), ("priority", "medium", "low")}
    audit = catalogue_audit(AgentHello(AGENT, "host", {}, [], "", "", 0, [], 1.0, "a1"), eff, "cert:ab", "peer")
    assert audit is not None and audit.action == "agent.catalogue" and len(audit.detail["rules"]) == 3
    eff = batch(engine, result(2, OK))
    assert eff.incidents == [], "one OK resolved an incident that needed three"
    eff = batch(engine, result(3, OK), result(4, OK))
    assert [type(i) for i in eff.incidents] == [IncidentResolve]


def test_the_first_catalogue_is_no_change() -> None:
    engine = StateEngine()
    eff = hello(engine, CheckRule("his.disk"), CheckRule("his.cpu"))
    assert eff.rule_changes == [] and eff.added == []
    assert catalogue_audit(AgentHello(AGENT, "h", {}, [], "", "", 0, [], 1.0), eff, "cert:1", "p") is None


def test_raise_after_from_the_wire_is_bounded() -> None:
    msg = patrol_pb2.Hello(agent_id=AGENT, checks=[patrol_pb2.CheckInfo(id="c", raise_after=4_000_000_000)])
    assert hello_record(msg, 1.0).checks[0].raise_after == 10_000


@pytest.mark.parametrize("msg,needle", [
    (patrol_pb2.Hello(agent_id="bad id\n"), "agent id"),
    (patrol_pb2.Hello(agent_id=""), "agent id"),
    (patrol_pb2.Hello(agent_id="a", last_seq=2**63), "last_seq"),
    (patrol_pb2.Hello(agent_id="a", hostname="h\x00"), "hostname"),
    (patrol_pb2.Hello(agent_id="a", labels={"site": "x" * 1000}), "label"),
    (patrol_pb2.Hello(agent_id="a", labels={f"l{i}": "v" for i in range(100)}), "labels"),
    (patrol_pb2.Hello(agent_id="a", checks=[patrol_pb2.CheckInfo(id="c\r\n")]), "check id"),
    (patrol_pb2.Hello(agent_id="a", checks=[patrol_pb2.CheckInfo(id="c", title="t" * 5000)]), "title"),
    (patrol_pb2.Hello(agent_id="a", incarnation="x y"), "incarnation"),
])
def test_hello_sanity(msg: patrol_pb2.Hello, needle: str) -> None:
    with pytest.raises(FrameRefused) as info:
        check_hello(msg)
    assert needle in str(info.value) and info.value.reason == "hello"


def test_a_real_hello_passes() -> None:
    check_hello(patrol_pb2.Hello(agent_id="his-app-01", hostname="his-app-01.local", labels={"site": "main"},
                                 roles=["his-app"], incarnation="0123456789abcdef",
                                 checks=[patrol_pb2.CheckInfo(id="his.disk", target="his_db", title="数据盘",
                                                              labels={"engine": "oracle"})]))
