"""Rules across files that the pack loader cannot check alone: commands must be allowed by agent.yaml."""

from __future__ import annotations

from collections.abc import Iterable

from checks.config_error import ConfigError, ConfigErrors
from checks.pack import CheckSet


def check_commands_allowed(checks: CheckSet, command_allow: Iterable[str]) -> None:
    """Every enabled `command` check runs a program listed in commands.allow; the error points at the check.

    By kind name rather than class, so that an agent without command checks does not load their module."""
    allowed = frozenset(command_allow)
    errors: list[ConfigError] = []
    for spec in checks.enabled():
        command = getattr(spec, "command", None)
        if spec.kind != "command" or command in allowed:
            continue
        errors.append(checks.error_at(
            spec, "command", f"check {spec.id!r} runs {command}, which is not in commands.allow of agent.yaml"))
    if errors:
        raise ConfigErrors.of(errors)
