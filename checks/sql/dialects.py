"""Opening a target's connection per dialect and driver, and the session rules that make it read-only and polite.

| dialect  | driver          | read-only session                          | server-side statement bound              |
|----------|-----------------|--------------------------------------------|------------------------------------------|
| postgres | psycopg / ODBC  | default_transaction_read_only=on           | statement_timeout, lock_timeout          |
| mysql    | PyMySQL / ODBC  | SET SESSION TRANSACTION READ ONLY          | max_statement_time (MariaDB) / max_execution_time |
| oracle   | oracledb / ODBC | SET TRANSACTION READ ONLY before each query | call_timeout (break sent to the server)  |
| mssql    | pyodbc          | ApplicationIntent=ReadOnly                 | query timeout (cancel), SET LOCK_TIMEOUT, DEADLOCK_PRIORITY LOW |

Drivers are imported here, lazily, when a target of theirs first connects.
"""

from __future__ import annotations

import math
from typing import Any

from checks.sql.rows import Rows, ServerInfo
from checks.sql.target import Target
from checks.sql.version import parse_version

APPLICATION_NAME = "xunjian"


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _odbc_value(value: str) -> str:
    """An ODBC connection-string value, braced so ; { } = in passwords cannot break out."""
    return "{" + value.replace("}", "}}") + "}"


def _odbc_string(parts: dict[str, str | int | None], extra: str | None) -> str:
    items = [f"{k}={_odbc_value(str(v)) if k in ('Driver', 'PWD', 'Pwd') else v}" for k, v in parts.items() if v is not None]
    text = ";".join(items)
    if extra:
        text += ";" + extra.strip(";")
    return text


class Connection:
    """An open DB-API connection plus its dialect's rules for timeouts and read-only transactions."""

    ping_sql = "SELECT 1"

    def __init__(self, raw: Any, target: Target, driver: str) -> None:
        self.raw = raw
        self.target = target
        self.driver = driver
        self._timeout_ms: int | None = None
        self.info = ServerInfo(dialect=target.dialect, flavor=target.dialect, version=())

    def setup(self) -> None:
        """Session settings and server version, once per connection."""

    def set_timeout(self, seconds: float) -> None:
        """Bound the next statement on the server side."""

    def before(self, cur: Any) -> None:
        """Per-statement preamble (Oracle's read-only transaction)."""

    def after(self) -> None:
        """Per-statement epilogue."""

    def _exec(self, sql: str) -> list[tuple[Any, ...]]:
        cur = self.raw.cursor()
        try:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
        finally:
            cur.close()

    def query(self, sql: str, timeout: float, max_rows: int) -> Rows:
        ms = _ms(timeout)
        if ms != self._timeout_ms:
            self.set_timeout(timeout)
            self._timeout_ms = ms
        cur = self.raw.cursor()
        try:
            self.before(cur)
            cur.execute(sql)
            columns = [str(d[0]).lower() for d in (cur.description or ())]
            fetched = [tuple(r) for r in cur.fetchmany(max_rows + 1)] if cur.description else []
        finally:
            try:
                cur.close()
            finally:
                self.after()
        return Rows(columns=columns, rows=fetched[:max_rows], truncated=len(fetched) > max_rows)

    def healthy(self) -> bool:
        try:
            self._exec(self.ping_sql)
            self.after()
        except Exception:
            return False
        return True

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception:
            return


class PostgresConnection(Connection):
    def settings(self) -> dict[str, str]:
        t = self.target
        return {
            "default_transaction_read_only": "on",
            "statement_timeout": f"{_ms(t.statement_timeout)}ms",
            "lock_timeout": f"{_ms(t.lock_timeout)}ms",
            "idle_in_transaction_session_timeout": f"{_ms(max(60.0, 2 * t.statement_timeout))}ms",
        }

    def setup(self) -> None:
        if self.driver == "odbc":
            for name, value in self.settings().items():
                self._exec(f"SET {name} = '{value}'")
        version_text, banner = self._exec("SELECT current_setting('server_version'), version()")[0]
        lowered = str(banner).lower()
        flavor = "opengauss" if "opengauss" in lowered else "kingbase" if "kingbase" in lowered else "postgres"
        self.info = ServerInfo("postgres", flavor, parse_version(str(version_text)), str(version_text))

    def set_timeout(self, seconds: float) -> None:
        self._exec(f"SET statement_timeout = '{_ms(seconds)}ms'")


