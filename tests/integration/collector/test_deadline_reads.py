"""The deadline sweep reads only incidents that may have an action due, and finds the same actions as reading all."""

from __future__ import annotations

import itertools

import pytest

from collector import deadlines
from collector.events import IncidentOpen
from collector.notify.config import Escalation, Route
from collector.notify.routing import first_route
from collector.silences import SilenceSet
from collector.sqlstore import SqlStore
from collector.workdays import WorkingCalendar

T0 = 1_800_000_000.0


def varied_incidents(store: SqlStore) -> None:
    """Every combination of status, breaches, escalation, repeat, suppression and silence the sweep looks at."""
    combos = list(itertools.product(("open", "acknowledged"), (0, 1), (0, 1), (0, 1), (None, T0 + 400),
                                    ("", "agent lost"), (None, 7), ("HIS", "LIS")))
    opens = [IncidentOpen("check", f"agent-{n}", "his.disk", "", "/", "high", system, "Disk", "full", 2,
                          T0 + (n % 5) * 60, T0 + (n % 5) * 60 + 900, T0 + (n % 7) * 3600, labels={"system": system})
             for n, (*_, system) in enumerate(combos)]
    with store.transaction() as tx:
        tx.write_incident_actions(opens)
    cur = store._writer.cursor()
    for n, (status, rb, sb, level, repeated, suppressed, silence, _system) in enumerate(combos):
        cur.execute("UPDATE incidents SET status = ?, response_breached = ?, resolution_breached = ?, "
                    "escalation_level = ?, repeated_at = ?, suppressed = ?, silence_id = ? WHERE agent_id = ?",
                    (status, rb, sb, level, repeated, suppressed, silence, f"agent-{n}"))
    cur.close()


@pytest.mark.parametrize("routes", [
    [],
    [Route(match={"system": "HIS"}, receivers=["ops"], escalate=[Escalation(after=600, receivers=["lead"])])],
    [Route(match={"system": "HIS"}, receivers=["ops"], repeat_interval=1800),
     Route(receivers=["ops"], repeat_interval=7200, escalate=[Escalation(after=0, receivers=["lead"]),
                                                              Escalation(after=3600, receivers=["boss"])])],
])
def test_the_sweep_reads_a_subset_and_acts_as_if_it_read_every_active_incident(
        store: SqlStore, routes: list[Route]) -> None:
    varied_incidents(store)
    silences = SilenceSet(WorkingCalendar.load())
    intervals = [r.repeat_interval for r in routes if r.repeat_interval > 0]
    active = store.active_incidents()
    for now in (T0 - 1, T0 + 100, T0 + 950, T0 + 1500, T0 + 2500, T0 + 5000, T0 + 8000, T0 + 30_000):
        repeat_before = now - min(intervals) if intervals else None
        some = store.due_incidents(now, repeat_before)
        assert {i.id for i in some} <= {i.id for i in active}
        assert deadlines.due(some, now, lambda labels: first_route(labels, routes), silences) == \
            deadlines.due(active, now, lambda labels: first_route(labels, routes), silences), f"at T0{now - T0:+g}"
    early = store.due_incidents(T0 - 1, None)
    assert all(i.silence_id is not None for i in early), "before any deadline only silenced ones are read"
    assert not [i for i in store.due_incidents(T0 + 30_000, None) if i.suppressed and i.silence_id is None], \
        "an incident explained by a parent is never read"


def test_overdue_incidents_are_those_the_gauge_counted(store: SqlStore) -> None:
    varied_incidents(store)
    for now in (T0 + 100, T0 + 1000, T0 + 20_000):
        expected = {i.id for i in store.active_incidents() if not i.suppressed and i.silence_id is None and (
            (i.status == "open" and i.response_due_at is not None and now > i.response_due_at)
            or (i.resolution_due_at is not None and now > i.resolution_due_at))}
        assert {i.id for i in store.overdue_incidents(now)} == expected
