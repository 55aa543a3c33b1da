"""DBA review of findings: which review actions are allowed from which state (the store applies them)."""

from __future__ import annotations

REVIEW_ACTIONS = {"accept": "accepted", "dismiss": "dismissed"}
FIXABLE_STATES = ("new", "accepted")
"""Dismissed findings stay dismissed: the DBA decided they do not matter, fixed or not."""


class FindingStateError(ValueError):
    """A review that the finding's current state does not allow (HTTP 409)."""


def review_state(current: str, action: str) -> str:
    """The state after a DBA's `action` (accept or dismiss) on a finding in state `current`."""
    if action not in REVIEW_ACTIONS:
        raise FindingStateError(f"unknown review action {action!r}; expected accept or dismiss")
    if current == "fixed":
        raise FindingStateError("finding is fixed; it reopens as new if it is seen again")
    return REVIEW_ACTIONS[action]


def state_when_seen(current: str) -> str:
    """A fixed finding seen again reopens as new; any other state is kept (the review stands)."""
    return "new" if current == "fixed" else current
