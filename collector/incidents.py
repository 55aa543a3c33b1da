"""Incident rules: when a series' results open, update or resolve its incident, and the 'agent lost' incident.

Bad means WARNING, CRITICAL or UNKNOWN: UNKNOWN is "could not tell" and is never treated as OK.
"""

from __future__ import annotations

from checks.result import Status
from collector.events import CheckRule, IncidentOpen, IncidentResolve, IncidentUpdate

RESPONSE_WINDOW_S = 15 * 60.0
"""The maintenance contracts' response time, 7×24; resolution deadlines need the working-day calendar (later)."""
AGENT_LOST_CHECK = "agent.lost"
AGENT_LOST_PRIORITY = "high"
CHECK_REMOVED = "check removed from the agent's packs"
AGENT_BACK = "agent is sending again"


def status_name(status: int) -> str:
    """The name of a status code as the API and titles show it (OK, WARNING, CRITICAL, UNKNOWN)."""
    try:
        return Status(status).name
    except ValueError:
        return str(status)


def should_open(bad_in_a_row: int, rule: CheckRule) -> bool:
    return bad_in_a_row >= max(rule.raise_after, 1)


def should_resolve(ok_in_a_row: int, rule: CheckRule) -> bool:
    return ok_in_a_row >= max(rule.clear_after, 1)


def series_label(agent_id: str, target: str, key: str) -> str:
    where = "/".join(p for p in (target, key) if p)
    return f"{agent_id} {where}" if where else agent_id


def open_check_incident(agent_id: str, rule: CheckRule, target: str, key: str, status: int, summary: str,
                        at: float) -> IncidentOpen:
    title = f"{rule.display_title} {status_name(status)} on {series_label(agent_id, target, key)}"
    return IncidentOpen("check", agent_id, rule.check_id, target, key, rule.priority or "medium", rule.system,
                        title, summary, status, at, at + RESPONSE_WINDOW_S)


def update_check_incident(agent_id: str, check_id: str, target: str, key: str, status: int, summary: str,
                          at: float) -> IncidentUpdate:
    return IncidentUpdate(agent_id, check_id, target, key, status, summary, at)


def resolve_check_incident(agent_id: str, check_id: str, target: str, key: str, status: int, summary: str,
                           at: float) -> IncidentResolve:
    return IncidentResolve(agent_id, check_id, target, key, status, summary, at)


def agent_lost_incident(agent_id: str, hostname: str, silent_s: float, lost_after: float, at: float) -> IncidentOpen:
    host = f" ({hostname})" if hostname and hostname != agent_id else ""
    return IncidentOpen("agent_lost", agent_id, AGENT_LOST_CHECK, "", "", AGENT_LOST_PRIORITY, "", f"Agent {agent_id}{host} lost",
                        f"no heartbeat or result for {silent_s:.0f}s (lost_after {lost_after:g}s)", Status.UNKNOWN, at,
                        at + RESPONSE_WINDOW_S)


def agent_back(agent_id: str, at: float) -> IncidentResolve:
    return IncidentResolve(agent_id, AGENT_LOST_CHECK, "", "", Status.OK, AGENT_BACK, at)


def check_removed(agent_id: str, check_id: str, target: str, key: str, status: int, at: float) -> IncidentResolve:
    """The agent's Hello no longer declares this check: its open incident ends, saying why."""
    return IncidentResolve(agent_id, check_id, target, key, status, CHECK_REMOVED, at)
