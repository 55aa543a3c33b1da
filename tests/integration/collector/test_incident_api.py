"""The incident operator surface on a real collector: actions with roles and their audit entries, refusals with
409, silences added, listed and removed (an incident opened meanwhile is recorded as silenced), an agent
decommissioned with its incidents ended."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from collector.access import Actor
from protos import patrol_pb2
from tests.integration.collector.conftest import Agent, http_get, http_post, results, running

pytestmark = pytest.mark.integration

DISK = patrol_pb2.CheckInfo(id="his.disk", title="Data disk", kind="host.disk", priority="high", system="HIS")
WEB = patrol_pb2.CheckInfo(id="his.web", title="HIS web", kind="http", priority="medium", system="HIS")


async def fail(port: int, first: int, check: str = "his.disk", status: int = 2) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
        agent = Agent(ch)
        await agent.hello(checks=[DISK, WEB])
        await agent.batch(results(range(first, first + 1), status=status, check=check))
        assert await agent.ack() == first
        await agent.call.done_writing()


def test_incident_actions_roles_and_audit(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as c:
            await fail(c.grpc_port, 1)
            port = c.http_port

            async def post(path: str, body: Any) -> tuple[int, Any]:
                return await asyncio.to_thread(http_post, port, path, body)

            (inc,) = (await asyncio.to_thread(http_get, port, "/api/v1/incidents"))[1]
            iid = inc["id"]
            assert (inc["status"], inc["severity"], inc["host"], inc["flapping"]) == ("open", "CRITICAL",
                                                                                     "his-app-01.local", False)
            assert c.api is not None
            viewer = Actor("wall", "viewer", "token:wall")
            denied = c.api.handle("POST", f"/api/v1/incidents/{iid}/ack", {}, b'{"by": "x"}', viewer)
            assert (denied.status, json.loads(denied.body)["error"]) == (
                403, "POST /api/v1/incidents/{id}/ack needs the operator role; wall has viewer")
            assert c.api.handle("GET", f"/api/v1/incidents/{iid}", {}, b"", viewer).status == 200

            assert (await post(f"/api/v1/incidents/{iid}/ack", {}))[0] == 400, "who acts is required"
            status, acked = await post(f"/api/v1/incidents/{iid}/ack", {"by": "zhang.san", "note": "looking"})
            assert (status, acked["status"], acked["acknowledged_by"]) == (200, "acknowledged", "zhang.san")
            status, body = await post(f"/api/v1/incidents/{iid}/ack", {"by": "li.si"})
            assert (status, body["error"]) == (409, f"incident {iid} is acknowledged (by zhang.san) already")
            operator = Actor("ops-token", "operator", "token:ops")
            assigned = c.api.handle("POST", f"/api/v1/incidents/{iid}/assign", {},
                                    b'{"by": "someone else", "assignee": "wang.wu"}', operator)
            assert json.loads(assigned.body)["assignee"] == "wang.wu"
            assert (await post(f"/api/v1/incidents/{iid}/rca", {"by": "x", "cause": "c"}))[0] == 400
            status, body = await post(f"/api/v1/incidents/{iid}/close", {"by": "zhang.san"})
            assert (status, "resolve it first" in body["error"]) == (409, True)
            assert (await post(f"/api/v1/incidents/{iid}/resolve", {"by": "zhang.san", "note": "disk cleaned"}))[0] == 200
            await post(f"/api/v1/incidents/{iid}/rca", {"by": "zhang.san", "cause": "log rotation off",
                                                        "solution": "logrotate daily"})
            status, closed = await post(f"/api/v1/incidents/{iid}/close", {"by": "zhang.san"})
            assert (status, closed["status"], closed["resolved_by"]) == (200, "closed", "zhang.san")
            assert (await post("/api/v1/incidents/999/ack", {"by": "x"}))[0] == 404

            _, audit = await asyncio.to_thread(http_get, port, "/api/v1/audit")
            assert [(e["action"], e["actor"], e["role"]) for e in reversed(audit)] == [
                ("incident.ack", "zhang.san", "admin"), ("incident.assign", "ops-token", "operator"),
                ("incident.resolve", "zhang.san", "admin"), ("incident.rca", "zhang.san", "admin"),
                ("incident.close", "zhang.san", "admin")], "an authenticated caller is who they are"
            assert (await asyncio.to_thread(http_get, port, "/api/v1/audit/verify"))[1]["ok"]

            series = c.engine.agents["his-app-01"].series[("his.disk", "", "/data")]
            for _ in range(100):  # the engine learns of the manual resolve on its own loop
                if series.handled:
                    break
                await asyncio.sleep(0.02)
            await fail(c.grpc_port, 2)
            _, active = await asyncio.to_thread(http_get, port, "/api/v1/incidents")
            assert active == [], "resolved by hand while still failing: no new incident until the disk is OK"
    asyncio.run(scenario())


def test_silences_through_the_api(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as c:
            port = c.http_port

            async def post(path: str, body: Any) -> tuple[int, Any]:
                return await asyncio.to_thread(http_post, port, path, body)

            status, body = await post("/api/v1/silences", {"by": "ops", "reason": "upgrade",
                                                           "matchers": {"check": "his.web*"}})
            assert (status, body["error"]) == (400, "a one-off silence needs ends_at or duration")
            status, body = await post("/api/v1/silences", {"by": "ops", "matchers": {"check": "x"}, "duration": 60})
            assert (status, body["error"]) == (400, "reason is required")
            status, s = await post("/api/v1/silences", {"by": "ops", "reason": "HIS upgrade tonight",
                                                        "matchers": {"system": "HIS", "check": "his.web*"},
                                                        "duration": 3600})
            assert (status, s["state"], s["kind"], s["created_by"]) == (201, "active", "once", "ops")
            status, body = await post("/api/v1/silences", {"by": "ops", "reason": "r", "kind": "until_resolved",
                                                           "matchers": {"check": "lis.*"}})
            assert (status, body["error"].startswith("no open incident matches")) == (409, True)
            await fail(c.grpc_port, 1, check="his.web")
            (inc,) = (await asyncio.to_thread(http_get, port, "/api/v1/incidents"))[1]
            assert inc["silence_id"] == s["id"]
            shown = (await asyncio.to_thread(http_get, port, f"/api/v1/incidents/{inc['id']}"))[1]
            assert [e["event"] for e in shown["timeline"]] == ["opened", "silenced"]
            _, listed = await asyncio.to_thread(http_get, port, "/api/v1/silences")
            assert [x["id"] for x in listed] == [s["id"]]
            status, removed = await post(f"/api/v1/silences/{s['id']}/remove", {"by": "ops", "reason": "done"})
            assert (status, removed["state"], removed["removed_by"]) == (200, "removed", "ops")
            assert (await asyncio.to_thread(http_get, port, "/api/v1/silences"))[1] == []
            assert len((await asyncio.to_thread(http_get, port, "/api/v1/silences?all=1"))[1]) == 1
            await c.on_loop(c.check_deadlines())
            shown = (await asyncio.to_thread(http_get, port, f"/api/v1/incidents/{inc['id']}"))[1]
            assert shown["silence_id"] is None and shown["timeline"][-1]["event"] == "unsilenced"
            _, audit = await asyncio.to_thread(http_get, port, "/api/v1/audit")
            assert [e["action"] for e in reversed(audit)] == ["silence.add", "silence.remove"]
    asyncio.run(scenario())


def test_retiring_an_agent_resolves_its_incidents_through_the_lifecycle(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as c:
            await fail(c.grpc_port, 1)
            port = c.http_port
            (inc,) = (await asyncio.to_thread(http_get, port, "/api/v1/incidents"))[1]
            await asyncio.to_thread(http_post, port, f"/api/v1/incidents/{inc['id']}/ack", {"by": "zhang.san"})
            status, out = await asyncio.to_thread(http_post, port, "/api/v1/agents/his-app-01/retire",
                                                  {"reason": "server retired"})
            assert (status, out["incidents_resolved"]) == (200, 1), "an acknowledged incident is resolved too"
            shown = (await asyncio.to_thread(http_get, port, f"/api/v1/incidents/{inc['id']}"))[1]
            assert (shown["status"], shown["resolution"]) == ("resolved", "agent retired: server retired")
            assert [e["event"] for e in shown["timeline"]][-1] == "resolved"
    asyncio.run(scenario())
