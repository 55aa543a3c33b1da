"""Review of findings: which review actions are allowed from which state, and which findings fix themselves
(the store applies them)."""

from __future__ import annotations

import re

from checks.result import FINDING_CATEGORIES

REVIEW_ACTIONS = {"accept": "accepted", "dismiss": "dismissed"}
FIXABLE_STATES = ("new", "accepted")
"""Dismissed findings stay dismissed: the DBA decided they do not matter, fixed or not."""
SETTLED_BY_PEOPLE = ("payment", "insurance")
"""Discrepancies an engineer settles: a 单边账 is refunded or booked by hand, an insurance difference explained,
then accepted with a note. A reconciliation looks at one day or month, so not seeing the discrepancy again
means the check has moved on to the next period, not that it was resolved: these are never marked fixed.
(Migration findings are: their check re-reads its whole date range on every run.)"""
DEFAULT_CATEGORY = "dba"
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def category_of(raw: str) -> str:
    """The category an agent sent: empty (agents older than categories) is dba; anything malformed is dba too."""
    return raw if _CATEGORY.match(raw or "") else DEFAULT_CATEGORY


def known_categories() -> tuple[str, ...]:
    return FINDING_CATEGORIES


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
