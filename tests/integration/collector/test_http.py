"""HTTP on a real collector: /healthz, /metrics (checked by promtool), the JSON API and finding reviews."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest

from protos import patrol_pb2
from tests.conftest import require
from tests.integration.collector.conftest import Agent, http_get, http_post, results, running

pytestmark = pytest.mark.integration

TOP_SQL = patrol_pb2.CheckInfo(id="his.db.top_sql", title="Top SQL", kind="sql.findings", target="his_db",
                               priority="low", system="HIS", labels={"engine": "oracle"})
DISK = patrol_pb2.CheckInfo(id="his.disk", title="Data disk", kind="host.disk", priority="high", system="HIS")


def finding_result(seq: int, fingerprint: str) -> patrol_pb2.Result:
    return patrol_pb2.Result(seq=seq, check_id="his.db.top_sql", target="his_db", status=patrol_pb2.OK,
                             findings=[patrol_pb2.Finding(fingerprint=fingerprint, title="Slow statement",
                                                          object="HIS.ORDERS", sql_text="SELECT ...",
                                                          evidence={"elapsed_s": 12.0})])


async def feed(port: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        agent = Agent(ch)
        await agent.hello(checks=[DISK, TOP_SQL])
        await agent.batch([*results(range(1, 3)), *results(range(3, 4), status=2),
                           finding_result(4, "sql_id:a1"), finding_result(5, "sql_id:b2")])
        assert await agent.ack() == 5
        await agent.call.done_writing()


def test_json_api_and_findings_review(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as c:
            await feed(c.grpc_port)
            port = c.http_port
            status, body = await asyncio.to_thread(http_get, port, "/healthz")
            assert (status, body["status"], body["components"]["store"]["ok"]) == (200, "ok", True)

            _, agents = await asyncio.to_thread(http_get, port, "/api/v1/agents")
            assert [(a["id"], a["high_water_seq"], a["labels"], a["connected"]) for a in agents] == [
                ("his-app-01", 5, {"site": "main"}, False)]

            _, checks = await asyncio.to_thread(http_get, port, "/api/v1/checks")
            disk = next(ch for ch in checks if ch["check_id"] == "his.disk")
            assert (disk["status"], disk["value"], disk["incident_open"], disk["title"]) == (
                "CRITICAL", 3.0, True, "Data disk")

            _, open_ = await asyncio.to_thread(http_get, port, "/api/v1/incidents")
            assert [(i["check_id"], i["status"], i["last_status"]) for i in open_] == [("his.disk", "open", "CRITICAL")]
            status, body = await asyncio.to_thread(http_get, port, "/api/v1/incidents?status=gone")
            assert (status, body) == (400, {"error": "status must be one of active, all, open, acknowledged, resolved, "
                                                     "closed, got 'gone'"})

            status, body = await asyncio.to_thread(http_get, port, "/api/v1/results?agent=his-app-01")
            assert status == 400
            assert body["error"] == ("results history is not kept (store.history is 'transitions'); set "
                                     "store.history: all in collector.yaml")

            _, findings = await asyncio.to_thread(http_get, port, "/api/v1/findings?engine=oracle&state=new")
            assert sorted(f["fingerprint"] for f in findings) == ["sql_id:a1", "sql_id:b2"]
            assert {f["category"] for f in findings} == {"dba"}, "an agent that sends no category files DBA findings"
            _, none = await asyncio.to_thread(http_get, port, "/api/v1/findings?category=payment")
            assert none == []
            status, body = await asyncio.to_thread(http_get, port, "/api/v1/findings?category=money")
            assert (status, body) == (400, {"error": "category must be one of dba, migration, payment, insurance, "
                                                      "got 'money'"})
            fid = next(f["id"] for f in findings if f["fingerprint"] == "sql_id:a1")
            status, row = await asyncio.to_thread(http_post, port, f"/api/v1/findings/{fid}/accept",
                                                  {"reviewer": "dba.wang", "note": "index planned"})
            assert status == 200
            assert (row["state"], row["reviewer"], row["review_note"]) == ("accepted", "dba.wang", "index planned")
            assert [h["to_state"] for h in row["history"]] == ["new", "accepted"]
            status, body = await asyncio.to_thread(http_post, port, f"/api/v1/findings/{fid}/dismiss", {"note": "x"})
            assert (status, body) == (400, {"error": "reviewer is required (who accepts or dismisses the finding)"})
            status, _ = await asyncio.to_thread(http_post, port, "/api/v1/findings/999/dismiss", {"reviewer": "x"})
            assert status == 404
            _, accepted = await asyncio.to_thread(http_get, port, "/api/v1/findings?state=accepted")
            assert [f["id"] for f in accepted] == [fid]
            status, body = await asyncio.to_thread(http_get, port, "/api/v1/nope")
            assert (status, body) == (404, {"error": "no such endpoint: GET /api/v1/nope"})

            status, text = await asyncio.to_thread(http_get, port, "/metrics")
            assert status == 200
            assert 'xunjian_findings{category="dba",state="accepted"} 1.0' in text
            assert "xunjian_ingest_results_total 5.0" in text
    asyncio.run(scenario())


def test_results_history_when_kept(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, store={"history": "all"}) as c:
            await feed(c.grpc_port)
            _, rows = await asyncio.to_thread(http_get, c.http_port, "/api/v1/results?agent=his-app-01&after_seq=1&limit=2")
            assert [(r["seq"], r["status"], r["check_id"]) for r in rows] == [(2, "OK", "his.disk"),
                                                                              (3, "CRITICAL", "his.disk")]
            status, body = await asyncio.to_thread(http_get, c.http_port, "/api/v1/results")
            assert status == 400 and body["error"].startswith("agent is required")
    asyncio.run(scenario())


def test_promtool_accepts_metrics(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    require(promtool is not None, "promtool (Debian package prometheus)")
    assert promtool is not None

    async def scenario() -> str:
        async with running(tmp_path) as c:
            await feed(c.grpc_port)
            _, text = await asyncio.to_thread(http_get, c.http_port, "/metrics")
            return str(text)
    text = asyncio.run(scenario())
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_housekeeping_fixes_findings_not_seen_within_fixed_after(tmp_path: Path) -> None:
    now = [1_800_000_000.0]

    async def scenario() -> None:
        async with running(tmp_path, clock=lambda: now[0], findings={"fixed_after": "7d"}) as c:
            await feed(c.grpc_port)
            assert await c.on_loop(c.housekeeping()) == (0, 0)
            now[0] += 7 * 86400 + 1
            assert await c.on_loop(c.housekeeping()) == (2, 3), "two findings fixed, three transitions past the 7d retention"
            _, fixed = await asyncio.to_thread(http_get, c.http_port, "/api/v1/findings?state=fixed")
            assert sorted(f["fingerprint"] for f in fixed) == ["sql_id:a1", "sql_id:b2"]
            _, text = await asyncio.to_thread(http_get, c.http_port, "/metrics")
            assert 'xunjian_findings{category="dba",state="fixed"} 2.0' in text
    asyncio.run(scenario())


def test_audit_cli_lists_reviews_and_verify_detects_an_edited_row(tmp_path: Path) -> None:
    import json
    import os
    import sqlite3
    import sys

    def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "xunjian", *args], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "XUNJIAN_URL": url})

    async def scenario() -> None:
        async with running(tmp_path) as c:
            await feed(c.grpc_port)
            url = f"http://127.0.0.1:{c.http_port}"
            _, findings = await asyncio.to_thread(http_get, c.http_port, "/api/v1/findings")
            for f in findings:
                await asyncio.to_thread(http_post, c.http_port, f"/api/v1/findings/{f['id']}/accept",
                                        {"reviewer": "dba.wang", "note": "reviewed"})
            listed = await asyncio.to_thread(cli, url, "audit", "list", "--json")
            entries = [json.loads(line) for line in listed.stdout.splitlines()]
            assert [(e["actor"], e["action"], e["via"]) for e in entries] == [("dba.wang", "finding.accept",
                                                                              "unauthenticated")] * 2
            assert entries[0]["remote"] == "127.0.0.1"
            ok = await asyncio.to_thread(cli, url, "audit", "verify")
            assert ok.returncode == 0 and "audit trail intact: 2 entries" in ok.stdout, ok.stdout + ok.stderr
            db = sqlite3.connect(tmp_path / "collector.db")
            db.execute("UPDATE audit SET actor = 'nobody' WHERE id = 1")
            db.commit()
            db.close()
            broken = await asyncio.to_thread(cli, url, "audit", "verify")
            assert broken.returncode == 1
            assert "entry 1: its content does not match its hash (the entry was edited)" in broken.stdout
    asyncio.run(scenario())


def test_checks_come_in_pages_and_a_bad_page_parameter_is_a_clear_400(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as c:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{c.grpc_port}") as ch:
                agent = Agent(ch)
                await agent.hello(checks=[DISK])
                await agent.batch([r for n in range(7) for r in results(range(n + 1, n + 2), key=f"/d{n}",
                                                                        status=2 if n == 3 else 0)])
                assert await agent.ack() == 7
                await agent.call.done_writing()
            port = c.http_port
            _, everything = await asyncio.to_thread(http_get, port, "/api/v1/checks")
            assert [x["key"] for x in everything] == [f"/d{n}" for n in range(7)]
            pages, after = [], ""
            while True:
                _, page = await asyncio.to_thread(http_get, port, f"/api/v1/checks?limit=3{after}")
                pages.append([x["key"] for x in page])
                if len(page) < 3:
                    break
                after = f"&after={page[-1]['cursor']}"
            assert pages == [["/d0", "/d1", "/d2"], ["/d3", "/d4", "/d5"], ["/d6"]]
            _, bad = await asyncio.to_thread(http_get, port, "/api/v1/checks?status=problems")
            assert [(x["key"], x["status"]) for x in bad] == [("/d3", "CRITICAL")]
            for query, error in (("limit=0", "limit must be at least 1"),
                                 ("limit=ten", "limit must be an integer, got 'ten'"),
                                 ("limit=-5", "limit must not be negative, got -5"),
                                 ("after=nonsense", "after must be the cursor of a row of the previous page, got "
                                                    "'nonsense'"),
                                 ("status=red", "status must be all or problems, got 'red'")):
                assert await asyncio.to_thread(http_get, port, f"/api/v1/checks?{query}") == (400, {"error": error})
            _, capped = await asyncio.to_thread(http_get, port, "/api/v1/checks?limit=999999")
            assert len(capped) == 7, "a limit above the maximum is the maximum"
    asyncio.run(scenario())
