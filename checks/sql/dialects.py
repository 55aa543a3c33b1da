"""Opening a target's connection per dialect and driver, and the per-check transaction that keeps it read-only.

Every check runs in its own transaction, started read-only with its timeouts re-asserted, and always rolled
back; afterwards the session is verified (still read-only, the expected timeouts, no advisory/user/named or
application lock held, no transaction left open). A session that fails the verification is closed by the
caller and the check reported as `unsafe_session`: one statement can no longer turn the connection for every
check after it.

| dialect  | driver          | per check                                                      | verified after                       |
|----------|-----------------|----------------------------------------------------------------|--------------------------------------|
| postgres | psycopg / ODBC  | BEGIN READ ONLY; SET LOCAL search_path (pinned), statement_timeout, lock_timeout... | read-only default, timeouts, pg_locks advisory, no open transaction |
| mysql    | PyMySQL / ODBC  | SET SESSION max_statement_time / max_execution_time, lock waits; START TRANSACTION READ ONLY | read-only, timeouts, autocommit, RELEASE_ALL_LOCKS() = 0 |
| oracle   | oracledb / ODBC | call timeout; SET TRANSACTION READ ONLY                        | no UL (DBMS_LOCK) lock in v$lock     |
| mssql    | pyodbc          | query timeout; SET LOCK_TIMEOUT, DEADLOCK_PRIORITY LOW, isolation (SNAPSHOT where enabled); BEGIN TRANSACTION | @@TRANCOUNT 0, lock timeout, no application lock, deadlock priority |

Drivers are imported here, lazily, when a target of theirs first connects.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Iterator
from typing import Any

from checks.sql.rows import Rows, ServerInfo
from checks.sql.target import Target
from checks.sql.version import parse_version

log = logging.getLogger("xunjian.checks.sql")

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
    """An open DB-API connection plus its dialect's rules for the per-check read-only transaction."""

    ping_sql = "SELECT 1"
    verify_sql = ""
    """One statement reading back what `problems()` compares; empty where the dialect has nothing to verify."""

    def __init__(self, raw: Any, target: Target, driver: str) -> None:
        self.raw = raw
        self.target = target
        self.driver = driver
        self.info = ServerInfo(dialect=target.dialect, flavor=target.dialect, version=())
        self.statement_timeout = target.statement_timeout
        """The bound of the statement being (or last) run, in seconds; verification expects it."""

    def setup(self) -> None:
        """Session defaults and server version, once per connection."""

    def begin(self, cur: Any, timeout: float) -> None:
        """Start the check's read-only transaction with its timeouts re-asserted."""

    def end(self, cur: Any) -> None:
        """Roll the check's transaction back, whatever it did."""

    def problems(self, row: tuple[Any, ...]) -> list[str]:
        """What is wrong with the session, given `verify_sql`'s row; empty when it is as it must be."""
        return []

    def _exec(self, sql: str) -> list[tuple[Any, ...]]:
        cur = self.raw.cursor()
        try:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
        finally:
            cur.close()

    def query(self, sql: str, timeout: float, max_rows: int) -> Rows:
        """Run one verified statement in its own read-only transaction, rolled back afterwards."""
        self.statement_timeout = timeout
        cur = self.raw.cursor()
        try:
            try:
                self.begin(cur, timeout)
                cur.execute(sql)
                columns = [str(d[0]).lower() for d in (cur.description or ())]
                fetched = [tuple(r) for r in cur.fetchmany(max_rows + 1)] if cur.description else []
            except BaseException:
                self._end_quietly(cur)
                raise
            self.end(cur)
        finally:
            with contextlib.suppress(Exception):
                cur.close()
        return Rows(columns=columns, rows=fetched[:max_rows], truncated=len(fetched) > max_rows)

    @contextlib.contextmanager
    def stream(self, sql: str, timeout: float, batch_rows: int) -> Iterator[RowStream]:
        """Run one verified statement in its own read-only transaction and hand its rows over in batches, read
        from the server as they are consumed (bounded memory), then roll back, whatever the consumer did."""
        self.statement_timeout = timeout
        cur = self._stream_cursor()
        try:
            try:
                try:
                    self.begin(cur, timeout)
                    rows = _Prepend(None, self._stream_rows(cur, sql))
                    columns = _peek_columns(cur, rows)
                except Exception as exc:
                    raise FetchError(type(exc).__name__) from exc
                stream = RowStream(columns, rows, batch_rows)
                yield stream
            except BaseException:
                self._end_quietly(cur)
                raise
            stream.close()
            self.end(cur)
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    def _stream_cursor(self) -> Any:
        return self.raw.cursor()

    def _stream_rows(self, cur: Any, sql: str) -> Iterator[tuple[Any, ...]]:
        """Rows of `sql` one by one; DB-API fetchmany reads them from the server in chunks (oracledb, pyodbc)."""
        cur.execute(sql)
        return _fetched(cur)

    def _end_quietly(self, cur: Any) -> None:
        try:
            self.end(cur)
        except Exception:
            return

    def verify(self) -> list[str]:
        """Read the session back after a check; the problems found (an error reading it is one)."""
        if not self.verify_sql:
            return self.problems(())
        try:
            rows = self._exec(self.verify_sql)
        except Exception as exc:
            from checks.sql.errors import describe

            return [f"cannot verify the session ({describe(exc)})"]
        if len(rows) != 1:
            return [f"cannot verify the session (expected one row, got {len(rows)})"]
        return self.problems(rows[0])

    def healthy(self) -> bool:
        try:
            self._exec(self.ping_sql)
        except Exception:
            return False
        return True

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception:
            return


