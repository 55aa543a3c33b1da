"""Lint rules over the generated dashboard JSON: the rules of grafana/dashboard-linter that apply to us, and ours.

From dashboard-linter: a templated Prometheus data source used by every panel and query; a title and a
description on every panel; a valid unit on every panel that shows numbers; `$__rate_interval` in every
range; counters only inside rate()/increase(); no hard-coded `instance` or `job`; query variables that
refresh with the time range, are label_values() over a known metric, and are all used.

Ours: every metric is in docs/metrics.md (or is a series Prometheus adds to every scrape), every label a
query selects or groups by exists on the metrics it uses, a panel of a check's value colours by exactly that
check's warn/crit from its pack (and one with no check in its query invents no thresholds), status panels
name the status codes, no recording-rule series (the dashboards work without our rules loaded).

`python -m dashboards.lint` lints dashboards/json/ and exits 1 when any rule fails.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dashboards import packs
from dashboards.build import OUT
from dashboards.queries import LABEL_VALUES, effective_steps, panels, variables

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "docs" / "metrics.md"
_ROW = re.compile(r"^\| ([a-z_:][a-z0-9_:]*) \| (gauge|counter|histogram|summary) \|[^|]*\|([^|]*)\|")
SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
                 "scrape_series_added"}
"""Series Prometheus itself adds for every scrape target."""
TARGET_LABELS = {"job", "instance", "site"}
"""Labels every scraped series carries: job and instance from Prometheus, site from our scrape config."""
VALID_UNITS = {
    "none", "short", "percent", "percentunit", "bytes", "decbytes", "bits", "s", "ms", "µs", "ns", "m", "h", "d",
    "dtdurations", "dtdurationms", "ops", "cps", "reqps", "rps", "wps", "iops", "bool", "bool_yes_no", "dateTimeAsIso",
    "dateTimeFromNow", "Bps", "binBps", "hertz",
}
"""Grafana unit ids (a subset of dashboard-linter's list: those a patrol dashboard can need)."""
NUMERIC_PANELS = {"stat", "singlestat", "graph", "table", "timeseries", "gauge", "bargauge"}
_KEYWORDS = {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
             "inf", "nan"}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_RANGE = re.compile(r"\[([^\]]*)\]")
_VARIABLE_USE = r"\$(?:\{{{name}(?::[^}}]*)?\}}|{name}\b)|\[\[{name}\]\]"
STATUS_WORDS = {"OK", "WARNING", "CRITICAL", "UNKNOWN"}


@dataclass(frozen=True)
class Problem:
    dashboard: str
    panel: str
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"{self.dashboard} / {self.panel}" if self.panel else self.dashboard
        return f"{where}: [{self.rule}] {self.message}"


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str
    labels: frozenset[str]


def catalogue(path: Path = CATALOGUE) -> dict[str, Metric]:
    """docs/metrics.md as metric name -> type and labels; a histogram also yields its _bucket/_sum/_count."""
    out: dict[str, Metric] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line)
        if not m:
            continue
        name, kind = m.group(1), m.group(2)
        labels = frozenset(x.strip() for x in m.group(3).split(",") if x.strip())
        out[name] = Metric(name, kind, labels)
        if kind == "histogram":
            out[f"{name}_bucket"] = Metric(f"{name}_bucket", "counter", labels | {"le"})
            out[f"{name}_sum"] = Metric(f"{name}_sum", "counter", labels - {"le"})
            out[f"{name}_count"] = Metric(f"{name}_count", "counter", labels - {"le"})
    for name in SCRAPE_SERIES:
        out[name] = Metric(name, "gauge", frozenset())
    return out


