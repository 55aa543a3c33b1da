"""A database target from agent.yaml `targets:`: dialect, where to connect, who as, and how politely."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from checks.spec import Duration
from checks.sql.allow import SiteAllowance
from checks.sql.maintenance import MaintenanceSessions
from checks.sql.secrets import register_secret

Dialect = Literal["oracle", "mssql", "postgres", "mysql"]
DIALECTS: tuple[str, ...] = ("oracle", "mssql", "postgres", "mysql")
DEFAULT_PORTS = {"oracle": 1521, "mssql": 1433, "postgres": 5432, "mysql": 3306}
DEFAULT_ODBC_DRIVERS = {
    "mssql": "ODBC Driver 18 for SQL Server",
    "postgres": "PostgreSQL Unicode",
    "mysql": "MariaDB Unicode",
}
"""Driver names as unixODBC registers them (Microsoft's msodbcsql18; Debian odbc-postgresql, odbc-mariadb)."""
ODBC_PACKAGES = {
    "mssql": "msodbcsql18 (Microsoft's repository)",
    "postgres": "odbc-postgresql",
    "mysql": "odbc-mariadb",
}


class TlsOptions(BaseModel):
    """Transport encryption; `mode` follows libpq's names and maps onto each driver's own switches."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["disable", "prefer", "require", "verify-ca", "verify-full"] = Field(
        "prefer", description="disable, prefer (driver default), require (encrypt, no verification), verify-ca, verify-full."
    )
    plaintext_password: Literal["refuse", "allow"] = Field(
        "refuse", description="refuse (default): the password never crosses the network readable (PostgreSQL: "
        "SCRAM only unless the server is verified; MySQL/MariaDB: no cleartext or dialog plugin; SQL Server: "
        "encrypted login; psqlODBC: TLS required). allow: for old servers only, logged at every connection.")
    ca_file: str | None = Field(None, description="CA bundle (PEM) for verify-ca / verify-full.")
    cert_file: str | None = Field(None, description="Client certificate (PEM), when the server wants one.")
    key_file: str | None = Field(None, description="Client key (PEM).")

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _readable(cls, v: str | None) -> str | None:
        if v is not None and not Path(v).expanduser().is_file():
            raise ValueError(f"file not found: {v}")
        return v


class Target(BaseModel):
    """One database connection the agent's sql.* checks use; one connection per target, reused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("", description="The key under `targets:`; filled in by the loader.")
    dialect: Dialect = Field(description="oracle, mssql, postgres or mysql (MySQL and MariaDB).")
    driver: Literal["native", "odbc"] = Field(
        "native",
        validate_default=True,
        description="native (psycopg, PyMySQL, python-oracledb thin) or odbc (pyodbc); mssql always uses odbc.",
    )
    host: str | None = Field(None, description="Server host name or address.")
    port: int | None = Field(None, ge=1, le=65535, description="TCP port; defaults to the dialect's usual port.")
    database: str | None = Field(None, description="Database to connect to (postgres, mysql, mssql).")
    service: str | None = Field(None, description="Oracle service name (with host/port instead of a dsn).")
    dsn: str | None = Field(
        None,
        description="oracle: Easy Connect (host:1521/SERVICE) or TNS alias; postgres: libpq conninfo or URI; "
        "odbc: extra ODBC connection-string attributes (Key=Value;...).",
    )
    odbc_driver: str | None = Field(
        None,
        validate_default=True,
        description='ODBC driver name as in odbcinst.ini, e.g. "ODBC Driver 18 for SQL Server", "PostgreSQL Unicode".',
    )
    user: str | None = Field(None, description="Login of the monitoring account (least privilege, see deploy/db-grants).")
    password_env: str | None = Field(None, description="Environment variable holding the password.")
    password_file: str | None = Field(None, description="File holding the password (first line).")
    tls: TlsOptions = Field(default_factory=lambda: TlsOptions.model_validate({}), description="Transport encryption.")
    connect_timeout: Duration = Field(5.0, description="Give up connecting after this long.")
    statement_timeout: Duration = Field(
        30.0, description="Upper bound for one statement, enforced by the server; a check's own timeout may be lower."
    )
    lock_timeout: Duration = Field(2.0, description="Never wait longer than this for a lock (catalog queries).")
    max_rows: int = Field(1000, ge=1, description="Most rows read from one statement; checks may lower it.")
    trust_server_certificate: bool = Field(
        False, description="mssql: accept a self-signed server certificate (ODBC Driver 18 encrypts by default)."
    )
    allow: SiteAllowance | None = Field(
        None,
        description="Site exceptions to the read-only allow-list: {reviewed_by, relations, functions} this site has "
        "checked are read-only (job logs, payment tables). Shown by `xunjian check validate`, logged on first use.",
    )

    maintenance_sessions: MaintenanceSessions | None = Field(
        None,
        description="Sessions the long-query, long/idle-transaction and blocking checks leave out: {applications, "
        "programs, users, queries, builtin}. pg_dump, pg_basebackup, mysqldump, RMAN, BACKUP/RESTORE are left out "
        "unless builtin: false.",
    )
    replica_of: str | None = Field(
        None,
        description="The target this one replicates (its primary, also defined here): the settings check then "
        "reports every setting that differs between the two.",
    )

    @field_validator("allow")
    @classmethod
    def _allow_names(cls, v: SiteAllowance | None, info: ValidationInfo) -> SiteAllowance | None:
        dialect = info.data.get("dialect")
        if v is not None and dialect is not None:
            relations, functions = v.names(dialect)
            unqualified = [".".join(n) for n in (*relations, *functions) if len(n) == 1]
            if dialect == "postgres" and unqualified:
                raise ValueError(f"name {', '.join(unqualified)} with its schema (e.g. his.job_log): every check runs "
                                 "with search_path pinned to pg_catalog, so an unqualified name would not reach it")
        return v

    @field_validator("password_env")
    @classmethod
    def _env_set(cls, v: str | None) -> str | None:
        if v is not None and v not in os.environ:
            raise ValueError(f"environment variable {v} is not set (it should hold the password)")
        return v

    @field_validator("password_file")
    @classmethod
    def _file_readable(cls, v: str | None) -> str | None:
        if v is None:
            return v
        path = Path(v).expanduser()
        if not path.is_file():
            raise ValueError(f"password file not found: {v}")
        if not os.access(path, os.R_OK):
            raise ValueError(f"password file not readable by this user: {v}")
        return v

    @field_validator("driver")
    @classmethod
    def _driver_for_dialect(cls, v: str, info: ValidationInfo) -> str:
        if info.data.get("dialect") == "mssql" and v == "native":
            return "odbc"
        return v

    @field_validator("odbc_driver")
    @classmethod
    def _odbc_installed(cls, v: str | None, info: ValidationInfo) -> str | None:
        dialect = info.data.get("dialect")
        if info.data.get("driver") != "odbc" or dialect is None:
            if v is not None and dialect is not None:
                raise ValueError("odbc_driver is only used with driver: odbc (or dialect mssql)")
            return v
        name = v or DEFAULT_ODBC_DRIVERS.get(dialect)
        if dialect == "oracle" and v is None:
            raise ValueError("driver: odbc for oracle needs odbc_driver (the Oracle ODBC driver's name)")
        try:
            import pyodbc
        except ImportError:
            raise ValueError("driver: odbc needs the pyodbc package (pip install 'xunjian[odbc]')") from None
        installed = list(pyodbc.drivers())
        if name not in installed:
            hint = ODBC_PACKAGES.get(dialect, "")
            listed = ", ".join(repr(d) for d in installed) or "none"
            install = f"; install {hint}" if hint else ""
            raise ValueError(f"ODBC driver {name!r} is not installed (installed: {listed}){install}")
        return name

    @model_validator(mode="after")
    def _where(self) -> Target:
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if not self.host and not self.dsn:
            raise ValueError("expected host (with port, database/service) or dsn")
        if self.dialect == "mysql" and self.driver == "native" and self.dsn:
            raise ValueError("dsn is not used for mysql with the native driver; give host, port and database")
        if self.dialect == "oracle" and self.driver == "native" and not self.dsn and not self.service:
            raise ValueError("oracle needs dsn (host:1521/SERVICE) or host with service")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.dialect]

    def password(self) -> str | None:
        """Read the password now (so rotation needs no restart) and register it for scrubbing."""
        value: str | None = None
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise LookupError(f"environment variable {self.password_env} is not set")
        elif self.password_file:
            lines = Path(self.password_file).expanduser().read_text(encoding="utf-8").splitlines()
            value = lines[0] if lines else ""
        register_secret(value)
        return value
