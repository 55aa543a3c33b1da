"""Validate packs without running them: the loader's checks plus cross-file rules (commands.allow)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from checks.command import Command
from checks.config_error import ConfigError, ConfigErrors
from checks.pack import CheckSet, PackRef, load_checks


def validate_packs(
    paths: Iterable[str | PackRef],
    *,
    base_dir: Path | None = None,
    command_allow: Iterable[str] | None = None,
) -> CheckSet:
    """Load every pack (builtin:NAME, files, globs); with `command_allow`, also refuse command checks whose
    program agent.yaml does not allow. Raises ConfigError naming file, line and field."""
    checks = load_checks(list(paths), base_dir=base_dir)
    if command_allow is not None:
        check_commands_allowed(checks, command_allow)
    return checks


def check_commands_allowed(checks: CheckSet, command_allow: Iterable[str]) -> None:
    """Every enabled `command` check runs a program listed in commands.allow; the error points at the check."""
    allowed = frozenset(command_allow)
    errors: list[ConfigError] = []
    for spec in checks.enabled():
        if not isinstance(spec, Command) or spec.command in allowed:
            continue
        errors.append(checks.error_at(
            spec, "command", f"check {spec.id!r} runs {spec.command}, which is not in commands.allow of agent.yaml"))
    if errors:
        raise ConfigErrors.of(errors)