def metric_names(expr: str) -> list[str]:
    """The metric names a PromQL expression selects, in order (strings, label lists, matchers, ranges removed)."""
    text = _STRING.sub('""', expr)
    text = _CLAUSE.sub(" ", text)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = _RANGE.sub(" ", text)
    names: list[str] = []
    for m in _IDENT.finditer(text):
        word = m.group(0)
        rest = text[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in _KEYWORDS:
            continue
        if m.start() > 0 and (text[m.start() - 1].isdigit() or text[m.start() - 1] == "$"):
            continue
        if word not in names:
            names.append(word)
    return names


def selectors(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Every `metric{matchers}` as (metric, [(label, op, value)])."""
    return [(m.group(1), _MATCHER.findall(m.group(2))) for m in _SELECTOR.finditer(expr)]


def grouping_labels(expr: str) -> set[str]:
    text = _STRING.sub('""', expr)
    return {label.strip() for m in _CLAUSE.finditer(text) for label in m.group(2).split(",") if label.strip()}


def lint(dash: Mapping[str, Any], known: Mapping[str, Metric] | None = None) -> list[Problem]:
    metrics = known if known is not None else catalogue()
    title = str(dash.get("title", "?"))
    out: list[Problem] = []
    out += _datasource_variable(title, dash)
    out += _variables(title, dash, metrics)
    ids: set[int] = set()
    for p in panels(dash):
        name = str(p.get("title", ""))
        if p.get("id") in ids:
            out.append(Problem(title, name, "panel-id", f"panel id {p.get('id')} is used twice"))
        ids.add(p.get("id", -1))
        if p.get("type") == "row":
            continue
        out += _panel(title, name, p, metrics)
    if dash.get("editable") is not False:
        out.append(Problem(title, "", "uneditable", "a provisioned dashboard should be read-only (editable: false)"))
    return out


def _datasource_variable(title: str, dash: Mapping[str, Any]) -> list[Problem]:
    found = [v for v in variables(dash) if v.get("type") == "datasource"]
    if len(found) != 1:
        return [Problem(title, "", "template-datasource-rule", "needs exactly one data source variable")]
    v = found[0]
    problems = []
    if v.get("name") != "datasource" or v.get("query") != "prometheus":
        problems.append(Problem(title, "", "template-datasource-rule",
                                "the data source variable must be named 'datasource' with query 'prometheus'"))
    if v.get("label") != "Data source":
        problems.append(Problem(title, "", "template-datasource-rule", "label the data source variable 'Data source'"))
    return problems


def _variables(title: str, dash: Mapping[str, Any], metrics: Mapping[str, Metric]) -> Iterator[Problem]:
    texts = [("", t.get("expr", "")) for p in panels(dash) for t in p.get("targets") or []]
    texts += [(str(v.get("name")), str(v.get("query", ""))) for v in variables(dash)]
    texts += [("", lnk.get("url", "")) for lnk in dash.get("links") or []]
    texts += [("", lnk.get("url", "")) for p in panels(dash)
              for lnk in ((p.get("fieldConfig") or {}).get("defaults") or {}).get("links") or []]
    for v in variables(dash):
        name, kind = v.get("name", ""), v.get("type")
        if kind == "datasource":
            continue
        used = re.compile(_VARIABLE_USE.format(name=re.escape(name)))
        if not any(used.search(text) for source, text in texts if source != name):
            yield Problem(title, "", "template-unused-rule", f"variable ${name} is not used by any query or link")
        if kind != "query":
            continue
        if v.get("refresh") != 2:
            yield Problem(title, "", "template-on-time-change-reload-rule",
                          f"variable ${name} must refresh on time range change (refresh: 2)")
        if (v.get("datasource") or {}).get("uid") != "${datasource}":
            yield Problem(title, "", "panel-datasource-rule", f"variable ${name} must query ${{datasource}}")
        m = LABEL_VALUES.match(str(v.get("query", "")))
        if not m:
            yield Problem(title, "", "template-label-promql-rule", f"variable ${name}: expected label_values(...)")
            continue
        yield from expression_problems(title, f"variable ${name}", m.group("match") or "", metrics)


def _panel(title: str, name: str, p: Mapping[str, Any], metrics: Mapping[str, Metric]) -> Iterator[Problem]:
    kind = p.get("type")
    if not name or not p.get("description"):
        yield Problem(title, name, "panel-title-description-rule", "every panel needs a title and a description")
    if kind == "text":
        return
    ds = (p.get("datasource") or {}).get("uid")
    if ds != "${datasource}":
        yield Problem(title, name, "panel-datasource-rule", f"panel data source is {ds!r}, not ${{datasource}}")
    config = p.get("fieldConfig") or {}
    defaults = config.get("defaults") or {}
    if kind in NUMERIC_PANELS:
        units = [defaults.get("unit")] + [prop.get("value") for o in config.get("overrides") or []
                                           for prop in o.get("properties") or [] if prop.get("id") == "unit"]
        bad = [u for u in units if u not in VALID_UNITS]
        if bad:
            yield Problem(title, name, "panel-units-rule", f"no or invalid unit: {bad}")
    targets = p.get("targets") or []
    if not targets:
        yield Problem(title, name, "panel-no-targets-rule", "a data panel needs at least one query")
    for t in targets:
        if (t.get("datasource") or {}).get("uid") not in (None, "${datasource}"):
            yield Problem(title, name, "panel-datasource-rule", f"query {t.get('refId')} names its own data source")
        expr = t.get("expr", "")
        yield from expression_problems(title, name, expr, metrics)
        yield from _thresholds(title, name, p, t)
    if kind != "timeseries" and any(_shows_status(t.get("expr", "")) for t in targets):
        words = {r.get("text") for m in defaults.get("mappings") or [] for r in (m.get("options") or {}).values()}
        if not words >= STATUS_WORDS:
            yield Problem(title, name, "status-mappings", "a status panel must map the codes to OK, WARNING, "
                          f"CRITICAL and UNKNOWN (has {sorted(w for w in words if w)})")


def _shows_status(expr: str) -> bool:
    """Whether a query's values are status codes: its first metric is the status, and it is not counted."""
    names = metric_names(expr)
    return bool(names) and names[0] == "xunjian_check_status" and not re.match(r"\s*(count|sum)\b", expr)


def expression_problems(title: str, name: str, expr: str, metrics: Mapping[str, Metric]) -> Iterator[Problem]:
    used = set(metric_names(expr))
    for metric in sorted(used):
        if ":" in metric:
            yield Problem(title, name, "no-recording-rules", f"{metric} is a recording rule: dashboards must work "
                          "without our rules loaded")
        elif metric not in metrics:
            yield Problem(title, name, "metric-catalogue", f"{metric} is not in docs/metrics.md")
    allowed = set(TARGET_LABELS)
    for metric in used:
        if metric in metrics:
            allowed |= metrics[metric].labels
    for metric, matchers in selectors(expr):
        labels = (metrics[metric].labels | TARGET_LABELS) if metric in metrics else allowed
        for label, _op, value in matchers:
            if label not in labels:
                yield Problem(title, name, "label-exists", f"{metric} has no label {label!r}")
            if label in ("instance", "job") and "$" not in value:
                yield Problem(title, name, "target-instance-rule", f"hard-coded {label} matcher {label}={value!r}")
    for label in sorted(grouping_labels(expr) - allowed):
        yield Problem(title, name, "label-exists", f"groups by {label!r}, which none of {sorted(used)} has")
    for m in _RANGE.finditer(_STRING.sub('""', expr)):
        if m.group(1) not in ("$__rate_interval", "$__range"):  # $__range: a total over the time shown (SLA panels)
            yield Problem(title, name, "target-rate-interval-rule", f"range [{m.group(1)}] instead of $__rate_interval")
    for metric in used:
        if metric in metrics and metrics[metric].kind == "counter":
            ranged = re.search(rf"\b(rate|irate|increase)\(\s*{re.escape(metric)}\s*(\{{[^}}]*\}})?\s*\[", expr)
            if not ranged:
                yield Problem(title, name, "target-counter-agg-rule",
                              f"counter {metric} must be inside rate(), irate() or increase()")


def _thresholds(title: str, name: str, p: Mapping[str, Any], t: Mapping[str, Any]) -> Iterator[Problem]:
    """A check's value is coloured by its pack's warn/crit; anything else by one neutral colour."""
    ref = str(t.get("refId", ""))
    got = effective_steps(p, ref)
    checks = [value for metric, matchers in selectors(t.get("expr", "")) if metric == "xunjian_check_value"
              for label, op, value in matchers if label == "check" and op == "="]
    if not checks:
        if "xunjian_check_value" in t.get("expr", "") and len(got) > 1:
            yield Problem(title, name, "pack-thresholds", f"query {ref} selects no check, so its thresholds {got} "
                          "come from no pack; select one check or use one colour")
        return
    for check_id in checks:
        try:
            want = [(s.value, s.color) for s in packs.steps(check_id)]
        except (KeyError, ValueError) as exc:
            yield Problem(title, name, "pack-thresholds", f"query {ref}: {exc}")
            continue
        if got != want:
            yield Problem(title, name, "pack-thresholds", f"query {ref} shows {check_id} with thresholds {got}; "
                          f"its pack says {want}")


def lint_files(paths: Iterable[Path]) -> list[Problem]:
    known = catalogue()
    return [p for path in paths for p in lint(json.loads(path.read_text(encoding="utf-8")), known)]


def main() -> int:
    problems = lint_files(sorted(OUT.glob("*.json")))
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
