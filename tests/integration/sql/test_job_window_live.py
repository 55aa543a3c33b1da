"""job.window against live servers: a vendor job-log table on PostgreSQL and MariaDB (both drivers), and
pg_cron's own tables on a throwaway PostgreSQL cluster with the extension preloaded.

The window is placed around the server's clock as read by the test, so each job's rows fall where the
scenario needs them whatever the time of day the suite runs.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from typing import Any

import psycopg
import pymysql
import pytest

from checks.context import RunContext
from checks.jobs.kind import JobWindowSpec
from checks.result import Outcome, Status
from checks.sql.session import close_sessions
from checks.sql.target import Target
from tests.conftest import require
from tests.integration.sql.conftest import my_target, pg_target
from tests.integration.sql.throwaway import postgres_cluster

pytestmark = pytest.mark.integration


def minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def window_around(now: dt.datetime) -> tuple[dict[str, str], dt.datetime]:
    """A window that started three hours ago and whose deadline passed an hour ago; its start."""
    start = minute(now) - dt.timedelta(hours=3)
    return ({"start": f"{start:%H:%M}", "end": f"{start + dt.timedelta(hours=1):%H:%M}",
             "finish_by": f"{start + dt.timedelta(hours=2):%H:%M}"}, start)


def scenario_rows(start: dt.datetime) -> list[tuple[str, dt.datetime, dt.datetime | None, str]]:
    """(job, started, finished, status) for each outcome, times relative to the window's start."""
    m = dt.timedelta(minutes=1)
    return [
        ("ok_job", start + 5 * m, start + 50 * m, "SUCCESS"),
        ("failed_job", start + 5 * m, start + 6 * m, "FAILED"),
        ("failed_job", start + 20 * m, start + 21 * m, "FAILED"),
        ("running_job", start + 10 * m, None, "RUNNING"),
        ("late_job", start + 30 * m, start + 150 * m, "SUCCESS"),
        ("missed_job", start - dt.timedelta(days=1), start - dt.timedelta(days=1) + 10 * m, "SUCCESS"),
    ]


EXPECTED = {"ok_job": (Outcome.OK, Status.OK), "failed_job": (Outcome.FAILED, Status.CRITICAL),
            "running_job": (Outcome.STILL_RUNNING, Status.CRITICAL), "late_job": (Outcome.TOO_LONG, Status.WARNING),
            "missed_job": (Outcome.MISSED, Status.CRITICAL)}


def run_job(ctx: RunContext, target: Target, job: str, window: dict[str, str], log_table: str, **extra: Any) -> Any:
    ctx.targets = {target.name: target}
    spec = JobWindowSpec.model_validate({
        "id": f"his.jobs.{job}", "kind": "job.window", "target": target.name, "source": "table", "job": job,
        "window": window, "log": {"table": log_table, "job_column": "job_name", "start_column": "started_at",
                                  "end_column": "finished_at", "status_column": "status"}, **extra})
    [result] = spec.probe(ctx)
    return result


@pytest.fixture
def pg_log(pg_admin: psycopg.Connection[Any], pg_schema: str) -> tuple[str, dict[str, str]]:
    now = pg_admin.execute("SELECT LOCALTIMESTAMP").fetchone()[0]  # type: ignore[index]
    window, start = window_around(now)
    pg_admin.execute(f"CREATE TABLE {pg_schema}.job_log (id serial PRIMARY KEY, job_name text NOT NULL, "
                     "started_at timestamptz NOT NULL, finished_at timestamptz, status varchar(20))")
    with pg_admin.cursor() as cur:
        cur.executemany(f"INSERT INTO {pg_schema}.job_log (job_name, started_at, finished_at, status) "
                        "VALUES (%s, %s::timestamp, %s::timestamp, %s)", scenario_rows(start))
    return f"{pg_schema}.job_log", window


def test_every_outcome_from_a_job_log_on_postgres(pg_log: tuple[str, dict[str, str]], driver: str, ctx: RunContext) -> None:
    log_table, window = pg_log
    target = pg_target(driver, allow={"reviewed_by": "test", "relations": [log_table]})
    for job, (outcome, status) in EXPECTED.items():
        result = run_job(ctx, target, job, window, log_table)
        assert (result.outcome, result.status) == (outcome, status), result.summary
    ok = run_job(ctx, target, "ok_job", window, log_table)
    assert ok.value == 45 * 60 and ok.metrics["start_delay_seconds"] == 300
    too_long_by_crit = run_job(ctx, target, "ok_job", window, log_table, crit="> 30m")
    assert (too_long_by_crit.outcome, too_long_by_crit.status) == (Outcome.TOO_LONG, Status.CRITICAL)


