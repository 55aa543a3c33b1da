"""Packs: YAML files of checks with pack-level defaults, loaded with file:line errors and agent.yaml overrides."""

from __future__ import annotations

import contextlib
import difflib
import glob
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.config_error import ConfigError, ConfigErrors
from checks.kinds import REACHABILITY_KINDS, spec_class
from checks.spec import CheckSpec, yaml_keys
from checks.yamlsource import PathKey, YamlSource, dotted, load_yaml, validate

BUILTIN_DIR = Path(__file__).parent / "packs"
BUILTIN_PREFIX = "builtin:"
_PACK_FIELDS = {"pack", "description", "defaults", "checks"}


@dataclass(frozen=True)
class Origin:
    file: str
    line: int | None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass(frozen=True)
class PackRef:
    """A pack named in agent.yaml: `builtin:NAME`, a file or a glob, optionally bound to a target.

    Binding sets `target` on every check of the pack that does not name its own, so one built-in
    database pack can patrol several databases: its checks are then told apart by (id, target).
    """

    pack: str
    target: str | None = None
    system: str | None = None
    """The hospital system every check of the pack belongs to (a DB pack bound to the HIS database is HIS)."""


SeriesId = tuple[str, str]
"""(check id, target or "") identifies a check instance on one agent."""


@dataclass
class CheckSet:
    """Checks loaded from packs, in order, with where each one was written."""

    specs: list[CheckSpec] = field(default_factory=list)
    origin: dict[SeriesId, Origin] = field(default_factory=dict)
    packs: list[str] = field(default_factory=list)

    def enabled(self) -> list[CheckSpec]:
        return [s for s in self.specs if not s.disabled]

    def error_at(self, spec: CheckSpec, field: str, message: str) -> ConfigError:
        """An error about `spec`, pointing at the file and line of the pack where it was written."""
        origin = self.origin.get((spec.id, spec.target or ""))
        return ConfigError(message, file=origin.file if origin else "", line=origin.line if origin else None,
                           field=field)


def builtin_packs() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def resolve_pack_refs(refs: list[str], base_dir: Path) -> list[Path]:
    """`builtin:NAME`, file paths and globs (relative to `base_dir`) to pack files, in order, without repeats."""
    out: list[Path] = []
    for ref in refs:
        if ref.startswith(BUILTIN_PREFIX):
            name = ref[len(BUILTIN_PREFIX):]
            path = BUILTIN_DIR / f"{name}.yaml"
            if not path.is_file():
                raise ConfigError(f"no built-in pack {name!r}; built-in packs are: {', '.join(builtin_packs())}")
            found = [path]
        else:
            pattern = str(Path(ref).expanduser() if Path(ref).expanduser().is_absolute() else base_dir / ref)
            if glob.has_magic(pattern):
                found = [Path(p) for p in sorted(glob.glob(pattern))]
                if not found:
                    raise ConfigError(f"no pack file matches {pattern} (remove the entry, or put a pack there)")
            else:
                found = [Path(pattern)]
                if not found[0].exists():
                    raise ConfigError(f"pack file not found: {pattern}")
        for p in found:
            if p not in out:
                out.append(p)
    return out


def load_checks(
    refs: list[str | PackRef],
    *,
    base_dir: Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    overrides_source: YamlSource | None = None,
    refs_source: YamlSource | None = None,
) -> CheckSet:
    """Load every pack named in `refs`, apply per-id overrides, and fail on the first file with errors.

    With `refs_source` (agent.yaml, whose `packs:` list `refs` is), a missing pack names its line there."""
    base = base_dir or Path.cwd()
    result = CheckSet()
    for i, ref in enumerate(refs):
        pref = ref if isinstance(ref, PackRef) else PackRef(ref)
        try:
            paths = resolve_pack_refs([pref.pack], base)
        except ConfigError as exc:
            if refs_source is None or exc.file:
                raise
            raise refs_source.error(("packs", i), exc.message) from None
        for path in paths:
            load_pack_into(path, result, overrides or {}, overrides_source, bind_target=pref.target,
                           bind_system=pref.system)
    link_parents(result)
    known = {cid for cid, _ in result.origin} | {f"{cid}@{t}" for cid, t in result.origin if t}
    unknown = sorted(set(overrides or {}) - known)
    if unknown:
        errors = [
            ConfigError(
                "override for a check that no loaded pack defines",
                file=overrides_source.file if overrides_source else "",
                line=overrides_source.line_of(("overrides", cid)) if overrides_source else None,
                field=f"overrides.{cid}",
            )
            for cid in unknown
        ]
        raise ConfigErrors.of(errors)
    return result


