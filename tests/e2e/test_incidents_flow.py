"""End to end with real processes: a check fails → incident → message delivered → acknowledged from the CLI →
the check recovers → resolved (and said so) → closed with its root-cause analysis; all in the timeline, the audit
trail and /metrics. A killed agent's checks read stale, one parent incident is notified and the children are linked
and silent; so are the checks behind a database that goes down. A collector SIGKILLed between the commit of an
incident and the send of its message sends it after the restart."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.e2e.harness import Collector, Fleet, wait_for
from tests.integration.notify.receivers import Receiver, serving
from tests.integration.sql.throwaway import PgCluster, scratch

pytestmark = pytest.mark.e2e
ROBOT_KEY = "e2e-robot-key-5c9f"


def notifications(url: str, group_wait: str = "1s") -> str:
    return f"""\
notifications:
  language: zh
  console_url: http://console.hospital.local
  group_wait: {group_wait}
  retry: {{initial: 1s, max: 2s}}
  receivers:
    - {{name: his-wecom, type: wecom, url: "{url}", key_env: XJ_E2E_ROBOT_KEY}}
  routes:
    - {{match: {{system: HIS}}, receivers: [his-wecom]}}
"""


def flag_pack(flag: Path, extra: str = "") -> str:
    return f"""\
pack: e2e
defaults: {{interval: 1s, timeout: 2s, system: HIS}}
checks:
  - id: his.export.flag
    title: Nightly export present
    kind: host.file
    path: {flag}
    priority: high
    runbook: https://wiki.hospital.local/his/export
{extra}"""


def cli(c: Collector, *args: str) -> str:
    env = dict(os.environ, XUNJIAN_URL=f"http://{c.http}", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "xunjian", *args], env=env, capture_output=True, text=True,
                          timeout=30, cwd=ROOT)
    assert done.returncode == 0, f"xunjian {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def incident_of(c: Collector, check: str, status: str = "all") -> dict[str, Any] | None:
    for i in c.get(f"/api/v1/incidents?status={status}"):
        if i["check_id"] == check:
            return dict(i)
    return None


def robot_says(robot: Receiver) -> list[str]:
    return [b["markdown"]["content"] for b in robot.bodies()]


@pytest.fixture(autouse=True)
def robot_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XJ_E2E_ROBOT_KEY", ROBOT_KEY)


def test_fail_notify_ack_recover_resolve_close_with_rca(fleet: Fleet, tmp_path: Path) -> None:
    flag = tmp_path / "export.done"
    flag.write_text("ok")
    with serving(Receiver()) as robot:
        c = fleet.collector(extra=notifications(robot.url))
        c.start()
        c.wait_healthy()
        fleet.agent("his-app-01", [c.grpc], flag_pack(flag)).start()
        wait_for(lambda: any(x["check_id"] == "his.export.flag" and x["status"] == "OK" for x in c.get("/api/v1/checks")),
                 timeout=30, what="the flag check OK")
        flag.unlink()
        inc = wait_for(lambda: incident_of(c, "his.export.flag", "active"), timeout=30, what="the incident")
        iid = inc["id"]
        assert inc["priority"] == "high" and inc["system"] == "HIS" and inc["response_due_at"] == inc["opened_at"] + 900
        wait_for(lambda: robot.received, timeout=30, what="the robot's message")
        first = robot.received[0]
        assert first.query == {"key": ROBOT_KEY}
        text = first.body["markdown"]["content"]
        assert f"#{iid} 故障" in text and "检查: his.export.flag" in text and "处理手册: [https://wiki.hospital.local" in text
        assert f"http://console.hospital.local/#incident-{iid}" in text

        out = cli(c, "incidents", "ack", str(iid), "--by", "zhang.san", "--note", "on it")
        assert f"incident {iid} acknowledged" in out
        flag.write_text("ok")
        wait_for(lambda: (incident_of(c, "his.export.flag") or {}).get("status") == "resolved", timeout=30,
                 what="resolved on recovery")
        wait_for(lambda: any(f"#{iid} 已恢复" in text for text in robot_says(robot)), timeout=30,
                 what="the resolved message")

        closing = subprocess.run([sys.executable, "-m", "xunjian", "incidents", "close", str(iid), "--by", "zhang.san"],
                                 env=dict(os.environ, XUNJIAN_URL=f"http://{c.http}", PYTHONPATH=str(ROOT)),
                                 capture_output=True, text=True, timeout=30, cwd=ROOT)
        assert closing.returncode == 1 and "root-cause analysis first" in closing.stderr
        cli(c, "incidents", "rca", str(iid), "--by", "zhang.san", "--cause", "export job hung on a lock",
            "--solution", "killed the blocker; job now has a 2h timeout")
        cli(c, "incidents", "close", str(iid), "--by", "zhang.san")

        shown = json.loads(cli(c, "incidents", "show", str(iid), "--json"))
        events = [e["event"] for e in shown["timeline"]]
        assert events[0] == "opened" and events[-2:] == ["rca", "closed"]
        for event in ("notified", "acknowledged", "resolved"):
            assert event in events
        assert events.index("acknowledged") < events.index("resolved")
        assert shown["status"] == "closed" and shown["acknowledged_by"] == "zhang.san"
        assert shown["root_cause"] == "export job hung on a lock" and not shown["response_breached"]
        assert [n["state"] for n in shown["notifications"]] == ["sent", "sent"]

        audit = [(e["action"], e["actor"], e["object"]) for e in reversed(c.get("/api/v1/audit"))]
        assert audit == [("incident.ack", "zhang.san", f"incident {iid}"), ("incident.rca", "zhang.san", f"incident {iid}"),
                         ("incident.close", "zhang.san", f"incident {iid}")]
        assert c.get("/api/v1/audit/verify")["ok"]

        def metrics_ready() -> str | None:
            text = c.text("/metrics")
            sent = re.search(r'xunjian_notifications_sent_total\{channel="wecom",receiver="his-wecom"\} (\d+)', text)
            return text if sent and int(sent.group(1)) >= 2 else None

        text = wait_for(metrics_ready, timeout=40, what="/metrics with the incident")
        assert re.search(r'xunjian_incident_acknowledge_seconds_count\{priority="high"\} 1\.0', text)
        assert re.search(r'xunjian_incident_resolve_seconds_count\{priority="high"\} [1-9]', text)
        assert 'xunjian_incident_breaches_total{deadline="response",priority="high",system="HIS"} 0.0' in text
        listing = cli(c, "notifications", "list", "--incident", str(iid))
        assert listing.count("sent") >= 2 and "his-wecom" in listing
    assert ROBOT_KEY not in fleet.logs() and ROBOT_KEY not in json.dumps(c.get("/api/v1/notifications"))


def test_a_killed_agent_reads_stale_with_one_parent_notified(fleet: Fleet, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.write_text("ok")
    extra = "\n".join(f"  - {{id: his.mem{i}, kind: host.memory}}" for i in range(3)) + "\n"
    with serving(Receiver()) as robot:
        c = fleet.collector(lost_after="2s", extra=notifications(robot.url))
        c.start()
        c.wait_healthy()
        agent = fleet.agent("his-app-02", [c.grpc], flag_pack(flag, extra), extra="").start()
        wait_for(lambda: len([x for x in c.get("/api/v1/checks") if x["status"] == "OK"]) == 4, timeout=30,
                 what="four OK series")
        agent.kill()
        lost = wait_for(lambda: incident_of(c, "agent.lost", "active"), timeout=30, what="the agent lost incident")

        def all_stale() -> list[dict[str, Any]] | None:
            checks = c.get("/api/v1/checks?agent=his-app-02")
            return checks if checks and all(x["stale"] and x["status"] == "UNKNOWN" for x in checks) else None

        checks = wait_for(all_stale, timeout=10, what="the agent's series stale")
        assert {x["outcome"] for x in checks} == {"agent_lost"}
        assert all(x["summary"].startswith("agent lost: no result since") for x in checks)
        text = c.text("/metrics")
        assert len(re.findall(r'xunjian_check_status\{agent="his-app-02",[^}]*\} 3\.0', text)) == 4
        assert 'xunjian_agent_up{agent="his-app-02"} 0.0' in text
        children = [i for i in c.get("/api/v1/incidents?status=active") if i["parent_id"] == lost["id"]]
        assert len(children) == 4 and all(i["suppressed"] == "agent lost" for i in children)
        wait_for(lambda: robot.received, timeout=30, what="the agent lost message")
        wait_for(lambda: all(n["state"] != "queued" for n in c.get("/api/v1/notifications")) and
                 not re.search(r'xunjian_notifications_pending\{stage="outbox"\} [1-9]', c.text("/metrics")),
                 timeout=15, what="the outbox drained")
        notified = {i["incident_id"] for n in c.get("/api/v1/notifications") for i in n["items"]}
        assert notified == {lost["id"]}, "one parent incident notified; the children are silent"
        shown = c.get(f"/api/v1/incidents/{children[0]['id']}")
        assert [e["event"] for e in shown["timeline"]] == ["opened", "suppressed"], "recorded, linked, not notified"
        assert sorted(shown for shown in c.get(f"/api/v1/incidents/{lost['id']}")["children"]) == sorted(
            i["id"] for i in children)


def test_sigkill_between_commit_and_send_sends_after_restart(fleet: Fleet, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    flag.write_text("ok")
    with serving(Receiver()) as robot:
        c = fleet.collector(extra=notifications(robot.url, group_wait="4s"))
        c.start()
        c.wait_healthy()
        fleet.agent("his-app-03", [c.grpc], flag_pack(flag)).start()
        wait_for(lambda: any(x["check_id"] == "his.export.flag" for x in c.get("/api/v1/checks")), timeout=30,
                 what="the check running")
        flag.unlink()
        wait_for(lambda: incident_of(c, "his.export.flag", "active"), timeout=30, what="the incident committed")
        c.kill()
        assert robot.received == [], "killed within the group wait: nothing was sent"
        c.start()
        c.wait_healthy()
        wait_for(lambda: robot.received, timeout=30, what="the message after the restart")
        wait_for(lambda: all(n["state"] == "sent" for n in c.get("/api/v1/notifications")), timeout=10,
                 what="recorded as sent")
    (note,) = c.get("/api/v1/notifications")
    assert note["attempts"] == 1 and len(robot.received) == 1, "sent once"


DB_PACK = """\
pack: his-db-site
defaults: {target: his_pg, interval: 500ms, timeout: 3s, system: HIS}
checks:
  - {id: his.db.up, kind: sql.reachable, priority: high, for: 0s}
  - id: his.db.sessions
    kind: sql.metric
    query: {postgres: "SELECT count(*) AS value FROM pg_stat_activity"}
    for: 0s
  - id: his.db.locks
    kind: sql.metric
    query: {postgres: "SELECT count(*) AS value FROM pg_locks"}
    for: 0s