def _fetched(cur: Any) -> Iterator[tuple[Any, ...]]:
    if not cur.description:
        return
    while True:
        chunk = cur.fetchmany(1000)
        if not chunk:
            return
        for row in chunk:
            yield tuple(row)


class FetchError(Exception):
    """The driver failed while a stream's rows were being read; the cause is the driver's exception."""


class RowStream:
    """The rows of a streamed statement: `columns` (lower-cased) and `batches()` of at most `batch_rows` rows."""

    def __init__(self, columns: list[str], rows: _Prepend, batch_rows: int) -> None:
        self.columns = columns
        self._rows = rows
        self._batch = max(1, batch_rows)
        self.read = 0
        """Rows handed over so far."""

    def batches(self) -> Iterator[list[tuple[Any, ...]]]:
        """Driver errors while reading come out as FetchError, so the caller's own errors are told apart."""
        batch: list[tuple[Any, ...]] = []
        while True:
            try:
                row = next(self._rows)
            except StopIteration:
                break
            except Exception as exc:
                raise FetchError(type(exc).__name__) from exc
            batch.append(row)
            if len(batch) >= self._batch:
                self.read += len(batch)
                yield batch
                batch = []
        if batch:
            self.read += len(batch)
            yield batch

    def close(self) -> None:
        close = getattr(self._rows, "close", None)
        if close is not None:
            close()


class _Prepend:
    """An iterator with one row put back in front (the row read to learn the columns)."""

    def __init__(self, first: tuple[Any, ...] | None, rest: Iterator[tuple[Any, ...]]) -> None:
        self.first = first
        self.rest = rest

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return self

    def __next__(self) -> tuple[Any, ...]:
        if self.first is not None:
            row, self.first = self.first, None
            return row
        return next(self.rest)

    def close(self) -> None:
        close = getattr(self.rest, "close", None)
        if close is not None:
            close()


def _peek_columns(cur: Any, rows: _Prepend) -> list[str]:
    """The column names; drivers that stream (psycopg) know them only once the first row (or the end) is read."""
    columns = [str(d[0]).lower() for d in (cur.description or ())]
    if columns:
        return columns
    rows.first = next(rows, None)
    return [str(d[0]).lower() for d in (cur.description or ())]