class MysqlConnection(Connection):
    def setup(self) -> None:
        t = self.target
        version_text, comment = self._exec("SELECT VERSION(), @@version_comment")[0]
        flavor = "mariadb" if "mariadb" in f"{version_text} {comment}".lower() else "mysql"
        self.info = ServerInfo("mysql", flavor, parse_version(str(version_text)), str(version_text))
        self._exec("SET SESSION TRANSACTION READ ONLY")
        lock_wait = max(1, math.ceil(t.lock_timeout))
        self._exec(f"SET SESSION lock_wait_timeout = {lock_wait}")
        self._exec(f"SET SESSION innodb_lock_wait_timeout = {lock_wait}")

    def set_timeout(self, seconds: float) -> None:
        if self.info.flavor == "mariadb":
            self._exec(f"SET SESSION max_statement_time = {max(0.001, seconds):.3f}")
        elif self.info.version >= (5, 7, 8):
            self._exec(f"SET SESSION max_execution_time = {_ms(seconds)}")
        if self.driver == "odbc":
            self.raw.timeout = math.ceil(seconds) + 2


class OracleConnection(Connection):
    ping_sql = "SELECT 1 FROM dual"

    def setup(self) -> None:
        if self.driver == "native":
            version_text = str(self.raw.version)
        else:
            rows = self._exec("SELECT version FROM product_component_version WHERE product LIKE 'Oracle%'")
            version_text = str(rows[0][0]) if rows else "0"
        self.info = ServerInfo("oracle", "oracle", parse_version(version_text), version_text)
        self.after()

    def set_timeout(self, seconds: float) -> None:
        if self.driver == "native":
            self.raw.call_timeout = _ms(seconds)
        else:
            self.raw.timeout = math.ceil(seconds)

    def before(self, cur: Any) -> None:
        self.raw.rollback()
        cur.execute("SET TRANSACTION READ ONLY")

    def after(self) -> None:
        try:
            self.raw.rollback()
        except Exception:
            return


class MssqlConnection(Connection):
    def setup(self) -> None:
        self._exec("SET DEADLOCK_PRIORITY LOW")
        self._exec(f"SET LOCK_TIMEOUT {_ms(self.target.lock_timeout)}")
        version_text, edition = self._exec(
            "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)), CAST(SERVERPROPERTY('EngineEdition') AS int)"
        )[0]
        flavor = {5: "azure", 8: "azure_mi"}.get(int(edition or 0), "mssql")
        self.info = ServerInfo("mssql", flavor, parse_version(str(version_text)), str(version_text))

    def set_timeout(self, seconds: float) -> None:
        self.raw.timeout = max(1, math.ceil(seconds))


def open_connection(target: Target, password: str | None, timeout: float) -> Connection:
    """Connect, apply the session rules and detect the server; raises driver errors for the caller to classify."""
    opener = {
        ("postgres", "native"): _open_psycopg,
        ("mysql", "native"): _open_pymysql,
        ("oracle", "native"): _open_oracledb,
    }.get((target.dialect, target.driver), _open_pyodbc)
    raw = opener(target, password, timeout)
    cls: type[Connection] = {
        "postgres": PostgresConnection,
        "mysql": MysqlConnection,
        "oracle": OracleConnection,
        "mssql": MssqlConnection,
    }[target.dialect]
    conn = cls(raw, target, target.driver)
    try:
        conn.setup()
    except BaseException:
        conn.close()
        raise
    return conn


def _open_psycopg(target: Target, password: str | None, timeout: float) -> Any:
    import psycopg

    settings = PostgresConnection(None, target, "native").settings()
    tls = target.tls
    kwargs: dict[str, Any] = {
        "host": target.host,
        "port": target.effective_port if target.host else target.port,
        "dbname": target.database,
        "user": target.user,
        "password": password,
        "connect_timeout": max(2, math.ceil(timeout)),
        "application_name": APPLICATION_NAME,
        "options": " ".join(f"-c {k}={v}" for k, v in settings.items()),
        "sslmode": tls.mode,
        "sslrootcert": tls.ca_file,
        "sslcert": tls.cert_file,
        "sslkey": tls.key_file,
    }
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return psycopg.connect(target.dsn or "", autocommit=True, **kwargs)


