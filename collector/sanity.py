"""Frame sanity: what an agent's frames may say before they can move a high-water mark or open an incident.

Anything an agent sends is checked against bounds the collector sets, not the agent: seqs strictly increase within
a batch and stay within reach of what the agent's spool last reported, statuses are the four Nagios ones, ids use a
safe character set and length, summaries are a few KB, values are finite, an agent has at most so many series.
A whole frame is refused (the stream ends with INVALID_ARGUMENT, nothing of it applied) when it could only come
from a broken or hostile agent; a result that a real agent may produce by accident (a plugin printing
`x=1e999`, a very long summary) is clamped and counted instead, so its neighbours are still stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from collector.events import ResultLike
from protos import patrol_pb2

HelloLike = patrol_pb2.Hello

MAX_SEQ = 2**53 - 1
"""The largest seq accepted: exact in a JSON number and far from the store's 64-bit integer limit."""
MAX_ID_CHARS = 128
MAX_KEY_CHARS = 256
MAX_LABELS = 64
MAX_LABEL_CHARS = 256
MAX_CHECKS_PER_HELLO = 10_000
SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@\-]{0," + str(MAX_ID_CHARS - 1) + "}$")
"""Agent, check and target ids: what packs and agent.yaml allow, and nothing a log, a label or a URL must escape."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
TRUNCATED = " …[truncated]"
STATUS_MAX = 3
"""UNKNOWN, the highest of the Nagios statuses (OK 0 ... UNKNOWN 3)."""


REFUSAL_REASONS = ("hello", "seq_order", "seq_ahead")
CLAMP_KINDS = ("non_finite_value", "summary", "status", "unsafe_id", "series_cap")


class FrameRefused(ValueError):
    """A frame that only a broken or hostile agent sends; `reason` is the counter's label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class SanityStats:
    """Counters of refused frames (by reason) and clamped results (by what was clamped), read at scrape time."""

    refused: dict[str, int] = field(default_factory=dict)
    clamped: dict[str, int] = field(default_factory=dict)

    def refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1

    def clamp(self, what: str, n: int = 1) -> None:
        self.clamped[what] = self.clamped.get(what, 0) + n


def safe_id(value: str) -> bool:
    return bool(SAFE_ID.match(value))


def safe_key(value: str) -> bool:
    """A series key (a mount, a tablespace, a queue): any printable text up to MAX_KEY_CHARS, no control characters."""
    return len(value) <= MAX_KEY_CHARS and not _CONTROL.search(value)


def safe_text(value: str, limit: int) -> bool:
    return len(value) <= limit and not _CONTROL.search(value)


def id_problem(what: str, value: str) -> str | None:
    if safe_id(value):
        return None
    return (f"{what} {_show(value)} is not a valid id (1-{MAX_ID_CHARS} characters of A-Z a-z 0-9 _ . : @ -, "
            "starting with a letter, digit or _)")


def _show(value: str) -> str:
    """A value quoted for a log line or an error, control characters escaped and long text cut."""
    text = value if len(value) <= 80 else value[:80] + "..."
    return repr(text)


def check_batch(results: Sequence[ResultLike], ceiling: int) -> None:
    """Seqs strictly increase and stay at or below `ceiling`; raises FrameRefused naming the first offender. One
    pass reading one integer per result: this runs for every result ingested. (A status outside the enum is left
    out by the state engine where it would change a series, which costs nothing on the common path.)"""
    previous = 0
    for r in results:
        seq = r.seq
        if seq <= previous:
            raise FrameRefused("seq_order", f"seq {seq} after seq {previous}: seqs must strictly increase within a "
                               "batch")
        previous = seq
    if previous > ceiling:
        raise FrameRefused("seq_ahead", f"seq {previous} is beyond what this agent's spool can hold ahead of the seq "
                           f"it last reported (at most {ceiling})")


def clamp_value(r: ResultLike, stats: SanityStats) -> None:
    """A non-finite value (a plugin printing x=1e999) is dropped; its text stays in the summary."""
    raw = repr(r.value)
    r.ClearField("value")
    r.summary = f"{r.summary} (value {raw} dropped: not a finite number)"
    stats.clamp("non_finite_value")


def clamp_summary(r: ResultLike, max_summary: int, stats: SanityStats) -> None:
    r.summary = r.summary[:max_summary] + TRUNCATED
    stats.clamp("summary")


MAX_HELLO_TEXT = 1024
"""Hostname, version, platform, a check's title, kind, system, priority, schedule."""
MAX_RUNBOOK = 4096


def check_hello(hello: HelloLike) -> None:
    """The identity and catalogue an agent declares: ids safe, counts and texts bounded; raises FrameRefused."""
    problem = id_problem("agent id", hello.agent_id)
    if problem:
        raise FrameRefused("hello", problem)
    if hello.last_seq > MAX_SEQ:
        raise FrameRefused("hello", f"last_seq {hello.last_seq} is beyond the largest seq accepted ({MAX_SEQ})")
    if len(hello.incarnation) > MAX_ID_CHARS or (hello.incarnation and not safe_id(hello.incarnation)):
        raise FrameRefused("hello", f"incarnation {_show(hello.incarnation)} is not a valid id")
    for what, value in (("hostname", hello.hostname), ("agent_version", hello.agent_version),
                        ("platform", hello.platform)):
        if not safe_text(value, MAX_HELLO_TEXT):
            raise FrameRefused("hello", f"{what} {_show(value)} is longer than {MAX_HELLO_TEXT} characters or has "
                               "control characters")
    _check_labels("labels", hello.labels)
    if len(hello.roles) > MAX_LABELS or any(not safe_text(r, MAX_LABEL_CHARS) for r in hello.roles):
        raise FrameRefused("hello", f"roles: at most {MAX_LABELS}, each a short text")
    if len(hello.checks) > MAX_CHECKS_PER_HELLO:
        raise FrameRefused("hello", f"{len(hello.checks)} checks declared; at most {MAX_CHECKS_PER_HELLO}")
    for c in hello.checks:
        problem = id_problem("check id", c.id) or (id_problem(f"target of check {c.id}", c.target) if c.target else None)
        if problem:
            raise FrameRefused("hello", problem)
        for what, value in (("title", c.title), ("kind", c.kind), ("system", c.system), ("priority", c.priority),
                            ("schedule", c.schedule)):
            if not safe_text(value, MAX_HELLO_TEXT):
                raise FrameRefused("hello", f"check {c.id}: {what} is longer than {MAX_HELLO_TEXT} characters or has "
                                   "control characters")
        if len(c.runbook) > MAX_RUNBOOK:
            raise FrameRefused("hello", f"check {c.id}: runbook is longer than {MAX_RUNBOOK} characters")
        _check_labels(f"check {c.id}: labels", c.labels)


def _check_labels(what: str, labels: Mapping[str, str]) -> None:
    if len(labels) > MAX_LABELS:
        raise FrameRefused("hello", f"{what}: {len(labels)} labels; at most {MAX_LABELS}")
    for name, value in labels.items():
        if not safe_id(name) or not safe_text(value, MAX_LABEL_CHARS):
            raise FrameRefused("hello", f"{what}: label {_show(name)} must be an id with a value of at most "
                               f"{MAX_LABEL_CHARS} characters and no control characters")