def _same_number(actual: Any, expected: float) -> bool:
    try:
        return abs(float(actual) - expected) < 0.0015
    except (TypeError, ValueError):
        return False


STATISTICS_EXTENSIONS = ("pg_stat_statements", "pg_buffercache")
"""Extensions whose views are on the allow-list by unqualified name; their schemas join the pinned search_path."""


def pinned_search_path(extension_schemas: list[str]) -> str:
    """pg_catalog first, then the statistics extensions' schemas, pg_temp last (never first, as it is by default).

    Unqualified names then resolve to the catalog objects the allow-list means, whatever search_path a role or
    database setting (or a schema owner's object named like a catalog view) would otherwise give them.
    """
    quoted = ['"' + s.replace('"', '""') + '"' for s in extension_schemas if s != "pg_catalog"]
    return ", ".join(["pg_catalog", *dict.fromkeys(quoted), "pg_temp"])


class PostgresConnection(Connection):
    verify_sql = (
        "SELECT current_setting('default_transaction_read_only'), current_setting('statement_timeout'), "
        "current_setting('lock_timeout'), "
        "(SELECT count(*) FROM pg_catalog.pg_locks WHERE pid = pg_catalog.pg_backend_pid() AND locktype = 'advisory')"
    )
    """Session-level advisory locks are the only locks that outlive a ROLLBACK."""
    search_path = "pg_catalog, pg_temp"

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
        self._expected = tuple(str(v) for v in self._exec("SELECT current_setting('statement_timeout'), "
                                                          "current_setting('lock_timeout')")[0])
        """The session's bounds as the server spells them right after connecting; every check must leave them so."""
        names = ", ".join(f"'{e}'" for e in STATISTICS_EXTENSIONS)
        schemas = self._exec("SELECT DISTINCT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n "
                             f"ON n.oid = e.extnamespace WHERE e.extname IN ({names}) ORDER BY 1")
        self.search_path = pinned_search_path([str(r[0]) for r in schemas])

    def begin(self, cur: Any, timeout: float) -> None:
        t = self.target
        cur.execute(
            "BEGIN TRANSACTION READ ONLY; "
            f"SET LOCAL search_path = {self.search_path}; "
            f"SET LOCAL statement_timeout = '{_ms(timeout)}ms'; "
            f"SET LOCAL lock_timeout = '{_ms(t.lock_timeout)}ms'; "
            f"SET LOCAL idle_in_transaction_session_timeout = '{_ms(max(60.0, 2 * t.statement_timeout))}ms'"
        )

    def end(self, cur: Any) -> None:
        cur.execute("ROLLBACK")

    def _stream_rows(self, cur: Any, sql: str) -> Iterator[tuple[Any, ...]]:
        """psycopg reads a whole result into client memory on execute; stream() uses libpq's single-row mode."""
        if self.driver != "native":
            return super()._stream_rows(cur, sql)
        return (tuple(r) for r in cur.stream(sql))

    def problems(self, row: tuple[Any, ...]) -> list[str]:
        read_only, statement_ms, lock_ms, advisory = row
        out = []
        if str(read_only).lower() != "on":
            out.append("default_transaction_read_only is no longer on")
        expected_statement, expected_lock = getattr(self, "_expected", (self.settings()["statement_timeout"],
                                                                          self.settings()["lock_timeout"]))
        if str(statement_ms) != expected_statement:
            out.append(f"statement_timeout is {statement_ms}, expected {expected_statement}")
        if str(lock_ms) != expected_lock:
            out.append(f"lock_timeout is {lock_ms}, expected {expected_lock}")
        if int(advisory or 0):
            out.append(f"holds {int(advisory)} advisory lock(s)")
        status = getattr(getattr(self.raw, "info", None), "transaction_status", None)
        if status is not None and getattr(status, "name", "IDLE") != "IDLE":
            out.append(f"the connection is not idle after ROLLBACK ({status.name})")
        return out


