"""ODBC connection strings: SQL Server's read-only intent and TLS switches (untestable live here), and
passwords that cannot break out of their attribute."""

from __future__ import annotations

from typing import Any

import pytest

from checks.sql.dialects import PlaintextPasswordRefused, odbc_connection_string
from checks.sql.target import Target, TlsOptions


def target(**kw: Any) -> Target:
    """Built without validation: the SQL Server ODBC driver is not installed on this machine."""
    base: dict[str, Any] = {
        "name": "t", "driver": "odbc", "port": None, "database": None, "service": None, "dsn": None, "user": None,
        "password_env": None, "password_file": None, "tls": TlsOptions.model_validate({}), "connect_timeout": 5.0,
        "statement_timeout": 30.0, "lock_timeout": 2.0, "max_rows": 1000, "trust_server_certificate": False,
    }
    return Target.model_construct(**{**base, **kw})


def attrs(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(";"):
        key, _, value = part.partition("=")
        out[key] = value
    return out


def test_mssql_read_only_intent_and_defaults() -> None:
    s = odbc_connection_string(target(dialect="mssql", host="emr-sql", database="EMR", user="mon",
                                      odbc_driver="ODBC Driver 18 for SQL Server"), "pw")
    a = attrs(s)
    assert a["Driver"] == "{ODBC Driver 18 for SQL Server}"
    assert a["Server"] == "tcp:emr-sql,1433" and a["Database"] == "EMR" and a["UID"] == "mon" and a["PWD"] == "{pw}"
    assert a["ApplicationIntent"] == "ReadOnly" and a["APP"] == "xunjian"
    assert (a["Encrypt"], a["TrustServerCertificate"]) == ("yes", "no"), \
        "a SQL login's password is in the login packet: it is always encrypted (tls.plaintext_password: refuse)"


def test_mssql_without_a_password_keeps_the_drivers_default() -> None:
    a = attrs(odbc_connection_string(target(dialect="mssql", host="h", odbc_driver="D"), None))
    assert "Encrypt" not in a


def test_mssql_tls_modes() -> None:
    def a(**kw: Any) -> dict[str, str]:
        return attrs(odbc_connection_string(target(dialect="mssql", host="h", user="u", odbc_driver="D", **kw), "p"))

    with pytest.raises(PlaintextPasswordRefused, match="would send the password readable"):
        a(tls=TlsOptions(mode="disable"))
    assert a(tls=TlsOptions(mode="disable", plaintext_password="allow"))["Encrypt"] == "no"
    req = a(tls=TlsOptions(mode="require"))
    assert (req["Encrypt"], req["TrustServerCertificate"]) == ("yes", "yes")
    full = a(tls=TlsOptions(mode="verify-full"))
    assert (full["Encrypt"], full["TrustServerCertificate"]) == ("yes", "no")
    assert a(trust_server_certificate=True)["TrustServerCertificate"] == "yes"


def test_mssql_windows_authentication_without_user() -> None:
    a = attrs(odbc_connection_string(target(dialect="mssql", host="h", odbc_driver="D"), None))
    assert a["Trusted_Connection"] == "yes" and "PWD" not in a and "UID" not in a


def test_password_cannot_inject_attributes() -> None:
    s = odbc_connection_string(target(dialect="postgres", host="h", user="u", odbc_driver="PostgreSQL Unicode"),
                               "x};Server=evil;{")
    assert "Pwd={x}};Server=evil;{}" in s, "braced, with } doubled: the driver reads one Pwd value"


def test_extra_attributes_from_dsn_and_debian_drivers() -> None:
    pg = attrs(odbc_connection_string(target(dialect="postgres", host="h", database="his", odbc_driver="PostgreSQL Unicode",
                                             dsn="UseServerSidePrepare=1"), None))
    assert pg["Port"] == "5432" and pg["BoolsAsChar"] == "0" and pg["UseServerSidePrepare"] == "1" and "Pwd" not in pg
    my = attrs(odbc_connection_string(target(dialect="mysql", host="h", odbc_driver="MariaDB Unicode",
                                             tls=TlsOptions(mode="require")), "p"))
    assert my["Port"] == "3306" and my["FORCETLS"] == "1" and "SSLVERIFY" not in my
