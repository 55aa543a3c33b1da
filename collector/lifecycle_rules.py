"""What an operator may do to an incident in which state: open → acknowledged → resolved → closed.

Pure rules, one place: the store applies them inside the action's transaction and the API turns a refusal into
409 with this message.
"""

from __future__ import annotations

from dataclasses import dataclass

ACTIONS = ("ack", "assign", "note", "resolve", "close", "rca")
STATUSES = ("open", "acknowledged", "resolved", "closed")
RCA_REQUIRED = ("high",)
"""Priorities whose incidents need a root-cause analysis before they can be closed (the contracts: every major
fault gets one)."""


class IncidentStateError(Exception):
    """The action does not fit the incident's state; the message says why and what to do instead."""


@dataclass(frozen=True)
class Current:
    id: int
    status: str
    priority: str
    acknowledged_by: str | None
    has_rca: bool


def next_status(action: str, now: Current) -> str:
    """The status after `action`, or IncidentStateError."""
    where = f"incident {now.id} is {now.status}"
    if action == "ack":
        if now.status == "acknowledged":
            raise IncidentStateError(f"{where} (by {now.acknowledged_by}) already")
        if now.status != "open":
            raise IncidentStateError(f"{where}: only an open incident can be acknowledged")
        return "acknowledged"
    if action == "resolve":
        if now.status not in ("open", "acknowledged"):
            raise IncidentStateError(f"{where} already")
        return "resolved"
    if action == "close":
        if now.status == "closed":
            raise IncidentStateError(f"{where} already")
        if now.status != "resolved":
            raise IncidentStateError(f"{where}: resolve it first (an incident is closed after it is resolved)")
        if now.priority in RCA_REQUIRED and not now.has_rca:
            raise IncidentStateError(f"incident {now.id} is {now.priority} priority: record the root-cause analysis "
                                     "first (xunjian incidents rca ID --cause ... --solution ...)")
        return "closed"
    if action == "assign" and now.status == "closed":
        raise IncidentStateError(f"{where}: a closed incident is not assigned any more")
    if action in ("assign", "note", "rca"):
        return now.status
    raise IncidentStateError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
