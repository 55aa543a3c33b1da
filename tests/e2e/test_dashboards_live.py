"""Every panel and variable of every dashboard, run against a real Prometheus scraping a real collector.

Two agents patrol for real: one with the built-in host pack plus a nightly-export file check (system HIS,
priority high) and three interface checks (one to a port where nothing listens), one with the PostgreSQL and MariaDB packs bound to the live servers.
Prometheus (Debian's package) scrapes the collector every second and evaluates dashboards/rules/ (with `for:`
shortened; promtool's tests prove the real holds). Every template-variable query and every panel query of
every dashboard must parse and return data, except the panels listed below with the reason they are empty
here. Then the export file is aged past its crit: the wall's HIS tile turns CRITICAL, the high-priority
alert fires in Prometheus and reaches a webhook through Alertmanager. Last, the HIS agent stops: its tile
turns UNKNOWN (its checks cannot tell any more), XunjianAgentLost fires and the check's own alert ends.

With XUNJIAN_PREVIEWS_DIR set, the previews in docs/dashboards.md are written there from the same answers.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from dashboards.packs import builtin_checks
from dashboards.preview import render_all
from dashboards.queries import Answer, Prometheus, Runner
from tests.conftest import ROOT, require
from tests.e2e.harness import Collector, Fleet, Process, free_port, wait_for
from tests.e2e.promstack import (
    ALERTMANAGER,
    PROMETHEUS,
    Webhook,
    rules_for_test,
    start_alertmanager,
    start_prometheus,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DASHBOARD_DIR = ROOT / "dashboards" / "json"
RULES = ROOT / "dashboards" / "rules" / "xunjian.rules.yml"
EXPORT_CHECK = "his.export.nightly.age"

NO_REPLICA = "the test's PostgreSQL and MariaDB run without a standby or replica"
ORACLE_MSSQL = "only the Oracle and SQL Server packs have this check; neither server can run here"
NO_INCIDENT = "no incident is open before a check goes CRITICAL (may have data: UNKNOWN checks open incidents too)"
NO_TOP_SQL = ("the shared servers run without pg_stat_statements preloaded and with performance_schema off: the "
              "top-SQL checks answer UNKNOWN not_found, with no value")

NOT_OVERDUE = "no incident stays unacknowledged for 15 minutes (or unresolved for working days) in a live test"
NO_ACK = "nobody acknowledges an incident in this test"
NO_RESOLVE = "an incident resolves here only if a check recovers before the agent stops (the timing decides)"

ALLOWED_EMPTY: dict[str, dict[str, str]] = {
    "xunjian-wall": {"Replication lag": NO_REPLICA, "Backup age": ORACLE_MSSQL,
                     "Open incidents by priority": NO_INCIDENT, "Open incidents by system": NO_INCIDENT,
                     "Past their deadline now": NOT_OVERDUE, "Deadline breaches in the time shown": NO_INCIDENT,
                     "Time to acknowledge (90th percentile)": NO_ACK, "Time to resolve (90th percentile)": NO_RESOLVE},
    "xunjian-fleet": {},
    "xunjian-collector": {},
    "xunjian-database@postgres": {
        "Top SQL statements reported": NO_TOP_SQL, "Replication lag": NO_REPLICA, "Backup age": ORACLE_MSSQL,
        "Tables with stale statistics": ORACLE_MSSQL, "Jobs overdue": ORACLE_MSSQL},
    "xunjian-database@mysql": {
        "Top SQL statements reported": NO_TOP_SQL, "Replication lag": NO_REPLICA, "Backup age": ORACLE_MSSQL,
        "Tables with stale statistics": ORACLE_MSSQL, "Jobs overdue": ORACLE_MSSQL,
        "Deadlocks": "the MySQL pack has no deadlock check (PostgreSQL and SQL Server only)",
        "Vacuum and statistics age": "vacuum and analyze ages are PostgreSQL checks",
        "Transaction ID age": "transaction ID wraparound is a PostgreSQL check",
        "Backup, archiving and job checks": "the MySQL pack has no archiving, backup or job check",
        "Findings per check": "the MySQL findings checks that count findings need performance_schema (off here: "
                              "not_found) or run daily by cron (unused and redundant indexes)"},
}
"""Panels that may be empty here, with why. Every other panel must return data."""
ONCE_CRITICAL = {"Open incidents by priority", "Open incidents by system", "Deadline breaches in the time shown"}
"""Allowed empty before, but must have data once a high-priority check is CRITICAL."""


Results = dict[str, tuple[dict[str, Any], Any, list[Answer]]]


def pg_and_mariadb_reachable() -> None:
    for port, name in ((5432, "PostgreSQL"), (3306, "MariaDB")):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError as exc:
            require(False, f"{name} on 127.0.0.1:{port} ({exc})")


def fast_overrides(pack_prefixes: tuple[str, ...], targets: Mapping[str, str], every: str) -> str:
    """agent.yaml overrides that run each interval check of the packs every `every` (cron checks keep theirs)."""
    lines = []
    for check_id, specs in sorted(builtin_checks().items()):
        if not check_id.startswith(pack_prefixes) or specs[0].schedule:
            continue
        for target in targets.get(check_id.split(".")[0], "").split() or [""]:
            lines.append(f"  {check_id}{'@' + target if target else ''}: {{interval: {every}}}")
    return "overrides:\n" + "\n".join(lines) + "\n"


def start_agents(fleet: Fleet, c: Collector, export: Path) -> Process:
    """Both agents; returns the HIS application server's."""
    his_pack = f"""pack: his-wall
checks:
  - id: {EXPORT_CHECK}
    title: Nightly HIS export file
    kind: host.file
    path: {export}
    system: HIS
    priority: high
    interval: 1s
    warn: "> 26h"
    crit: "> 30h"
  - id: his.web.health
    title: HIS web health page
    kind: http
    url: http://{c.http}/healthz
    system: HIS
    priority: high
    interval: 2s
    warn: "> 2s"
  - id: lis.db.port
    title: LIS database port
    kind: tcp
    host: 127.0.0.1
    port: 5432
    system: LIS
    interval: 2s
    warn: "> 1s"
  - id: pacs.gateway.port
    title: PACS gateway port (nothing listens there)
    kind: tcp
    host: 127.0.0.1
    port: {free_port()}
    system: PACS
    interval: 2s
"""
    his = fleet.agent("his-app-01", [c.grpc], his_pack, packs="[builtin:host-linux, pack.yaml]",
                      extra=fast_overrides(("host.", "agent."), {}, "2s")).start()
    fleet.agent(
        "lis-db-01", [c.grpc], "pack: none\nchecks: []\n",
        packs="[{pack: 'builtin:postgres', target: lis_pg}, {pack: 'builtin:mysql', target: lis_my}]",
        extra=(
            "targets:\n"
            "  lis_pg: {dialect: postgres, host: 127.0.0.1, port: 5432, database: test, user: postgres}\n"
            "  lis_my: {dialect: mysql, host: 127.0.0.1, port: 3306, database: test, user: root}\n"
            + fast_overrides(("pg.", "mysql."), {"pg": "lis_pg", "mysql": "lis_my"}, "3s")
        ),
    ).start()
    return his


