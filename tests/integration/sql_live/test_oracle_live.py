"""Every check of the built-in Oracle pack against a real Oracle named by XUNJIAN_TEST_ORACLE_DSN.

Skipped when the variable is unset, also in CI: Oracle cannot run on this machine (see live.py).
Use the monitoring account from deploy/db-grants/oracle.sql so missing grants show up as failures.
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
    dsn = live_dsn("XUNJIAN_TEST_ORACLE_DSN", "Oracle")
    context = RunContext(targets={TARGET: target_config(dsn, "oracle")})
    yield context
    close_sessions(context.resources)


@pytest.mark.parametrize("spec", pack_checks("oracle"), ids=lambda s: s.id)
def test_oracle_check_runs_against_the_live_server(spec: CheckSpec, ctx: RunContext) -> None:
    assert_sensible(spec, spec.probe(ctx))
