"""The alert and recording rules load in promtool, pass their unit tests, and use only catalogued metrics."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from dashboards.lint import Metric, catalogue, expression_problems, metric_names
from tests.conftest import ROOT, require

RULES = ROOT / "dashboards" / "rules"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    require(tool is not None, "promtool (Debian package prometheus)")
    assert tool
    return subprocess.run([tool, *args], capture_output=True, text=True, cwd=RULES, timeout=60)


def test_promtool_check_rules() -> None:
    done = promtool("check", "rules", "xunjian.rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_test_rules() -> None:
    tests = sorted(str(p.relative_to(RULES)) for p in (RULES / "tests").glob("*.yml"))
    assert tests
    done = promtool("test", "rules", *tests)
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_prometheus_config_is_valid() -> None:
    done = promtool("check", "config", str(ROOT / "dashboards" / "prometheus.example.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_example_alertmanager_config_is_valid() -> None:
    tool = shutil.which("amtool")
    require(tool is not None, "amtool (Debian package prometheus-alertmanager)")
    assert tool
    done = subprocess.run([tool, "check-config", str(RULES / "alertmanager.example.yml")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_use_only_catalogued_metrics_and_labels() -> None:
    """The lint's catalogue and label rules over every rule; a series recorded above may be used below."""
    known = dict(catalogue())
    doc = yaml.safe_load((RULES / "xunjian.rules.yml").read_text())
    problems = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            expr = rule["expr"].replace("[5m]", "[$__rate_interval]").replace("[10m]", "[$__rate_interval]")
            problems += [str(p) for p in expression_problems("rules", name, expr, known)
                         if p.rule != "no-recording-rules"
                         and (p.rule != "target-instance-rule" or 'job="xunjian"' not in expr)]
            if "record" in rule:
                used = [known[m] for m in metric_names(expr) if m in known]
                known[name] = Metric(name, "gauge", frozenset().union(*(m.labels for m in used)))
    assert not problems, "\n".join(problems)


def test_every_alert_says_how_urgent_and_what_happened() -> None:
    doc = yaml.safe_load((RULES / "xunjian.rules.yml").read_text())
    alerts = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
    assert {a["alert"] for a in alerts} >= {"XunjianCollectorDown", "XunjianAgentLost", "XunjianIngestRefusing",
                                            "XunjianCheckCriticalHighPriority", "XunjianSpoolDropping"}
    for a in alerts:
        assert a["labels"]["severity"] in ("page", "ticket"), a["alert"]
        assert "priority" in a["labels"] or "priority" in a["expr"], f"{a['alert']} has no priority"
        assert a["annotations"]["summary"] and a["annotations"]["description"], a["alert"]


def test_every_alert_has_a_promtool_test() -> None:
    doc = yaml.safe_load((RULES / "xunjian.rules.yml").read_text())
    alerts = {r["alert"] for g in doc["groups"] for r in g["rules"] if "alert" in r}
    tested = {t["alertname"] for f in (RULES / "tests").glob("*.yml")
              for case in yaml.safe_load(f.read_text())["tests"] for t in case.get("alert_rule_test", [])}
    assert alerts <= tested, f"untested alerts: {sorted(alerts - tested)}"
