"""Every metric the collector exports is listed in docs/metrics.md with the same type, and vice versa."""

from __future__ import annotations

import re
import time
from pathlib import Path

from prometheus_client import generate_latest

from collector.events import AgentHello, CheckRule
from collector.exposition import generate_text
from collector.ingest import IngestStats
from collector.metrics import PatrolMetrics, build_registry
from collector.sqlstore import SqlStore
from collector.state import StateEngine
from collector.writer import CommitStats
from protos import patrol_pb2

CATALOGUE = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"
ROW = re.compile(r"^\| ([a-z_:][a-z0-9_:]*) \| (gauge|counter|histogram|summary) \|")


def catalogue() -> dict[str, str]:
    return {m.group(1): m.group(2) for line in CATALOGUE.read_text(encoding="utf-8").splitlines()
            if (m := ROW.match(line))}


def exported(text: str) -> dict[str, str]:
    return {parts[2]: parts[3] for line in text.splitlines() if (parts := line.split()) and line.startswith("# TYPE ")}


def scrape(engine: StateEngine, store: SqlStore) -> str:
    registry = build_registry(PatrolMetrics(engine, store, IngestStats(), CommitStats(), time.time))
    return generate_latest(registry).decode()


def populated_engine(store: SqlStore | None = None) -> StateEngine:
    """One agent with a CRITICAL disk (an incident opens); its effects committed to `store` when given."""
    engine = StateEngine()
    rules = [CheckRule("his.disk", kind="host.disk", system="HIS", priority="high"),
             CheckRule("pg.connections", target="lis_pg", kind="sql.metric", system="LIS", labels={"engine": "postgres"})]
    hello = AgentHello("a", "a", {}, [], "", "", 0, rules, 1.0)
    engine.hello(hello)
    effects = engine.apply_batch("a", [patrol_pb2.Result(seq=1, check_id="his.disk", key="/", status=2, value=97.0,
                                                         unit="percent", outcome="ok", duration_us=1500)], 2.0)
    if store is not None:
        with store.transaction() as tx:
            tx.write_hello(hello)
            tx.write_batch(effects)
    return engine


def test_every_exported_metric_is_in_the_catalogue(store: SqlStore) -> None:
    listed = catalogue()
    found = exported(scrape(populated_engine(store), store))
    unlisted = {name: kind for name, kind in found.items() if listed.get(name) != kind}
    assert unlisted == {}, f"add these to docs/metrics.md (name, type, unit, help): {unlisted}"


def test_every_catalogue_entry_is_exported(store: SqlStore) -> None:
    found = exported(scrape(StateEngine(), store))
    assert set(catalogue()) - set(found) == set()


def test_series_samples_reflect_the_state_engine(store: SqlStore) -> None:
    text = scrape(populated_engine(store), store)
    assert ('xunjian_check_status{agent="a",check="his.disk",engine="",key="/",kind="host.disk",priority="high",'
            'system="HIS",target=""} 2.0') in text
    assert 'xunjian_check_value{agent="a",check="his.disk",key="/",target="",unit="percent"} 97.0' in text
    assert 'xunjian_check_duration_seconds{agent="a",check="his.disk",key="/",target=""} 0.0015' in text
    assert 'xunjian_incidents_open{priority="high",system="HIS"} 1.0' in text
    assert 'xunjian_findings{category="payment",state="new"} 0.0' in text


def test_status_carries_what_the_check_declared(store: SqlStore) -> None:
    engine = populated_engine()
    engine.apply_batch("a", [patrol_pb2.Result(seq=2, check_id="pg.connections", target="lis_pg", status=0, value=12.5,
                                               unit="percent", outcome="ok")], 3.0)
    text = scrape(engine, store)
    assert ('xunjian_check_status{agent="a",check="pg.connections",engine="postgres",key="",kind="sql.metric",'
            'priority="medium",system="LIS",target="lis_pg"} 0.0') in text
    assert 'xunjian_check_value{agent="a",check="pg.connections",key="",target="lis_pg",unit="percent"} 12.5' in text


def test_fast_exposition_is_byte_for_byte_generate_latest(store: SqlStore) -> None:
    engine = populated_engine()
    engine.apply_batch("a", [patrol_pb2.Result(seq=2, check_id="odd", key='C:\\ "data"\nx', status=3, value=1e-9,
                                               unit="s", outcome="timeout", duration_us=123456789)], 3.0)
    registry = build_registry(PatrolMetrics(engine, store, IngestStats(), CommitStats(), time.time), process=False)
    assert generate_text(registry) == generate_latest(registry)


def test_cached_series_lines_follow_new_results_rules_removed_checks_and_retired_agents(store: SqlStore) -> None:
    engine = populated_engine()
    other = AgentHello("b", "b", {}, [], "", "", 0, [CheckRule("his.load", kind="host.load")], 1.0)
    engine.hello(other)
    engine.apply_batch("b", [patrol_pb2.Result(seq=1, check_id="his.load", status=0, value=0.5, outcome="ok")], 2.0)
    engine.apply_batch("a", [patrol_pb2.Result(seq=2, check_id="pg.connections", target="lis_pg", status=0,
                                               value=12.5, outcome="ok")], 2.0)
    registry = build_registry(PatrolMetrics(engine, store, IngestStats(), CommitStats(), time.time), process=False)
    before = generate_text(registry).decode()
    assert 'xunjian_check_value{agent="b",check="his.load",key="",target="",unit=""} 0.5' in before
    assert generate_text(registry).decode() == before, "nothing changed: the same text from the cache"

    engine.apply_batch("a", [patrol_pb2.Result(seq=3, check_id="his.disk", key="/", status=0, value=40.0,
                                               unit="percent", outcome="ok")], 3.0)
    engine.hello(AgentHello("a", "a", {}, [], "", "", 3, [  # pg.connections removed, his.disk now critical priority
        CheckRule("his.disk", kind="host.disk", system="HIS", priority="critical")], 4.0))
    engine.forget("b")  # retired
    after = generate_text(registry).decode()
    assert after == generate_latest(registry).decode()
    assert ('xunjian_check_status{agent="a",check="his.disk",engine="",key="/",kind="host.disk",priority="critical",'
            'system="HIS",target=""} 0.0') in after
    assert 'xunjian_check_value{agent="a",check="his.disk",key="/",target="",unit="percent"} 40.0' in after
    assert "pg.connections" not in after and 'agent="b"' not in after


def test_the_fast_value_text_is_go_s() -> None:
    from prometheus_client.utils import floatToGoString

    from collector.exposition import format_value

    values = [0.0015, -3.5, 1e-9, 123456.7, 999999.9, 1e6, 1234567.0, -1e12, 5e-324, 1e300, float("inf"),
              float("-inf"), float("nan"), *(10.0 ** (n / 7) for n in range(-80, 80)), *(-(10.0 ** (n / 5)) for n in range(40))]
    assert [format_value(v) for v in values] == [floatToGoString(v) for v in values]  # type: ignore[no-untyped-call]