def test_the_log_table_must_be_a_site_exception(pg_log: tuple[str, dict[str, str]], ctx: RunContext) -> None:
    log_table, window = pg_log
    result = run_job(ctx, pg_target("native"), "ok_job", window, log_table)
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.PERMISSION_DENIED)
    assert f"not on the read-only allow-list: {log_table}" in result.summary


@pytest.fixture
def my_log(my_admin: pymysql.connections.Connection) -> Iterator[tuple[str, dict[str, str]]]:
    db = f"xj_test_{secrets.token_hex(4)}"
    with my_admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {db}")
        try:
            cur.execute("SELECT NOW()")
            window, start = window_around(cur.fetchone()[0])
            cur.execute(f"CREATE TABLE {db}.JobLog (id int AUTO_INCREMENT PRIMARY KEY, job_name varchar(40), "
                        "started_at datetime, finished_at datetime NULL, status varchar(20))")
            cur.executemany(f"INSERT INTO {db}.JobLog (job_name, started_at, finished_at, status) "
                            "VALUES (%s, %s, %s, %s)", scenario_rows(start))
            yield f"{db}.JobLog", window
        finally:
            cur.execute(f"DROP DATABASE {db}")


def test_every_outcome_from_a_job_log_on_mariadb(my_log: tuple[str, dict[str, str]], driver: str, ctx: RunContext) -> None:
    log_table, window = my_log
    target = my_target(driver, allow={"reviewed_by": "test", "relations": [log_table.split(".")[0] + ".*"]})
    for job, (outcome, status) in EXPECTED.items():
        result = run_job(ctx, target, job, window, log_table)
        assert (result.outcome, result.status) == (outcome, status), result.summary


def test_pg_cron_on_a_throwaway_cluster() -> None:
    require(bool(__import__("glob").glob("/usr/lib/postgresql/*/lib/pg_cron.so")),
            "pg_cron (apt: postgresql-NN-cron, installed by scripts/test-deps.sh)")
    with postgres_cluster("shared_preload_libraries=pg_cron", "cron.database_name=postgres") as port:
        admin = psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True)
        try:
            admin.execute("CREATE EXTENSION pg_cron")
            admin.execute("SELECT cron.schedule('year_db_migration', '0 1 * * *', 'SELECT 1')")
            admin.execute("SELECT cron.schedule('idle_job', '0 2 * * *', 'SELECT 1')")
            now = admin.execute("SELECT LOCALTIMESTAMP").fetchone()[0]  # type: ignore[index]
            window, start = window_around(now)
            jobid = admin.execute("SELECT jobid FROM cron.job WHERE jobname = 'year_db_migration'").fetchone()[0]  # type: ignore[index]

            def add_run(status: str, started: dt.datetime, ended: dt.datetime | None) -> None:
                admin.execute("INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command, "
                              "status, return_message, start_time, end_time) VALUES (%s, nextval('cron.runid_seq'), 1, "
                              "'postgres', 'postgres', 'SELECT 1', %s, '', %s::timestamp, %s::timestamp)",
                              (jobid, status, started, ended))

            target = Target.model_validate({"name": "cron_pg", "dialect": "postgres", "host": "127.0.0.1", "port": port,
                                            "user": "postgres", "database": "postgres",
                                            "allow": {"reviewed_by": "test", "relations": ["cron.*"]}})
            ctx = RunContext(targets={"cron_pg": target})

            def judge(job: str = "year_db_migration") -> Any:
                spec = JobWindowSpec.model_validate({"id": "his.cron", "kind": "job.window", "target": "cron_pg",
                                                     "source": "pg_cron", "job": job, "window": window})
                return spec.probe(ctx)[0]

            try:
                assert judge().outcome == Outcome.MISSED
                add_run("failed", start + dt.timedelta(minutes=1), start + dt.timedelta(minutes=2))
                assert judge().outcome == Outcome.FAILED
                add_run("running", start + dt.timedelta(minutes=10), None)
                assert judge().outcome == Outcome.STILL_RUNNING
                add_run("succeeded", start + dt.timedelta(minutes=20), start + dt.timedelta(minutes=40))
                ok = judge()
                assert (ok.outcome, ok.value) == (Outcome.OK, 1200.0), ok.summary
                admin.execute("SELECT cron.alter_job(%s, active := false)", (jobid,))
                assert judge().outcome == Outcome.DISABLED
                missing = judge("no_such_job")
                assert (missing.status, missing.outcome) == (Status.UNKNOWN, Outcome.NOT_FOUND)
            finally:
                close_sessions(ctx.resources)
        finally:
            admin.close()
