"""Point the built-in Oracle / SQL Server packs at a real server named by an environment variable.

These suites run for real only when XUNJIAN_TEST_ORACLE_DSN / XUNJIAN_TEST_MSSQL_DSN are set. Oracle and SQL
Server cannot run on this machine or in this project's CI, so there they are skipped, deliberately, even
under CI=true (tests.conftest.require would fail instead; that is meant for services CI provides). The
offline tests in tests/unit/sql_packs cover the same checks with recorded rows; they are not a substitute.

DSN formats (user and password URL-encoded):
  XUNJIAN_TEST_ORACLE_DSN=oracle://xunjian_mon:secret@db-host:1521/HISPDB
  XUNJIAN_TEST_MSSQL_DSN=mssql://xunjian_mon:secret@sql-host:1433/HISDB?odbc_driver=ODBC+Driver+18+for+SQL+Server&trust_server_certificate=yes
"""

from __future__ import annotations

import math
import os
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from checks.pack import PackRef, load_checks
from checks.result import Outcome, Result, Status
from checks.spec import CheckSpec

TARGET = "live_db"
PASSWORD_ENV = "XUNJIAN_TEST_LIVE_DB_PASSWORD"


def live_dsn(env: str, what: str) -> str:
    dsn = os.environ.get(env, "")
    if not dsn:
        pytest.skip(f"{env} is not set: {what} cannot run on this machine, so this live suite runs only against a "
                    f"server you name there (see {__name__.replace('.', '/')}.py for the format)")
    return dsn


def target_config(dsn: str, dialect: str) -> dict[str, Any]:
    """agent.yaml-style target settings from a DSN URL; the password goes through an environment variable."""
    url = urlsplit(dsn)
    if url.scheme != dialect:
        raise ValueError(f"expected a {dialect}:// URL, got {url.scheme}://")
    os.environ[PASSWORD_ENV] = unquote(url.password or "")
    path = url.path.lstrip("/")
    config: dict[str, Any] = {"dialect": dialect, "host": url.hostname, "user": unquote(url.username or ""),
                              "password_env": PASSWORD_ENV, "statement_timeout": "300s"}
    if url.port:
        config["port"] = url.port
    if dialect == "oracle":
        config["service"] = path
    else:
        config["database"] = path or "master"
        for key, values in parse_qs(url.query).items():
            config[key] = values[-1] == "yes" if key == "trust_server_certificate" else values[-1]
    return config


def pack_checks(pack: str) -> list[CheckSpec]:
    return load_checks([PackRef(f"builtin:{pack}", TARGET)]).specs


def assert_sensible(spec: CheckSpec, results: list[Result]) -> None:
    """What a real server must give: no bug in the pack or the engine, and a status that means something."""
    assert results, f"{spec.id}: no result"
    for r in results:
        assert r.outcome not in (Outcome.INTERNAL_ERROR, Outcome.CONTENT_MISMATCH), f"{spec.id}: {r.summary}"
        if r.outcome == Outcome.NOT_FOUND:
            # Only a version gate may say "not here" (e.g. VLFs before SQL Server 2016 SP2).
            assert "no query variant" in r.summary, f"{spec.id}: {r.summary}"
            assert r.status == Status.UNKNOWN
            continue
        assert r.outcome == Outcome.OK, f"{spec.id}: {r.outcome} {r.summary}"
        assert r.status in (Status.OK, Status.WARNING, Status.CRITICAL)
        if r.value is not None:
            assert math.isfinite(r.value), f"{spec.id}: {r.value}"
        for finding in r.findings:
            assert finding.fingerprint.startswith(f"{spec.id}:") and finding.fingerprint != f"{spec.id}:"
