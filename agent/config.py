"""agent.yaml (a public contract, docs/configuration.md) as pydantic models; every error names file, line and field."""

from __future__ import annotations

import difflib
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from checks.config_error import ConfigError, ConfigErrors
from checks.context import RunContext
from checks.pack import CheckSet, PackRef, load_checks
from checks.spec import Duration, PositiveDuration, Size
from checks.targets import parse_targets
from checks.yamlsource import YamlSource, load_yaml, validate

_AGENT_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:@\-]{0,127}$")
"""What the collector accepts as an agent id (collector/sanity.py)."""
_ADDRESS = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+):(\d{1,5})$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSection(_Section):
    id: str = Field(default_factory=socket.gethostname, description="Unique in the fleet; defaults to the hostname.")
    labels: dict[str, str] = Field(default_factory=dict, description="Copied to every result of this agent.")
    roles: list[str] = Field(default_factory=list, description="What this host is, e.g. his-app, lis-db.")

    @field_validator("id")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty (leave it out to use the hostname)")
        if not _AGENT_ID.match(v):
            raise ValueError(f"{v!r} is not a valid agent id: 1-128 characters of A-Z a-z 0-9 _ . : @ -, starting "
                             "with a letter, digit or _")
        return v


class BackoffSection(_Section):
    initial: PositiveDuration = Field(0.5, description="First wait after a failed connection.")
    max: PositiveDuration = Field(30.0, description="Longest wait between reconnection rounds.")


class TlsSection(_Section):
    mode: Literal["mtls", "insecure"] = Field("mtls", description="mtls: this agent proves who it is with its "
                                              "certificate and checks the collector's; insecure: plain text (`xunjian "
                                              "up` on loopback only).")
    ca_file: str = Field("ca.crt", description="The collector's CA certificate (ca.crt from `xunjian ca init`, "
                         "or your PKI's); relative to agent.yaml.")
    enroll_token_file: str = Field("enroll.token", description="File with the single-use token from `xunjian "
                                   "agents enroll ID`, read when the agent has no certificate yet; relative to "
                                   "agent.yaml.")
    enroll_address: str | None = Field(None, description="host:port of the collector's enrollment listener; "
                                       "default: the first collector address with port 9472.")
    identity_dir: str | None = Field(None, description="Where the agent keeps its key and certificate (0700); "
                                     "default: identity/ next to the spool.")
    cert_file: str | None = Field(None, description="Your own PKI: this agent's certificate (no enrollment or "
                                  "renewal by Xunjian).")
    key_file: str | None = Field(None, description="Your own PKI: this agent's private key (mode 0600).")
    server_name: str | None = Field(None, description="The name to expect in the collector's certificate when it "
                                    "differs from the host in collector.addresses.")

    @field_validator("enroll_address")
    @classmethod
    def _enroll_address(cls, v: str | None) -> str | None:
        if v is not None and not _ADDRESS.match(v):
            raise ValueError(f"expected host:port such as collector-a:9472, got {v!r}")
        return v


class CollectorSection(_Section):
    addresses: list[str] = Field(description='Collectors as "host:port", tried in order (failover).')
    batch_max: int = Field(100, ge=1, description="Most results in one Batch message.")
    batch_wait: Duration = Field(1.0, description="How long an unchanged result may wait for others to fill a batch; a status change is sent at once.")
    window: int = Field(8, ge=1, description="Batches sent but not yet acknowledged, at most.")
    heartbeat_interval: PositiveDuration = Field(10.0, description="How often the agent reports its spool and seq.")
    connect_timeout: PositiveDuration = Field(5.0, description="How long to wait for the collector's Welcome.")
    reconnect: BackoffSection = Field(default_factory=lambda: BackoffSection.model_validate({}), description="Backoff between attempts.")
    tls: TlsSection = Field(default_factory=lambda: TlsSection.model_validate({}), description="How the agent and "
                            "the collector know each other (docs/security.md).")

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError('at least one collector address is needed, e.g. ["collector-a:9470"]')
        for a in v:
            m = _ADDRESS.match(a)
            if not m or not 0 < int(m.group(1)) < 65536:
                raise ValueError(f"expected host:port such as collector-a:9470, got {a!r}")
        return v


class SpoolSection(_Section):
    path: str = Field("/var/lib/xunjian/spool.db", description="SQLite file that keeps results until acknowledged.")
    max_bytes: Size = Field(256 * 1024**2, description="Bound on stored results; the oldest are dropped beyond it.")

    @field_validator("max_bytes")
    @classmethod
    def _at_least(cls, v: int) -> int:
        if v < 64 * 1024:
            raise ValueError("must be at least 64KiB")
        return v


class PackEntry(_Section):
    pack: str = Field(description="builtin:NAME, a file or a glob.")
    target: str | None = Field(None, description="Bind the pack's checks to this target.")
    system: str | None = Field(None, description="The hospital system (HIS, LIS, EMR...) every check of the pack belongs "
                               "to, e.g. a database pack bound to the HIS database; agent.yaml overrides still win.")


class CommandsSection(_Section):
    allow: list[str] = Field(default_factory=list, description="Absolute paths of programs the command kind may run.")

    @field_validator("allow")
    @classmethod
    def _absolute(cls, v: list[str]) -> list[str]:
        for p in v:
            if not Path(p).is_absolute():
                raise ValueError(f"expected an absolute path such as /usr/lib/nagios/plugins/check_disk, got {p!r}")
        return v


