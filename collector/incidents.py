"""Incident rules: when a series' results open, update or resolve its incident, its deadlines, and the 'agent
lost' and calendar incidents.

Bad means WARNING, CRITICAL or UNKNOWN: UNKNOWN is "could not tell" and is never treated as OK. An incident opens
when a series has been bad for `raise_after` results and, if the check sets `for_s`, for that many seconds; it
resolves after `clear_after` OK results. Deadlines follow the maintenance contracts: a response (acknowledgement)
within 15 minutes around the clock, resolution within 1/3/5 working days by priority (collector/workdays.py).
Everything here is pure: callers pass the time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from checks.result import Status
from collector.events import CheckRule, IncidentOpen, IncidentResolve, IncidentUpdate
from collector.flapping import Thresholds
from collector.silences import SilenceSet
from collector.workdays import WorkingCalendar

RESPONSE_WINDOW_S = 15 * 60.0
"""The maintenance contracts' response time, 7×24."""
RESOLUTION_DAYS = {"high": 1.0, "medium": 3.0, "low": 5.0}
PRIORITIES = ("high", "medium", "low")
AGENT_LOST_CHECK = "agent.lost"
AGENT_LOST_PRIORITY = "high"
AGENT_LOST = "agent lost"
CALENDAR_CHECK = "calendar.year"
CALENDAR_AGENT = "collector"
CHECK_REMOVED = "check removed from the agent's packs"
AGENT_BACK = "agent is sending again"
OTHER_SYSTEM = "other"
ACTIVE = ("open", "acknowledged")
"""Incident statuses that count as not yet resolved (one per series at most)."""


def status_name(status: int) -> str:
    """The name of a status code as the API and titles show it (OK, WARNING, CRITICAL, UNKNOWN)."""
    try:
        return Status(status).name
    except ValueError:
        return str(status)


@dataclass
class IncidentPolicy:
    """The collector's incident settings: deadlines by priority, the calendar, reopening, flapping, silences."""

    calendar: WorkingCalendar
    response_s: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(PRIORITIES, RESPONSE_WINDOW_S))
    resolution_days: Mapping[str, float] = field(default_factory=lambda: dict(RESOLUTION_DAYS))
    reopen_within: float = 3600.0
    flapping: Thresholds = field(default_factory=Thresholds)
    silences: SilenceSet | None = None

    def response_due(self, priority: str, at: float) -> float:
        return at + self.response_s.get(priority, RESPONSE_WINDOW_S)

    def resolution_due(self, priority: str, at: float) -> float:
        return self.calendar.add_working_days(at, self.resolution_days.get(priority, RESOLUTION_DAYS["medium"]))

    def silence_for(self, labels: Mapping[str, str], at: float) -> int | None:
        if self.silences is None:
            return None
        found = self.silences.silencing(labels, at)
        return found.id if found is not None else None


def should_open(bad_in_a_row: int, rule: CheckRule, bad_for_s: float = 0.0) -> bool:
    """`raise_after` bad results in a row and, when the check sets `for_s`, bad for at least that long."""
    return bad_in_a_row >= max(rule.raise_after, 1) and bad_for_s >= rule.for_s


def should_resolve(ok_in_a_row: int, rule: CheckRule) -> bool:
    return ok_in_a_row >= max(rule.clear_after, 1)


def series_label(agent_id: str, target: str, key: str) -> str:
    where = "/".join(p for p in (target, key) if p)
    return f"{agent_id} {where}" if where else agent_id


def system_of(rule: CheckRule, agent_labels: Mapping[str, str]) -> str:
    """The hospital system of a check: its own, its `system` label, its agent's, else 'other'."""
    return rule.system or rule.labels.get("system", "") or agent_labels.get("system", "") or OTHER_SYSTEM


def labels_of(agent_id: str, host: str, rule: CheckRule, target: str, key: str, system: str,
              incident_kind: str = "check") -> dict[str, str]:
    """What silences and routes match an incident on: the check's labels, then ours (ours win)."""
    return {**rule.labels, "system": system, "priority": rule.priority or "medium", "host": host, "agent": agent_id,
            "check": rule.check_id, "target": target, "key": key, "kind": rule.kind, "incident_kind": incident_kind}


def open_check_incident(agent_id: str, host: str, agent_labels: Mapping[str, str], rule: CheckRule, target: str,
                        key: str, status: int, summary: str, at: float, policy: IncidentPolicy, *,
                        suppressed: str = "", parent_check: str = "", flapping: bool = False,
                        adopt: tuple[tuple[str, str, str], ...] = ()) -> IncidentOpen:
    priority = rule.priority or "medium"
    system = system_of(rule, agent_labels)
    labels = labels_of(agent_id, host, rule, target, key, system)
    title = f"{rule.display_title} {status_name(status)} on {series_label(agent_id, target, key)}"
    return IncidentOpen(
        "check", agent_id, rule.check_id, target, key, priority, system, title, summary, status, at,
        policy.response_due(priority, at), policy.resolution_due(priority, at), host=host, runbook=rule.runbook,
        labels=labels, suppressed=suppressed, parent_check=parent_check, parent_target=target if parent_check and
        parent_check != AGENT_LOST_CHECK else "", silence_id=policy.silence_for(labels, at), flapping=flapping,
        reopen_within=policy.reopen_within, adopt=adopt)


