"""What the dashboards take from the built-in packs: each check's warn/crit as Grafana threshold steps, and units.

Thresholds are never typed into a dashboard: a panel of a check's value colours by the same limits the check
itself uses, read here from checks/packs/*.yaml, so a pack change shows on the wall at the next `make dashboards`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from checks.config_error import ConfigError
from checks.pack import PackRef, builtin_packs, load_checks
from checks.spec import CheckSpec
from checks.thresholds import Threshold, parse_quantity

GREEN, YELLOW, RED, PURPLE, BLUE = "green", "yellow", "red", "purple", "blue"
_COMPARISON = re.compile(r"^\s*(>=|<=|>|<)\s*(.+?)\s*$")

CHECK_UNITS = {
    "percent": "percent", "seconds": "s", "s": "s", "hours": "h", "days": "d", "bytes": "bytes",
    "findings": "short", "count": "short", "load": "short", "transactions": "short", "deadlocks": "short",
    "conflicts": "short", "failing": "short", "per second": "cps", "": "short",
}
"""A check's `unit` (as results carry it) to the Grafana unit id its panels use."""


@dataclass(frozen=True)
class Step:
    """One Grafana threshold step: from `value` upwards (None = from minus infinity) the colour is `color`."""

    value: float | None
    color: str


class UnplottableThreshold(ValueError):
    """A threshold Grafana's ascending colour steps cannot show (equality, a Nagios range, mixed directions)."""


@cache
def builtin_checks() -> dict[str, tuple[CheckSpec, ...]]:
    """Every check of every built-in pack by id (the host packs for Linux and Windows share ids)."""
    out: dict[str, list[CheckSpec]] = {}
    for name in builtin_packs():
        try:
            loaded = load_checks([f"builtin:{name}"])
        except ConfigError:  # a database pack: its checks need a target to load
            loaded = load_checks([PackRef(f"builtin:{name}", target="dashboards")])
        for spec in loaded.specs:
            out.setdefault(spec.id, []).append(spec)
    return {k: tuple(v) for k, v in out.items()}


def spec(check_id: str) -> CheckSpec:
    """The one definition of a built-in check; a check defined differently in two packs is an error."""
    specs = builtin_checks().get(check_id)
    if not specs:
        raise KeyError(f"no built-in pack defines check {check_id!r}")
    first = specs[0]
    for other in specs[1:]:
        if (str(other.warn), str(other.crit)) != (str(first.warn), str(first.crit)):
            raise ValueError(f"check {check_id!r} has different thresholds in two built-in packs: "
                             f"{first.warn}/{first.crit} and {other.warn}/{other.crit}")
    return first


def _limit(threshold: Threshold | None) -> tuple[str, float] | None:
    if threshold is None:
        return None
    m = _COMPARISON.match(threshold.text)
    if not m:
        raise UnplottableThreshold(f"threshold {threshold.text!r} is not a <, <=, > or >= comparison")
    return m.group(1), parse_quantity(m.group(2))


def steps(check_id: str) -> tuple[Step, ...]:
    """Grafana steps for a check's warn/crit: green where OK, yellow from warn, red from crit.

    "> 85" / "> 95" gives green, 85 yellow, 95 red. Low-is-bad thresholds ("< 7d" warn, "< 3d" crit) give
    red, 3d yellow, 7d green. Grafana colours a value equal to a step with that step, so a value exactly at a
    ">" limit shows one colour early; the status tiles, not these colours, say what the check decided.
    """
    s = spec(check_id)
    warn, crit = _limit(s.warn), _limit(s.crit)
    ops = {lim[0][0] for lim in (warn, crit) if lim is not None}
    if not ops:
        return (Step(None, GREEN),)
    if len(ops) > 1:
        raise UnplottableThreshold(f"check {check_id!r}: warn {s.warn} and crit {s.crit} point in different directions")
    if ops == {">"}:
        out = [Step(None, GREEN)]
        if warn is not None and (crit is None or warn[1] < crit[1]):
            out.append(Step(warn[1], YELLOW))
        if crit is not None:
            out.append(Step(crit[1], RED))
        return tuple(out)
    out = [Step(None, RED if crit is not None else YELLOW)]
    if crit is not None and warn is not None and crit[1] < warn[1]:
        out.append(Step(crit[1], YELLOW))
    out.append(Step(warn[1] if warn is not None else crit[1] if crit is not None else 0.0, GREEN))
    return tuple(out)


def grafana_unit(check_id: str, default: str) -> str:
    """The Grafana unit of a check's value: from the pack's `unit` for SQL kinds, else `default` (host kinds set
    their unit in the probe)."""
    unit = getattr(spec(check_id), "unit", None)
    if unit is None:
        return default
    if unit not in CHECK_UNITS:
        raise KeyError(f"check {check_id!r} has unit {unit!r}, which has no Grafana unit in CHECK_UNITS")
    return CHECK_UNITS[unit]
