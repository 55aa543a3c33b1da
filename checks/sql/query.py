"""The `query:` format of sql.* checks: SQL per dialect, optionally as variants gated by server version/flavor.

```yaml
query:
  postgres: SELECT ...                      # one statement for every server of this dialect
  mysql:                                     # or variants, the first that matches wins
    - {sql: "SELECT ... FROM performance_schema.data_lock_waits ...", min_version: "8.0"}
    - {sql: "SELECT ... FROM information_schema.innodb_lock_waits ...", max_version: "8.0"}
  mariadb: SELECT ...                        # used instead of `mysql` when the server is MariaDB
  mysql:                                     # MySQL/MariaDB only: a SHOW statement named, not written
    - {show: replica_status, min_version: "8.0.22"}
```

`min_version` is inclusive and `max_version` exclusive, compared on the server version detected once per
connection. `flavor` narrows a variant to a server family (mysql, mariadb; postgres, opengauss, kingbase).
Every statement passes the guard's structural checks when the pack loads, and the allow-list when it is
bound to a target (checks/sql/binding.py); what is sent is the guard's rendering (checks/sql/allow.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from checks.sql.allow import Prepared, SiteAllowance, prepare
from checks.sql.guard import GuardError, check_statement
from checks.sql.show import SHOW_STATEMENTS, show_name_for
from checks.sql.version import Version, format_version, parse_version

QUERY_KEYS = ("oracle", "mssql", "postgres", "mysql", "mariadb")
"""Dialects a query may be written for; `mariadb` is a MySQL-dialect variant picked for MariaDB servers."""


class QueryVariant(BaseModel):
    """One statement, used when the server's version and flavor fall in its gate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sql: str | None = Field(None, description="One SELECT/WITH statement.")
    show: str | None = Field(
        None, description=f"MySQL/MariaDB only, instead of sql: a SHOW statement by name ({', '.join(SHOW_STATEMENTS)})."
    )
    min_version: str | None = Field(None, description='Lowest server version this SQL is for, inclusive, e.g. "13".')
    max_version: str | None = Field(None, description='Server versions from this one on use another variant, e.g. "8.0".')
    flavor: str | None = Field(None, description="Only for this server family: mysql, mariadb, postgres, opengauss...")

    @field_validator("min_version", "max_version")
    @classmethod
    def _version(cls, v: str | None) -> str | None:
        if v is not None:
            parse_version(str(v))
        return None if v is None else str(v)

    @field_validator("flavor")
    @classmethod
    def _flavor(cls, v: str | None) -> str | None:
        return v.lower() if v else v

    @field_validator("show")
    @classmethod
    def _known_show(cls, v: str | None) -> str | None:
        if v is not None and v not in SHOW_STATEMENTS:
            raise ValueError(f"unknown SHOW statement {v!r}; one of: {', '.join(SHOW_STATEMENTS)}")
        return v

    @model_validator(mode="after")
    def _sql_or_show(self) -> QueryVariant:
        if (self.sql is None) == (self.show is None):
            raise ValueError("give either sql (a SELECT) or show (a named SHOW statement)")
        return self

    def statement(self, key: str, site: SiteAllowance | None = None) -> Prepared:
        """What to send for query key `key`: the guard's verified rendering, or the named SHOW's fixed text."""
        if self.show is not None:
            return Prepared(SHOW_STATEMENTS[self.show])
        assert self.sql is not None
        return prepare(self.sql, key, site)

    def matches(self, version: Version, flavor: str) -> bool:
        if self.flavor and self.flavor != flavor:
            return False
        if self.min_version is not None and version < parse_version(self.min_version):
            return False
        return not (self.max_version is not None and version >= parse_version(self.max_version))

    def gate(self) -> str:
        parts = []
        if self.flavor:
            parts.append(self.flavor)
        if self.min_version:
            parts.append(f">= {self.min_version}")
        if self.max_version:
            parts.append(f"< {self.max_version}")
        return " ".join(parts) or "any version"


def _variants(v: Any) -> Any:
    if isinstance(v, str):
        return [{"sql": v}]
    if isinstance(v, dict):
        return [v]
    return v


