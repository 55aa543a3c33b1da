"""The read-only allow-list: which relations, functions and cast types a statement may use, per dialect.

A deny-list of dangerous functions can never be complete (user and extension functions, views that call
functions, functions that run SQL given as a string), so the guard works the other way round: built-in
lists of side-effect-free functions and of catalog/statistics relations ship with the package
(checks/sql/allow/<dialect>.yaml), and a site adds its own tables (job logs, payment records) per target in
agent.yaml. Site exceptions are explicit, carry who reviewed them, show in `xunjian check validate`, and
are logged once when first used; a pack can never add one.

Later kinds (job windows, reconciliation, new pack queries) need nothing of their own: every statement
goes through `prepare()`, at config load (ConfigError with file:line) and again before it is sent.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from checks.sql.verdicts import ALLOW_DIALECT, SQLGLOT_DIALECTS, GuardError, Name, Verified

_PART = re.compile(r'"(?:[^"]|"")+"|`(?:[^`]|``)+`|\[(?:[^\]]|\]\])+\]|[^."`\[\]\s]+')

REFUSAL = "not on the read-only allow-list: {name}; allow it for this target in agent.yaml if you have checked it is read-only"
"""The refusal every unknown relation or function gets (a site-level, reviewed, logged exception)."""


def parse_name(text: str, dialect: str) -> Name:
    """`schema.table`, `"Quoted".name`, `[db].[sys].*` as the server would resolve it; ValueError if malformed."""
    from checks.sql.guard import canonical  # sqlglot, loaded only where a name or statement is read

    read = SQLGLOT_DIALECTS[dialect]
    return tuple(canonical(part, quoted, read) for part, quoted in split_name(text))


def split_name(text: str) -> list[tuple[str, bool]]:
    """The parts of a dotted name as written, each with whether it was quoted ("", `` or []); ValueError if
    malformed. Quotes are removed and doubled quote characters undone."""
    parts: list[tuple[str, bool]] = []
    pos = 0
    text = text.strip()
    while True:
        m = _PART.match(text, pos)
        if m is None:
            raise ValueError(f"expected a name such as schema.table, got {text!r}")
        token = m.group(0)
        if token[0] in '"`[':
            parts.append((token[1:-1].replace(token[-1] * 2, token[-1]), True))
        else:
            if not re.fullmatch(r"[\w$#*:]+", token):
                raise ValueError(f"unexpected characters in name part {token!r} of {text!r}")
            parts.append((token, False))
        pos = m.end()
        if pos == len(text):
            return parts
        if text[pos] != ".":
            raise ValueError(f"expected '.' between the parts of {text!r}")
        pos += 1


def _matches(name: Name, pattern: Name) -> bool:
    return len(name) == len(pattern) and all(fnmatch.fnmatchcase(n, p) for n, p in zip(name, pattern, strict=True))


@dataclass(frozen=True)
class AllowList:
    """One dialect's built-in list (checks/sql/allow/<dialect>.yaml)."""

    dialect: str
    relations: tuple[Name, ...]
    excluded: tuple[Name, ...]
    functions: tuple[Name, ...]
    types: tuple[Name, ...]
    implicit_schemas: tuple[str, ...]

    def _forms(self, name: Name) -> list[Name]:
        """The name, and without an implicit schema (pg_catalog.x is x) for exact entries."""
        forms = [name]
        if len(name) > 1 and name[0] in self.implicit_schemas:
            forms.append(name[1:])
        return forms

    def allows_relation(self, name: Name) -> bool:
        forms = self._forms(name)
        if any(_matches(f, p) for f in forms for p in self.excluded):
            return False
        return any(_matches(f, p) for f in forms for p in self.relations)

    def allows_function(self, name: Name) -> bool:
        return any(_matches(f, p) for f in self._forms(name) for p in self.functions)

    def allows_type(self, name: Name) -> bool:
        return any(_matches(f, p) for f in self._forms(name) for p in self.types)


