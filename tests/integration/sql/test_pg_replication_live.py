"""A throwaway PostgreSQL primary and its streaming standby (made with pg_basebackup), started by this module:
the outages and the night-time noise the packs must get right, live.

- a healthy pair: the primary sees its standby, the standby streams, the base backup's age is known;
- a changed setting is a drift finding, and the standby (declared replica_of the primary) reports it differs;
- a long pg_dump is no long-query alarm, while a real long query still is;
- REINDEX CONCURRENTLY in progress is no invalid-index alarm;
- a hung archive_command is CRITICAL although no archive attempt ever failed;
- the primary stopped: one CRITICAL reachability result with the agent's other checks UNKNOWN behind it (real
  agent, scripted collector: the Hello names the parent), and the standby's replica checks go CRITICAL.

The tests run in file order on one pair (module fixture); the last ones stop the primary.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agent.config import load_agent_config
from agent.daemon import AgentDaemon
from agent.runner import run_once
from checks.context import RunContext
from checks.pack import PackRef, load_checks
from checks.result import Outcome, Result, Status
from checks.sql.target import Target
from protos import patrol_pb2
from tests.integration.agent.scripted_collector import ScriptedCollector
from tests.integration.sql.conftest import Background, pack_check, targets_context, wait_for
from tests.integration.sql.throwaway import PgCluster, give, scratch

pytestmark = pytest.mark.integration

ARCHIVE_SCRIPT = """#!/bin/sh
# A copy to the archive directory that hangs while the flag file exists (an NFS mount that stopped answering).
while [ -e {flag} ]; do sleep 0.2; done
cp "$1" {archive}/"$2"
"""


@dataclass
class Pair:
    work: Path
    primary: PgCluster
    standby: PgCluster
    hang_flag: Path

    def targets(self) -> dict[str, Target]:
        return {
            "pri": Target.model_validate({"name": "pri", "dialect": "postgres", "host": "127.0.0.1",
                                          "port": self.primary.port, "user": "postgres", "database": "postgres"}),
            "sby": Target.model_validate({"name": "sby", "dialect": "postgres", "host": "127.0.0.1",
                                          "port": self.standby.port, "user": "postgres", "database": "postgres",
                                          "replica_of": "pri"}),
        }

    def admin(self, cluster: PgCluster) -> psycopg.Connection[Any]:
        return psycopg.connect(**cluster.conninfo(), autocommit=True)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    work = scratch()
    archive = work / "archive"
    archive.mkdir()
    give(archive)
    flag = work / "archive-hangs"
    script = work / "archive.sh"
    script.write_text(ARCHIVE_SCRIPT.format(flag=flag, archive=archive), encoding="utf-8")
    script.chmod(0o755)
    give(script)
    primary = PgCluster(work, "primary", ("wal_level=replica", "max_wal_senders=5", "archive_mode=on",
                                          f"archive_command='{script} %p %f'"))
    standby = PgCluster(work, "standby", ("hot_standby=on", "wal_retrieve_retry_interval=1s"))
    try:
        primary.initdb().start()
        primary.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                    "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast")
        standby.start()
        p = Pair(work, primary, standby, flag)
        with p.admin(primary) as admin:
            wait_for(lambda: admin.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
                     .fetchone() == (1,), "the standby to stream", timeout=30)
        yield p
    finally:
        flag.unlink(missing_ok=True)
        standby.stop("immediate")
        primary.stop("immediate")
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def ctx(pair: Pair, tmp_path: Path) -> Iterator[RunContext]:
    with targets_context(dict(pair.targets()), tmp_path / "state") as context:
        yield context


def check(ctx: RunContext, target: str, check_id: str, overrides: dict[str, dict[str, Any]] | None = None) -> list[Result]:
    return pack_check(ctx, "postgres", target, check_id, overrides)


def test_a_healthy_pair(pair: Pair, ctx: RunContext) -> None:
    (lag,) = check(ctx, "pri", "pg.replication.lag")
    assert lag.status == Status.OK and lag.key.endswith("@127.0.0.1") and lag.metrics["streaming"] == 1
    (receiver,) = check(ctx, "sby", "pg.replication.receiver")
    assert (receiver.status, receiver.value) == (Status.OK, 0)
    (delay,) = check(ctx, "sby", "pg.replication.replay_delay")
    assert delay.status == Status.OK
    assert check(ctx, "pri", "pg.replication.receiver")[0].summary.endswith("not a streaming standby")
    (backup,) = check(ctx, "pri", "pg.backup.age")
    assert backup.outcome == Outcome.OK and backup.value is not None and 0 <= backup.value < 600, backup.summary
    assert backup.status == Status.OK, "pg_basebackup made the standby a minute ago"


def test_a_changed_setting_is_a_drift_finding_and_a_difference_on_the_standby(pair: Pair, ctx: RunContext) -> None:
    (first,) = check(ctx, "pri", "pg.settings")
    assert "snapshot of" in first.summary and not first.findings
    with pair.admin(pair.primary) as admin:
        admin.execute("ALTER SYSTEM SET work_mem = '64MB'")
        admin.execute("SELECT pg_reload_conf()")
    try:
        deadline = time.monotonic() + 15
        changed: list[Any] = []
        while not changed and time.monotonic() < deadline:
            (run,) = check(ctx, "pri", "pg.settings")
            changed = [f for f in run.findings if f.object == "work_mem"]
            time.sleep(0.2)
        (finding,) = changed
        assert finding.title == "Setting work_mem changed: 4096 kB -> 65536 kB"
        assert run.status == Status.WARNING
        (standby,) = check(ctx, "sby", "pg.settings")
        differs = {f.object: f for f in standby.findings if f.fingerprint.startswith("pg.settings:differs:")}
        assert differs["work_mem"].title == "Setting work_mem differs from primary pri: 4096 kB here, 65536 kB there"
        assert "primary_conninfo" not in differs and "port" not in differs, "differ by design (replica_ignore)"
    finally:
        with pair.admin(pair.primary) as admin:
            admin.execute("ALTER SYSTEM RESET work_mem")
            admin.execute("SELECT pg_reload_conf()")


def test_a_long_pg_dump_is_not_a_long_query(pair: Pair, ctx: RunContext) -> None:
    with pair.admin(pair.primary) as admin:
        admin.execute("CREATE TABLE IF NOT EXISTS visit_archive AS "
                      "SELECT g AS id, repeat('x', 200) AS note FROM generate_series(1, 100000) g")
        # pg_dump writes into a pipe nobody reads: its COPY stays active on the server, as a big dump does.
        dump = subprocess.Popen([*pair.primary.prefix, str(pair.primary.bindir / "pg_dump"), "-h", "127.0.0.1",
                                 "-p", str(pair.primary.port), "-U", "postgres", "-t", "visit_archive", "postgres"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        sleeper = psycopg.connect(**pair.primary.conninfo(), autocommit=True,  # type: ignore[arg-type]
                                  application_name="HIS-report")
        slow = Background(lambda: sleeper.execute("SELECT pg_sleep(20)"))
        try:
            wait_for(lambda: admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name IN ('pg_dump', 'HIS-report') "
                "AND state = 'active' AND now() - query_start > interval '1.5 seconds'").fetchone() == (2,),
                "pg_dump's COPY and the report query to run for a while")
            over_a_second = {"pg.long_queries": {"warn": "> 1", "crit": "> 600"}}
            (r,) = check(ctx, "pri", "pg.long_queries", over_a_second)
            assert r.status == Status.WARNING and "application HIS-report" in r.summary, r.summary
            assert "1 maintenance session left out: application pg_dump" in r.summary
            admin.execute("SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'HIS-report'")
            slow.join()
            (quiet,) = check(ctx, "pri", "pg.long_queries", over_a_second)
            assert quiet.status == Status.OK and "application pg_dump" in quiet.summary, quiet.summary
        finally:
            dump.kill()
            dump.wait()
            assert dump.stdout is not None
            dump.stdout.close()
            sleeper.close()


def test_reindex_concurrently_in_progress_is_not_an_invalid_index(pair: Pair, ctx: RunContext) -> None:
    with pair.admin(pair.primary) as admin:
        admin.execute("CREATE TABLE IF NOT EXISTS lab_order (id int, code text)")
        admin.execute("INSERT INTO lab_order SELECT g, 'c' || g FROM generate_series(1, 20000) g")
        admin.execute("CREATE INDEX IF NOT EXISTS lab_order_code ON lab_order (code)")
        old_snapshot = psycopg.connect(**pair.primary.conninfo())  # type: ignore[arg-type]
        old_snapshot.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        old_snapshot.execute("SELECT 1").fetchone()  # a transaction with a snapshot REINDEX must wait out
        rebuilder = psycopg.connect(**pair.primary.conninfo(), autocommit=True)  # type: ignore[arg-type]
        rebuild = Background(lambda: rebuilder.execute("REINDEX INDEX CONCURRENTLY lab_order_code"))
        try:
            wait_for(lambda: admin.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone() == (1,)
                     and admin.execute("SELECT count(*) FROM pg_stat_progress_create_index").fetchone() == (1,),
                     "REINDEX CONCURRENTLY to wait with its new index not yet valid")
            (r,) = check(ctx, "pri", "pg.invalid_indexes")
            assert r.status == Status.OK and not r.findings, r.summary
        finally:
            old_snapshot.rollback()
            old_snapshot.close()
            rebuild.join()
            rebuilder.close()
        assert rebuild.error is None
        (after,) = check(ctx, "pri", "pg.invalid_indexes")
        assert after.status == Status.OK


def test_a_hung_archive_command_is_critical(pair: Pair, ctx: RunContext) -> None:
    pair.hang_flag.touch()
    try:
        with pair.admin(pair.primary) as admin:
            admin.execute("CREATE TABLE IF NOT EXISTS wal_filler AS SELECT generate_series(1, 1000) AS n")
            admin.execute("SELECT pg_switch_wal()")
            # the archiver is now stuck in archive_command: the segment's .ready file stays
            time.sleep(2.5)
            fast = {"pg.wal_archive_backlog": {"warn": "> 1", "crit": "> 2"}}
            (backlog,) = check(ctx, "pri", "pg.wal_archive_backlog", fast)
            assert backlog.status == Status.CRITICAL and backlog.metrics["ready_segments"] >= 1, backlog.summary
            (failing,) = check(ctx, "pri", "pg.wal_archiving")
            assert failing.status == Status.OK, "no attempt failed: the failure-based check alone would miss this"
    finally:
        pair.hang_flag.unlink(missing_ok=True)
    wait_for(lambda: check(ctx, "pri", "pg.wal_archive_backlog")[0].value == 0, "the archiver to catch up", timeout=30)


AGENT_PACK = """\
pack: his-db-site
defaults: {target: pri, interval: 500ms, timeout: 3s}
checks:
  - {id: his.db.up, kind: sql.reachable, for: 0s}
  - id: his.db.sessions
    kind: sql.metric
    query: {postgres: "SELECT count(*) AS value FROM pg_stat_activity"}
    for: 5m
  - id: his.db.locks
    kind: sql.metric
    query: {postgres: "SELECT count(*) AS value FROM pg_locks"}
