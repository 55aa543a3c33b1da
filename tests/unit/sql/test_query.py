"""The `query:` format: SQL per dialect, variants gated by version and flavor, guarded when the pack loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.config_error import ConfigError
from checks.pack import load_pack
from checks.sql.query import QueryMap, QueryVariant
from checks.sql.version import parse_version

Q = QueryMap.model_validate(
    {
        "postgres": [
            {"sql": "SELECT total_exec_time AS value FROM pg_stat_statements", "min_version": "13"},
            {"sql": "SELECT total_time AS value FROM pg_stat_statements", "max_version": "13"},
        ],
        "mysql": [
            {"sql": "SELECT 1 AS value FROM performance_schema.data_lock_waits", "min_version": "8.0"},
            {"sql": "SELECT 2 AS value FROM information_schema.innodb_lock_waits", "max_version": "8.0"},
        ],
        "mariadb": "SELECT 3 AS value FROM information_schema.innodb_lock_waits",
    }
)


def test_parse_version() -> None:
    assert parse_version("15.20 (Debian 15.20-0+deb12u1)") == (15, 20)
    assert parse_version("10.11.19-MariaDB-0+deb12u1") == (10, 11, 19)
    assert parse_version("8.0.36") == (8, 0, 36)
    assert parse_version("19.3.0.0.0") == (19, 3, 0, 0, 0)


@pytest.mark.parametrize(
    ("dialect", "flavor", "version", "expect"),
    [
        ("postgres", "postgres", (15, 20), "total_exec_time"),
        ("postgres", "postgres", (13, 0), "total_exec_time"),
        ("postgres", "postgres", (12, 17), "total_time"),
        ("mysql", "mysql", (8, 0, 36), "data_lock_waits"),
        ("mysql", "mysql", (5, 7, 44), "SELECT 2"),
        ("mysql", "mariadb", (10, 11, 19), "SELECT 3"),
    ],
)
def test_select(dialect: str, flavor: str, version: tuple[int, ...], expect: str) -> None:
    picked = Q.select(dialect, flavor, version)
    assert picked is not None and expect in (picked[0].sql or "")


def sql_of(picked: tuple[QueryVariant, str] | None) -> tuple[str | None, str] | None:
    return None if picked is None else (picked[0].sql, picked[1])


def test_mariadb_falls_back_to_mysql_key() -> None:
    q = QueryMap.model_validate({"mysql": "SELECT 1 AS value"})
    assert sql_of(q.select("mysql", "mariadb", (10, 11))) == ("SELECT 1 AS value", "mysql")


def test_flavor_gate() -> None:
    q = QueryMap.model_validate({"mysql": [{"sql": "SELECT 1", "flavor": "MariaDB"}, {"sql": "SELECT 2"}]})
    assert sql_of(q.select("mysql", "mariadb", (10, 11))) == ("SELECT 1", "mysql")
    assert sql_of(q.select("mysql", "mysql", (8, 0))) == ("SELECT 2", "mysql")


def test_no_variant_explained() -> None:
    q = QueryMap.model_validate({"postgres": [{"sql": "SELECT 1", "min_version": "13"}]})
    assert q.select("postgres", "postgres", (12, 1)) is None
    assert q.explain_miss("postgres", "postgres", (12, 1)) == "no query variant for postgres 12.1 (variants: >= 13)"
    assert q.select("oracle", "oracle", (19,)) is None
    assert "no query for dialect oracle (it has: postgres)" in q.explain_miss("oracle", "oracle", (19,))


def test_dialects() -> None:
    assert Q.dialects() == ["mysql", "postgres"]


def _pack(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text("pack: t\nchecks:\n" + body)
    return path


def test_pack_with_write_is_refused_at_load(tmp_path: Path) -> None:
    path = _pack(
        tmp_path,
        "  - id: a\n    kind: sql.metric\n    target: db\n    query:\n      postgres:\n"
        "        - sql: SELECT 1 AS value\n        - sql: DELETE FROM orders\n          min_version: '9'\n",
    )
    with pytest.raises(ConfigError) as err:
        load_pack(path)
    assert str(err.value) == f"{path}:7: checks[0].query.postgres: [1]: only SELECT/WITH may run, not DELETE"


def test_bad_version_gate(tmp_path: Path) -> None:
    path = _pack(tmp_path, "  - id: a\n    kind: sql.metric\n    target: db\n    query:\n      postgres:\n        - {sql: SELECT 1, min_version: latest}\n")
    with pytest.raises(ConfigError, match=r"checks\[0\]\.query\.postgres\[0\]\.min_version: expected a version"):
        load_pack(path)


def test_unknown_dialect_key(tmp_path: Path) -> None:
    path = _pack(tmp_path, "  - id: a\n    kind: sql.metric\n    target: db\n    query:\n      postgresql: SELECT 1\n")
    with pytest.raises(ConfigError, match=r"checks\[0\]\.query\.postgresql: unknown field \(did you mean 'postgres'\?\)"):
        load_pack(path)


def test_query_must_be_a_mapping(tmp_path: Path) -> None:
    path = _pack(tmp_path, "  - id: a\n    kind: sql.metric\n    target: db\n    query: SELECT 1\n")
    with pytest.raises(ConfigError, match="expected a mapping of dialect to SQL"):
        load_pack(path)


def test_sql_kinds_need_a_target(tmp_path: Path) -> None:
    path = _pack(tmp_path, "  - id: a\n    kind: sql.metric\n    query: {postgres: SELECT 1}\n")
    with pytest.raises(ConfigError, match=r"checks\[0\]\.target: required for kind sql.metric"):
        load_pack(path)
