"""The allow-list when packs are bound to targets: agent.yaml refuses a statement with file:line, site exceptions
come from the target only (never a pack), and `xunjian check validate` shows them."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.config import load_agent_config
from checks.config_error import ConfigError
from checks.sql.session import Session
from xunjian.checkrun import validate

SITE_PACK = """\
pack: his-site
checks:
  - id: his.migration.ran
    kind: sql.metric
    target: his_pg
    query:
      postgres: SELECT count(*) AS value FROM his.job_log WHERE job = 'year_db' AND ok
"""


def agent_yaml(tmp_path: Path, allow: str = "") -> Path:
    (tmp_path / "site.yaml").write_text(SITE_PACK)
    path = tmp_path / "agent.yaml"
    path.write_text(
        'collector: {addresses: ["c:9470"]}\n'
        "packs: [site.yaml]\n"
        "targets:\n"
        "  his_pg:\n"
        "    dialect: postgres\n"
        "    host: 127.0.0.1\n"
        "    database: his\n" + allow
    )
    return path


ALLOW = ("    allow:\n"
         "      reviewed_by: Li Wei (DBA), 2026-11-30\n"
         "      relations: [his.job_log]\n")


def test_site_table_without_an_exception_is_a_config_error_at_the_check(tmp_path: Path) -> None:
    path = agent_yaml(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_agent_config(path)
    assert str(err.value) == (
        f"{tmp_path / 'site.yaml'}:3: query.postgres: check 'his.migration.ran' on target his_pg: not on the read-only "
        "allow-list: his.job_log; allow it for this target in agent.yaml if you have checked it is read-only"
    )


def test_site_exception_on_the_target_lets_it_load(tmp_path: Path) -> None:
    cfg = load_agent_config(agent_yaml(tmp_path, ALLOW))
    assert [s.id for s in cfg.checks.specs] == ["his.migration.ran"]


def test_a_pack_cannot_carry_its_own_exception(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(SITE_PACK.replace("    query:", "    allow: {relations: [his.job_log]}\n    query:"))
    path = tmp_path / "agent.yaml"
    path.write_text('collector: {addresses: ["c:9470"]}\npacks: [p.yaml]\n'
                    "targets:\n  his_pg: {dialect: postgres, host: 127.0.0.1}\n")
    with pytest.raises(ConfigError, match="allow: unknown field"):
        load_agent_config(path)


def test_exception_without_a_reviewer_is_refused(tmp_path: Path) -> None:
    path = agent_yaml(tmp_path, "    allow: {relations: [his.job_log]}\n")
    with pytest.raises(ConfigError, match=r"agent.yaml:\d+: targets.his_pg.allow.reviewed_by: "):
        load_agent_config(path)


def test_check_validate_shows_site_exceptions(tmp_path: Path) -> None:
    out = validate([], config=agent_yaml(tmp_path, ALLOW))
    assert ("target his_pg: site exceptions to the read-only allow-list: relations his.job_log "
            "(reviewed by Li Wei (DBA), 2026-11-30)") in out.splitlines()


def test_validate_without_agent_yaml_uses_the_builtin_lists(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(SITE_PACK)
    with pytest.raises(ConfigError, match="give --config for its site exceptions"):
        validate([str(tmp_path / "site.yaml")])
    assert "ok: 30 checks" in validate(["builtin:postgres"])


def test_builtin_packs_validate_against_the_builtin_lists() -> None:
    out = validate(["builtin:postgres", "builtin:mysql", "builtin:oracle", "builtin:mssql"])
    assert ": ok: " in out


def test_each_site_exception_is_logged_once_when_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from checks.sql import session as session_module

    session_module._logged_site_uses.clear()
    cfg = load_agent_config(agent_yaml(tmp_path, ALLOW))
    session = Session(cfg.targets["his_pg"])
    session._conn = type("Open", (), {"info": None})()  # only prepare() is exercised: no connection is made
    from checks.sql.rows import ServerInfo

    session._conn.info = ServerInfo("postgres", "postgres", (15, 0))
    spec = cfg.checks.specs[0]
    caplog.set_level(logging.WARNING, logger="xunjian.sql")
    for _ in range(3):
        prepared = session.prepare(spec.query, "his.migration.ran")  # type: ignore[attr-defined]
    assert prepared.site_uses == ("his.job_log",)
    lines = [r.getMessage() for r in caplog.records if r.name == "xunjian.sql"]
    assert lines == ["target his_pg: check his.migration.ran reads his.job_log under a site exception to the "
                     "read-only allow-list (reviewed by Li Wei (DBA), 2026-11-30)"]


def test_postgres_site_names_need_their_schema(tmp_path: Path) -> None:
    """Checks run with search_path pinned to pg_catalog: an unqualified site table would never be the one meant."""
    path = agent_yaml(tmp_path, "    allow:\n      reviewed_by: Li Wei\n      relations: [job_log]\n")
    with pytest.raises(ConfigError, match=r"targets.his_pg.allow: .*name job_log with its schema"):
        load_agent_config(path)


def test_pinned_search_path_puts_the_catalog_first_and_pg_temp_last() -> None:
    from checks.sql.dialects import pinned_search_path

    assert pinned_search_path([]) == "pg_catalog, pg_temp"
    assert pinned_search_path(["public", "pg_catalog", 'we"ird']) == 'pg_catalog, "public", "we""ird", pg_temp'
