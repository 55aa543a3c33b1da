"""Driver errors → outcomes, and secrets scrubbed from every message (messages as the four drivers word them)."""

from __future__ import annotations

import pytest

from checks.result import Outcome
from checks.sql.errors import SqlFailure, classify, describe
from checks.sql.secrets import MASK, register_secret, scrub


class _PgError(Exception):
    def __init__(self, message: str, sqlstate: str | None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (_PgError("canceling statement due to statement timeout", "57014"), Outcome.TIMEOUT),
        (_PgError("canceling statement due to lock timeout", "55P03"), Outcome.TIMEOUT),
        (_PgError("permission denied for table orders", "42501"), Outcome.PERMISSION_DENIED),
        (_PgError('relation "pg_stat_statements" does not exist', "42P01"), Outcome.NOT_FOUND),
        (_PgError("pg_stat_statements must be loaded via shared_preload_libraries", "55000"), Outcome.NOT_FOUND),
        (_PgError('connection failed: connection to server at "127.0.0.1", port 1 failed: Connection refused', None),
         Outcome.CONNECTION_REFUSED),
        (_PgError('connection failed: FATAL:  password authentication failed for user "mon"', None), Outcome.AUTH_FAILED),
        (_PgError('connection failed: FATAL:  role "nobody" does not exist', None), Outcome.AUTH_FAILED),
        (_PgError('failed to resolve host "db.invalid": [Errno -2] Name or service not known', None), Outcome.DNS_ERROR),
        (Exception(1045, "Access denied for user 'root'@'localhost' (using password: YES)"), Outcome.AUTH_FAILED),
        (Exception(2003, "Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused)"),
         Outcome.CONNECTION_REFUSED),
        (Exception(1969, "Query execution was interrupted (max_statement_time exceeded)"), Outcome.TIMEOUT),
        (Exception(3024, "Query execution was interrupted, maximum statement execution time exceeded"), Outcome.TIMEOUT),
        (Exception(1227, "Access denied; you need (at least one of) the PROCESS privilege(s) for this operation"),
         Outcome.PERMISSION_DENIED),
        (Exception(1146, "Table 'sys.schema_unused_indexes' doesn't exist"), Outcome.NOT_FOUND),
        (Exception("HY000", "[HY000] [ma-3.1.15]Query execution was interrupted (max_statement_time exceeded) (1969)"),
         Outcome.TIMEOUT),
        (Exception("08001", "[08001] [unixODBC]connection to server at \"127.0.0.1\", port 1 failed: Connection refused"),
         Outcome.CONNECTION_REFUSED),
        (Exception("28000", "[28000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Login failed for user 'mon'."),
         Outcome.AUTH_FAILED),
        (Exception("HYT00", "[HYT00] [Microsoft][ODBC Driver 18 for SQL Server]Query timeout expired (0)"), Outcome.TIMEOUT),
        (Exception("42000", "[42000] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]VIEW SERVER STATE permission was "
                            "denied on object 'server', database 'master'. (300)"), Outcome.PERMISSION_DENIED),
        (Exception("08001", "[08001] [Microsoft][ODBC Driver 18 for SQL Server]SSL Provider: certificate verify failed"),
         Outcome.TLS_ERROR),
        (Exception("ORA-01017: invalid username/password; logon denied"), Outcome.AUTH_FAILED),
        (Exception("ORA-00942: table or view does not exist"), Outcome.NOT_FOUND),
        (Exception("DPY-4001: no credentials specified"), Outcome.AUTH_FAILED),
        (Exception("ORA-01031: insufficient privileges"), Outcome.PERMISSION_DENIED),
        (Exception("DPY-4024: call timeout of 1000 ms exceeded"), Outcome.TIMEOUT),
        (Exception("DPY-6005: cannot connect to database (CONNECTION_ID=x). [Errno 111] Connection refused"),
         Outcome.CONNECTION_REFUSED),
        (Exception("division by zero"), Outcome.PROTOCOL_ERROR),
        (_PgError("connection failed: FATAL:  sorry, too many clients already", None), Outcome.TOO_MANY_CLIENTS),
        (_PgError("FATAL:  remaining connection slots are reserved for non-replication superuser connections", None),
         Outcome.TOO_MANY_CLIENTS),
        (_PgError("too many connections for role \"mon\"", "53300"), Outcome.TOO_MANY_CLIENTS),
        (Exception(1040, "Too many connections"), Outcome.TOO_MANY_CLIENTS),
        (Exception("HY000", "[HY000] [ma-3.1.15]Too many connections (1040)"), Outcome.TOO_MANY_CLIENTS),
        (Exception("ORA-00020: maximum number of processes (300) exceeded"), Outcome.TOO_MANY_CLIENTS),
        (Exception("DPY-6000: cannot connect to database. Listener refused connection. (Similar to ORA-12516)"),
         Outcome.TOO_MANY_CLIENTS),
        (Exception("08001", "[08001] [Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Could not connect because the "
                            "maximum number of '300' user connections has already been reached. (17809)"),
         Outcome.TOO_MANY_CLIENTS),
    ],
)
def test_classify(exc: BaseException, outcome: Outcome) -> None:
    assert classify(exc) == outcome


def test_scrub_registered_secret_and_connection_strings() -> None:
    register_secret("Tr0ub4dor&3")
    assert scrub("login with Tr0ub4dor&3 failed") == f"login with {MASK} failed"
    assert scrub("Driver={X};Server=h;PWD={p;w};UID=u") == f"Driver={{X}};Server=h;PWD={MASK};UID=u"
    assert scrub("postgresql://mon:hunter2@db:5432/his") == f"postgresql://mon:{MASK}@db:5432/his"


def test_failure_messages_are_scrubbed() -> None:
    register_secret("n0t-in-logs")
    failure = SqlFailure(Outcome.AUTH_FAILED, "password n0t-in-logs rejected")
    assert "n0t-in-logs" not in str(failure) and "n0t-in-logs" not in failure.message
    assert "n0t-in-logs" not in describe(Exception("28000", "[28000] bad password n0t-in-logs"))
