"""Every statement of every check, against the allow-list of the target it is bound to, when config loads.

The guard's structure checks run when a pack loads; which relations and functions a statement may use
depends on the target (its dialect, and the site exceptions in agent.yaml), so that check runs once packs
are bound: when the agent loads agent.yaml and in `xunjian check validate`/`run`. A refusal is a
ConfigError naming the pack file and line of the check. The same check runs again before each execution
(checks/sql/session.py), for specs built in code.

A check kind that runs SQL on a target exposes its statements with `sql_queries()`; a kind that reads two
targets (migration.reconcile: the running DB and the year DB) also says which statement goes where with
`sql_queries_by_target()`, and each is checked against its own target's allow-list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from checks.config_error import ConfigError, ConfigErrors
from checks.pack import CheckSet
from checks.sql.target import Target
from checks.sql.verdicts import ALLOW_DIALECT, GuardError

if TYPE_CHECKING:  # the query models load sqlglot; an agent without SQL checks never needs them
    from checks.sql.query import QueryMap


@runtime_checkable
class RunsSql(Protocol):
    """A check spec that sends SQL to its target: (field name, query) for each statement it may send."""

    def sql_queries(self) -> list[tuple[str, QueryMap]]: ...


def check_sql_allowed(checks: CheckSet, targets: Mapping[str, Any]) -> None:
    """Raise ConfigErrors for every statement its target's allow-list refuses.

    A check bound to a target is checked in that target's dialect with its site exceptions; a check whose
    target is not defined here (packs validated without agent.yaml) against every dialect's built-in list. A
    disabled check sends nothing, so a site that switched one off (an example of a pack it does not use) need not
    allow its tables; enabling it re-runs this check.
    """
    errors: list[ConfigError] = []
    for spec in checks.enabled():
        if not isinstance(spec, RunsSql):
            continue
        for name, field, query in _statements(spec):
            target = targets.get(name)
            target = target if isinstance(target, Target) else None
            if target is None and targets and name != (spec.target or ""):
                errors.append(checks.error_at(spec, field, f"check {spec.id!r}: unknown target {name!r}; agent.yaml "
                                              f"defines: {', '.join(sorted(targets))}"))
                continue
            for key, index, variant in query.variants():
                if target is not None and ALLOW_DIALECT[key] != target.dialect:
                    continue
                try:
                    variant.statement(key, target.allow if target is not None else None)
                except GuardError as exc:
                    where = f"{field}.{key}" + (f"[{index}]" if len(getattr(query, key) or ()) > 1 else "")
                    bound = f" on target {target.name}" if target is not None else ""
                    hint = "" if target is not None else " (checked without agent.yaml: give --config for its site exceptions)"
                    errors.append(checks.error_at(spec, where, f"check {spec.id!r}{bound}: {exc}{hint}"))
    if errors:
        raise ConfigErrors.of(errors)


def _statements(spec: RunsSql) -> list[tuple[str, str, QueryMap]]:
    """(target name, field, query) of every statement `spec` may send."""
    by_target = getattr(spec, "sql_queries_by_target", None)
    if callable(by_target):
        return list(by_target())
    own = str(getattr(spec, "target", "") or "")
    return [(own, field, query) for field, query in spec.sql_queries()]


def site_exceptions(targets: Mapping[str, Any]) -> list[str]:
    """One line per target with site exceptions to the read-only allow-list, for `xunjian check validate`."""
    lines = []
    for name in sorted(targets):
        target = targets[name]
        if isinstance(target, Target) and target.allow is not None:
            lines.append(f"target {name}: site exceptions to the read-only allow-list: {target.allow.describe()}")
    return lines
