"""Deadline breaches, escalation timing, repeats and the end of silences; routing, grouping and the rate-limit
digest. Pure functions, injected time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.deadlines import ActiveIncident, due, escalation_due
from collector.notify.config import NotificationsConfig, Route
from collector.notify.routing import DIGEST, IncidentView, deliveries, first_route, plan_messages, skip_reason
from collector.silences import Recurrence, Silence, SilenceSet
from collector.workdays import WorkingCalendar
from tests.unit.incidents.test_workdays import at

T0 = at("2026-12-02 10:00")
CONFIG = NotificationsConfig.model_validate({
    "receivers": [{"name": "oncall", "type": "webhook", "url": "http://x"},
                  {"name": "lead", "type": "webhook", "url": "http://y"},
                  {"name": "cio", "type": "webhook", "url": "http://z", "send_resolved": False},
                  {"name": "lis", "type": "webhook", "url": "http://l"}],
    "routes": [{"match": {"system": "HIS"}, "receivers": ["oncall"], "repeat_interval": "1h",
                "escalate": [{"receivers": ["lead"]}, {"after": "30m", "receivers": ["cio"]}]},
               {"match": {"system": "LIS", "check": "lis.db.*"}, "receivers": ["lis"], "continue": True},
               {"match": {"system": "LIS"}, "receivers": ["oncall"], "group_by": ["system"]}],
})


def incident(**kw: Any) -> ActiveIncident:
    base: dict[str, Any] = dict(id=1, status="open", priority="high", labels={"system": "HIS", "agent": "a"},
                                opened_at=T0, response_due_at=T0 + 900, resolution_due_at=at("2026-12-03 10:00"))
    base.update(kw)
    return ActiveIncident(**base)


def route_of(labels: Mapping[str, str]) -> Route | None:
    return first_route(labels, CONFIG.routes)


def kinds_at(inc: ActiveIncident, t: float, silences: SilenceSet | None = None) -> list[tuple[str, int]]:
    return [(a.kind, a.level) for a in due([inc], t, route_of, silences)]


def test_response_breach_and_escalation_timing() -> None:
    inc = incident()
    assert kinds_at(inc, T0 + 899) == []
    assert kinds_at(inc, T0 + 900) == [("escalated", 1)], "level 1 at the response deadline itself"
    assert kinds_at(inc, T0 + 901) == [("response_breached", 0), ("escalated", 1)]
    level1 = incident(escalation_level=1, response_breached=True)
    assert kinds_at(level1, T0 + 900 + 1799) == []
    assert kinds_at(level1, T0 + 900 + 1800) == [("escalated", 2)], "level 2 thirty minutes after level 1"
    assert kinds_at(incident(escalation_level=2, response_breached=True), T0 + 3000) == []
    assert escalation_due(incident(status="acknowledged"), route_of({"system": "HIS"})) is None


def test_repeat_every_interval_while_unacknowledged() -> None:
    inc = incident(escalation_level=2, response_breached=True)
    assert kinds_at(inc, T0 + 3599) == []
    assert kinds_at(inc, T0 + 3600) == [("repeat", 0)]
    assert kinds_at(incident(escalation_level=2, response_breached=True, repeated_at=T0 + 3600), T0 + 7000) == []
    assert kinds_at(incident(status="acknowledged"), T0 + 3600) == []


def test_resolution_breach_counts_working_days_and_applies_when_acknowledged() -> None:
    inc = incident(status="acknowledged", response_breached=False)
    assert kinds_at(inc, at("2026-12-03 09:59")) == []
    assert kinds_at(inc, at("2026-12-03 10:01")) == [("resolution_breached", 0)]


def test_silenced_and_suppressed_incidents_neither_breach_nor_escalate() -> None:
    cal = WorkingCalendar.load()
    silences = SilenceSet(cal)
    silences.replace([Silence(5, {"system": "HIS"}, "once", "a", "r", T0, T0, T0 + 7200)])
    assert kinds_at(incident(silence_id=5), T0 + 3600, silences) == []
    assert kinds_at(incident(suppressed="agent lost"), T0 + 3600, silences) == []
    assert kinds_at(incident(silence_id=5), T0 + 7200, silences) == [("silence_over", 0)]
    nightly = SilenceSet(cal)
    nightly.replace([Silence(6, {"system": "HIS"}, "recurring", "a", "r", T0, T0, None,
                             Recurrence.parse("every", "01:00", "04:00"))])
    assert kinds_at(incident(silence_id=6, opened_at=at("2026-12-03 02:00")), at("2026-12-03 03:59"), nightly) == []
    assert kinds_at(incident(silence_id=6), at("2026-12-03 04:00"), nightly) == [("silence_over", 0)], \
        "the window closed while the incident is still open: it speaks up"
    assert kinds_at(incident(silence_id=99), T0, silences) == [("silence_over", 0)], "a removed silence"


def test_flapping_incidents_breach_but_do_not_escalate() -> None:
    assert kinds_at(incident(flapping=True), T0 + 901) == [("response_breached", 0)]


def view(**kw: Any) -> IncidentView:
    base: dict[str, Any] = dict(id=1, status="open", labels={"system": "HIS", "agent": "a", "target": "his_db"})
    base.update(kw)
    return IncidentView(**base)


def test_firing_events_go_to_the_route_and_escalations_to_their_level() -> None:
    assert [d.receiver for d in deliveries("opened", 0, view(), CONFIG, [])] == ["oncall"]
    assert [d.receiver for d in deliveries("escalated", 1, view(), CONFIG, [])] == ["lead"]
    assert [d.receiver for d in deliveries("escalated", 2, view(), CONFIG, [])] == ["cio"]
    assert [d.receiver for d in deliveries("resolution_overdue", 0, view(), CONFIG, [])] == ["oncall", "lead"]
    lis = view(labels={"system": "LIS", "check": "lis.db.locks"})
    assert [d.receiver for d in deliveries("opened", 0, lis, CONFIG, [])] == ["lis", "oncall"], "continue"
    assert deliveries("opened", 0, view(labels={"system": "PACS"}), CONFIG, []) == []


def test_resolved_goes_to_those_told_it_opened_that_want_it() -> None:
    got = deliveries("resolved", 0, view(status="resolved"), CONFIG, ["oncall", "lead", "cio"])
    assert sorted(d.receiver for d in got) == ["lead", "oncall"]


def test_group_keys_put_one_database_in_one_message() -> None:
    a = deliveries("opened", 0, view(id=1), CONFIG, [])[0]
    b = deliveries("opened", 0, view(id=2, labels={"system": "HIS", "agent": "a", "target": "his_db",
                                                   "check": "other"}), CONFIG, [])[0]
    c = deliveries("opened", 0, view(id=3, labels={"system": "HIS", "agent": "a", "target": "pacs_db"}), CONFIG, [])[0]
    assert a.group_key == b.group_key == "firing|agent=a,target=his_db" and c.group_key != a.group_key


def test_skip_reasons() -> None:
    assert skip_reason("opened", view()) == ""
    assert skip_reason("opened", view(status="resolved")) == "incident resolved before it was sent"
    assert skip_reason("opened", view(suppressed="agent lost")) == "explained by its parent: agent lost"
    assert skip_reason("repeat", view(silence_id=4)) == "silenced by silence 4"
    assert skip_reason("opened", view(flapping=True)) == "flapping"
    assert skip_reason("escalated", view(status="acknowledged")) == "acknowledged before the escalation was sent"
    assert skip_reason("resolved", view(status="resolved", suppressed="x")) == ""


def test_a_burst_beyond_the_budget_becomes_one_digest() -> None:
    groups = {("robot", f"g{i}"): [i] for i in range(30)}
    groups[("mail", "g0")] = [100]
    messages, deferred = plan_messages(groups, {"robot": 5, "mail": None})
    robot = [m for m in messages if m[0] == "robot"]
    assert [m[1] for m in robot] == ["g0", "g1", "g2", "g3", DIGEST]
    assert robot[-1][2] == list(range(4, 30))
    assert ("mail", "g0", [100]) in messages and deferred == []
    assert plan_messages({("robot", "g"): [1, 2]}, {"robot": 0}) == ([], [1, 2]), "no room: wait"
