"""What the state engine decides and the store writes: plain records; results stay protobuf messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from protos import patrol_pb2

UNKNOWN_STATUS = int(patrol_pb2.UNKNOWN)
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
    parent: str = ""
    """Check id on the same target whose failure explains this one's (the database reachability check)."""
    for_s: int = 0
    """Seconds a series must stay bad before its incident opens (with raise_after: both must hold)."""

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


SeriesKey = tuple[str, str, str]
"""(check_id, target, key) within one agent."""


@dataclass(frozen=True)
class IncidentOpen:
    kind: str
    """check, agent_lost or calendar."""
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
    resolution_due_at: float | None = None
    host: str = ""
    runbook: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    """What routes and silences match: system, priority, host, agent, check, target, key, kind and check labels."""
    suppressed: str = ""
    """Why a parent explains it ("agent lost", "parent check db.reachable is failing"): recorded, not notified."""
    parent_check: str = ""
    """The parent's check id on the same agent and `parent_target` (agent.lost for a lost agent)."""
    parent_target: str = ""
    silence_id: int | None = None
    flapping: bool = False
    reopen_within: float = 0.0
    """Reopen the series' incident resolved at most this long ago instead of opening a new one."""
    adopt: tuple[SeriesKey, ...] = ()
    """Series of the same agent whose active incidents this one explains: they become its children."""


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


@dataclass(frozen=True)
class FlappingChange:
    """A series started or stopped flapping; its active incident (if any) says so and stays quiet meanwhile."""

    agent_id: str
    check_id: str
    target: str
    key: str
    flapping: bool
    percent: float
    at: float


@dataclass(frozen=True)
class SeriesStale:
    """The series' agent is lost: the series reads UNKNOWN "agent lost" until a fresh result arrives."""

    agent_id: str
    check_id: str
    target: str
    key: str
    seq: int
    from_status: int | None
    at: float
    summary: str

    def transition(self) -> Transition:
        return Transition(self.agent_id, self.check_id, self.target, self.key, self.seq, self.from_status,
                          UNKNOWN_STATUS, self.at, self.summary, None)


IncidentAction = IncidentOpen | IncidentUpdate | IncidentResolve | FlappingChange | SeriesStale


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
