"""The lint rules pass on the committed dashboards, and each one catches the mistake it is there for."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from dashboards.build import OUT
from dashboards.lint import catalogue, lint, lint_files, metric_names
from dashboards.queries import panels


def wall() -> dict[str, Any]:
    return dict(json.loads((OUT / "xunjian-wall.json").read_text()))


def panel(d: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in panels(d) if p.get("title") == title)  # type: ignore[return-value]


def test_committed_dashboards_pass_every_rule() -> None:
    problems = lint_files(sorted(OUT.glob("*.json")))
    assert not problems, "\n".join(map(str, problems))


def test_catalogue_reads_docs_metrics_md() -> None:
    known = catalogue()
    assert known["xunjian_check_status"].labels >= {"agent", "check", "system", "priority", "kind", "engine"}
    assert known["xunjian_ingest_results_total"].kind == "counter"
    assert "le" in known["xunjian_ingest_commit_seconds_bucket"].labels
    assert "up" in known


def test_metric_names_skip_functions_labels_and_strings() -> None:
    expr = ('max by (system) ((xunjian_check_status{site=~"$site"} == 2) + 1 or label_replace(vector(0), "a", '
            '"b", "", "")) and on (agent) rate(xunjian_ingest_results_total[$__rate_interval]) > bool 0')
    assert metric_names(expr) == ["xunjian_check_status", "xunjian_ingest_results_total"]


def set_expr(title: str, expr: str) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        panel(d, title)["targets"][0]["expr"] = expr
    return change


def drop_unit(d: dict[str, Any]) -> None:
    del panel(d, "Agents up")["fieldConfig"]["defaults"]["unit"]


def shift_threshold(d: dict[str, Any]) -> None:
    panel(d, "Connections used")["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] = 80


def unused_variable(d: dict[str, Any]) -> None:
    d["templating"]["list"].append({"name": "ward", "type": "query", "refresh": 2, "query": "label_values(up, job)",
                                    "datasource": {"uid": "${datasource}"}})


def fixed_datasource(d: dict[str, Any]) -> None:
    panel(d, "Agents up")["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}


def no_datasource_variable(d: dict[str, Any]) -> None:
    d["templating"]["list"] = [v for v in d["templating"]["list"] if v["type"] != "datasource"]


def no_description(d: dict[str, Any]) -> None:
    panel(d, "Agents up")["description"] = ""


def status_as_numbers(d: dict[str, Any]) -> None:
    panel(d, "Interface links")["fieldConfig"]["defaults"]["mappings"] = []


def editable(d: dict[str, Any]) -> None:
    d["editable"] = True


def variable(name: str, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        next(v for v in d["templating"]["list"] if v["name"] == name).update(changes)
    return change


@pytest.mark.parametrize(("rule", "change"), [
    ("metric-catalogue", set_expr("Agents up", "sum(xunjian_agents_up)")),
    ("label-exists", set_expr("Agents up", 'sum(xunjian_agent_up{hostname="his-app-01"})')),
    ("label-exists", set_expr("Agents up", "sum by (system) (xunjian_agent_up)")),
    ("target-instance-rule", set_expr("Agents up", 'sum(xunjian_agent_up{instance="10.1.2.3:9471"})')),
    ("target-rate-interval-rule", set_expr("Agents up", "sum(rate(xunjian_ingest_results_total[5m]))")),
    ("target-counter-agg-rule", set_expr("Agents up", "sum(xunjian_ingest_results_total)")),
    ("no-recording-rules", set_expr("Agents up", "xunjian_system:check_severity:max")),
    ("pack-thresholds", shift_threshold),
    ("pack-thresholds", set_expr("Connections used", 'xunjian_check_value{check="pg.long_queries"}')),
    ("panel-units-rule", drop_unit),
    ("template-unused-rule", unused_variable),
    ("panel-datasource-rule", fixed_datasource),
    ("template-datasource-rule", no_datasource_variable),
    ("panel-title-description-rule", no_description),
    ("status-mappings", status_as_numbers),
    ("uneditable", editable),
    ("template-on-time-change-reload-rule", variable("agent", refresh=1)),
    ("template-label-promql-rule", variable("agent", query="query_result(up)")),
    ("metric-catalogue", variable("agent", query="label_values(xunjian_agent_ups, agent)")),
    ("target-instance-rule", set_expr("Collectors down", 'count(up{job="xunjian"} == 0)')),
])
def test_each_rule_catches_its_mistake(rule: str, change: Callable[[dict[str, Any]], None]) -> None:
    d = copy.deepcopy(wall())
    change(d)
    found = {p.rule for p in lint(d)}
    assert rule in found, f"expected {rule}, got {found}"


def test_a_query_of_no_check_may_not_invent_thresholds() -> None:
    d = copy.deepcopy(wall())
    latency = panel(d, "Interface latency")
    latency["fieldConfig"]["defaults"]["thresholds"]["steps"].append({"value": 2, "color": "red"})
    assert "pack-thresholds" in {p.rule for p in lint(d)}
