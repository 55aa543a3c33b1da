"""Targets named in agent.yaml (database connections). The database patrol issue fills in the real model."""

from __future__ import annotations

from typing import Any

from checks.yamlsource import YamlSource


def parse_targets(raw: Any, src: YamlSource) -> dict[str, Any]:
    """Validate the `targets:` section of agent.yaml; errors name file, line and field."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise src.error(("targets",), "expected a mapping of target names to connection settings")
    return dict(raw)
