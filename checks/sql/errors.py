"""Driver and server errors mapped to the closed set of outcomes, with secrets scrubbed from the message.

The four drivers report the same failure differently (psycopg sqlstate, PyMySQL errno, pyodbc SQLSTATE plus
the driver's text, python-oracledb ORA-/DPY- codes), so codes are checked first and message patterns after.
"""

from __future__ import annotations

import re
from typing import Any

from checks.result import Outcome
from checks.sql.secrets import scrub


class SqlFailure(Exception):
    """A target's failure, reported as an UNKNOWN result with `outcome` and a scrubbed message."""

    def __init__(self, outcome: Outcome, message: str) -> None:
        self.outcome = outcome
        self.message = scrub(message)
        super().__init__(self.message)


_SQLSTATES: dict[str, Outcome] = {
    "57014": Outcome.TIMEOUT,  # query_canceled (statement_timeout)
    "55P03": Outcome.TIMEOUT,  # lock_not_available (lock_timeout)
    "HYT00": Outcome.TIMEOUT,
    "HYT01": Outcome.TIMEOUT,
    "53300": Outcome.TOO_MANY_CLIENTS,  # too_many_connections
    "28P01": Outcome.AUTH_FAILED,
    "28000": Outcome.AUTH_FAILED,
    "42501": Outcome.PERMISSION_DENIED,
    "25006": Outcome.PERMISSION_DENIED,  # read_only_sql_transaction: the check's read-only transaction refused a write
    "42P01": Outcome.NOT_FOUND,  # undefined_table
    "42883": Outcome.NOT_FOUND,  # undefined_function
    "3D000": Outcome.NOT_FOUND,  # invalid_catalog_name
    "3F000": Outcome.NOT_FOUND,  # invalid_schema_name
    "55000": Outcome.NOT_FOUND,  # object_not_in_prerequisite_state (pg_stat_statements not preloaded)
    "57P01": Outcome.CONNECTION_REFUSED,  # admin_shutdown: backend terminated, server stopping
    "57P02": Outcome.CONNECTION_REFUSED,  # crash_shutdown
    "57P03": Outcome.CONNECTION_REFUSED,  # cannot_connect_now (starting up, shutting down)
    "08006": Outcome.CONNECTION_REFUSED,  # connection_failure
    "08003": Outcome.CONNECTION_REFUSED,  # connection_does_not_exist
    "08S01": Outcome.CONNECTION_REFUSED,  # ODBC communication link failure
}
"""Lost connections count as connection_refused: the server is not (or no longer) taking our connection."""
_MYSQL_ERRNOS: dict[int, Outcome] = {
    1040: Outcome.TOO_MANY_CLIENTS,  # Too many connections
    1203: Outcome.TOO_MANY_CLIENTS,  # max_user_connections reached
    1045: Outcome.AUTH_FAILED,
    1044: Outcome.PERMISSION_DENIED,
    1142: Outcome.PERMISSION_DENIED,
    1143: Outcome.PERMISSION_DENIED,
    1227: Outcome.PERMISSION_DENIED,
    1792: Outcome.PERMISSION_DENIED,  # cannot execute statement in a READ ONLY transaction
    1146: Outcome.NOT_FOUND,
    1049: Outcome.NOT_FOUND,
    1109: Outcome.NOT_FOUND,
    3024: Outcome.TIMEOUT,  # MySQL max_execution_time
    1969: Outcome.TIMEOUT,  # MariaDB max_statement_time
    1205: Outcome.TIMEOUT,  # lock wait timeout
    2005: Outcome.DNS_ERROR,
    2013: Outcome.CONNECTION_REFUSED,  # lost connection during query (killed, server restart)
    2006: Outcome.CONNECTION_REFUSED,  # server has gone away
}
_PATTERNS: tuple[tuple[Outcome, re.Pattern[str]], ...] = tuple(
    (outcome, re.compile(pattern, re.IGNORECASE))
    for outcome, pattern in (
        (Outcome.TOO_MANY_CLIENTS, r"too many clients|too many connections|remaining connection slots are reserved|"
                                   r"max_user_connections|ORA-00018|ORA-00020|ORA-12516|ORA-12519|ORA-12520|"
                                   r"maximum number of '?\d+'? user connections|\b17809\b"),
        (Outcome.AUTH_FAILED, r"password authentication failed|access denied for user|login failed|ORA-01017|ORA-28000|"
                              r"ORA-28001|no pg_hba\.conf entry|authentication failed|ORA-01005|DPY-4001|role \"[^\"]*\" does not exist|"
                              r"authentication method requirement|password in cleartext|would send the password"),
        (Outcome.DNS_ERROR, r"could not translate host name|name or service not known|unknown (mysql |mariadb )?server host|"
                            r"temporary failure in name resolution|getaddrinfo|nodename nor servname|no address associated"),
        (Outcome.CONNECTION_REFUSED, r"terminating connection|connection has been lost|lost connection|"
                                     r"server has gone away|server closed the connection"),
        (Outcome.TIMEOUT, r"statement timeout|canceling statement due to (statement|lock) timeout|max_statement_time|"
                          r"maximum statement execution time|query execution was interrupted|timeout expired|timed out|"
                          r"DPY-4024|DPY-4011|ORA-03156|ORA-01013|lock wait timeout|lock request time out|"
                          r"call timeout|query timeout"),
        (Outcome.TLS_ERROR, r"\bssl\b|\btls\b|certificate|handshake"),
        (Outcome.CONNECTION_REFUSED, r"connection refused|can't connect to|could not connect|errno 111|ORA-12541|"
                                     r"DPY-6005|server is not found or not accessible|no route to host|"
                                     r"network is unreachable"),
        (Outcome.PERMISSION_DENIED, r"permission denied|must be superuser|command denied|access denied;|ORA-01031|"
                                    r"read-only transaction|READ ONLY transaction|ORA-01456|"
                                    r"permission was denied|VIEW SERVER STATE|insufficient privilege|ORA-01039"),
        (Outcome.NOT_FOUND, r"does not exist|doesn't exist|unknown table|ORA-00942|invalid object name|"
                            r"must be loaded via shared_preload_libraries|unknown database|ORA-12514|ORA-12505"),
    )
)


def classify(exc: BaseException) -> Outcome:
    """The outcome for a driver or server error; PROTOCOL_ERROR when the server said something we do not know."""
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and state in _SQLSTATES:
        return _SQLSTATES[state]
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_ERRNOS:
        return _MYSQL_ERRNOS[args[0]]
    if args and isinstance(args[0], str) and args[0] in _SQLSTATES and len(args) > 1:
        return _SQLSTATES[args[0]]
    text = describe(exc)
    for errno in re.findall(r"\((\d{4})\)", text):
        if int(errno) in _MYSQL_ERRNOS:
            return _MYSQL_ERRNOS[int(errno)]
    for outcome, pattern in _PATTERNS:
        if pattern.search(text):
            return outcome
    if isinstance(exc, (TimeoutError,)):
        return Outcome.TIMEOUT
    if isinstance(exc, ConnectionRefusedError):
        return Outcome.CONNECTION_REFUSED
    return Outcome.PROTOCOL_ERROR


def describe(exc: BaseException) -> str:
    """One readable line for an error (pyodbc packs SQLSTATE and text in a tuple), scrubbed of secrets."""
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    if len(args) == 2 and all(isinstance(a, (str, int)) for a in args):
        text = f"{args[0]}: {args[1]}" if not str(args[1]).startswith(f"[{args[0]}]") else str(args[1])
    else:
        text = str(exc) or type(exc).__name__
    return scrub(" ".join(text.split()))
