"""The kinds that keep state between runs: sql.blocking (root blocker history), sql.plans (regressions with
before/after) and sql.settings (drift), fed with rows across runs and a clock the test moves."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from checks.result import Status
from checks.sql.blocking import Episode, SqlBlocking, forest_of
from checks.sql.maintenance import MaintenanceSessions, Remembered, session_filter
from checks.sql.plans import SqlPlans
from checks.sql.rows import Rows, ServerInfo
from checks.sql.settings import SqlSettings

PG = ServerInfo("postgres", "postgres", (15, 20))
BLOCK_COLUMNS = ["session_id", "blocked_by", "wait_seconds", "session_start", "application", "username", "client",
                 "state", "query"]


def blocking(**kw: Any) -> SqlBlocking:
    base: dict[str, Any] = {"id": "pg.blocking", "target": "db", "query": {"postgres": "SELECT 1 AS session_id"},
                            "warn": "> 60", "crit": "> 120"}
    return SqlBlocking.model_validate({**base, **kw})


def chain(wait: float, *, root: int = 100, start: str = "1700000000") -> Rows:
    """Session 100 (idle in transaction) blocks 200 and 201; 300 waits behind 200."""
    return Rows(columns=BLOCK_COLUMNS, rows=[
        (root, None, None, start, "HIS-cashier", "his", "10.1.2.3", "idle in transaction",
         "UPDATE fee SET paid = 1 WHERE patient = '张三'"),
        (200, root, Decimal(str(wait)), "1700000100", "HIS-nurse", "his", "10.1.2.4", "active", "UPDATE fee ..."),
        (201, root, Decimal(str(wait / 2)), "1700000200", "HIS-reg", "his", "10.1.2.5", "active", None),
        (300, 200, Decimal("3"), "1700000300", "LIS", "lis", "10.1.3.1", "active", None),
        (root, None, None, start, None, None, None, None, None),  # a blocker listed again (UNION of both sides)
    ])


def test_forest_finds_the_root_and_everyone_behind_it() -> None:
    roots = forest_of(chain(40)).roots()
    assert roots == {"100": {"200", "201", "300"}}


def test_a_session_waiting_on_two_blockers_is_a_victim_of_both_roots() -> None:
    rows = Rows(columns=["session_id", "blocked_by", "wait_seconds"],
                rows=[(1, None, None), (2, None, None), (3, 1, 5), (3, 2, 5), (4, 3, 1)])
    assert forest_of(rows).roots() == {"1": {"3", "4"}, "2": {"3", "4"}}


def test_a_deadlock_cycle_has_no_root_to_blame() -> None:
    rows = Rows(columns=["session_id", "blocked_by", "wait_seconds"], rows=[(1, 2, 1), (2, 1, 1)])
    assert forest_of(rows).roots() == {}


def test_one_finding_per_root_blocker_across_runs_and_once_more_when_it_ends() -> None:
    spec = blocking()
    episodes: dict[str, Episode] = {}
    early = spec.track(chain(10), PG, episodes, 1000.0)[0]
    assert early.findings == [] and early.status == Status.OK, "not yet blocking for min_duration (30 s)"
    fingerprints = set()
    for t, wait in ((1060.0, 70), (1120.0, 130)):
        (r,) = spec.track(chain(wait), PG, episodes, t)
        (f,) = r.findings
        fingerprints.add(f.fingerprint)
    assert fingerprints == {"pg.blocking:100@1700000000"}
    assert r.status == Status.CRITICAL and r.value == 130
    assert f.attributes["application"] == "HIS-cashier" and f.attributes["ended"] == "no"
    assert f.evidence["most_blocked_at_once"] == 3 and f.evidence["duration_seconds"] == 130
    assert "张三" not in f.sql_text and f.sql_text.startswith("UPDATE fee SET paid = ?")
    (gone,) = spec.track(Rows(columns=BLOCK_COLUMNS, rows=[]), PG, episodes, 1180.0)
    (last,) = gone.findings
    assert last.fingerprint == "pg.blocking:100@1700000000" and last.attributes["ended"] == "yes"
    assert last.evidence["ended"] == 1.0 and "(ended)" in last.title
    assert gone.status == Status.OK and "1 blocking episode(s) ended" in gone.summary
    assert spec.track(Rows(columns=BLOCK_COLUMNS, rows=[]), PG, episodes, 1240.0)[0].findings == []


def test_a_reused_session_id_is_a_new_episode() -> None:
    spec = blocking(min_duration="0s")
    episodes: dict[str, Episode] = {}
    first = spec.track(chain(40, start="1700000000"), PG, episodes, 0.0)[0].findings
    second = spec.track(chain(40, start="1700009999"), PG, episodes, 60.0)[0].findings
    assert {f.fingerprint for f in second} == {"pg.blocking:100@1700009999", first[0].fingerprint}


def test_chains_headed_by_a_maintenance_session_are_left_out() -> None:
    rows = chain(200)
    dump = Rows(columns=rows.columns, rows=[(100, None, None, "1700000000", "pg_dump", "backup", "127.0.0.1", "active",
                                             "COPY public.fee TO stdout"), *rows.rows[1:4]])
    spec = blocking()
    kept, reasons = spec.leave_out(dump, session_filter("postgres", None), Remembered({}, 0.0))
    assert kept.rows == [] and reasons == ["application pg_dump"]
    site = MaintenanceSessions(applications=("nightly-*",), builtin=False)
    kept, reasons = spec.leave_out(dump, session_filter("postgres", site), Remembered({}, 0.0))
    assert len(kept.rows) == 4 and reasons == [], "builtin: false, and the site's own pattern does not match"


def test_a_session_once_seen_as_maintenance_stays_so() -> None:
    """mysqldump --single-transaction between two tables runs nothing that names it."""
    which = session_filter("mysql", None)
    memory = Remembered({}, 0.0)
    dumping = {"session_id": 42, "session_start": "trx9", "query": "SELECT /*!40001 SQL_NO_CACHE */ * FROM `his`.`fee`"}
    assert memory.judge(dumping, which) == "query pattern"
    idle = {"session_id": 42, "session_start": "trx9", "query": None}
    assert memory.judge(idle, which) == "seen as maintenance earlier"
    assert memory.judge({"session_id": 42, "session_start": "trx10", "query": None}, which) is None
    memory.now = 2 * 86400.0
    memory.forget_old()
    assert memory.seen == {}


def plans(**kw: Any) -> SqlPlans:
    base: dict[str, Any] = {"id": "t.plans", "target": "db", "query": {"postgres": "SELECT 1 AS statement"},
                            "warn": "> 0"}
    return SqlPlans.model_validate({**base, **kw})


PLAN_COLUMNS = ["statement", "plan", "executions", "total_ms", "query"]


def plan_rows(*data: tuple[Any, ...]) -> Rows:
    return Rows(columns=PLAN_COLUMNS, rows=list(data))


def test_a_slower_new_plan_is_a_regression_with_before_and_after_until_it_recovers() -> None:
    spec = plans()
    data: dict[str, Any] = {}
    first = spec.track(plan_rows(("q1", "111", 1000, 5000, "SELECT * FROM t WHERE id = 42")), PG, data, 0.0)
    assert first[0].findings == [] and "baseline of 1 statements" in first[0].summary
    (r,) = spec.track(plan_rows(("q1", "111", 1000, 5000, None), ("q1", "222", 50, 2500, None)), PG, data, 900.0)
    (f,) = r.findings
    assert r.status == Status.WARNING
    assert f.fingerprint == "t.plans:q1:222" and f.attributes["kind"] == "plan change"
    assert (f.evidence["before_ms"], f.evidence["after_ms"], f.evidence["ratio"]) == (5.0, 50.0, 10.0)
    assert f.sql_text == "SELECT * FROM t WHERE id = ?"
    (still,) = spec.track(plan_rows(("q1", "111", 1000, 5000, None), ("q1", "222", 100, 5000, None)), PG, data, 1800.0)
    assert [x.fingerprint for x in still.findings] == ["t.plans:q1:222"]
    (fixed,) = spec.track(plan_rows(("q1", "111", 1100, 5500, None), ("q1", "222", 100, 5000, None)), PG, data, 2700.0)
    assert fixed.findings == [] and fixed.status == Status.OK


def test_a_mean_time_jump_on_the_same_plan_and_a_counter_reset() -> None:
    spec = plans(factor=3)
    data: dict[str, Any] = {}
    spec.track(plan_rows(("db:7", "", 10_000, 20_000, "SELECT $1")), PG, data, 0.0)
    (quiet,) = spec.track(plan_rows(("db:7", "", 10_100, 20_210, None)), PG, data, 900.0)
    assert quiet.findings == []
    (jump,) = spec.track(plan_rows(("db:7", "", 10_200, 22_210, None)), PG, data, 1800.0)
    (f,) = jump.findings
    assert f.fingerprint == "t.plans:db:7" and f.attributes["kind"] == "mean time jump"
    assert f.evidence["after_ms"] == 20.0
    data.clear()
    spec.track(plan_rows(("db:7", "", 10_200, 22_210, None)), PG, data, 0.0)
    (after_reset,) = spec.track(plan_rows(("db:7", "", 50, 100, None)), PG, data, 900.0)
    assert after_reset.findings == [], "pg_stat_statements_reset(): 2 ms each is not slower"


def test_a_persisting_regression_becomes_the_baseline_after_report_for() -> None:
    spec = plans(report_for="1h")
    data: dict[str, Any] = {}
    spec.track(plan_rows(("q1", "1", 1000, 5000, None)), PG, data, 0.0)
    for i, t in enumerate((900.0, 1800.0, 2700.0, 3600.0, 4500.0)):
        (r,) = spec.track(plan_rows(("q1", "1", 1000, 5000, None), ("q1", "2", 100 * (i + 1), 5000 * (i + 1), None)),
                          PG, data, t)
    assert r.findings == [] and data["statements"]["q1"]["baseline"]["plan"] == "2"


def settings(**kw: Any) -> SqlSettings:
    base: dict[str, Any] = {"id": "pg.settings", "target": "db", "query": {"postgres": "SELECT 1 AS name"},
                            "warn": "> 0", "ignore": ["transaction_read_only"]}
    return SqlSettings.model_validate({**base, **kw})


def setting_rows(**values: str | None) -> Rows:
    return Rows(columns=["name", "value"], rows=list(values.items()))


def test_each_changed_setting_is_a_finding_for_report_for() -> None:
    spec = settings(report_for="1h")
    data: dict[str, Any] = {}
    first = spec.compare(setting_rows(work_mem="4096 kB", fsync="on", transaction_read_only="on"), data, 0.0)
    assert "snapshot of 2 settings" in first[0].summary and first[0].findings == []
    (r,) = spec.compare(setting_rows(work_mem="65536 kB", fsync="on", jit="off", transaction_read_only="off"),
                        data, 600.0)
    titles = sorted(f.title for f in r.findings)
    assert titles == ["Setting jit appeared: (absent) -> off", "Setting work_mem changed: 4096 kB -> 65536 kB"]
    assert r.status == Status.WARNING and r.value == 2
    work_mem = next(f for f in r.findings if f.object == "work_mem")
    assert work_mem.fingerprint == "pg.settings:changed:work_mem=65536 kB"
    assert work_mem.attributes["before"] == "4096 kB" and work_mem.attributes["after"] == "65536 kB"
    (later,) = spec.compare(setting_rows(work_mem="65536 kB", fsync="on", jit="off"), data, 1200.0)
    assert len(later.findings) == 2, "still reported within report_for"
    (gone,) = spec.compare(setting_rows(work_mem="65536 kB", fsync="on", jit="off"), data, 4300.0)
    assert gone.findings == [] and gone.status == Status.OK


def test_settings_need_name_and_value_columns() -> None:
    (r,) = settings().compare(Rows(columns=["setting"], rows=[("x",)]), {}, 0.0)
    assert r.status == Status.UNKNOWN and "name and value" in r.summary


@pytest.mark.parametrize("row", [{"application": "PG_DUMP"}, {"program": "rman@hisdb (TNS V1-V3)"},
                                 {"command": "BACKUP DATABASE"}, {"query": "  BACKUP LOG [HISDB] TO DISK = N'x'"}])
def test_builtin_maintenance_patterns(row: dict[str, str]) -> None:
    which = {"application": "postgres", "program": "oracle", "command": "mssql", "query": "mssql"}[next(iter(row))]
    assert session_filter(which, None).matches(row) is not None
