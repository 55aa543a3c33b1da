"""What a probe reports: one Result per series (check, target, key), in the Nagios status convention."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(enum.IntEnum):
    """Nagios convention; UNKNOWN means "could not tell" and is never shown as OK."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


class Outcome(str, enum.Enum):
    """Closed set of ways a probe can end; every failure of a target maps to one of these."""

    def __str__(self) -> str:
        return str(self.value)

    OK = "ok"
    TIMEOUT = "timeout"
    CONNECTION_REFUSED = "connection_refused"
    DNS_ERROR = "dns_error"
    TLS_ERROR = "tls_error"
    AUTH_FAILED = "auth_failed"
    TOO_MANY_CLIENTS = "too_many_clients"
    """The server refused a new connection because its connection limit is reached (PostgreSQL 53300,
    MySQL 1040, ORA-00018/00020/12516/12519/12520, SQL Server 17809)."""
    PROTOCOL_ERROR = "protocol_error"
    CONTENT_MISMATCH = "content_mismatch"
    NOT_FOUND = "not_found"
    PERMISSION_DENIED = "permission_denied"
    UNSAFE_SESSION = "unsafe_session"
    """A database check left its session other than it must be (not read-only, timeouts changed, a lock
    held); its rows are discarded and the connection is closed and reopened."""
    INTERNAL_ERROR = "internal_error"
    """A bug in the probe itself, reported as UNKNOWN rather than crashing the agent."""
    MISSED = "missed"
    """A scheduled job did not start in its window (job.window)."""
    FAILED = "failed"
    """A scheduled job ran in its window and every run there failed (job.window)."""
    STILL_RUNNING = "still_running"
    """A scheduled job is still running after its deadline (job.window)."""
    TOO_LONG = "too_long"
    """A scheduled job succeeded, but finished after its deadline or ran longer than warn/crit (job.window)."""
    DISABLED = "disabled"
    """A scheduled job is disabled or broken, so it will not run (job.window)."""
    AGENT_LOST = "agent_lost"
    """Set by the collector, never by a probe: the series' agent is lost, so its last result is stale and the series
    reads UNKNOWN until a fresh result arrives."""


# Times and durations, one vocabulary from probe to exporter: a Result carries started_at in unix seconds and
# duration_ms in milliseconds; the wire carries started_unix_ms and duration_us (integers); the API shows
# milliseconds and /metrics seconds. These are the only conversions.

_UINT32_MAX = 2**32 - 1


def duration_us(duration_ms: float) -> int:
    """A Result's duration_ms as the wire's duration_us (clamped to what a uint32 holds, about 71 minutes)."""
    return min(_UINT32_MAX, max(0, round(duration_ms * 1000)))


def whole_seconds(seconds: float) -> int:
    """A duration in seconds as the wire's uint32 seconds (CheckInfo.for_s), clamped."""
    return min(_UINT32_MAX, max(0, round(seconds)))


def ms_from_us(us: int) -> float:
    return us / 1000.0


def seconds_from_us(us: int) -> float:
    return us / 1e6


def unix_ms(seconds: float) -> int:
    return round(seconds * 1000)


def seconds_from_ms(ms: int) -> float:
    return ms / 1000.0


def outcome_name(outcome: str) -> str:
    """The outcome as exported: an empty one (a result from before outcomes existed) reads as ok."""
    return outcome or Outcome.OK.value


@dataclass(slots=True)
class Finding:
    """A finding for review: DBA tuning advice or a reconciliation discrepancy; deduplicated at the collector by
    (agent, target, fingerprint)."""

    fingerprint: str
    title: str
    object: str = ""
    recommendation: str = ""
    sql_text: str = ""
    evidence: dict[str, float] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    category: str = "dba"
    """Which review it belongs to: dba (tuning), migration, payment (单边账), insurance; see FINDING_CATEGORIES."""


FINDING_CATEGORIES: tuple[str, ...] = ("dba", "migration", "payment", "insurance")
"""The review queues findings are filed in. dba findings are tuning advice; the others are discrepancies found
by reconciliation, which an engineer settles (accepts with a note) or dismisses."""


@dataclass(slots=True)
class Result:
    check_id: str
    status: Status
    summary: str = ""
    target: str = ""
    key: str = ""
    value: float | None = None
    unit: str = ""
    outcome: Outcome = Outcome.OK
    metrics: dict[str, float] = field(default_factory=dict)
    started_at: float = 0.0
    """Unix time in seconds."""
    duration_ms: float = 0.0
    findings: list[Finding] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The `xunjian check run --json` line format (a public contract, README)."""
        out: dict[str, object] = {
            "check_id": self.check_id,
            "target": self.target,
            "key": self.key,
            "status": self.status.name,
            "value": self.value,
            "unit": self.unit,
            "outcome": str(self.outcome),
            "summary": self.summary,
            "metrics": self.metrics,
            "duration_ms": round(self.duration_ms, 3),
        }
        if self.findings:
            out["findings"] = [
                {
                    "fingerprint": f.fingerprint,
                    "title": f.title,
                    "object": f.object,
                    "recommendation": f.recommendation,
                    "sql_text": f.sql_text,
                    "evidence": f.evidence,
                    "attributes": f.attributes,
                    "category": f.category,
                }
                for f in self.findings
            ]
        return out


def unknown(check_id: str, outcome: Outcome, summary: str, *, target: str = "", key: str = "") -> Result:
    """The result for "could not tell": the target failed in a way named by `outcome`."""
    return Result(check_id=check_id, status=Status.UNKNOWN, outcome=outcome, summary=summary, target=target, key=key)
