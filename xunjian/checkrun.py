"""The check author's loop: run or validate packs here, with agent.yaml's targets, commands and overrides."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.config import AgentConfig, load_agent_config
from agent.runner import run_once
from checks.command import Command
from checks.config_error import ConfigError, ConfigErrors
from checks.context import RunContext
from checks.pack import CheckSet, PackRef, load_checks
from checks.result import Result, Status
from checks.sql.binding import check_sql_allowed, site_exceptions
from checks.validation import check_commands_allowed
from checks.yamlsource import YamlSource, load_yaml

UNBOUND_TARGET = "(target)"


def _overrides(config: Path) -> tuple[Mapping[str, Any], YamlSource]:
    src = load_yaml(config)
    raw = src.data.get("overrides") if isinstance(src.data, dict) else None
    return (raw if isinstance(raw, dict) else {}), src


def load_for_run(refs: list[str], *, config: Path | None, target: str | None) -> tuple[CheckSet, RunContext]:
    """Packs named on the command line, bound to `target`, with agent.yaml's settings when given."""
    cfg: AgentConfig | None = load_agent_config(config) if config else None
    if target is not None and (cfg is None or target not in cfg.targets):
        known = ", ".join(sorted(cfg.targets)) if cfg else "none (give --config agent.yaml)"
        raise ConfigError(f"unknown target {target!r}; targets defined: {known}", field="--target")
    overrides, src = _overrides(config) if config else ({}, None)
    try:
        checks = load_checks([PackRef(r, target) for r in refs], base_dir=Path.cwd(), overrides=overrides,
                             overrides_source=src)
    except ConfigErrors as exc:
        if all(e.field.endswith(".target") and e.message.startswith("required") for e in exc.errors):
            first = exc.errors[0]
            raise ConfigError(
                f"{first.message}; {len(exc.errors)} checks need a target: run them with "
                "--config agent.yaml --target NAME", file=first.file, line=first.line, field=first.field) from None
        raise
    missing = sorted({s.target for s in checks.specs if s.target and (cfg is None or s.target not in cfg.targets)})
    if missing:
        spec = next(s for s in checks.specs if s.target == missing[0])
        hint = "" if cfg else "; give --config agent.yaml that defines it"
        raise checks.error_at(spec, "target", f"check {spec.id!r} needs target {missing[0]!r}, which is not defined{hint}")
    check_sql_allowed(checks, cfg.targets if cfg is not None else {})
    if cfg is not None:
        check_commands_allowed(checks, cfg.command_allow)
        ctx = cfg.run_context()
    else:
        # Run by hand with no agent.yaml: the person asked for exactly these packs, so their commands may run.
        allowed = frozenset(s.command for s in checks.specs if isinstance(s, Command))
        ctx = RunContext(command_allow=allowed)
    return checks, ctx


def worst_status(results: list[Result]) -> int:
    """The exit code of `xunjian check run`, as a Nagios plugin's: the worst status, UNKNOWN when nothing ran."""
    return int(max((r.status for r in results), default=Status.UNKNOWN))


def run_packs(refs: list[str], *, config: Path | None = None, target: str | None = None) -> list[Result]:
    checks, ctx = load_for_run(refs, config=config, target=target)
    try:
        return run_once(checks.enabled(), ctx, concurrency=4)
    finally:
        _close_resources(ctx)


def _close_resources(ctx: RunContext) -> None:
    if any(isinstance(k, str) and k.startswith("sql") for k in ctx.resources):
        from checks.sql.session import close_sessions

        close_sessions(ctx.resources)


def validate(refs: list[str], *, config: Path | None = None) -> str:
    """Load and cross-check everything; return a one-paragraph summary (errors raise ConfigError)."""
    lines = []
    if config is not None:
        cfg = load_agent_config(config)
        check_commands_allowed(cfg.checks, cfg.command_allow)
        lines.append(
            f"{config}: ok: agent {cfg.agent_id}, {len(cfg.checks.specs)} checks "
            f"({len(cfg.checks.enabled())} enabled) from {len(cfg.checks.packs)} packs, {len(cfg.targets)} targets"
        )
        lines.extend(site_exceptions(cfg.targets))
    if refs:
        if config:
            checks, _ = load_for_run(refs, config=config, target=None)
        else:
            # No agent.yaml: database packs are checked as if bound to a target, since binding is agent.yaml's job,
            # and their SQL against every dialect's built-in allow-list (no site exceptions without agent.yaml).
            checks = load_checks([PackRef(r, UNBOUND_TARGET) for r in refs], base_dir=Path.cwd())
            check_sql_allowed(checks, {})
        lines.append(f"{', '.join(refs)}: ok: {len(checks.specs)} checks in {len(checks.packs)} packs")
    if not lines:
        raise ConfigError("nothing to validate: name packs and/or --config agent.yaml")
    return "\n".join(lines)
