"""Run a dashboard's queries against a Prometheus as Grafana would: template variables first, then every panel.

Grafana is not needed to prove a dashboard: its panels are PromQL with Grafana's variables in them. This
module resolves the variables the way Grafana's Prometheus data source does (label_values over the time
range, multi-values joined as a regex, All as the variable's allValue), substitutes them and the built-in
interval variables, and asks Prometheus' HTTP API. The live test runs every query of every dashboard through
it; the previews in docs/dashboards.md are drawn from its answers.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

LABEL_VALUES = re.compile(r"^label_values\(\s*(?:(?P<match>.+?)\s*,\s*)?(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*\)$")
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")
_REGEX_SPECIAL = re.compile(r"([\\.+*?^$()\[\]{}|])")


class PrometheusError(RuntimeError):
    """Prometheus refused a query (a parse error names the position) or could not be reached."""


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref: str
    expr: str
    instant: bool
    legend: str
    panel_type: str


@dataclass
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]

    def finite(self) -> bool:
        return any(math.isfinite(v) for _, v in self.points)

    @property
    def last(self) -> float:
        return self.points[-1][1]


@dataclass
class Answer:
    query: PanelQuery
    expr: str
    """The query as sent, variables substituted."""
    series: list[Series] = field(default_factory=list)

    @property
    def has_data(self) -> bool:
        return any(s.finite() for s in self.series)


@dataclass(frozen=True)
class Variables:
    """Resolved template variables: the text each substitutes, and the options its query found."""

    text: Mapping[str, str]
    options: Mapping[str, list[str]]


def panels(dash: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    for p in dash.get("panels") or []:
        yield p
        yield from p.get("panels") or []


def panel_queries(dash: Mapping[str, Any]) -> list[PanelQuery]:
    out = []
    for p in panels(dash):
        for t in p.get("targets") or []:
            out.append(PanelQuery(dash["title"], p.get("title", ""), t.get("refId", ""), t["expr"],
                                  bool(t.get("instant")) and not t.get("range"), t.get("legendFormat", ""),
                                  p.get("type", "")))
    return out


def effective_steps(panel: Mapping[str, Any], ref: str) -> list[tuple[float | None, str]]:
    """The threshold steps (value, colour) a panel applies to query `ref`: its override, else the defaults."""
    config = panel.get("fieldConfig") or {}
    steps = ((config.get("defaults") or {}).get("thresholds") or {}).get("steps") or []
    for o in config.get("overrides") or []:
        matcher = o.get("matcher") or {}
        if matcher.get("id") == "byFrameRefID" and matcher.get("options") == ref:
            for prop in o.get("properties") or []:
                if prop.get("id") == "thresholds":
                    steps = (prop.get("value") or {}).get("steps") or []
    return [(s.get("value"), s.get("color")) for s in steps]


def variables(dash: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((dash.get("templating") or {}).get("list") or [])


def regex_escape(value: str) -> str:
    """Escape a value the way Grafana does for a regex matcher (=~)."""
    return _REGEX_SPECIAL.sub(r"\\\\\1", value)


def interpolate(expr: str, values: Mapping[str, str], *, rate_interval: str, interval: str) -> str:
    """Substitute Grafana's variables: ours from `values`, the interval built-ins from the arguments."""
    builtins = {"__rate_interval": rate_interval, "__interval": interval, "__range": rate_interval}

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name in builtins:
            return builtins[name]
        if name in values:
            return values[name]
        raise KeyError(f"variable ${name} is not defined by the dashboard (in {expr!r})")

    return _VARIABLE.sub(sub, expr)


class Prometheus:
    """The few calls of Prometheus' HTTP API v1 a dashboard makes."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: list[tuple[str, str]]) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            try:
                body = json.loads(exc.read())
            except ValueError:
                raise PrometheusError(f"{path}: HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise PrometheusError(f"{path}: {exc}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType', 'error')}: {body.get('error', body)}")
        return body["data"]

    def instant(self, expr: str, at: float | None = None) -> list[Series]:
        data = self._get("/api/v1/query", [("query", expr), ("time", f"{at or time.time():.3f}")])
        if data["resultType"] == "scalar":
            return [Series({}, [(float(data["result"][0]), float(data["result"][1]))])]
        return [Series(dict(r["metric"]), [(float(r["value"][0]), float(r["value"][1]))]) for r in data["result"]]

    def range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        data = self._get("/api/v1/query_range", [("query", expr), ("start", f"{start:.3f}"), ("end", f"{end:.3f}"),
                                                  ("step", f"{step:g}")])
        return [Series(dict(r["metric"]), [(float(t), float(v)) for t, v in r["values"]]) for r in data["result"]]

    def label_values(self, label: str, match: str | None, start: float, end: float) -> list[str]:
        params = [("start", f"{start:.3f}"), ("end", f"{end:.3f}")]
        if match:
            params.append(("match[]", match))
        return sorted(str(v) for v in self._get(f"/api/v1/label/{label}/values", params))

    def alerts(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/alerts", [])["alerts"])

    def rules(self) -> list[dict[str, Any]]:
        return list(self._get("/api/v1/rules", [])["groups"])


@dataclass
class Runner:
    """Runs a dashboard over a time window [end - window, end] as Grafana would at `end`."""

    prometheus: Prometheus
    window: float = 60.0
    step: float = 1.0
    rate_interval: str = "4s"
    """Grafana's $__rate_interval is four scrape intervals at least; the test scrapes every second."""
    choices: Mapping[str, str] = field(default_factory=dict)
    """Values to pick for single-value variables (Grafana picks the first option otherwise)."""

    def resolve(self, dash: Mapping[str, Any], end: float) -> Variables:
        text: dict[str, str] = {}
        options: dict[str, list[str]] = {}
        for v in variables(dash):
            name, kind = v["name"], v.get("type")
            if kind == "datasource":
                text[name] = "prometheus"
                continue
            if kind in ("textbox", "constant", "custom"):
                text[name] = str(v.get("query", ""))
                continue
            if kind != "query":
                raise ValueError(f"{dash['title']}: variable {name} of type {kind} is not supported here")
            m = LABEL_VALUES.match(str(v.get("query", "")))
            if not m:
                raise ValueError(f"{dash['title']}: variable {name}: only label_values(...) queries are supported")
            match = m.group("match")
            if match:
                match = self.substitute(match, text)
            found = self.prometheus.label_values(m.group("label"), match, end - self.window, end)
            options[name] = found
            if name in self.choices:
                text[name] = self.choices[name]
            elif v.get("multi") or v.get("includeAll"):
                all_value = v.get("allValue")
                text[name] = all_value if all_value else "(" + "|".join(regex_escape(f) for f in found) + ")"
            else:
                text[name] = regex_escape(found[0]) if found else ""
        return Variables(text, options)

    def substitute(self, expr: str, values: Mapping[str, str]) -> str:
        return interpolate(expr, values, rate_interval=self.rate_interval, interval=f"{self.step:g}s")

    def run(self, dash: Mapping[str, Any], end: float | None = None) -> tuple[Variables, list[Answer]]:
        at = end or time.time()
        resolved = self.resolve(dash, at)
        answers = []
        for q in panel_queries(dash):
            expr = self.substitute(q.expr, resolved.text)
            try:
                series = (self.prometheus.instant(expr, at) if q.instant
                          else self.prometheus.range(expr, at - self.window, at, self.step))
            except PrometheusError as exc:
                raise PrometheusError(f"{q.dashboard} / {q.panel} / {q.ref}: {exc}\n  query: {expr}") from None
            answers.append(Answer(q, expr, series))
        return resolved, answers
