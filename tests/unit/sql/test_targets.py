"""agent.yaml `targets:` validation: clear ConfigErrors with file:line: targets.NAME.field: message."""

from __future__ import annotations

from pathlib import Path

import pyodbc
import pytest

from checks.config_error import ConfigError, ConfigErrors
from checks.sql.target import Target
from checks.targets import parse_targets
from checks.yamlsource import parse_yaml


def _parse(text: str) -> dict[str, Target]:
    src = parse_yaml(text, "agent.yaml")
    return parse_targets(src.data.get("targets"), src)


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        _parse(text)
    return str(err.value)


def test_valid_targets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XJ_TEST_PW", "s3cret")
    pw = tmp_path / "pw"
    pw.write_text("from-file\n")
    targets = _parse(
        f"""
targets:
  his_pg:
    dialect: postgres
    host: 127.0.0.1
    database: test
    user: xunjian_mon
    password_env: XJ_TEST_PW
    statement_timeout: 15s
  lis_my:
    dialect: mysql
    host: db.local
    user: mon
    password_file: {pw}
    max_rows: 200
  his_ora:
    dialect: oracle
    dsn: his-db:1521/HISPDB
    user: xunjian_mon
"""
    )
    assert targets["his_pg"].name == "his_pg"
    assert targets["his_pg"].statement_timeout == 15.0
    assert targets["his_pg"].effective_port == 5432
    assert targets["his_pg"].password() == "s3cret"
    assert targets["lis_my"].password() == "from-file"
    assert targets["lis_my"].effective_port == 3306
    assert targets["his_ora"].driver == "native"


def test_unknown_dialect() -> None:
    msg = _error("targets:\n  x:\n    dialect: db2\n    host: h\n")
    assert msg.startswith("agent.yaml:3: targets.x.dialect: ")
    assert "'db2'" in msg and "postgres" in msg


def test_missing_password_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XJ_NOT_SET", raising=False)
    msg = _error("targets:\n  x:\n    dialect: postgres\n    host: h\n    password_env: XJ_NOT_SET\n")
    assert msg == "agent.yaml:5: targets.x.password_env: environment variable XJ_NOT_SET is not set (it should hold the password)"


def test_missing_password_file(tmp_path: Path) -> None:
    msg = _error(f"targets:\n  x:\n    dialect: mysql\n    host: h\n    password_file: {tmp_path}/none\n")
    assert msg.startswith("agent.yaml:5: targets.x.password_file: password file not found")


def test_odbc_driver_not_installed() -> None:
    assert "No Such Driver 9" not in pyodbc.drivers()
    msg = _error("targets:\n  x:\n    dialect: postgres\n    driver: odbc\n    odbc_driver: No Such Driver 9\n    host: h\n")
    assert msg.startswith("agent.yaml:5: targets.x.odbc_driver: ODBC driver 'No Such Driver 9' is not installed")
    assert "odbc-postgresql" in msg


def test_mssql_defaults_to_odbc_driver_18() -> None:
    if "ODBC Driver 18 for SQL Server" in pyodbc.drivers():
        assert _parse("targets:\n  x:\n    dialect: mssql\n    host: h\n")["x"].driver == "odbc"
        return
    msg = _error("targets:\n  x:\n    dialect: mssql\n    host: h\n")
    assert "targets.x.odbc_driver: ODBC driver 'ODBC Driver 18 for SQL Server' is not installed" in msg


def test_debian_odbc_drivers_are_the_defaults() -> None:
    drivers = pyodbc.drivers()
    if "PostgreSQL Unicode" in drivers:
        assert _parse("targets:\n  x:\n    dialect: postgres\n    driver: odbc\n    host: h\n")["x"].odbc_driver == "PostgreSQL Unicode"
    if "MariaDB Unicode" in drivers:
        assert _parse("targets:\n  x:\n    dialect: mysql\n    driver: odbc\n    host: h\n")["x"].odbc_driver == "MariaDB Unicode"


def test_unknown_field_suggests() -> None:
    msg = _error("targets:\n  x:\n    dialect: postgres\n    hots: h\n")
    assert msg == "agent.yaml:4: targets.x.hots: unknown field (did you mean 'host'?)"


def test_where_to_connect_required() -> None:
    msg = _error("targets:\n  x:\n    dialect: postgres\n    user: u\n")
    assert msg == "agent.yaml:2: targets.x: expected host (with port, database/service) or dsn"


def test_both_password_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XJ_TEST_PW", "x")
    (tmp_path / "pw").write_text("y")
    msg = _error(f"targets:\n  x:\n    dialect: postgres\n    host: h\n    password_env: XJ_TEST_PW\n    password_file: {tmp_path}/pw\n")
    assert "password_env or password_file, not both" in msg


def test_several_errors_reported_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XJ_NOT_SET", raising=False)
    with pytest.raises(ConfigErrors) as err:
        _parse("targets:\n  a:\n    dialect: db2\n    host: h\n  b:\n    dialect: postgres\n    host: h\n    password_env: XJ_NOT_SET\n")
    assert [e.field for e in err.value.errors] == ["targets.a.dialect", "targets.b.password_env"]


def test_not_a_mapping() -> None:
    assert _error("targets: [a, b]\n") == "agent.yaml:1: targets: expected a mapping of target names to connection settings"


def test_no_targets() -> None:
    assert _parse("agent: {id: a}\n") == {}


REPLICA = """\
targets:
  his_pg:
    dialect: postgres
    host: 10.1.2.30
  his_pg_standby:
    dialect: postgres
    host: 10.1.2.31
    replica_of: {primary}
    maintenance_sessions:
      applications: [nightly-yeardb-*]
      users: [etl_batch]
      queries: ['^CALL his\\.move_year']
"""


def test_replica_of_and_maintenance_sessions() -> None:
    targets = _parse(REPLICA.format(primary="his_pg"))
    standby = targets["his_pg_standby"]
    assert standby.replica_of == "his_pg"
    assert standby.maintenance_sessions is not None and standby.maintenance_sessions.builtin
    assert standby.maintenance_sessions.users == ("etl_batch",)


@pytest.mark.parametrize(("primary", "message"), [
    ("his_pgg", "agent.yaml:8: targets.his_pg_standby.replica_of: expected the name of another target (its primary); "
                "targets: his_pg"),
    ("his_pg_standby", "targets.his_pg_standby.replica_of: expected the name of another target"),
])
def test_replica_of_names_another_target(primary: str, message: str) -> None:
    assert message in _error(REPLICA.format(primary=primary))


def test_replica_of_a_target_of_another_dialect() -> None:
    text = REPLICA.format(primary="his_pg").replace("dialect: postgres\n    host: 10.1.2.30", "dialect: mysql\n    host: 10.1.2.30")
    assert "his_pg is a mysql target, this one postgres" in _error(text)


def test_a_bad_maintenance_query_pattern_names_the_field() -> None:
    text = REPLICA.format(primary="his_pg").replace("'^CALL his\\.move_year'", "'(unclosed'")
    assert "targets.his_pg_standby.maintenance_sessions.queries.0: Value error, bad regular expression" in _error(text) or \
        "targets.his_pg_standby.maintenance_sessions.queries" in _error(text)