class MysqlConnection(Connection):
    def setup(self) -> None:
        t = self.target
        version_text, comment = self._exec("SELECT VERSION(), @@version_comment")[0]
        flavor = "mariadb" if "mariadb" in f"{version_text} {comment}".lower() else "mysql"
        self.info = ServerInfo("mysql", flavor, parse_version(str(version_text)), str(version_text))
        self._exec("SET SESSION TRANSACTION READ ONLY")
        self._lock_wait = max(1, math.ceil(t.lock_timeout))
        self._exec(f"SET SESSION lock_wait_timeout = {self._lock_wait}, innodb_lock_wait_timeout = {self._lock_wait}")
        self.verify_sql = self._verify_sql()

    @property
    def _timeout_variable(self) -> str | None:
        if self.info.flavor == "mariadb":
            return "max_statement_time"
        return "max_execution_time" if self.info.version >= (5, 7, 8) else None

    def _verify_sql(self) -> str:
        ro = "transaction_read_only" if self.info.flavor == "mysql" and self.info.version >= (5, 7, 20) else "tx_read_only"
        timeout = f"@@session.{self._timeout_variable}" if self._timeout_variable else "NULL"
        has_release_all = self.info.version >= ((10, 0, 2) if self.info.flavor == "mariadb" else (5, 7, 5))
        release = "RELEASE_ALL_LOCKS()" if has_release_all else "0"
        return (f"SELECT @@session.{ro}, {timeout}, @@session.lock_wait_timeout, @@session.innodb_lock_wait_timeout, "
                f"@@session.autocommit, {release}")

    def begin(self, cur: Any, timeout: float) -> None:
        variable = self._timeout_variable
        bound = ""
        if variable == "max_statement_time":
            bound = f"max_statement_time = {max(0.001, timeout):.3f}, "
        elif variable == "max_execution_time":
            bound = f"max_execution_time = {_ms(timeout)}, "
        cur.execute(f"SET SESSION {bound}lock_wait_timeout = {self._lock_wait}, "
                    f"innodb_lock_wait_timeout = {self._lock_wait}")
        if self.driver == "odbc":
            self.raw.timeout = math.ceil(timeout) + 2
        cur.execute("START TRANSACTION READ ONLY")

    def end(self, cur: Any) -> None:
        cur.execute("ROLLBACK")

    def _stream_cursor(self) -> Any:
        """PyMySQL's default cursor buffers the whole result; SSCursor reads rows from the socket as fetched."""
        if self.driver != "native":
            return super()._stream_cursor()
        import pymysql.cursors

        return self.raw.cursor(pymysql.cursors.SSCursor)

    def problems(self, row: tuple[Any, ...]) -> list[str]:
        read_only, timeout, lock_wait, innodb_wait, autocommit, released = row
        out = []
        if not _same_number(read_only, 1):
            out.append("the session's transactions are no longer read-only")
        variable = self._timeout_variable
        expected = max(0.001, round(self.statement_timeout, 3)) if variable == "max_statement_time" else _ms(self.statement_timeout)
        if variable and not _same_number(timeout, expected):
            out.append(f"{variable} is {timeout}, expected {expected}")
        if not _same_number(lock_wait, self._lock_wait) or not _same_number(innodb_wait, self._lock_wait):
            out.append(f"lock wait timeouts are {lock_wait}/{innodb_wait}, expected {self._lock_wait}")
        if not _same_number(autocommit, 1):
            out.append("autocommit was switched off")
        if int(released or 0):
            out.append(f"held {int(released)} named lock(s) (GET_LOCK)")
        return out


