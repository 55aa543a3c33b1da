"""A target that refused a connection is not asked again by every check: the others report the failure for
RECONNECT_HOLDOFF_S, the reachability check always tries and its success lets them reconnect at once."""

from __future__ import annotations

from typing import Any

import pytest

from checks.context import RunContext
from checks.result import Outcome, Status
from checks.sql import dialects, session
from checks.sql.kinds import SqlMetric, SqlReachable
from checks.sql.target import Target

TARGET = Target.model_validate({"name": "his", "dialect": "postgres", "host": "127.0.0.1", "port": 1})


def test_one_refused_connect_is_reported_by_the_others_without_trying(monkeypatch: pytest.MonkeyPatch) -> None:
    attempts: list[str] = []

    def refuse(target: Target, password: str | None, timeout: float) -> Any:
        attempts.append(target.name)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(dialects, "open_connection", refuse)
    monkeypatch.setattr(session, "open_connection", refuse)
    ctx = RunContext(targets={"his": TARGET})
    up = SqlReachable.model_validate({"id": "pg.reachable", "target": "his"})
    other = SqlMetric.model_validate({"id": "pg.connections", "target": "his", "parent": "pg.reachable",
                                      "query": {"postgres": "SELECT 1 AS value"}})
    (down,) = up.probe(ctx)
    assert (down.status, down.outcome) == (Status.CRITICAL, Outcome.CONNECTION_REFUSED)
    assert "his cannot be reached (connection_refused)" in down.summary
    for _ in range(3):
        (r,) = other.probe(ctx)
        assert (r.status, r.outcome) == (Status.UNKNOWN, Outcome.CONNECTION_REFUSED)
        assert "unreachable: see pg.reachable" in r.summary and "connection attempt" in r.summary
    assert attempts == ["his"], "only the reachability check knocked"
    up.probe(ctx)
    assert attempts == ["his", "his"], "the reachability check always tries"
    session.note_reachability(ctx, "his", None)
    other.probe(ctx)
    assert attempts == ["his", "his", "his"], "after a success the others reconnect at once"
