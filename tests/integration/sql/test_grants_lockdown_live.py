"""deploy/db-grants/postgres.sql as shipped (lock_down_public on), on a throwaway cluster since it changes
PUBLIC's rights: the monitoring account cannot signal its own backends, take advisory locks, read or write
server files, or write rows; roles that existed before keep what they had; the whole pack still runs."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from checks.context import RunContext
from checks.sql.session import close_sessions
from checks.sql.target import Target
from tests.conftest import require
from tests.integration.sql.test_live_packs import assert_sensible, run_pack
from tests.integration.sql.throwaway import postgres_cluster

pytestmark = pytest.mark.integration
SCRIPT = Path(__file__).resolve().parents[3] / "deploy" / "db-grants" / "postgres.sql"


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    require(shutil.which("psql") is not None, "psql (postgresql-client) to run deploy/db-grants/postgres.sql")
    with postgres_cluster() as p:
        admin = psycopg.connect(host="127.0.0.1", port=p, user="postgres", dbname="postgres", autocommit=True)
        admin.execute("CREATE ROLE app_role LOGIN")
        admin.execute("CREATE TABLE app_data (v int)")
        admin.execute("GRANT INSERT, SELECT ON app_data TO app_role")
        admin.close()
        for _ in range(2):  # re-running it is safe
            subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(p), "-U", "postgres", "-d", "postgres",
                            "-v", "mon_password=unused-with-trust-auth", "-f", str(SCRIPT)], check=True, capture_output=True)
        yield p


def connect(port: int, user: str) -> psycopg.Connection[Any]:
    return psycopg.connect(host="127.0.0.1", port=port, user=user, dbname="postgres", autocommit=True)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT pg_advisory_lock(1)",
        "SELECT pg_try_advisory_lock(1)",
        "SELECT pg_advisory_xact_lock(1)",
        "SELECT pg_read_file('postgresql.conf')",
        "SELECT pg_read_binary_file('postgresql.conf')",
        "SELECT lo_import('/etc/hostname')",
        "COPY (SELECT 1) TO '/tmp/xj_grants_lockdown'",
        "SELECT pg_reload_conf()",
        "SELECT pg_stat_reset()",
    ],
)
def test_monitoring_account_cannot(port: int, sql: str) -> None:
    with connect(port, "xunjian_mon") as mon, pytest.raises(psycopg.errors.InsufficientPrivilege):
        mon.execute(sql)


def test_monitoring_account_cannot_signal_its_own_backends(port: int) -> None:
    with connect(port, "xunjian_mon") as mon, connect(port, "xunjian_mon") as other:
        pid = other.info.backend_pid
        for fn in ("pg_cancel_backend", "pg_terminate_backend"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                mon.execute(f"SELECT {fn}(%s)", (pid,))
        assert other.execute("SELECT 1").fetchone() == (1,)


def test_monitoring_account_cannot_write(port: int) -> None:
    with connect(port, "xunjian_mon") as mon, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        mon.execute("CREATE TEMP TABLE t (a int)")


def test_roles_that_existed_keep_advisory_locks_and_signals(port: int) -> None:
    with connect(port, "app_role") as app:
        assert app.execute("SELECT pg_try_advisory_lock(7), pg_advisory_unlock(7)").fetchone() == (True, True)
        assert app.execute("SELECT pg_cancel_backend(pg_backend_pid() + 100000)").fetchone() is not None
        app.execute("INSERT INTO app_data VALUES (1)")


def test_the_whole_pack_runs_as_the_locked_down_account(port: int) -> None:
    target = Target.model_validate({"name": "db", "dialect": "postgres", "host": "127.0.0.1", "port": port,
                                    "database": "postgres", "user": "xunjian_mon"})
    ctx = RunContext()
    try:
        assert_sensible(run_pack("postgres", target, ctx), {"pg.top_sql": "pg_stat_statements is not installed",
                                                            "pg.plan_regressions": "pg_stat_statements is not installed",
                                                            "pg.backup.age": "archive_mode is off"})
    finally:
        close_sessions(ctx.resources)
