"""sql.metric's options for sessions and counters: aggregate max with attribution, value_map, detail columns
with quoted parts masked, deltas over a window, rates per day, ratios of two counters' increases."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from checks.context import RunContext
from checks.result import Status
from checks.sql.kinds import SqlMetric
from checks.sql.rows import Rows, ServerInfo

MARIADB = ServerInfo("mysql", "mariadb", (10, 11, 19))
PG = ServerInfo("postgres", "postgres", (15, 20))


def metric(**kw: Any) -> SqlMetric:
    base: dict[str, Any] = {"id": "t.m", "target": "db", "query": {"postgres": "SELECT 1 AS value"}}
    return SqlMetric.model_validate({**base, **kw})


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def readings(spec: SqlMetric, series: list[list[tuple[Any, ...]]], columns: list[str], step: float) -> list[Any]:
    """Feed successive readings through evaluate + finish with a clock moving `step` seconds; the last results."""
    clock = Clock()
    ctx = RunContext(clock=clock)
    results: list[Any] = []
    for data in series:
        results = spec.finish(spec.evaluate(Rows(columns=columns, rows=data), PG), ctx)
        clock.now += step
    return results


def test_aggregate_max_names_the_worst_session() -> None:
    spec = metric(aggregate="max", unit="seconds", warn="> 120", crit="> 300")
    data = Rows(columns=["value", "session_id", "application", "username", "client", "query"],
                rows=[(Decimal("35.2"), 811, "HIS-web", "his", "10.1.2.3", "SELECT 1"),
                      (Decimal("400.5"), 4711, "report-tool", "rep", "10.1.9.9", "SELECT * FROM fee WHERE id = 7"),
                      (None, 12, "x", "y", "z", None)])
    (r,) = spec.evaluate(data, PG)
    assert r.value == pytest.approx(400.5) and r.status == Status.CRITICAL
    assert "session 4711, application report-tool, user rep, client 10.1.9.9; 3 in all" in r.summary
    assert "fee" not in r.summary, "the statement text never goes into a summary"
    assert r.metrics == {"count": 3.0}


def test_aggregate_max_of_nothing_is_zero() -> None:
    (r,) = metric(aggregate="max", warn="> 1").evaluate(Rows(columns=["value", "session_id"], rows=[]), PG)
    assert (r.value, r.status) == (0.0, Status.OK)


def test_value_map_and_detail_columns_mask_quoted_parts() -> None:
    spec = metric(key_column="connection_name", value_column=["replica_io_running", "slave_io_running"],
                  value_map={"Yes": 0, "Connecting": 1, "No": 2}, detail_columns=["last_io_error", "last_io_errno"],
                  warn=">= 1", crit=">= 2", if_null="critical")
    data = Rows(columns=["connection_name", "slave_io_running", "last_io_errno", "last_io_error"],
                rows=[("", "No", 2003, "error connecting to master 'repl@10.0.0.1:3306' - retry-time: 60"),
                      ("lis", "Yes", 0, ""), ("pacs", "connecting", 0, ""), ("old", "Maybe", 0, "")])
    by_key = {r.key: r for r in spec.evaluate(data, MARIADB)}
    assert by_key[""].status == Status.CRITICAL
    assert "last_io_error: error connecting to master ? - retry-time: 60; last_io_errno: 2003" in by_key[""].summary
    assert "10.0.0.1" not in by_key[""].summary
    assert by_key["lis"].status == Status.OK and "last_io" not in by_key["lis"].summary
    assert by_key["pacs"].status == Status.WARNING
    assert by_key["old"].status == Status.CRITICAL and by_key["old"].value is None, "unmapped text is NULL"


def test_delta_window_counts_the_last_day_and_survives_a_restart_of_the_counter() -> None:
    spec = metric(delta="increase", delta_window="1d", warn="> 10")
    # every 6 h: 100, 104, 2 (server restarted: counts from zero), 9, then a quiet day
    series = [[(100,)], [(104,)], [(2,)], [(9,)]]
    (r,) = readings(spec, series, ["value"], 6 * 3600)
    assert r.value == 4 + 2 + 7 and r.status == Status.WARNING
    assert "in 18h (window 1d filling)" in r.summary
    (r,) = readings(spec, [*series, [(9,)], [(9,)], [(9,)], [(9,)]], ["value"], 6 * 3600)
    assert r.value == 0 and r.status == Status.OK and "in the last 1d" in r.summary


def test_rate_per_day() -> None:
    (r,) = readings(metric(delta="per_day", warn="> 10"), [[(0,)], [(3,)]], ["value"], 3600)
    assert r.value == pytest.approx(72.0) and r.status == Status.WARNING and "/day" in r.summary


def test_ratio_of_two_counters_increases() -> None:
    """On-disk temporary tables: since start 20 % (a bad month long ago), in the last interval 2 of 400."""
    spec = metric(delta="increase", ratio={"numerator": "disk", "denominator": "total", "min_denominator": 100},
                  unit="percent", warn="> 1", crit="> 5")
    (r,) = readings(spec, [[(20_000, 100_000)], [(20_002, 100_400)]], ["disk", "total"], 900)
    assert r.value == pytest.approx(0.5) and r.status == Status.OK
    assert "(2 of 400 since last run)" in r.summary
    (r,) = readings(spec, [[(20_000, 100_000)], [(20_030, 100_050)]], ["disk", "total"], 900)
    assert r.value is None and r.status == Status.OK and "too few to judge" in r.summary
    (r,) = readings(spec, [[(20_000, 100_000)], [(20_040, 100_400)]], ["disk", "total"], 900)
    assert r.value == pytest.approx(10.0) and r.status == Status.CRITICAL


@pytest.mark.parametrize(("options", "message"), [
    ({"delta_window": "1h"}, "delta_window and ratio need delta"),
    ({"delta": "per_second", "ratio": {"numerator": "a", "denominator": "b"}}, "use delta: increase"),
    ({"aggregate": "max", "delta": "increase"}, "cannot be combined with delta"),
])
def test_option_combinations_that_make_no_sense_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        metric(**options)