def load_dashboards() -> dict[str, dict[str, Any]]:
    return {d["uid"]: d for d in (json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARD_DIR.glob("*.json")))}


def run_all(prom: Prometheus) -> Results:
    """Every dashboard (the database one once per engine's target) -> (json, variables, answers)."""
    out = {}
    for uid, dash in load_dashboards().items():
        if uid == "xunjian-database":
            for engine, target in (("postgres", "lis_pg"), ("mysql", "lis_my")):
                variables, answers = Runner(prom, choices={"target": target}).run(dash)
                out[f"{uid}@{engine}"] = (dash, variables, answers)
        else:
            variables, answers = Runner(prom).run(dash)
            out[uid] = (dash, variables, answers)
    return out


def empty_panels(results: Results,
                 allowed: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Panels with no data that are not allowed to be empty, and engine queries of a DB target with no data."""
    missing = []
    for key, (_dash, variables, answers) in results.items():
        by_panel: dict[str, list[Answer]] = {}
        for a in answers:
            by_panel.setdefault(a.query.panel, []).append(a)
        for panel, group in by_panel.items():
            if panel in allowed.get(key, {}):
                continue
            if not any(a.has_data for a in group):
                missing.append(f"{key} / {panel}: " + " | ".join(a.expr for a in group))
            elif "@" in key:
                prefix = {"postgres": 'check="pg.', "mysql": 'check="mysql.'}[key.split("@")[1]]
                missing += [f"{key} / {panel} / {a.query.ref}: {a.expr}" for a in group
                            if prefix in a.expr and not a.has_data]
        for name, options in variables.options.items():
            if not options:
                missing.append(f"{key} / variable ${name} found no values")
    return missing


def tile(results: Results, system: str) -> float | None:
    _dash, _vars, answers = results["xunjian-wall"]
    [systems] = [a for a in answers if a.query.panel == "Worst status per system"]
    values = [s.last for s in systems.series if s.labels.get("system") == system]
    return values[0] if values else None


def wait_for_panels(prom: Prometheus, allowed: Mapping[str, Mapping[str, str]], timeout: float) -> Results:
    """Run every dashboard until every panel not allowed empty has data; on timeout, name those still empty."""
    deadline = time.monotonic() + timeout
    while True:
        results = run_all(prom)
        missing = empty_panels(results, allowed)
        if not missing:
            return results
        if time.monotonic() > deadline:
            raise AssertionError(f"panels without data after {timeout}s:\n  " + "\n  ".join(missing))
        time.sleep(2)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    w = Webhook()
    yield w
    w.close()


def test_every_panel_answers_and_the_wall_turns_red(fleet: Fleet, webhook: Webhook, tmp_path: Path) -> None:
    require(bool(PROMETHEUS) and bool(ALERTMANAGER), "prometheus and prometheus-alertmanager (Debian packages)")
    pg_and_mariadb_reachable()
    export = tmp_path / "his_daily.csv"
    export.write_text("visit_id,amount\n")
    c = fleet.collector(history="transitions").start()
    c.wait_healthy()
    his = start_agents(fleet, c, export)
    alertmanager = start_alertmanager(fleet, webhook.url)
    prom = Prometheus(start_prometheus(fleet, c.http, rules_for_test(RULES, tmp_path / "rules.yml"), alertmanager))

    allowed = {k: dict(v) for k, v in ALLOWED_EMPTY.items()}
    results = wait_for_panels(prom, allowed, timeout=90)
    assert tile(results, "HIS") == 0, "the HIS tile is OK while the export is fresh"
    assert tile(results, "PACS") == 3, "the PACS tile is CRITICAL: its gateway port refuses connections"
    previews = os.environ.get("XUNJIAN_PREVIEWS_DIR")
    if previews:  # the committed previews show some history in their graphs
        time.sleep(float(os.environ.get("XUNJIAN_PREVIEW_HISTORY_S", "120")))

    old = time.time() - 2 * 86400
    os.utime(export, (old, old))
    results = wait_for(lambda: (r := run_all(prom)) and tile(r, "HIS") == 3 and r, timeout=30,
                       what="the wall's HIS tile to turn CRITICAL")
    after = {k: {p: why for p, why in v.items() if p not in ONCE_CRITICAL} for k, v in allowed.items()}
    results = wait_for_panels(prom, after, timeout=30)

    firing = wait_for(lambda: [a for a in prom.alerts() if a["labels"].get("alertname") ==
                               "XunjianCheckCriticalHighPriority" and a["state"] == "firing"
                               and a["labels"].get("check") == EXPORT_CHECK], timeout=30,
                      what="XunjianCheckCriticalHighPriority firing in Prometheus")
    labels = firing[0]["labels"]
    assert (labels["priority"], labels["system"], labels["severity"], labels["site"]) == ("high", "HIS", "page",
                                                                                          "test-campus")
    assert labels["agent"] == "his-app-01" and labels["kind"] == "host.file"
    delivered = wait_for(lambda: [a for a in webhook.alerts() if a["labels"].get("check") == EXPORT_CHECK
                                  and a["status"] == "firing"], timeout=30, what="the page to reach Alertmanager's webhook")
    assert delivered[0]["labels"]["alertname"] == "XunjianCheckCriticalHighPriority"
    assert "CRITICAL on his-app-01" in delivered[0]["annotations"]["summary"]

    written = render_all(results, Path(previews or tmp_path / "previews"))
    assert written and all(p.stat().st_size > 10_000 for p in written)

    his.stop()  # the HIS server goes quiet: its checks cannot tell any more, and one page says so
    wait_for(lambda: tile(run_all(prom), "HIS") == 2, timeout=30, what="the HIS tile UNKNOWN once its agent is gone")
    wait_for(lambda: [a for a in prom.alerts() if a["labels"].get("alertname") == "XunjianAgentLost"
                      and a["labels"].get("agent") == "his-app-01" and a["state"] == "firing"], timeout=30,
             what="XunjianAgentLost firing for his-app-01")
    wait_for(lambda: not [a for a in prom.alerts() if a["labels"].get("check") == EXPORT_CHECK], timeout=30,
             what="the check's own page to stop while its agent is lost")