"""


def test_a_database_down_is_one_message_with_its_checks_silent_behind_it(fleet: Fleet) -> None:
    """A real agent patrols a throwaway PostgreSQL; the server stops: the reachability check's incident is the one
    message, the checks behind it (UNKNOWN, parent his.db.up) are its children, recorded and silent."""
    work = scratch()
    cluster = PgCluster(work, "data")
    try:
        cluster.initdb().start()
        with serving(Receiver()) as robot:
            c = fleet.collector(extra=notifications(robot.url))
            c.start()
            c.wait_healthy()
            fleet.agent("his-db-01", [c.grpc], DB_PACK, extra=(
                f"targets:\n  his_pg: {{dialect: postgres, host: 127.0.0.1, port: {cluster.port}, user: postgres, "
                "database: postgres}\n")).start()
            wait_for(lambda: len([x for x in c.get("/api/v1/checks") if x["status"] == "OK"]) == 3, timeout=60,
                     what="the three database checks OK")
            cluster.stop("fast")

            def three_open() -> list[dict[str, Any]] | None:
                found = c.get("/api/v1/incidents?status=active")
                return found if len(found) == 3 else None

            incidents = wait_for(three_open, timeout=60, what="three incidents")
            parent = next(i for i in incidents if i["check_id"] == "his.db.up")
            children = [i for i in incidents if i["check_id"] != "his.db.up"]
            assert parent["last_status"] == "CRITICAL" and not parent["suppressed"]
            assert all(i["parent_id"] == parent["id"] and i["suppressed"] for i in children), children
            wait_for(lambda: robot.received, timeout=30, what="the message")
            wait_for(lambda: not re.search(r'xunjian_notifications_pending\{stage="outbox"\} [1-9]',
                                           c.text("/metrics")), timeout=30, what="the outbox drained")
            notified = {i["incident_id"] for n in c.get("/api/v1/notifications") for i in n["items"]}
            assert notified == {parent["id"]}, "one message for a database that is down, not one per check"
            assert "his.db.up" in robot_says(robot)[0]
    finally:
        cluster.stop("immediate")
        shutil.rmtree(work, ignore_errors=True)
