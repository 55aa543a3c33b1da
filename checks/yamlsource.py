"""YAML loaded with the line of every node, and pydantic errors turned into file:line: field: message."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from checks.config_error import ConfigError, ConfigErrors

PathKey = tuple[str | int, ...]
_CONSTRUCTOR = yaml.SafeLoader("")
"""Turns scalar nodes into Python values with the safe YAML 1.1 rules."""
M = TypeVar("M", bound=BaseModel)


@dataclass
class YamlSource:
    """Parsed YAML plus the line (1-based) where each mapping key or list item starts."""

    file: str
    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int | None:
        """Line of the deepest node of `path` that exists in the document."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def error(self, path: PathKey, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, line=self.line_of(path), field=dotted(path))


def dotted(path: PathKey) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_yaml(path: str | Path) -> YamlSource:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(p)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=str(p)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(p)) from None
    return parse_yaml(text, str(p))


_UNQUOTED = re.compile(
    r"(?P<key>[\w.\-]+)\s*:\s+(?P<value>(?:>=?|!=|[@%|`])\s*[\d~:.+\-][^,}\]#]*?)\s*(?:[,}\]#]|$)")
"""A key whose value is a threshold (a comparison or a Nagios range) written without quotes."""
_INDICATOR = {
    ">": "starts a folded block", "|": "starts a literal block", "!": "starts a tag", "@": "is reserved",
    "`": "is reserved", "%": "starts a directive",
}


def _unquoted(text: str, line: int | None, file: str) -> ConfigError | None:
    """A plain-language error for `warn: > 95` and the like: a threshold starting with a YAML indicator."""
    lines = text.splitlines()
    if line is None or not 0 < line <= len(lines):
        return None
    m = _UNQUOTED.search(lines[line - 1])
    if m is None:
        return None
    key, value = m.group("key"), m.group("value").strip()
    return ConfigError(f'{value} must be quoted: write {key}: "{value}" (in YAML an unquoted {value[0]} '
                       f"{_INDICATOR[value[0]]})", file=file, line=line, field=key)


def _yaml_error(exc: yaml.YAMLError, text: str, file: str) -> ConfigError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    unquoted = _unquoted(text, line, file)
    if unquoted is not None:
        return unquoted
    problem = getattr(exc, "problem", None) or str(exc)
    return ConfigError(f"invalid YAML: {problem}", file=file, line=line)


MAX_ALIAS_NODES = 10_000
"""Nodes that aliases may add when expanded: generous for a merge key or a shared list, and a 'billion laughs'
file (each alias doubling the document) stops after a few levels instead of exhausting memory."""


class _Aliases:
    """Counts the nodes built through aliases (a node seen before is an alias use) against MAX_ALIAS_NODES."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.seen: set[int] = set()
        self.expanded = 0

    def enter(self, node: yaml.Node, repeat: bool) -> bool:
        """Record one node built; `repeat` is whether it is built again under an alias. True for an alias use."""
        again = id(node) in self.seen
        self.seen.add(id(node))
        if again or repeat:
            self.expanded += 1
            if self.expanded > MAX_ALIAS_NODES:
                raise ConfigError(f"YAML aliases expand to more than {MAX_ALIAS_NODES} nodes (the anchor defined here is "
                                  "repeated too often); pack and agent files need no more than a few aliases",
                                  file=self.file, line=node.start_mark.line + 1)
        return again or repeat


def parse_yaml(text: str, file: str = "<string>") -> YamlSource:
    src = YamlSource(file=file, data=None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        src.data = {} if node is None else _build(node, (), src.lines, file, _Aliases(file), False)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, text, file) from None
    return src


def _build(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], file: str, aliases: _Aliases,
           repeat: bool) -> Any:
    repeat = aliases.enter(node, repeat)
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged = _build(value_node, path, {}, file, aliases, repeat)
                if isinstance(merged, dict):
                    for k, v in merged.items():
                        out.setdefault(k, v)
                continue
            key = _CONSTRUCTOR.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
            if key in out:
                raise ConfigError(f"duplicate key {key!r}", file=file, line=key_node.start_mark.line + 1, field=dotted((*path, str(key))))
            key_path = (*path, str(key))
            lines[key_path] = key_node.start_mark.line + 1
            out[key] = _build(value_node, key_path, lines, file, aliases, repeat)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines, file, aliases, repeat) for i, item in enumerate(node.value)]
    try:
        return _CONSTRUCTOR.construct_object(node)
    except ValueError as exc:  # a scalar YAML reads as a date or time that does not exist, e.g. 2027-13-01
        raise ConfigError(f"{node.value!r} is not a valid date or time ({exc}); quote it to keep it as text",
                          file=file, line=node.start_mark.line + 1, field=dotted(path)) from None


def validate(model: type[M], data: Any, src: YamlSource, base: PathKey = (), context: dict[str, Any] | None = None) -> M:
    """Validate `data` (found at `base` in `src`) against `model`; raise ConfigError(s) naming file, line and field."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise errors_from(exc, src, base, model) from None


def errors_from(exc: ValidationError, src: YamlSource, base: PathKey, model: type[BaseModel]) -> ConfigError:
    errors: list[ConfigError] = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
        path = (*base, *loc)
        message = _message(err, model, loc)
        errors.append(ConfigError(message, file=src.file, line=src.line_of(path), field=dotted(path)))
    errors.sort(key=lambda e: (e.line or 0, e.field))
    return ConfigErrors.of(errors)


def _message(err: Any, model: type[BaseModel], loc: PathKey) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        known = _known_fields(model, loc[:-1])
        hint = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        suffix = f" (did you mean {hint[0]!r}?)" if hint else (f" (expected one of: {', '.join(sorted(known))})" if known else "")
        return f"unknown field{suffix}"
    if kind == "missing":
        return "required field is missing"
    msg = str(err["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    elif msg.startswith("Assertion failed, "):
        msg = msg[len("Assertion failed, "):]
    if kind in {"literal_error", "enum"} and "input" in err:
        msg = f"{msg}, got {err['input']!r}"
    return msg


def _known_fields(model: type[BaseModel], loc: PathKey) -> list[str]:
    """Field names (with aliases) of the model found by walking `loc` through nested models."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            current = None
            continue
        current = _model_in(fields[part].annotation)
    if current is None or not hasattr(current, "model_fields"):
        return []
    names = []
    for name, info in current.model_fields.items():
        names.append(info.alias or name)
    return names


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None
