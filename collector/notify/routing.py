"""Which receivers an incident event goes to, grouped how: pure functions over the notifications config.

Routes are tried in order; the first that matches wins unless it says `continue`. Events:
- opened, reopened, released (a parent, silence or flapping stopped holding it back), repeat: the route's receivers;
- escalated (level N): that level's receivers;
- resolution_overdue: the route's receivers and the first escalation level;
- resolved: every receiver that was sent something about the incident (and wants resolved messages).
An event of an incident that is explained by a parent, silenced or flapping is skipped with the reason, and so is
a firing event of an incident that is no longer active (it resolved during the group wait).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from collector.incidents import ACTIVE, notifiable
from collector.notify.config import NotificationsConfig, Route

FIRING = ("opened", "reopened", "released", "repeat")


@dataclass(frozen=True)
class IncidentView:
    """What routing needs of an incident, as stored now."""

    id: int
    status: str
    labels: Mapping[str, str]
    suppressed: str = ""
    silence_id: int | None = None
    flapping: bool = False


@dataclass(frozen=True)
class Delivery:
    receiver: str
    group_key: str


def matches(route: Route, labels: Mapping[str, str]) -> bool:
    return all(fnmatch.fnmatchcase(labels.get(name, ""), pattern) for name, pattern in route.match.items())


def routes_for(labels: Mapping[str, str], routes: Sequence[Route]) -> list[Route]:
    out = []
    for route in routes:
        if matches(route, labels):
            out.append(route)
            if not route.continue_:
                break
    return out


def first_route(labels: Mapping[str, str], routes: Sequence[Route]) -> Route | None:
    found = routes_for(labels, routes)
    return found[0] if found else None


def group_key(route: Route, labels: Mapping[str, str], event: str) -> str:
    """Incidents due together with the same values of the route's group_by labels go out as one message."""
    kind = "firing" if event in FIRING else event
    values = ",".join(f"{name}={labels.get(name, '')}" for name in route.group_by)
    return f"{kind}|{values}"


def skip_reason(event: str, incident: IncidentView) -> str:
    """Why this event must not be sent now ('' when it may)."""
    if event == "resolved":
        return ""
    if incident.status not in ACTIVE:
        return f"incident {incident.status} before it was sent"
    if event == "escalated" and incident.status != "open":
        return "acknowledged before the escalation was sent"
    if not notifiable(incident.suppressed, incident.silence_id, incident.flapping):
        if incident.suppressed:
            return f"explained by its parent: {incident.suppressed}"
        if incident.silence_id is not None:
            return f"silenced by silence {incident.silence_id}"
        return "flapping"
    return ""


def deliveries(event: str, level: int, incident: IncidentView, config: NotificationsConfig,
               sent_to: Iterable[str]) -> list[Delivery]:
    """The receivers of one outbox event (after skip_reason said it may go)."""
    routes = routes_for(incident.labels, config.routes)
    wants_resolved = {r.name for r in config.receivers if r.send_resolved}
    out: dict[str, Delivery] = {}
    if event == "resolved":
        first = routes[0] if routes else None
        for name in sent_to:
            if name in wants_resolved:
                key = group_key(first, incident.labels, event) if first else f"resolved|incident={incident.id}"
                out.setdefault(name, Delivery(name, key))
        return list(out.values())
    for route in routes:
        key = group_key(route, incident.labels, event)
        names: list[str] = []
        if event in FIRING:
            names = list(route.receivers)
        elif event == "escalated":
            if 0 < level <= len(route.escalate):
                names = list(route.escalate[level - 1].receivers)
        elif event == "resolution_overdue":
            names = [*route.receivers, *(route.escalate[0].receivers if route.escalate else [])]
        for name in names:
            out.setdefault(name, Delivery(name, key))
    return list(out.values())


DIGEST = "digest"
"""Group key of the one message that carries every group a rate-limited receiver has no room left for."""


def plan_messages(groups: Mapping[tuple[str, str], list[int]], budgets: Mapping[str, int | None]
                  ) -> tuple[list[tuple[str, str, list[int]]], list[int]]:
    """Messages to queue now from items grouped by (receiver, group key), within each receiver's budget of messages
    (None: unlimited). A receiver with fewer messages left than groups gets its first groups as they are and the rest
    in one digest; a receiver with none left gets nothing now. Returns the messages and the items left for later."""
    by_receiver: dict[str, list[tuple[str, list[int]]]] = {}
    for (receiver, key), items in groups.items():
        by_receiver.setdefault(receiver, []).append((key, items))
    messages: list[tuple[str, str, list[int]]] = []
    deferred: list[int] = []
    for receiver, keyed in by_receiver.items():
        budget = budgets.get(receiver)
        if budget is None or len(keyed) <= budget:
            messages.extend((receiver, key, items) for key, items in keyed)
            continue
        if budget <= 0:
            deferred.extend(i for _, items in keyed for i in items)
            continue
        messages.extend((receiver, key, items) for key, items in keyed[:budget - 1])
        messages.append((receiver, DIGEST, [i for _, items in keyed[budget - 1:] for i in items]))
    return messages, deferred
