"""The incidents' store on a real SQLite file: the lifecycle and its refusals, reopening, the timeline, children
released by their parent, and the outbox: claimed after the group wait, grouped, skipped with a reason, attempts
recorded."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from collector.events import AgentHello, CheckRule, IncidentAction
from collector.incidents import IncidentPolicy
from collector.lifecycle_rules import IncidentStateError
from collector.notify.config import NotificationsConfig
from collector.sqlstore import SqlStore
from collector.state import StateEngine
from collector.workdays import WorkingCalendar
from protos import patrol_pb2
from tests.unit.incidents.test_workdays import at

T0 = at("2026-12-02 10:00")
CONFIG = NotificationsConfig.model_validate({
    "group_wait": "30s",
    "receivers": [{"name": "oncall", "type": "webhook", "url": "http://x"},
                  {"name": "robot", "type": "dingtalk", "token_env": "X", "max_per_minute": 2}],
    "routes": [{"match": {"system": "LIS"}, "receivers": ["robot"]}, {"receivers": ["oncall"]}],
})


class Fleet:
    def __init__(self, store: SqlStore, rules: Sequence[CheckRule], system: str = "HIS") -> None:
        self.store = store
        self.engine = StateEngine(policy=IncidentPolicy(WorkingCalendar.load()))
        self.seq = 0
        hello = AgentHello("a", "a.host", {"system": system}, [], "", "", 0, list(rules), T0)
        self.engine.hello(hello)
        with store.transaction() as tx:
            tx.write_hello(hello)

    def send(self, t: float, *results: tuple[str, int], target: str = "") -> list[IncidentAction]:
        batch = []
        for check, status in results:
            self.seq += 1
            batch.append(patrol_pb2.Result(seq=self.seq, check_id=check, target=target, status=status,  # type: ignore[arg-type]
                                           summary=f"{check} is {status}", started_unix_ms=int(t * 1000)))
        effects = self.engine.apply_batch("a", batch, t)
        with self.store.transaction() as tx:
            tx.write_batch(effects)
        return effects.incidents

    def act(self, incident_id: int, action: str, t: float, **fields: Any) -> Any:
        with self.store.transaction() as tx:
            return tx.incident_action(incident_id, action, "zhang.san", t, **fields)

    def claim(self, t: float, budgets: dict[str, int | None] | None = None) -> int:
        with self.store.transaction() as tx:
            return tx.claim_outbox(t, CONFIG, budgets or {})

    def events(self, incident_id: int) -> list[str]:
        row = self.store.get_incident(incident_id)
        assert row is not None
        return [e["event"] for e in row["timeline"]]


def test_lifecycle_open_ack_resolve_close_with_rca(store: SqlStore) -> None:
    f = Fleet(store, [CheckRule("his.web", priority="high")])
    f.send(T0, ("his.web", 2))
    f.act(1, "ack", T0 + 300)
    f.act(1, "assign", T0 + 310, assignee="li.si")
    f.act(1, "note", T0 + 320, note="restarting the pool")
    f.send(T0 + 600, ("his.web", 0))
    with pytest.raises(IncidentStateError, match="root-cause analysis first"):
        f.act(1, "close", T0 + 700)
    f.act(1, "rca", T0 + 800, cause="connection pool exhausted", solution="pool 200 -> 400; alert at 80 %")
    assert f.act(1, "close", T0 + 900) == {"id": 1, "status": "closed"}
    row = store.get_incident(1)
    assert row is not None
    assert (row["status"], row["acknowledged_by"], row["assignee"], row["root_cause"], row["closed_by"]) == (
        "closed", "zhang.san", "li.si", "connection pool exhausted", "zhang.san")
    assert not row["response_breached"] and not row["resolution_breached"]
    assert f.events(1) == ["opened", "acknowledged", "assigned", "note", "resolved", "rca", "closed"]
    assert row["notes"][0]["note"] == "restarting the pool"


@pytest.mark.parametrize(("action", "status", "message"), [
    ("ack", "acknowledged", "already"), ("close", "open", "resolve it first"), ("resolve", "resolved", "already")])
def test_actions_that_do_not_fit_the_state_are_refused(store: SqlStore, action: str, status: str, message: str) -> None:
    f = Fleet(store, [CheckRule("c", priority="low")])
    f.send(T0, ("c", 2))
    if status == "acknowledged":
        f.act(1, "ack", T0 + 1)
    if status == "resolved":
        f.act(1, "resolve", T0 + 1)
    with pytest.raises(IncidentStateError, match=message):
        f.act(1, action, T0 + 2)
    assert f.act(99, "ack", T0) is None


def test_ack_after_the_deadline_is_a_breach(store: SqlStore) -> None:
    f = Fleet(store, [CheckRule("c")])
    f.send(T0, ("c", 2))
    f.act(1, "ack", T0 + 901)
    row = store.get_incident(1)
    assert row is not None and row["response_breached"] == 1


def test_reopen_within_the_window_and_a_new_incident_after_it(store: SqlStore) -> None:
    f = Fleet(store, [CheckRule("c")])
    f.send(T0, ("c", 2))
    f.act(1, "ack", T0 + 60)
    f.send(T0 + 120, ("c", 0))
    f.send(T0 + 1800, ("c", 2))
    rows = store.list_incidents("all", 10)
    assert [(r["id"], r["status"], r["reopened"], r["acknowledged_by"]) for r in rows] == [(1, "open", 1, None)]
    assert f.events(1)[-1] == "reopened"
    f.send(T0 + 1900, ("c", 0))
    f.send(T0 + 1900 + 3601, ("c", 2))
    assert [r["id"] for r in store.list_incidents("all", 10)] == [2, 1], "past reopen_within: a new incident"


def test_a_closed_incident_is_not_reopened(store: SqlStore) -> None:
    f = Fleet(store, [CheckRule("c", priority="low")])
    f.send(T0, ("c", 2))
    f.send(T0 + 60, ("c", 0))
    f.act(1, "close", T0 + 70)
    f.send(T0 + 120, ("c", 2))
    assert [r["status"] for r in store.list_incidents("all", 10)] == ["open", "closed"]


def test_one_message_for_a_failing_database_not_forty(store: SqlStore) -> None:
    rules = [CheckRule("db.up", "his_db", priority="high")] + [
        CheckRule(f"db.c{i}", "his_db", parent="db.up") for i in range(40)]
    f = Fleet(store, rules)
    f.send(T0, *[(f"db.c{i}", 3) for i in range(40)], target="his_db")  # children fail first
    f.send(T0 + 5, ("db.up", 2), target="his_db")
    assert f.claim(T0 + 29) == 0, "held for the group wait"
    assert f.claim(T0 + 36) == 1
    (message,) = store.list_notifications({}, 10)
    assert message["receiver"] == "oncall" and [i["event"] for i in message["items"]] == ["opened"]
    assert message["content"]["incidents"][0]["check_id"] == "db.up"
    skipped = store._query("SELECT note FROM outbox WHERE state = 'skipped'")
    assert len(skipped) == 40 and skipped[0]["note"].startswith("explained by its parent: incident 41")
    assert f.events(1)[-1] == "not_notified"


def test_incidents_due_together_on_one_target_share_a_message(store: SqlStore) -> None:
    f = Fleet(store, [CheckRule(f"c{i}") for i in range(5)])
    f.send(T0, *[(f"c{i}", 2) for i in range(5)], target="his_db")
    f.claim(T0 + 31)
    (message,) = store.list_notifications({}, 10)
    assert len(message["content"]["incidents"]) == 5 and message["group_key"] == "firing|agent=a,target=his_db"


def test_resolved_before_the_group_wait_sends_nothing(store: SqlStore) -> None:
    f = Fleet(store, [CheckRule("c")])
    f.send(T0, ("c", 2))
    f.send(T0 + 10, ("c", 0))
    assert f.claim(T0 + 60) == 0
    assert sorted(r["note"] for r in store._query("SELECT note FROM outbox")) == [
        "incident resolved before it was sent", "no receiver was told it opened"]


def test_the_parent_resolving_releases_children_still_failing(store: SqlStore) -> None:
    f = Fleet(store, [CheckRule("db.up", "his_db"), CheckRule("db.ts", "his_db", parent="db.up")])
    f.send(T0, ("db.up", 2), target="his_db")
    f.send(T0 + 5, ("db.ts", 2), target="his_db")
    f.send(T0 + 60, ("db.up", 0), target="his_db")
    child = store.get_incident(2)
    assert child is not None and child["suppressed"] == "" and child["parent_id"] == 1
    assert f.events(2) == ["opened", "suppressed", "released"]
    f.claim(T0 + 100)
    events = sorted((i["incident_id"], i["event"]) for n in store.list_notifications({}, 10) for i in n["items"])
    assert (2, "released") in events


def test_the_rate_limit_groups_a_burst_into_a_digest(store: SqlStore) -> None:
    f = Fleet(store, [CheckRule(f"c{i}") for i in range(6)], system="LIS")
    for i in range(6):
        f.send(T0, (f"c{i}", 2), target=f"t{i}")
    assert f.claim(T0 + 31, {"robot": 2}) == 2
    messages = store.list_notifications({}, 10)
    assert sorted((m["group_key"] == "digest", len(m["items"])) for m in messages) == [(False, 1), (True, 5)]


def test_attempts_are_recorded_and_a_sent_message_notes_the_timeline(store: SqlStore) -> None:
    f = Fleet(store, [CheckRule("c")])
    f.send(T0, ("c", 2))
    f.claim(T0 + 31)
    with store.transaction() as tx:
        (message,) = tx.take_due(T0 + 31, lease=60)
        assert tx.take_due(T0 + 31, lease=60) == [], "taken: a second collector does not send it too"
        for n in range(3):
            tx.record_attempt(message["id"], T0 + 31 + n, False, "HTTP 500", "boom", 3.0, retry_at=T0 + 40 + n)
        tx.record_attempt(message["id"], T0 + 50, True, "HTTP 200", "ok", 2.0, retry_at=None)
    (row,) = store.list_notifications({"incident": "1"}, 10)
    assert (row["state"], row["attempts"], [a["ok"] for a in row["attempts_detail"]]) == ("sent", 4, [0, 0, 0, 1])
    assert f.events(1)[-1] == "notified"
    assert json.loads(json.dumps(row["content"]))["incidents"][0]["event"] == "opened"