@cache
def builtin(dialect: str) -> AllowList:
    """The built-in list for a target dialect (postgres, mysql, oracle, mssql); mariadb reads mysql's."""
    key = ALLOW_DIALECT[dialect]
    text = (resources.files("checks.sql") / "allow" / f"{key}.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)

    def names(field: str) -> tuple[Name, ...]:
        return tuple(parse_name(str(n), key) for n in data.get(field) or ())

    implicit = tuple(parse_name(str(s), key)[0] for s in data.get("implicit_schemas") or ())
    return AllowList(key, names("relations"), names("excluded"), names("functions"), names("types"), implicit)


class SiteAllowance(BaseModel):
    """agent.yaml `targets.NAME.allow`: relations and functions this site has checked are read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reviewed_by: str = Field(
        min_length=1,
        description='Who checked these are read-only, and when, e.g. "Li Wei (DBA), 2026-11-30". Required.',
    )
    relations: tuple[str, ...] = Field(
        (), description="Site tables and views, e.g. his.job_log; `schema.*` allows a whole schema."
    )
    functions: tuple[str, ...] = Field((), description="Site functions, e.g. his.pkg_jobs.last_run_status.")

    @field_validator("relations", "functions")
    @classmethod
    def _names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for text in v:
            parsed = parse_name(text, "postgres")
            if all(p.strip("*") == "" for p in parsed) or parsed[0] == "*":
                raise ValueError(f"{text!r} allows too much: name the schema (schema.*) or the object")
        return v

    def names(self, dialect: str) -> tuple[tuple[Name, ...], tuple[Name, ...]]:
        """(relations, functions) as the target's server resolves them."""
        return _site_names(self, ALLOW_DIALECT[dialect])

    def describe(self) -> str:
        parts = []
        if self.relations:
            parts.append("relations " + ", ".join(self.relations))
        if self.functions:
            parts.append("functions " + ", ".join(self.functions))
        return f"{'; '.join(parts) or 'nothing'} (reviewed by {self.reviewed_by})"


@lru_cache(maxsize=256)
def _site_names(site: SiteAllowance, dialect: str) -> tuple[tuple[Name, ...], tuple[Name, ...]]:
    return (tuple(parse_name(r, dialect) for r in site.relations), tuple(parse_name(f, dialect) for f in site.functions))


@dataclass(frozen=True)
class Prepared:
    """A statement ready to send: the verified rendering, and the site exceptions it relies on."""

    sql: str
    site_uses: tuple[str, ...] = ()
    """Names allowed only by the target's site exceptions, for the log-once message."""


def prepare(sql: str, key: str, site: SiteAllowance | None = None) -> Prepared:
    """Verify `sql` for query key `key` and check every name against the allow-list (and `site`).

    Cached per (sql, key, site), refusals included: a repeat costs a dict lookup.
    """
    outcome = _prepare_cached(sql, key, site)
    if isinstance(outcome, str):
        raise GuardError(outcome)
    return outcome


@lru_cache(maxsize=4096)
def _prepare_cached(sql: str, key: str, site: SiteAllowance | None) -> Prepared | str:
    from checks.sql.guard import verify

    try:
        return _check(verify(sql, key), key, site)
    except GuardError as exc:
        return str(exc)


def _check(verified: Verified, key: str, site: SiteAllowance | None) -> Prepared:
    lists = builtin(key)
    site_relations, site_functions = site.names(key) if site is not None else ((), ())
    uses: list[str] = []
    for name in sorted(verified.relations):
        if lists.allows_relation(name):
            continue
        if any(_matches(name, p) for p in site_relations):
            uses.append(_show(name))
            continue
        raise GuardError(REFUSAL.format(name=_show(name)))
    for name in sorted(verified.functions):
        if lists.allows_function(name):
            continue
        if any(_matches(name, p) for p in site_functions):
            uses.append(_show(name) + "()")
            continue
        raise GuardError(REFUSAL.format(name=_show(name) + "()"))
    for name in sorted(verified.types):
        if not lists.allows_type(name):
            raise GuardError(f"refused: a cast to {_show(name)}, which is not a built-in type the guard knows "
                             "(a domain or user type can run a function)")
    return Prepared(verified.sql, tuple(uses))


def _show(name: Name) -> str:
    return ".".join(name)
