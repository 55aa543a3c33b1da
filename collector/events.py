"""What the state engine decides and the store writes: plain records; results stay protobuf messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from protos import patrol_pb2

FindingLike = patrol_pb2.Finding
ResultLike = patrol_pb2.Result
"""The wire message itself: the engine keeps it as a series' latest result and reads fields only when needed."""


@dataclass(frozen=True)
class CheckRule:
    """A check as the agent declared it in Hello: title, priority and the incident rules of its series."""

    check_id: str
    target: str = ""
    title: str = ""
    kind: str = ""
    system: str = ""
    priority: str = "medium"
    raise_after: int = 1
    clear_after: int = 1
    interval_s: int = 0
    schedule: str = ""
    runbook: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def display_title(self) -> str:
        return self.title or self.check_id


@dataclass(frozen=True)
class AgentHello:
    agent_id: str
    hostname: str
    labels: Mapping[str, str]
    roles: Sequence[str]
    version: str
    platform: str
    last_seq: int
    checks: Sequence[CheckRule]
    at: float
    incarnation: str = ""
    """The agent's spool's random id: a new one means a reinstalled agent whose seqs start again."""


@dataclass(frozen=True)
class RuleChange:
    """An incident rule of a check that a Hello changed (raise_after, clear_after, priority...)."""

    check_id: str
    target: str
    field: str
    old: str
    new: str


@dataclass(frozen=True)
class AgentHeartbeat:
    agent_id: str
    last_seq: int
    spool_depth: int
    dropped_total: int
    at: float


@dataclass(frozen=True)
class Transition:
    agent_id: str
    check_id: str
    target: str
    key: str
    seq: int
    from_status: int | None
    to_status: int
    at: float
    summary: str
    value: float | None


@dataclass(frozen=True)
class IncidentOpen:
    kind: str
    agent_id: str
    check_id: str
    target: str
    key: str
    priority: str
    system: str
    title: str
    summary: str
    status: int
    at: float
    response_due_at: float


@dataclass(frozen=True)
class IncidentUpdate:
    """A status change (e.g. WARNING → CRITICAL) of a series whose incident stays open."""

    agent_id: str
    check_id: str
    target: str
    key: str
    status: int
    summary: str
    at: float


@dataclass(frozen=True)
class IncidentResolve:
    agent_id: str
    check_id: str
    target: str
    key: str
    status: int
    summary: str
    """Why it resolved (the recovering result's summary, "agent is sending again"...): its `resolution`."""
    at: float


IncidentAction = IncidentOpen | IncidentUpdate | IncidentResolve


@dataclass(frozen=True)
class FindingSeen:
    agent_id: str
    target: str
    check_id: str
    engine: str
    finding: FindingLike
    at: float


@dataclass
class HelloEffects:
    """What a Hello changes: incidents (agent back, checks removed) and the checks whose series end."""

    incidents: list[IncidentAction] = field(default_factory=list)
    ended: list[tuple[str, str]] = field(default_factory=list)
    """(check id, target) the agent declared before and no longer does."""
    added: list[tuple[str, str]] = field(default_factory=list)
    """(check id, target) declared for the first time, once the agent had a catalogue."""
    rule_changes: list[RuleChange] = field(default_factory=list)
    new_incarnation: bool = False
    """A new spool under a known identity: its seqs start again above `seq_base`."""
    previous_incarnation: str = ""
    seq_base: int = 0


@dataclass
class BatchEffects:
    """Everything one Batch changes; written in one transaction together with the new high-water mark."""

    agent_id: str
    high_water_seq: int
    at: float
    from_seq: int = 0
    """The mark this batch builds on: the store must be exactly there, or an earlier batch was lost."""
    seq_base: int = 0
    """Added to the agent's seqs in stored history, so each incarnation of an agent numbers its rows apart."""
    accepted: int = 0
    duplicates: int = 0
    transitions: list[Transition] = field(default_factory=list)
    incidents: list[IncidentAction] = field(default_factory=list)
    findings: list[FindingSeen] = field(default_factory=list)
    history: list[ResultLike] = field(default_factory=list)
    clamped: dict[str, int] = field(default_factory=dict)
    """Results clamped or left out by frame sanity (collector/sanity.py), by what: for the log line."""
