"""The store interface: SQLite now, PostgreSQL later; the collector sees only these two protocols.

This module names no implementation; collector/backends.py picks one by URL (an interface that imports its
implementation makes an import circle).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from collector.audit import AuditEntry, Verification
from collector.events import AgentHeartbeat, AgentHello, BatchEffects, CheckRule, IncidentAction

if TYPE_CHECKING:
    from collector.deadlines import ActiveIncident, DeadlineAction
    from collector.notify.config import NotificationsConfig
    from collector.silences import Silence

Row = dict[str, Any]
"""A JSON-ready record for the HTTP API."""

FINDING_STATES = ("new", "accepted", "dismissed", "fixed")


@dataclass
class AgentRecord:
    agent_id: str
    hostname: str
    labels: dict[str, str]
    high_water_seq: int
    last_seq: int
    spool_depth: int
    dropped_total: int
    last_seen: float
    incarnation: str = ""
    seq_base: int = 0


@dataclass
class SeriesRecord:
    agent_id: str
    check_id: str
    target: str
    key: str
    status: int
    since: float


@dataclass
class OpenIncidentRecord:
    kind: str
    agent_id: str
    check_id: str
    target: str
    key: str
    flapping: bool = False


@dataclass
class StoreSnapshot:
    """What the state engine rebuilds itself from on start."""

    agents: list[AgentRecord] = field(default_factory=list)
    rules: dict[str, list[CheckRule]] = field(default_factory=dict)
    series: list[SeriesRecord] = field(default_factory=list)
    open_incidents: list[OpenIncidentRecord] = field(default_factory=list)


class StoreTx(Protocol):
    """Writes inside one transaction; only the writer thread holds one."""

    def write_hello(self, hello: AgentHello) -> None: ...

    def restart_sequence(self, agent_id: str, seq_base: int) -> None:
        """A new incarnation of the agent (a new spool): its mark restarts at 0, its history numbers on from
        `seq_base`."""

    def write_heartbeat(self, beat: AgentHeartbeat) -> None: ...

    def write_batch(self, effects: BatchEffects) -> None: ...

    def write_incident_actions(self, actions: Sequence[IncidentAction]) -> None: ...

    def end_series(self, agent_id: str, checks: Sequence[tuple[str, str]]) -> None:
        """The agent no longer runs these (check id, target): their series rows go (history stays)."""

    def review_finding(self, finding_id: int, state: str, reviewer: str, note: str, at: float) -> Row | None: ...

    def audit(self, entry: AuditEntry) -> Row:
        """Append an entry to the hash-chained audit trail, in the transaction of the change it records."""
        ...

    def fix_stale_findings(self, seen_before: float, at: float) -> int: ...

    # trust (collector/trust_sql.py)

    def create_token(self, name: str, role: str, token_hash: str, at: float, by: str, expires_at: float) -> int: ...

    def revoke_token(self, name: str, at: float) -> bool: ...

    def create_session(self, session_hash: str, token_id: int, csrf: str, at: float, expires_at: float) -> None: ...

    def end_session(self, session_hash: str) -> None: ...

    def purge_sessions(self, now: float) -> int: ...

    def create_enrollment(self, token_hash: str, agent_id: str, at: float, by: str, expires_at: float) -> None: ...

    def use_enrollment(self, token_hash: str, now: float) -> tuple[str | None, str]: ...

    def record_certificate(self, serial: str, agent_id: str, at: float, not_after: float, how: str) -> None: ...

    def revoke_certificates(self, agent_id: str, at: float, reason: str) -> list[str]: ...

    def retire_agent(self, agent_id: str, at: float, reason: str) -> tuple[int, int] | None: ...

    def purge_history(self, before: float, limit: int = 10_000) -> int: ...

    def incident_action(self, incident_id: int, action: str, by: str, at: float, *, note: str = "",
                        assignee: str = "", cause: str = "", solution: str = "") -> Row | None:
        """An operator's action on an incident (collector/lifecycle_rules.py); None when it does not exist."""
        ...

    def end_agent_incidents(self, agent_id: str, at: float, resolution: str) -> int:
        """Resolve every active incident of a retired agent through the incident lifecycle."""
        ...

    def add_silence(self, s: Silence, active: Iterable[ActiveIncident]) -> int: ...

    def remove_silence(self, silence_id: int, by: str, why: str, at: float) -> bool: ...

    def apply_deadline_actions(self, actions: Sequence[DeadlineAction]) -> None: ...

    def claim_outbox(self, now: float, config: NotificationsConfig, budgets: Mapping[str, int | None]) -> int: ...

    def record_attempt(self, notification_id: int, at: float, ok: bool, status: str, response: str, duration_ms: float,
                       *, retry_at: float | None) -> None: ...

    def take_due(self, now: float, lease: float, limit: int = 500) -> list[Row]: ...

    def defer_notification(self, notification_id: int, until: float) -> None: ...


class Store(Protocol):
    """Transactions for the writer, snapshot for start-up, reads for the HTTP API (any thread)."""

    history: str

    def transaction(self) -> AbstractContextManager[StoreTx]: ...

    def load_snapshot(self, agent_id: str | None = None) -> StoreSnapshot: ...

    def high_water_seq(self, agent_id: str) -> int: ...

    def agent_liveness(self, cutoff: float) -> list[tuple[str, str, float, bool]]:
        """(agent id, hostname, last seen by any collector, 'agent lost' incident open) for the agents last seen
        before `cutoff` and those with an 'agent lost' incident open: indexed reads, as long as the silent set."""
        ...

    def list_agents(self, *, retired: bool = False) -> list[Row]: ...

    def token_by_hash(self, token_hash: str) -> Row | None: ...

    def session_by_hash(self, session_hash: str) -> Row | None: ...

    def list_tokens(self) -> list[Row]: ...

    def list_certificates(self, agent_id: str | None = None) -> list[Row]: ...

    def revoked_serials(self, now: float) -> list[str]: ...

    def retired_agents(self) -> list[str]: ...

    def list_incidents(self, status: str, limit: int, filters: Mapping[str, str] | None = None) -> list[Row]: ...

    def get_incident(self, incident_id: int) -> Row | None: ...

    def active_incidents(self) -> list[ActiveIncident]: ...

    def due_incidents(self, now: float, repeat_before: float | None) -> list[ActiveIncident]: ...

    def overdue_incidents(self, now: float) -> list[ActiveIncident]: ...

    def list_silences(self, include_removed: bool = False) -> list[Row]: ...

    def silences_in_force(self) -> list[Silence]: ...

    def incident_counts(self) -> list[Row]: ...

    def breach_counts(self) -> list[Row]: ...

    def incident_durations(self) -> list[Row]: ...



    def list_notifications(self, filters: Mapping[str, str], limit: int) -> list[Row]: ...

    def outbox_backlog(self) -> Row: ...

    def list_results(self, agent_id: str, after_seq: int, limit: int) -> list[Row]: ...

    def list_findings(self, filters: dict[str, str], limit: int) -> list[Row]: ...

    def get_finding(self, finding_id: int) -> Row | None: ...

    def finding_counts(self) -> dict[tuple[str, str], int]: ...

    def list_audit(self, *, after_id: int = 0, limit: int = 500, newest_first: bool = False) -> list[Row]: ...

    def verify_audit(self, page: int = 5000) -> Verification: ...

    def is_unavailable(self, error: BaseException) -> bool:
        """`error` means the store itself failed (disk full, I/O error, locked too long), not that one job was wrong."""
        ...

    def close(self) -> None: ...
