"""Grafana's variable handling as the live test and the previews reproduce it."""

from __future__ import annotations

from typing import Any

import pytest

from dashboards.queries import LABEL_VALUES, Runner, Series, interpolate, panel_queries, regex_escape


def test_label_values_queries_parse() -> None:
    m = LABEL_VALUES.match('label_values(xunjian_check_status{site=~"$site", engine!=""}, target)')
    assert m and m.group("match") == 'xunjian_check_status{site=~"$site", engine!=""}' and m.group("label") == "target"
    m = LABEL_VALUES.match("label_values(site)")
    assert m and m.group("match") is None and m.group("label") == "site"


def test_interpolate_all_forms_and_built_ins() -> None:
    expr = 'rate(x{a=~"$site", b=~"${agent}", c=~"${target:regex}", d="[[job]]"}[$__rate_interval])'
    out = interpolate(expr, {"site": ".*", "agent": "(a|b)", "target": "lis_pg", "job": "xunjian"},
                      rate_interval="4s", interval="1s")
    assert out == 'rate(x{a=~".*", b=~"(a|b)", c=~"lis_pg", d="xunjian"}[4s])'


def test_an_undefined_variable_is_an_error() -> None:
    with pytest.raises(KeyError, match=r"\$ward"):
        interpolate('x{w="$ward"}', {}, rate_interval="4s", interval="1s")


def test_regex_values_are_escaped_as_grafana_does() -> None:
    assert regex_escape("his.app-01") == "his\\\\.app-01"
    assert regex_escape("a(b)") == "a\\\\(b\\\\)"


class Labels:
    """Answers label_values like Prometheus would for a fixed fleet (the live test runs the real thing)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None]] = []

    def label_values(self, label: str, match: str | None, start: float, end: float) -> list[str]:
        self.asked.append((label, match))
        return {"site": ["east", "main"], "agent": ["his.app-01", "lis-db-01"], "target": ["lis_my", "lis_pg"]}[label]


def dashboard() -> dict[str, Any]:
    def var(name: str, query: str, **kw: Any) -> dict[str, Any]:
        return {"name": name, "type": "query", "query": query, **kw}
    return {"title": "t", "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus"},
        var("site", "label_values(xunjian_agent_up, site)", multi=True, includeAll=True, allValue=".*"),
        var("agent", 'label_values(xunjian_check_status{site=~"$site"}, agent)', multi=True, includeAll=True),
        var("target", 'label_values(xunjian_check_status{agent=~"$agent"}, target)'),
        {"name": "console", "type": "textbox", "query": "http://c:9471"},
    ]}, "panels": [{"title": "p", "type": "stat", "targets": [{"refId": "A", "expr": "up", "instant": True}]}]}


def test_variables_resolve_in_order_like_grafana() -> None:
    labels = Labels()
    resolved = Runner(labels, choices={}).resolve(dashboard(), 1000.0)  # type: ignore[arg-type]
    assert resolved.text["site"] == ".*"
    assert resolved.text["agent"] == "(his\\\\.app-01|lis-db-01)", "All without allValue: every value, escaped"
    assert resolved.text["target"] == "lis_my", "a single-value variable takes the first option"
    assert resolved.text["console"] == "http://c:9471"
    assert labels.asked[1] == ("agent", 'xunjian_check_status{site=~".*"}')
    assert labels.asked[2] == ("target", 'xunjian_check_status{agent=~"(his\\\\.app-01|lis-db-01)"}')


def test_a_choice_overrides_the_default() -> None:
    resolved = Runner(Labels(), choices={"target": "lis_pg"}).resolve(dashboard(), 1000.0)  # type: ignore[arg-type]
    assert resolved.text["target"] == "lis_pg"


def test_panel_queries_and_data() -> None:
    [q] = panel_queries(dashboard())
    assert (q.panel, q.ref, q.instant) == ("p", "A", True)
    assert not Series({}, [(1.0, float("nan"))]).finite()
    assert Series({}, [(1.0, float("nan")), (2.0, 0.0)]).finite()
