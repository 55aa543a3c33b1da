"""Every check of the built-in SQL Server pack against a real SQL Server named by XUNJIAN_TEST_MSSQL_DSN.

Skipped when the variable is unset, also in CI: SQL Server cannot run on this machine (see live.py).
Needs pyodbc and Microsoft's ODBC driver. Use the login from deploy/db-grants/mssql.sql so missing grants
show up as failures; servers older than 2016 SP2 report the VLF check as a version-gated not_found.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from checks.context import RunContext
from checks.spec import CheckSpec
from checks.sql.session import close_sessions
from tests.integration.sql_live.live import TARGET, assert_sensible, live_dsn, pack_checks, target_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ctx() -> Iterator[RunContext]:
    dsn = live_dsn("XUNJIAN_TEST_MSSQL_DSN", "SQL Server")
    context = RunContext(targets={TARGET: target_config(dsn, "mssql")})
    yield context
    close_sessions(context.resources)


@pytest.mark.parametrize("spec", pack_checks("mssql"), ids=lambda s: s.id)
def test_mssql_check_runs_against_the_live_server(spec: CheckSpec, ctx: RunContext) -> None:
    assert_sensible(spec, spec.probe(ctx))
