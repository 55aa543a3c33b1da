"""Targets named in agent.yaml (database connections), validated when the agent loads its config."""

from __future__ import annotations

import re
from typing import Any

from checks.config_error import ConfigError, ConfigErrors
from checks.sql.target import Target
from checks.yamlsource import YamlSource, validate

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


def parse_targets(raw: Any, src: YamlSource) -> dict[str, Target]:
    """Validate the `targets:` section of agent.yaml; errors name file, line and field (targets.NAME.field)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise src.error(("targets",), "expected a mapping of target names to connection settings")
    out: dict[str, Target] = {}
    errors: list[ConfigError] = []
    for name, body in raw.items():
        path = ("targets", str(name))
        if not isinstance(name, str) or not _NAME.match(name):
            errors.append(src.error(path, "expected a target name of letters, digits, '_', '-' and '.'"))
            continue
        if not isinstance(body, dict):
            errors.append(src.error(path, "expected a mapping with dialect, host or dsn, user, password_env..."))
            continue
        try:
            out[name] = validate(Target, {**body, "name": name}, src, path)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
        except ConfigError as exc:
            errors.append(exc)
    for name, target in out.items():
        if target.replica_of is None:
            continue
        primary = out.get(target.replica_of)
        where: tuple[str, ...] = ("targets", name, "replica_of")
        if primary is None or target.replica_of == name:
            known = ", ".join(sorted(n for n in out if n != name)) or "none"
            errors.append(src.error(where, f"expected the name of another target (its primary); targets: {known}"))
        elif primary.dialect != target.dialect:
            errors.append(src.error(where, f"{target.replica_of} is a {primary.dialect} target, this one {target.dialect}"))
    if errors:
        raise ConfigErrors.of(errors)
    return out