class AgentFile(_Section):
    """The whole agent.yaml; `targets` stays raw here because checks.targets validates it."""

    agent: AgentSection = Field(default_factory=AgentSection)
    collector: CollectorSection
    spool: SpoolSection = Field(default_factory=lambda: SpoolSection.model_validate({}))
    packs: list[Any] = Field(default_factory=list, description="builtin:NAME, files, globs or {pack, target}.")
    commands: CommandsSection = Field(default_factory=CommandsSection)
    targets: Any = None
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    state_dir: str | None = Field(None, description="Where probes keep small state; defaults next to the spool.")
    concurrency: int = Field(4, ge=1, le=256, description="Checks that may run at the same time.")


@dataclass(frozen=True)
class AgentConfig:
    """agent.yaml validated, with paths resolved against its directory and its checks loaded."""

    source: Path
    agent: AgentSection
    collector: CollectorSection
    spool_path: Path
    spool_max_bytes: int
    state_dir: Path
    concurrency: int
    command_allow: frozenset[str]
    targets: Mapping[str, Any]
    checks: CheckSet = field(default_factory=CheckSet)

    @property
    def agent_id(self) -> str:
        return self.agent.id

    def run_context(self, resources: dict[str, Any] | None = None) -> RunContext:
        """What every probe of this agent gets: targets, allowed commands, state directory, shared resources."""
        return RunContext(
            agent_id=self.agent.id,
            targets=self.targets,
            command_allow=self.command_allow,
            state_dir=self.state_dir,
            resources=resources if resources is not None else {},
        )


def load_agent_config(path: str | Path) -> AgentConfig:
    """Read and validate agent.yaml and the packs it names; raises ConfigError "file:line: field: message"."""
    p = Path(path)
    src = load_yaml(p)
    if not isinstance(src.data, dict):
        raise src.error((), "expected a mapping with agent, collector, spool, packs, targets...")
    model = validate(AgentFile, src.data, src)
    base = p.resolve().parent
    targets = parse_targets(model.targets, src)
    refs = _pack_refs(model.packs, targets, src)
    checks = load_checks(refs, base_dir=base, overrides=model.overrides, overrides_source=src, refs_source=src)
    _check_targets_exist(checks, targets)
    from checks.sql.binding import check_sql_allowed
    from checks.validation import check_commands_allowed

    check_sql_allowed(checks, targets)

    check_commands_allowed(checks, model.commands.allow)
    _check_tls(model.collector.tls, src)
    spool_path = _resolve(base, model.spool.path)
    state_dir = _resolve(base, model.state_dir) if model.state_dir else spool_path.parent / "state"
    return AgentConfig(
        source=p,
        agent=model.agent,
        collector=model.collector,
        spool_path=spool_path,
        spool_max_bytes=model.spool.max_bytes,
        state_dir=state_dir,
        concurrency=model.concurrency,
        command_allow=frozenset(model.commands.allow),
        targets=targets,
        checks=checks,
    )


def _check_tls(tls: TlsSection, src: YamlSource) -> None:
    if tls.mode != "mtls":
        return
    if bool(tls.cert_file) != bool(tls.key_file):
        raise src.error(("collector", "tls", "key_file" if tls.cert_file else "cert_file"),
                        "cert_file and key_file go together (your own PKI)")


def spool_path_of(path: str | Path) -> Path:
    """The spool agent.yaml names (the running agent's pid file is next to it), read without validating the rest
    of the file: `xunjian agent reload` must reach the agent even when the new file has errors."""
    p = Path(path)
    src = load_yaml(p)
    data = src.data if isinstance(src.data, dict) else {}
    spool = data.get("spool")
    spool = spool if isinstance(spool, dict) else {}
    raw = spool.get("path") if isinstance(spool.get("path"), str) else SpoolSection.model_fields["path"].default
    return _resolve(p.resolve().parent, str(raw))


def _resolve(base: Path, raw: str) -> Path:
    p = Path(raw).expanduser()
    return p if p.is_absolute() else base / p


def _unknown_target_message(name: str, targets: Mapping[str, Any]) -> str:
    hint = difflib.get_close_matches(name, list(targets), n=1, cutoff=0.6)
    if hint:
        return f"unknown target {name!r} (did you mean {hint[0]!r}?)"
    known = ", ".join(sorted(targets)) or "none"
    return f"unknown target {name!r}; agent.yaml defines: {known}"


def _pack_refs(raw: list[Any], targets: Mapping[str, Any], src: YamlSource) -> list[str | PackRef]:
    """Entries of `packs:`; a pack bound to a target names one that exists (the error points at the entry)."""
    refs: list[str | PackRef] = []
    for i, item in enumerate(raw):
        if isinstance(item, str) and item:
            refs.append(item)
            continue
        if not isinstance(item, dict):
            raise src.error(("packs", i), "expected builtin:NAME, a file, a glob or {pack: ..., target: ...}")
        entry = validate(PackEntry, item, src, ("packs", i))
        if entry.target is not None and entry.target not in targets:
            raise src.error(("packs", i, "target"), _unknown_target_message(entry.target, targets))
        refs.append(PackRef(entry.pack, entry.target, entry.system))
    return refs


def _check_targets_exist(checks: CheckSet, targets: Mapping[str, Any]) -> None:
    """Every check with a target names one from agent.yaml; the error points at the check in its pack."""
    errors: list[ConfigError] = []
    for spec in checks.specs:
        if spec.target is None or spec.target in targets:
            continue
        errors.append(checks.error_at(spec, "target", f"check {spec.id!r}: {_unknown_target_message(spec.target, targets)}"))
    if errors:
        raise ConfigErrors.of(errors)
