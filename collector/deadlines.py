"""What the clock does to active incidents: breaches of the response and resolution deadlines, escalation of
unacknowledged ones, repeats, and incidents whose silence is over.

`due(...)` is pure: it takes the active incidents as stored, the time, the routes and the silences, and returns
the actions the collector's deadline sweep writes (each in the transaction that records it on the incident, with
its outbox rows). An incident explained by a parent or silenced neither breaches nor escalates: the parent or the
maintenance window accounts for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from collector.notify.config import Route
from collector.silences import Silence, SilenceSet

KINDS = ("response_breached", "resolution_breached", "escalated", "repeat", "silence_over")


@dataclass(frozen=True)
class ActiveIncident:
    id: int
    status: str
    priority: str
    labels: Mapping[str, str]
    opened_at: float
    response_due_at: float | None
    resolution_due_at: float | None
    acknowledged_at: float | None = None
    response_breached: bool = False
    resolution_breached: bool = False
    escalation_level: int = 0
    repeated_at: float | None = None
    suppressed: str = ""
    silence_id: int | None = None
    flapping: bool = False


@dataclass(frozen=True)
class DeadlineAction:
    incident_id: int
    kind: str
    at: float
    level: int = 0
    detail: str = ""


def escalation_due(incident: ActiveIncident, route: Route | None) -> tuple[int, float] | None:
    """The next escalation level and when it is due, or None (acknowledged, no levels left, no deadline)."""
    if route is None or incident.status != "open" or incident.response_due_at is None:
        return None
    level = incident.escalation_level + 1
    if level > len(route.escalate):
        return None
    return level, incident.response_due_at + sum(e.after for e in route.escalate[:level])


def due(incidents: Iterable[ActiveIncident], now: float, route_of: Callable[[Mapping[str, str]], Route | None],
        silences: SilenceSet | None = None) -> list[DeadlineAction]:
    """Every action due at `now` (at most one escalation level per incident per sweep)."""
    actions: list[DeadlineAction] = []
    for inc in incidents:
        if inc.silence_id is not None:
            silence = silences.by_id(inc.silence_id) if silences is not None else None
            if silences is None or silence is None or not silence.active_at(now, silences.calendar):
                actions.append(DeadlineAction(inc.id, "silence_over", now, detail=f"silence {inc.silence_id} over"))
            continue
        if inc.suppressed:
            continue
        if inc.status == "open" and not inc.response_breached and inc.response_due_at is not None \
                and now > inc.response_due_at:
            actions.append(DeadlineAction(inc.id, "response_breached", now))
        if not inc.resolution_breached and inc.resolution_due_at is not None and now > inc.resolution_due_at:
            actions.append(DeadlineAction(inc.id, "resolution_breached", now))
        if inc.flapping:
            continue
        route = route_of(inc.labels)
        next_level = escalation_due(inc, route)
        if next_level is not None and now >= next_level[1]:
            actions.append(DeadlineAction(inc.id, "escalated", now, level=next_level[0]))
        if route is not None and route.repeat_interval > 0 and inc.status == "open" \
                and now >= (inc.repeated_at or inc.opened_at) + route.repeat_interval:
            actions.append(DeadlineAction(inc.id, "repeat", now))
    return actions


def finished_silences(silences: Sequence[Silence], carried: set[int], now: float) -> list[tuple[int, str]]:
    """Silences to end now, with why: past their end, or 'until resolved' ones no active incident carries."""
    out = []
    for s in silences:
        if s.removed_at is not None:
            continue
        if s.ends_at is not None and now >= s.ends_at:
            out.append((s.id, "ended"))
        elif s.kind == "until_resolved" and s.id not in carried:
            out.append((s.id, "the incidents it covered resolved"))
    return out
