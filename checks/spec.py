"""The fields every check has (docs/packs.md); each kind subclasses CheckSpec with its own options and probe."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from checks.context import RunContext
from checks.result import Result, Status
from checks.thresholds import DURATION, NUMBER, PERCENT, SIZE, Threshold, parse_threshold
from checks.units import parse_duration, parse_size


def yaml_keys(model: type[BaseModel]) -> set[str]:
    """The keys a YAML mapping may use for `model`'s fields (aliases such as `for`, else the field name)."""
    return {info.alias or name for name, info in model.model_fields.items()}


def _duration(v: Any) -> float:
    return parse_duration(v)


def _threshold(v: Any) -> Threshold:
    return v if isinstance(v, Threshold) else parse_threshold(v)


def _size(v: Any) -> int:
    return parse_size(v)


def _positive_duration(v: Any) -> float:
    seconds = parse_duration(v)
    if seconds <= 0:
        raise ValueError(f"must be a positive duration such as 30s, got {v!r}")
    return seconds


def _regex(v: str) -> str:
    try:
        re.compile(v)
    except re.error as exc:
        raise ValueError(f"bad regular expression {v!r}: {exc}") from None
    return v


Duration = Annotated[float, BeforeValidator(_duration)]
"""Seconds; written as 30s, 5m, 1h, 250ms."""
PositiveDuration = Annotated[float, BeforeValidator(_positive_duration)]
"""Seconds, above zero: intervals, timeouts, retention."""
Regex = Annotated[str, AfterValidator(_regex)]
"""A regular expression, compiled once at load time so a typo is a config error, not a failed check."""
Size = Annotated[int, BeforeValidator(_size)]
"""Bytes; written as 64MiB, 1GB."""
ThresholdField = Annotated[Threshold, BeforeValidator(_threshold), PlainSerializer(str, return_type=str)]
"""A comparison such as "> 85" or a Nagios range such as 10:20."""

_FITS = {"seconds": {NUMBER, DURATION}, "bytes": {NUMBER, SIZE}, "percent": {NUMBER, PERCENT}}
"""How a threshold may be written for a value in each unit; any other unit takes plain numbers only."""
_UNIT_NAMES = {"s": "seconds", "second": "seconds", "sec": "seconds", "b": "bytes", "byte": "bytes",
               "%": "percent", "pct": "percent"}