def _open_pymysql(target: Target, password: str | None, timeout: float) -> Any:
    import pymysql

    tls = target.tls
    kwargs: dict[str, Any] = {
        "host": target.host,
        "port": target.effective_port,
        "user": target.user or "",
        "password": password or "",
        "database": target.database,
        "connect_timeout": max(1, math.ceil(timeout)),
        "read_timeout": math.ceil(target.statement_timeout) + 5,
        "write_timeout": math.ceil(target.statement_timeout) + 5,
        "autocommit": True,
        "charset": "utf8mb4",
        "program_name": APPLICATION_NAME,
    }
    if tls.mode == "disable":
        kwargs["ssl_disabled"] = True
    elif tls.mode in ("require", "verify-ca", "verify-full"):
        kwargs.update(
            ssl={"fake_flag_to_enable_tls": True} if not tls.ca_file else None,
            ssl_ca=tls.ca_file,
            ssl_cert=tls.cert_file,
            ssl_key=tls.key_file,
            ssl_verify_cert=tls.mode != "require",
            ssl_verify_identity=tls.mode == "verify-full",
        )
    return pymysql.connect(**{k: v for k, v in kwargs.items() if v is not None})


def _open_oracledb(target: Target, password: str | None, timeout: float) -> Any:
    import oracledb

    kwargs: dict[str, Any] = {"user": target.user, "password": password, "tcp_connect_timeout": timeout}
    if target.dsn:
        kwargs["dsn"] = target.dsn
    else:
        kwargs.update(host=target.host, port=target.effective_port, service_name=target.service)
        if target.tls.mode != "disable" and target.tls.mode != "prefer":
            kwargs.update(protocol="tcps", ssl_server_dn_match=target.tls.mode == "verify-full")
    conn = oracledb.connect(**{k: v for k, v in kwargs.items() if v is not None})
    conn.call_timeout = _ms(target.statement_timeout)
    return conn


def odbc_connection_string(target: Target, password: str | None) -> str:
    """The ODBC connection string for a target: read-only intent and TLS for SQL Server, driver names and TLS
    switches of psqlODBC and MariaDB Connector/ODBC, `dsn` appended as extra attributes."""
    t = target
    tls = t.tls
    parts: dict[str, str | int | None]
    if t.dialect == "mssql":
        encrypt = {"disable": "no", "prefer": None, "require": "yes", "verify-ca": "yes", "verify-full": "yes"}[tls.mode]
        trust = "yes" if t.trust_server_certificate or tls.mode == "require" else ("no" if encrypt else None)
        parts = {
            "Driver": t.odbc_driver,
            "Server": f"tcp:{t.host},{t.effective_port}" if t.host else None,
            "Database": t.database,
            "UID": t.user,
            "PWD": password if t.user else None,
            "Trusted_Connection": None if t.user else "yes",
            "ApplicationIntent": "ReadOnly",
            "APP": APPLICATION_NAME,
            "Encrypt": encrypt,
            "TrustServerCertificate": trust,
        }
    elif t.dialect == "postgres":
        parts = {
            "Driver": t.odbc_driver,
            "Server": t.host,
            "Port": t.effective_port if t.host else None,
            "Database": t.database,
            "Uid": t.user,
            "Pwd": password,
            "SSLmode": tls.mode,
            "BoolsAsChar": 0,
        }
    elif t.dialect == "mysql":
        verify = tls.mode in ("verify-ca", "verify-full")
        parts = {
            "Driver": t.odbc_driver,
            "Server": t.host,
            "Port": t.effective_port if t.host else None,
            "Database": t.database,
            "Uid": t.user,
            "Pwd": password,
            "SSLCA": tls.ca_file,
            "SSLCERT": tls.cert_file,
            "SSLKEY": tls.key_file,
            "SSLVERIFY": 1 if verify else None,
            "FORCETLS": 1 if tls.mode in ("require", "verify-ca", "verify-full") else None,
        }
    else:
        parts = {"Driver": t.odbc_driver, "DBQ": t.dsn if not t.host else f"{t.host}:{t.effective_port}/{t.service}",
                 "UID": t.user, "PWD": password}
        return _odbc_string(parts, None)
    return _odbc_string(parts, t.dsn)


def _open_pyodbc(target: Target, password: str | None, timeout: float) -> Any:
    import pyodbc

    # Oracle's read-only transactions need manual commit mode; everything else runs in autocommit.
    return pyodbc.connect(odbc_connection_string(target, password), autocommit=target.dialect != "oracle",
                          timeout=max(1, math.ceil(timeout)))
