"""Result dataclasses to and from protobuf, and the Hello that tells the collector what this agent runs."""

from __future__ import annotations

import math
import platform
import socket
from collections.abc import Iterable, Mapping
from typing import Any

from checks.result import (
    Finding,
    Outcome,
    Result,
    Status,
    duration_us,
    ms_from_us,
    seconds_from_ms,
    unix_ms,
    whole_seconds,
)
from checks.spec import CheckSpec
from protos import patrol_pb2
from service.version import version

_OUTCOMES = {o.value: o for o in Outcome}


def result_to_proto(result: Result, seq: int = 0) -> patrol_pb2.Result:
    msg = patrol_pb2.Result(
        seq=seq,
        check_id=result.check_id,
        target=result.target,
        key=result.key,
        status=int(result.status),  # type: ignore[arg-type]
        unit=result.unit,
        summary=result.summary,
        started_unix_ms=unix_ms(result.started_at),
        duration_us=duration_us(result.duration_ms),
        outcome=str(result.outcome),
    )
    if result.value is not None:
        if math.isfinite(result.value):
            msg.value = result.value
        else:  # a plugin printing x=1e999: no number to compare or plot; the text says what it was
            msg.summary = f"{result.summary} (value {result.value!r} is not a finite number)"
    if result.metrics:
        msg.metrics.update({k: v for k, v in result.metrics.items() if math.isfinite(v)})
    for f in result.findings:
        pf = msg.findings.add(
            fingerprint=f.fingerprint, title=f.title, object=f.object,
            recommendation=f.recommendation, sql_text=f.sql_text, category=f.category,
        )
        pf.evidence.update(f.evidence)
        pf.attributes.update(f.attributes)
    return msg


def result_from_proto(msg: patrol_pb2.Result) -> Result:
    """The inverse of result_to_proto (times at the proto's ms/µs resolution); an unknown outcome reads as internal_error."""
    return Result(
        check_id=msg.check_id,
        status=Status(msg.status),
        summary=msg.summary,
        target=msg.target,
        key=msg.key,
        value=msg.value if msg.HasField("value") else None,
        unit=msg.unit,
        outcome=_OUTCOMES.get(msg.outcome, Outcome.INTERNAL_ERROR),
        metrics=dict(msg.metrics),
        started_at=seconds_from_ms(msg.started_unix_ms),
        duration_ms=ms_from_us(msg.duration_us),
        findings=[
            Finding(
                fingerprint=f.fingerprint, title=f.title, object=f.object, recommendation=f.recommendation,
                sql_text=f.sql_text, evidence=dict(f.evidence), attributes=dict(f.attributes),
                category=f.category or "dba",
            )
            for f in msg.findings
        ],
    )


def target_dialect(target: Any) -> str | None:
    """The `dialect` of a target config, whether parse_targets gave a mapping or a model."""
    if isinstance(target, Mapping):
        value = target.get("dialect")
    else:
        value = getattr(target, "dialect", None)
    return str(value) if value else None


def check_info(spec: CheckSpec, targets: Mapping[str, Any]) -> patrol_pb2.CheckInfo:
    """What the collector needs about one check: title, priority, incident rules (raise_after, for_s, parent: the
    check whose failure explains this one's, so the collector keeps it quiet while that one is failing); label
    `engine` for DB targets."""
    labels = dict(spec.labels)
    if spec.target and spec.target in targets:
        dialect = target_dialect(targets[spec.target])
        if dialect:
            labels.setdefault("engine", dialect)
    return patrol_pb2.CheckInfo(
        id=spec.id,
        title=spec.display_title,
        kind=spec.kind,
        target=spec.target or "",
        system=spec.system,
        priority=spec.priority,
        raise_after=spec.raise_after,
        clear_after=spec.clear_after,
        interval_s=0 if spec.schedule else max(1, round(spec.interval)),
        schedule=spec.schedule or "",
        runbook=spec.runbook,
        labels=labels,
        parent=spec.parent or "",
        for_s=0 if spec.for_ is None else whole_seconds(spec.for_),
    )


def build_hello(
    *,
    agent_id: str,
    labels: Mapping[str, str],
    roles: Iterable[str],
    specs: Iterable[CheckSpec],
    targets: Mapping[str, Any],
    last_seq: int,
    incarnation: str = "",
) -> patrol_pb2.Hello:
    return patrol_pb2.Hello(
        agent_id=agent_id,
        hostname=socket.gethostname(),
        labels=dict(labels),
        roles=list(roles),
        agent_version=version(),
        platform=f"{platform.system()} {platform.release()} {platform.machine()}; Python {platform.python_version()}",
        checks=[check_info(s, targets) for s in specs],
        last_seq=last_seq,
        incarnation=incarnation,
    )