"""


def test_the_primary_stopped_is_one_critical_with_the_agents_other_checks_behind_it(pair: Pair, tmp_path: Path) -> None:
    """A real agent streams to a scripted collector; the database goes down under it."""
    (tmp_path / "site.yaml").write_text(AGENT_PACK, encoding="utf-8")
    config = tmp_path / "agent.yaml"
    collector = ScriptedCollector().start()
    config.write_text(
        f'agent: {{id: db-host}}\ncollector:\n  addresses: ["{collector.address}"]\n  batch_wait: 20ms\n'
        "  tls: {mode: insecure}\n"
        "spool: {path: data/spool.db}\npacks: [site.yaml]\n"
        f"targets:\n  pri: {{dialect: postgres, host: 127.0.0.1, port: {pair.primary.port}, user: postgres, "
        "database: postgres}\n", encoding="utf-8")
    daemon = AgentDaemon(load_agent_config(config))

    def latest() -> dict[str, patrol_pb2.Result]:
        with collector.lock:
            return {r.check_id: r for _, r in sorted(collector.stored.items())}

    try:
        daemon.start()
        assert collector.wait_for(lambda: len(latest()) == 3 and all(r.status == patrol_pb2.OK
                                                                     for r in latest().values()), 20)
        infos = {c.id: c for c in collector.hellos[0].checks}
        assert (infos["his.db.up"].parent, infos["his.db.up"].for_s) == ("", 0)
        assert (infos["his.db.sessions"].parent, infos["his.db.sessions"].for_s) == ("his.db.up", 300)
        assert infos["his.db.locks"].parent == "his.db.up"
        seen = max(collector.stored)
        pair.primary.stop("fast")

        def down() -> bool:
            with collector.lock:
                after = {r.check_id: r for s, r in sorted(collector.stored.items()) if s > seen}
            return after.get("his.db.up", patrol_pb2.Result()).status == patrol_pb2.CRITICAL and all(
                after.get(c, patrol_pb2.Result()).status == patrol_pb2.UNKNOWN for c in ("his.db.sessions", "his.db.locks"))

        assert collector.wait_for(down, 20)
        now = latest()
        assert now["his.db.up"].outcome == "connection_refused"
        assert "pri cannot be reached (connection_refused)" in now["his.db.up"].summary
        for behind in ("his.db.sessions", "his.db.locks"):
            assert now[behind].outcome == "connection_refused"
            assert "unreachable: see his.db.up" in now[behind].summary
    finally:
        daemon.stop()
        collector.stop()


def test_the_builtin_pack_on_a_stopped_server_is_exactly_one_critical(pair: Pair, ctx: RunContext) -> None:
    specs = load_checks([PackRef("builtin:postgres", "pri")]).enabled()
    results = run_once(specs, ctx, concurrency=4)
    critical = [(r.check_id, r.outcome) for r in results if r.status == Status.CRITICAL]
    assert critical == [("pg.reachable", Outcome.CONNECTION_REFUSED)]
    others = [r for r in results if r.check_id != "pg.reachable"]
    assert others and all(r.status == Status.UNKNOWN for r in others)
    assert all(s.parent == "pg.reachable" for s in specs if s.id != "pg.reachable")


def test_the_standby_that_lost_its_primary_is_critical(pair: Pair, ctx: RunContext) -> None:
    deadline = time.monotonic() + 30
    receiver: Result | None = None
    while time.monotonic() < deadline:
        (receiver,) = check(ctx, "sby", "pg.replication.receiver")
        if receiver.status == Status.CRITICAL:
            break
        time.sleep(0.5)
    assert receiver is not None and receiver.status == Status.CRITICAL, receiver.summary if receiver else ""
    (delay,) = check(ctx, "sby", "pg.replication.replay_delay")
    assert delay.value is not None and delay.value > 0, "no longer reads 0 with nothing arriving"
    (reachable,) = check(ctx, "sby", "pg.reachable")
    assert reachable.status == Status.OK, "the standby itself is up"