"""Other spellings of the base units a pack may give in `unit:`."""
_WRITTEN = {NUMBER: "plain number", PERCENT: "percentage", DURATION: "duration", SIZE: "size"}
_HINTS = {
    "seconds": 'write a duration such as "> 2s" or a number of seconds',
    "bytes": 'write a size such as "< 10GiB" or a number of bytes',
    "percent": 'write a number of percent such as "> 90"',
}
_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class CheckSpec(BaseModel):
    """Common fields of every check; subclasses add a `kind` literal, their options and `probe`."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True, populate_by_name=True)

    kind_doc: ClassVar[str] = ""
    """One paragraph for the generated reference docs."""
    needs_target: ClassVar[bool] = False
    """Kinds that connect to a target named in agent.yaml (databases)."""
    example: ClassVar[str] = ""
    """A YAML check (one list item of `checks:`) for the generated reference docs; a test loads it."""
    value_unit: ClassVar[str | None] = None
    """The unit of the value warn/crit apply to (seconds, bytes, percent, count...); None when it varies."""

    id: str = Field(description="Dotted, stable identifier, e.g. his.disk.data.")
    kind: str = Field(description="Which probe runs this check.")
    title: str = Field("", description="Short human title; defaults to the id.")
    interval: PositiveDuration = Field(60.0, description="How often to run, e.g. 60s, 5m.")
    schedule: str | None = Field(None, description="Cron expression for daily patrols, instead of interval.")
    timeout: PositiveDuration = Field(10.0, description="A run longer than this is reported UNKNOWN (timeout).")
    target: str | None = Field(None, description="Name of a target in agent.yaml (for database checks).")
    system: str = Field("other", description="HIS, CIS, EMR, LIS, PACS, payments, insurance, other...")
    priority: Literal["high", "medium", "low"] = Field("medium", description="Incident priority.")
    warn: ThresholdField | None = Field(None, description='WARNING when the value matches, e.g. "> 85".')
    crit: ThresholdField | None = Field(None, description='CRITICAL when the value matches, e.g. "> 95".')
    raise_after: int = Field(1, ge=1, description="Consecutive bad results before an incident opens.")
    for_: Duration | None = Field(
        None,
        alias="for",
        description="How long a series must stay bad before an incident opens (e.g. 10m), like Prometheus' `for:`; "
        "with raise_after, both must be met. Unset: raise_after alone.",
    )
    clear_after: int = Field(1, ge=1, description="Consecutive OK results before it resolves.")
    parent: str | None = Field(
        None,
        description="Id of a check on the same target whose failure explains this one's (the target's reachability "
        "check). The agent fills it in for every check bound to a target that has a reachability check.",
    )
    runbook: str = Field("", description="What the on-call engineer or DBA should do.")
    labels: dict[str, str] = Field(default_factory=dict, description="Free labels copied to the results.")
    disabled: bool = Field(False, description="Loaded and validated, but not run.")

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(f"expected a dotted identifier of letters, digits, '_', '-' and '.', got {v!r}")
        return v

    @field_validator("for_")
    @classmethod
    def _for_not_negative(cls, v: float | None) -> float | None:
        if v is not None and v < 0:
            raise ValueError(f"must be a duration of 0s or more, such as 10m, got {v!r}")
        return v

    @field_validator("schedule")
    @classmethod
    def _check_cron(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from croniter import croniter

        if not croniter.is_valid(v):
            raise ValueError(f"expected a cron expression such as \"30 7 * * *\", got {v!r}")
        return v

    @model_validator(mode="after")
    def _interval_or_schedule(self) -> CheckSpec:
        if self.schedule is not None and "interval" in self.model_fields_set:
            raise ValueError("set either interval or schedule (cron), not both")
        return self

    @model_validator(mode="after")
    def _target_required(self) -> CheckSpec:
        if self.needs_target and not self.target:
            raise ValueError(f"kind {self.kind} needs a target: the name of a target in agent.yaml")
        return self

    @property
    def display_title(self) -> str:
        return self.title or self.id

    def threshold_unit(self) -> str | None:
        """The unit warn/crit are compared in: the check's own `unit` option where it has one (sql.metric),
        else its kind's; None when it cannot be known before the check runs (command plugins)."""
        unit = getattr(self, "unit", None)
        if isinstance(unit, str):
            return unit or None
        return self.value_unit

    def threshold_problems(self) -> list[tuple[tuple[str, ...], str]]:
        """(fields, message) for thresholds that load but cannot mean what was meant: a unit that does not fit
        the value, or warn and crit in the wrong order for their comparison (which involves both fields)."""
        problems: list[tuple[tuple[str, ...], str]] = []
        unit = self.threshold_unit()
        unit = _UNIT_NAMES.get(unit.lower(), unit) if unit is not None else None
        for name, t in (("warn", self.warn), ("crit", self.crit)):
            if t is not None and unit is not None and t.written_as not in _FITS.get(unit, {NUMBER}):
                problems.append(((name,), f'"{t}" is a {_WRITTEN[t.written_as]}, but a {self.kind} check measures '
                                       f"{unit}: {_HINTS.get(unit, f'write a plain number ({unit})')}"))
        w, c = self.warn, self.crit
        if w is not None and c is not None and w.limit is not None and c.limit is not None and not problems:
            rising = w.op in (">", ">=") and c.op in (">", ">=") and c.limit < w.limit
            falling = w.op in ("<", "<=") and c.op in ("<", "<=") and c.limit > w.limit
            if rising or falling:
                edge = "above" if rising else "below"
                problems.append((("crit", "warn"), f'warn "{w}" and crit "{c}" are in the wrong order: with {c.op} the '
                                         f"critical limit must be at or {edge} the warning one, or WARNING is never "
                                         "reported (swap them?)"))
        return problems

    def status_for(self, value: float) -> Status:
        """Apply crit then warn thresholds to a measured value."""
        if self.crit is not None and self.crit.matches(value):
            return Status.CRITICAL
        if self.warn is not None and self.warn.matches(value):
            return Status.WARNING
        return Status.OK

    def measured(
        self,
        value: float,
        *,
        unit: str,
        summary: str,
        key: str = "",
        metrics: dict[str, float] | None = None,
    ) -> Result:
        """A successful measurement: status from the thresholds, and the threshold crossed named in the summary."""
        status = self.status_for(value)
        crossed = self.crit if status is Status.CRITICAL else self.warn if status is Status.WARNING else None
        if crossed is not None:
            summary = f"{summary} ({status.name.lower()} {crossed})"
        return Result(
            check_id=self.id,
            status=status,
            summary=summary,
            target=self.target or "",
            key=key,
            value=value,
            unit=unit,
            metrics=dict(metrics or {}),
        )

    def probe(self, ctx: RunContext) -> list[Result]:
        """Run once and return one Result per series. Failures of the target are results, not exceptions."""
        raise NotImplementedError(f"kind {self.kind} has no probe")