def update_check_incident(agent_id: str, check_id: str, target: str, key: str, status: int, summary: str,
                          at: float) -> IncidentUpdate:
    return IncidentUpdate(agent_id, check_id, target, key, status, summary, at)


def resolve_check_incident(agent_id: str, check_id: str, target: str, key: str, status: int, summary: str,
                           at: float) -> IncidentResolve:
    return IncidentResolve(agent_id, check_id, target, key, status, summary, at)


def agent_system(agent_labels: Mapping[str, str], rules: Iterable[CheckRule]) -> str:
    """The system an agent serves: its `system` label, else the one most of its checks name, else 'other'."""
    if agent_labels.get("system"):
        return agent_labels["system"]
    named = Counter(r.system or r.labels.get("system", "") for r in rules)
    named.pop("", None)
    return named.most_common(1)[0][0] if named else OTHER_SYSTEM


def agent_lost_incident(agent_id: str, hostname: str, agent_labels: Mapping[str, str], silent_s: float,
                        lost_after: float, at: float, policy: IncidentPolicy,
                        adopt: tuple[tuple[str, str, str], ...] = (), rules: Iterable[CheckRule] = ()) -> IncidentOpen:
    host = hostname or agent_id
    shown = f" ({hostname})" if hostname and hostname != agent_id else ""
    rule = CheckRule(AGENT_LOST_CHECK, title="Agent lost", kind="agent", priority=AGENT_LOST_PRIORITY)
    system = agent_system(agent_labels, rules)
    labels = labels_of(agent_id, host, rule, "", "", system, "agent_lost")
    return IncidentOpen(
        "agent_lost", agent_id, AGENT_LOST_CHECK, "", "", AGENT_LOST_PRIORITY, system, f"Agent {agent_id}{shown} lost",
        f"no heartbeat or result for {silent_s:.0f}s (lost_after {lost_after:g}s)", Status.UNKNOWN, at,
        policy.response_due(AGENT_LOST_PRIORITY, at), policy.resolution_due(AGENT_LOST_PRIORITY, at), host=host,
        labels=labels, silence_id=policy.silence_for(labels, at), reopen_within=policy.reopen_within, adopt=adopt)


def agent_back(agent_id: str, at: float) -> IncidentResolve:
    return IncidentResolve(agent_id, AGENT_LOST_CHECK, "", "", Status.OK, AGENT_BACK, at)


def check_removed(agent_id: str, check_id: str, target: str, key: str, status: int, at: float) -> IncidentResolve:
    """The agent's Hello no longer declares this check: its open incident ends, saying why."""
    return IncidentResolve(agent_id, check_id, target, key, status, CHECK_REMOVED, at)


def calendar_incident(year: int, calendar: WorkingCalendar, at: float, policy: IncidentPolicy) -> IncidentOpen:
    """The working-day calendar has no table for `year`: deadlines into it count Monday to Friday only."""
    rule = CheckRule(CALENDAR_CHECK, title="Working-day calendar", kind="calendar", priority="medium")
    labels = labels_of(CALENDAR_AGENT, "", rule, "", str(year), OTHER_SYSTEM, "calendar")
    summary = (f"no working-day table for {year} ({calendar.timezone}): resolution deadlines into {year} count Monday "
               f"to Friday only, without statutory holidays or make-up working days. Add the State Council's "
               f"arrangement for {year} as a file in calendar.files and reload the collector.")
    return IncidentOpen("calendar", CALENDAR_AGENT, CALENDAR_CHECK, "", str(year), "medium", OTHER_SYSTEM,
                        f"Working-day calendar for {year} not loaded", summary, Status.WARNING, at,
                        policy.response_due("medium", at), policy.resolution_due("medium", at), labels=labels)


def calendar_loaded(year: int, at: float) -> IncidentResolve:
    return IncidentResolve(CALENDAR_AGENT, CALENDAR_CHECK, "", str(year), Status.OK, f"calendar for {year} loaded", at)


def should_reopen(resolved_at: float | None, at: float, within: float) -> bool:
    """A series failing again `within` seconds of its incident's resolution reopens that incident."""
    return resolved_at is not None and within > 0 and at - resolved_at <= within


def notifiable(suppressed: str, silence_id: int | None, flapping: bool) -> bool:
    """An incident explained by a parent, silenced or flapping is recorded but sends nothing."""
    return not suppressed and silence_id is None and not flapping