def load_pack(path: str | Path) -> CheckSet:
    result = CheckSet()
    load_pack_into(Path(path), result, {}, None)
    link_parents(result)
    return result


def link_parents(checks: CheckSet) -> None:
    """Every check on a target that has a reachability check gets that check as its `parent` (unless it names
    one): when the database is down, the collector then sees one CRITICAL and the rest explained by it.

    A parent a pack names itself must be another enabled check on the same target, with no cycle.
    """
    reachability: dict[str, str] = {}
    for spec in checks.specs:
        if spec.kind in REACHABILITY_KINDS and spec.target and not spec.disabled:
            reachability.setdefault(spec.target, spec.id)
    enabled = {(s.id, s.target or ""): s for s in checks.specs if not s.disabled}
    errors: list[ConfigError] = []
    for i, spec in enumerate(checks.specs):
        if spec.parent is None:
            parent = reachability.get(spec.target or "")
            if parent is not None and spec.kind not in REACHABILITY_KINDS:
                checks.specs[i] = spec.model_copy(update={"parent": parent})
            continue
        where = f" on target {spec.target!r}" if spec.target else ""
        if spec.parent == spec.id or (spec.parent, spec.target or "") not in enabled:
            errors.append(checks.error_at(spec, "parent", f"check {spec.id!r}: parent {spec.parent!r} is not another "
                                          f"enabled check{where}"))
            continue
        chain, step = [spec.id], enabled[(spec.parent, spec.target or "")]
        while step.id not in chain:
            chain.append(step.id)
            nxt = enabled.get((step.parent, step.target or "")) if step.parent is not None else None
            if nxt is None:
                break
            step = nxt
        else:
            errors.append(checks.error_at(spec, "parent", f"check {spec.id!r}: parents form a cycle ({' -> '.join(chain)})"))
    if errors:
        raise ConfigErrors.of(errors)


def load_pack_into(
    path: Path,
    into: CheckSet,
    overrides: Mapping[str, Mapping[str, Any]],
    overrides_source: YamlSource | None,
    bind_target: str | None = None,
    bind_system: str | None = None,
) -> None:
    src = load_yaml(path)
    data = src.data
    if not isinstance(data, dict):
        raise src.error((), "expected a mapping with pack, defaults and checks")
    for key in data:
        if key not in _PACK_FIELDS:
            raise src.error((str(key),), f"unknown field (expected one of: {', '.join(sorted(_PACK_FIELDS))})")
    if not isinstance(data.get("pack"), str) or not data["pack"]:
        raise src.error(("pack",), "required: the pack's name")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise src.error(("defaults",), "expected a mapping of fields every check gets unless it sets its own")
    checks = data.get("checks")
    if not isinstance(checks, list):
        raise src.error(("checks",), "expected a list of checks")
    into.packs.append(data["pack"])
    errors: list[ConfigError] = []
    known_defaults = yaml_keys(CheckSpec)
    for i, raw in enumerate(checks):
        if isinstance(raw, dict) and "kind" in raw:
            with contextlib.suppress(ValueError):
                known_defaults |= yaml_keys(spec_class(str(raw["kind"])))
        try:
            spec = _load_check(src, i, raw, defaults, overrides, overrides_source, bind_target, bind_system)
        except ConfigError as exc:
            errors.extend(exc.errors if isinstance(exc, ConfigErrors) else [exc])
            continue
        origin = Origin(src.file, src.line_of(("checks", i)))
        sid = (spec.id, spec.target or "")
        if sid in into.origin:
            on = f" on target {spec.target!r}" if spec.target else ""
            errors.append(src.error(("checks", i, "id"), f"duplicate check id {spec.id!r}{on}, first defined at {into.origin[sid]}"))
            continue
        into.specs.append(spec)
        into.origin[sid] = origin
    for key in defaults:
        if str(key) not in known_defaults:
            hint = difflib.get_close_matches(str(key), sorted(known_defaults), n=1, cutoff=0.6)
            why = f" (did you mean {hint[0]!r}?)" if hint else " (not a field of any check in this pack)"
            errors.append(src.error(("defaults", str(key)), f"unknown field{why}"))
    errors = list({str(e): e for e in errors}.values())
    if errors:
        raise ConfigErrors.of(errors)