VariantList = Annotated[list[QueryVariant], BeforeValidator(_variants)]


class QueryMap(BaseModel):
    """SQL per dialect key (oracle, mssql, postgres, mysql, mariadb); each a string or a list of variants."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    oracle: VariantList | None = Field(None, description="SQL for Oracle (parsed as Oracle SQL).")
    mssql: VariantList | None = Field(None, description="SQL for SQL Server (parsed as T-SQL).")
    postgres: VariantList | None = Field(None, description="SQL for PostgreSQL and derivatives.")
    mysql: VariantList | None = Field(None, description="SQL for MySQL, and for MariaDB when there is no mariadb entry.")
    mariadb: VariantList | None = Field(None, description="SQL for MariaDB servers (MySQL dialect), preferred over mysql.")

    @field_validator("oracle", "mssql", "postgres", "mysql", "mariadb")
    @classmethod
    def _guarded(cls, variants: list[QueryVariant] | None, info: ValidationInfo) -> list[QueryVariant] | None:
        if variants is None:
            return None
        key = str(info.field_name)
        if not variants:
            raise ValueError("expected SQL or a non-empty list of variants")
        checked: list[QueryVariant] = []
        for i, variant in enumerate(variants):
            where = "" if len(variants) == 1 else f"[{i}]: "
            if key in ("mysql", "mariadb") and variant.sql is not None and (named := show_name_for(variant.sql)):
                variant = variant.model_copy(update={"sql": None, "show": named})
            if variant.show is not None:
                if key not in ("mysql", "mariadb"):
                    raise ValueError(f"{where}show: is for mysql/mariadb queries only")
                checked.append(variant)
                continue
            try:
                check_statement(variant.sql or "", key)
            except GuardError as exc:
                hint = ""
                if key in ("mysql", "mariadb") and (variant.sql or "").lstrip().upper().startswith("SHOW"):
                    hint = f"; SHOW statements are named, not written: show: one of {', '.join(SHOW_STATEMENTS)}"
                raise ValueError(f"{where}{exc}{hint}") from None
            checked.append(variant)
        return checked

    @model_validator(mode="after")
    def _some_dialect(self) -> QueryMap:
        if not any(getattr(self, k) is not None for k in QUERY_KEYS):
            raise ValueError(f"expected SQL for at least one dialect ({', '.join(QUERY_KEYS)})")
        return self

    def dialects(self) -> list[str]:
        """Target dialects this query can run on (a `mariadb` entry serves mysql targets)."""
        keys = {("mysql" if k == "mariadb" else k) for k in QUERY_KEYS if getattr(self, k) is not None}
        return sorted(keys)

    def select(self, dialect: str, flavor: str, version: Version) -> tuple[QueryVariant, str] | None:
        """(variant, query key) for this server, or None when no variant fits."""
        keys = ["mariadb", "mysql"] if dialect == "mysql" and flavor == "mariadb" else [dialect]
        for key in keys:
            variants: list[QueryVariant] | None = getattr(self, key, None)
            for variant in variants or ():
                if variant.matches(version, flavor):
                    return variant, key
        return None

    def variants(self) -> list[tuple[str, int, QueryVariant]]:
        """Every (query key, index, variant), for checks made when a pack is bound to a target."""
        return [(k, i, v) for k in QUERY_KEYS for i, v in enumerate(getattr(self, k) or ())]

    def explain_miss(self, dialect: str, flavor: str, version: Version) -> str:
        """Why nothing was selected, for the UNKNOWN result's summary."""
        keys = ["mariadb", "mysql"] if dialect == "mysql" and flavor == "mariadb" else [dialect]
        gates = [v.gate() for k in keys for v in (getattr(self, k, None) or ())]
        server = f"{flavor} {format_version(version)}"
        if not gates:
            return f"this check has no query for dialect {dialect} (it has: {', '.join(self.dialects())})"
        return f"no query variant for {server} (variants: {'; '.join(gates)})"


def _query_map(v: Any) -> Any:
    if isinstance(v, str):
        raise ValueError("expected a mapping of dialect to SQL, e.g. {postgres: SELECT ...}")
    return v


QueryField = Annotated[QueryMap, BeforeValidator(_query_map)]