class OracleConnection(Connection):
    ping_sql = "SELECT 1 FROM dual"
    verify_sql = ("SELECT (SELECT COUNT(*) FROM v$lock WHERE sid = SYS_CONTEXT('USERENV', 'SID') AND type = 'UL'), "
                  "SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA'), SYS_CONTEXT('USERENV', 'SESSION_USER') FROM dual")
    """User locks (DBMS_LOCK) are the only locks that outlive a ROLLBACK (needs SELECT on V_$LOCK); ALTER SESSION
    SET CURRENT_SCHEMA (run by an allowed function through EXECUTE IMMEDIATE) is not transactional and would make
    unqualified names resolve in another schema for every later check."""

    def setup(self) -> None:
        if self.driver == "native":
            version_text = str(self.raw.version)
        else:
            rows = self._exec("SELECT version FROM product_component_version WHERE product LIKE 'Oracle%'")
            version_text = str(rows[0][0]) if rows else "0"
        self.info = ServerInfo("oracle", "oracle", parse_version(version_text), version_text)
        self.raw.rollback()

    def _set_timeout(self, seconds: float) -> None:
        if self.driver == "native":
            self.raw.call_timeout = _ms(seconds)
        else:
            self.raw.timeout = math.ceil(seconds)

    def begin(self, cur: Any, timeout: float) -> None:
        self._set_timeout(timeout)
        self.raw.rollback()
        cur.execute("SET TRANSACTION READ ONLY")

    def end(self, cur: Any) -> None:
        self.raw.rollback()

    def problems(self, row: tuple[Any, ...]) -> list[str]:
        user_locks, current_schema, session_user = row
        out = []
        if int(user_locks or 0):
            out.append(f"holds {int(user_locks)} user lock(s) (DBMS_LOCK)")
        if str(current_schema) != str(session_user):
            out.append(f"CURRENT_SCHEMA is {current_schema}, expected {session_user}")
        if self.driver == "native" and self.raw.call_timeout != _ms(self.statement_timeout):
            out.append("the call timeout changed")
        return out

    def _exec(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return super()._exec(sql)
        finally:
            self.raw.rollback()


class MssqlConnection(Connection):
    verify_sql = (
        "SELECT @@LOCK_TIMEOUT, @@TRANCOUNT, "
        "(SELECT COUNT(*) FROM sys.dm_tran_locks WHERE request_session_id = @@SPID AND resource_type = N'APPLICATION'), "
        "(SELECT deadlock_priority FROM sys.dm_exec_sessions WHERE session_id = @@SPID)"
    )
    """Application locks (sp_getapplock with a session owner) outlive a ROLLBACK; SET options outlive it too."""

    def setup(self) -> None:
        version_text, edition, snapshot = self._exec(
            "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)), CAST(SERVERPROPERTY('EngineEdition') AS int), "
            "(SELECT snapshot_isolation_state FROM sys.databases WHERE database_id = DB_ID())"
        )[0]
        flavor = {5: "azure", 8: "azure_mi"}.get(int(edition or 0), "mssql")
        self.info = ServerInfo("mssql", flavor, parse_version(str(version_text)), str(version_text))
        self.isolation = "SNAPSHOT" if int(snapshot or 0) == 1 else "READ COMMITTED"
        """Snapshot isolation reads a consistent version without shared locks, where the database allows it."""

    def begin(self, cur: Any, timeout: float) -> None:
        self.raw.timeout = max(1, math.ceil(timeout))
        cur.execute(f"SET LOCK_TIMEOUT {_ms(self.target.lock_timeout)}; SET DEADLOCK_PRIORITY LOW; "
                    f"SET TRANSACTION ISOLATION LEVEL {self.isolation}; BEGIN TRANSACTION")

    def end(self, cur: Any) -> None:
        cur.execute("IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION")

    def problems(self, row: tuple[Any, ...]) -> list[str]:
        lock_timeout, trancount, app_locks, deadlock_priority = row
        out = []
        if not _same_number(lock_timeout, _ms(self.target.lock_timeout)):
            out.append(f"LOCK_TIMEOUT is {lock_timeout}, expected {_ms(self.target.lock_timeout)}")
        if int(trancount or 0):
            out.append("a transaction is still open")
        if int(app_locks or 0):
            out.append(f"holds {int(app_locks)} application lock(s) (sp_getapplock)")
        if not _same_number(deadlock_priority, -5):
            out.append(f"DEADLOCK_PRIORITY is {deadlock_priority}, expected LOW (-5)")
        return out


VERIFIED = ("verify-ca", "verify-full")
"""TLS modes that authenticate the server: only then may a password travel in a form the server can read."""
SCRAM_ONLY = "scram-sha-256,none"
"""libpq's require_auth: SCRAM (the password never reaches the server) or no password at all (trust, peer)."""


def protects_password(target: Target, password: str | None) -> bool:
    """Whether this connection must keep the password from a server that is not verified (the default)."""
    return bool(password) and target.tls.plaintext_password == "refuse" and target.tls.mode not in VERIFIED


LIBPQ_REQUIRE_AUTH = 160000
"""libpq 16 added require_auth."""


@functools.cache
def odbc_libpq_requires_scram() -> bool:
    """Whether the system's libpq (the one psqlODBC uses) knows require_auth."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("pq")
    if name is None:
        return False
    try:
        return int(ctypes.CDLL(name).PQlibVersion()) >= LIBPQ_REQUIRE_AUTH
    except (OSError, AttributeError):
        return False


class PlaintextPasswordRefused(ConnectionError):
    """The server asked for the password in a form it (or whoever poses as it) could read; nothing was sent."""


def _plaintext_allowed(target: Target, password: str | None) -> None:
    if password and target.tls.plaintext_password == "allow" and target.tls.mode not in VERIFIED:
        log.warning("target %s: the password may cross the network readable (tls.plaintext_password: allow); use "
                    "TLS with verify-full, or SCRAM / ed25519 accounts, and remove this setting", target.name,
                    extra={"event": "sql.plaintext_password_allowed", "target": target.name})


def open_connection(target: Target, password: str | None, timeout: float) -> Connection:
    """Connect, apply the session rules and detect the server; raises driver errors for the caller to classify."""
    _plaintext_allowed(target, password)
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
        "require_auth": SCRAM_ONLY if protects_password(target, password) else None,
    }
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return psycopg.connect(target.dsn or "", autocommit=True, **kwargs)


class _RefusePlaintext:
    """PyMySQL auth plugin handler for mysql_clear_password and dialog (PAM): refuses before anything is sent."""

    def __init__(self, conn: Any) -> None:
        raise PlaintextPasswordRefused("the server asked for the password in cleartext (mysql_clear_password or "
                                       "dialog); refused: nothing was sent (tls.plaintext_password)")


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
    if protects_password(target, password):
        kwargs["auth_plugin_map"] = {"mysql_clear_password": _RefusePlaintext, "dialog": _RefusePlaintext}
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
    protect = protects_password(t, password) and bool(t.user)
    if t.dialect == "mssql":
        encrypt = {"disable": "no", "prefer": None, "require": "yes", "verify-ca": "yes", "verify-full": "yes"}[tls.mode]
        if protect:
            if tls.mode == "disable":
                raise PlaintextPasswordRefused(f"target {t.name}: a SQL Server login with tls.mode disable would send "
                                               "the password readable; use prefer or stronger, or Windows "
                                               "authentication (or tls.plaintext_password: allow for an old server)")
            encrypt = "yes"  # the login packet carries the password, only lightly obfuscated
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
            # psqlODBC passes pqopt to libpq: SCRAM only where libpq knows require_auth, else TLS is required
            "SSLmode": "require" if protect and tls.mode in ("disable", "prefer") and not odbc_libpq_requires_scram()
            else tls.mode,
            "pqopt": f"{{require_auth={SCRAM_ONLY}}}" if protect and odbc_libpq_requires_scram() else None,
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
