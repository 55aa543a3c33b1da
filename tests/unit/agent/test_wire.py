"""Result <-> protobuf round trip, and the Hello/CheckInfo the collector learns the checks from."""

from __future__ import annotations

from agent.wire import build_hello, check_info, result_from_proto, result_to_proto
from checks.agent_self import AgentSpool
from checks.result import Finding, Outcome, Result, Status
from protos import patrol_pb2


def test_round_trip_keeps_every_field() -> None:
    r = Result(
        check_id="his.db.top_sql", status=Status.WARNING, summary="3 statements", target="his_db", key="HISPDB",
        value=3.0, unit="statements", outcome=Outcome.OK, metrics={"elapsed_s": 12.5}, started_at=1_763_000_000.123,
        duration_ms=42.25,
        findings=[Finding(fingerprint="abc123", title="slow", object="T1", recommendation="index", sql_text="SELECT ?",
                          evidence={"executions": 10.0}, attributes={"sql_id": "abc123"})],
    )
    msg = patrol_pb2.Result.FromString(result_to_proto(r, seq=7).SerializeToString())
    assert msg.seq == 7
    back = result_from_proto(msg)
    assert back == r


def test_none_value_stays_none_and_zero_stays_zero() -> None:
    none = result_from_proto(result_to_proto(Result(check_id="a", status=Status.UNKNOWN, outcome=Outcome.TIMEOUT)))
    zero = result_from_proto(result_to_proto(Result(check_id="a", status=Status.OK, value=0.0)))
    assert none.value is None
    assert none.outcome is Outcome.TIMEOUT
    assert zero.value == 0.0


def test_unknown_outcome_reads_as_internal_error() -> None:
    msg = result_to_proto(Result(check_id="a", status=Status.UNKNOWN))
    msg.outcome = "from_the_future"
    assert result_from_proto(msg).outcome is Outcome.INTERNAL_ERROR


def test_check_info_and_hello() -> None:
    spec = AgentSpool(id="db.spool", kind="agent.spool", title="Spool", target="his_db", system="HIS",
                      priority="high", raise_after=3, clear_after=2, interval=30.0, runbook="call the DBA",
                      labels={"team": "dba"})
    cron = AgentSpool(id="daily", kind="agent.spool", schedule="30 7 * * *")
    targets = {"his_db": {"dialect": "oracle"}}
    info = check_info(spec, targets)
    assert (info.id, info.title, info.kind, info.target, info.system, info.priority) == (
        "db.spool", "Spool", "agent.spool", "his_db", "HIS", "high")
    assert (info.raise_after, info.clear_after, info.interval_s, info.runbook) == (3, 2, 30, "call the DBA")
    assert dict(info.labels) == {"team": "dba", "engine": "oracle"}
    daily = check_info(cron, targets)
    assert (daily.interval_s, daily.schedule, daily.title, dict(daily.labels)) == (0, "30 7 * * *", "daily", {})
    hello = build_hello(agent_id="a1", labels={"site": "main"}, roles=["his-app"], specs=[spec, cron],
                        targets=targets, last_seq=41)
    assert (hello.agent_id, dict(hello.labels), list(hello.roles), hello.last_seq) == ("a1", {"site": "main"},
                                                                                      ["his-app"], 41)
    assert [c.id for c in hello.checks] == ["db.spool", "daily"]
    assert hello.hostname and hello.agent_version and hello.platform