def _load_check(
    src: YamlSource,
    index: int,
    raw: Any,
    defaults: Mapping[str, Any],
    overrides: Mapping[str, Mapping[str, Any]],
    overrides_source: YamlSource | None,
    bind_target: str | None = None,
    bind_system: str | None = None,
) -> CheckSpec:
    path = ("checks", index)
    if not isinstance(raw, dict):
        raise src.error(path, "expected a mapping with at least id and kind")
    if "kind" not in raw:
        raise src.error(path, "required field kind is missing")
    try:
        cls = spec_class(str(raw["kind"]))
    except ValueError as exc:
        raise src.error((*path, "kind"), str(exc)) from None
    if "interval" in raw and "schedule" in raw:
        raise src.error((*path, "schedule"), "set either interval or schedule (cron), not both")
    fields = yaml_keys(cls)
    merged = {k: v for k, v in defaults.items() if k in fields and not _replaced_by(k, raw)}
    merged.update(raw)
    if bind_target and not merged.get("target"):
        merged["target"] = bind_target
    if bind_system:
        merged["system"] = bind_system
    if cls.needs_target and not merged.get("target"):
        raise src.error((*path, "target"), f"required for kind {cls.model_fields['kind'].default}: the name of a "
                        "target in agent.yaml (or bind the pack to a target in agent.yaml packs:)")
    try:
        spec = validate(cls, merged, src, path)
    except ConfigError as exc:
        raise _blame_defaults(exc, src, path, raw, defaults) from None
    key = f"{spec.id}@{spec.target}" if spec.target and f"{spec.id}@{spec.target}" in overrides else spec.id
    override = overrides.get(key)
    if override:
        if not isinstance(override, Mapping):
            raise ConfigError("expected a mapping of fields to override", file=overrides_source.file if overrides_source else "",
                              line=overrides_source.line_of(("overrides", key)) if overrides_source else None,
                              field=f"overrides.{key}")
        merged = {k: v for k, v in merged.items() if not _replaced_by(k, override)}
        merged.update(override)
        osrc = overrides_source or src
        spec = validate(cls, merged, osrc, ("overrides", key) if overrides_source else path)
    problems = spec.threshold_problems()
    if problems:
        raise ConfigErrors.of([_blame(names, message, src, path, raw, defaults, override or {}, key,
                                      overrides_source) for names, message in problems])
    return spec


def _blame(names: tuple[str, ...], message: str, src: YamlSource, path: PathKey, raw: Mapping[str, Any],
           defaults: Mapping[str, Any], override: Mapping[str, Any], key: str,
           overrides_source: YamlSource | None) -> ConfigError:
    """An error about fields `names` of a loaded check, at the line that last set one of them: the agent.yaml
    override, else the check itself, else the pack's defaults."""
    for name in names:
        if name in override and overrides_source is not None:
            return overrides_source.error(("overrides", key, name), message)
    for name in names:
        if name in raw:
            return src.error((*path, name), message)
    for name in names:
        if name in defaults:
            return src.error(("defaults", name), message)
    return src.error((*path, names[0]), message)


def _replaced_by(name: str, fields: Mapping[str, Any]) -> bool:
    """A check's own `schedule` replaces a default `interval` and vice versa; so does an override."""
    return (name == "interval" and "schedule" in fields) or (name == "schedule" and "interval" in fields)


def _blame_defaults(exc: ConfigError, src: YamlSource, path: PathKey, raw: Mapping[str, Any],
                    defaults: Mapping[str, Any]) -> ConfigError:
    """Point errors in a value the check took from `defaults:` at the defaults line, not the check's first line."""
    prefix = dotted(path) + "."
    fixed = []
    for err in exc.errors if isinstance(exc, ConfigErrors) else [exc]:
        name = err.field[len(prefix):].split(".")[0].split("[")[0] if err.field.startswith(prefix) else ""
        if name and name in defaults and name not in raw:
            err = ConfigError(err.message, file=src.file,
                              line=src.line_of(("defaults", name)), field=f"defaults.{name}")
        fixed.append(err)
    return fixed[0] if len(fixed) == 1 else ConfigErrors(fixed)
