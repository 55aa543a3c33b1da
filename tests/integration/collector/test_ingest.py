"""gRPC ingest against a real grpc.aio collector on 127.0.0.1 with a raw stub client."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from protos import patrol_pb2
from tests.integration.collector.conftest import Agent, results, running

pytestmark = pytest.mark.integration


def channel(port: int) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(f"127.0.0.1:{port}")


def test_a_frame_before_hello_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as c, channel(c.grpc_port) as ch:
            agent = Agent(ch)
            await agent.batch(results(range(1, 3)))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await agent.call.read()
            assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert err.value.details() == "first frame must be Hello"
    asyncio.run(scenario())


def test_oversized_batch_is_refused_while_another_stream_keeps_working(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, ingest={"max_batch_results": 10}) as c, channel(c.grpc_port) as ch:
            good, bad = Agent(ch), Agent(ch)
            await good.hello("good-agent")
            await bad.hello("big-agent")
            await bad.batch(results(range(1, 12)))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await bad.call.read()
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert err.value.details() == ("agent big-agent: batch of 11 results exceeds the collector's "
                                           "max_batch_results 10; send at most 10 per batch")
            await good.batch(results(range(1, 11)))
            assert await good.ack() == 10
            assert c.servicer is not None and c.servicer.stats.refused_batches_total == 1
    asyncio.run(scenario())


def test_duplicate_seqs_are_dropped_and_acked(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as c, channel(c.grpc_port) as ch:
            agent = Agent(ch)
            assert await agent.hello() == 0
            await agent.batch(results(range(1, 11)))
            assert await agent.ack() == 10
            await agent.batch(results(range(5, 16)))
            assert await agent.ack() == 15
            await agent.batch(results(range(1, 4)))
            assert await agent.ack() == 15
            assert c.servicer is not None
            assert (c.servicer.stats.results_total, c.servicer.stats.duplicates_total) == (15, 9)
            await agent.call.done_writing()
    asyncio.run(scenario())


def test_ack_comes_after_commit(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as c, channel(c.grpc_port) as ch:
            agent = Agent(ch)
            await agent.hello()
            await agent.batch(results(range(1, 3)) + results(range(3, 4), status=2))
            assert await agent.ack() == 3
            # Read with a separate connection right after the ack: the effects are already committed.
            with sqlite3.connect(tmp_path / "collector.db") as db:
                assert db.execute("SELECT high_water_seq FROM agents WHERE id = 'his-app-01'").fetchone() == (3,)
                assert db.execute("SELECT status, priority, title FROM incidents").fetchall() == [
                    ("open", "high", "Data disk CRITICAL on his-app-01 /data")]
                assert db.execute("SELECT from_status, to_status, seq FROM transitions ORDER BY id").fetchall() == [
                    (None, 0, 1), (0, 2, 3)]
    asyncio.run(scenario())


def test_restart_keeps_high_water_mark_and_open_incidents(tmp_path: Path) -> None:
    async def first() -> None:
        async with running(tmp_path) as c, channel(c.grpc_port) as ch:
            agent = Agent(ch)
            await agent.hello()
            await agent.batch(results(range(1, 6), status=2))
            assert await agent.ack() == 5
            await agent.call.done_writing()

    async def second() -> None:
        async with running(tmp_path) as c, channel(c.grpc_port) as ch:
            agent = Agent(ch)
            assert await agent.hello() == 5
            await agent.batch(results(range(4, 8), status=2))
            assert await agent.ack() == 7
            await agent.batch(results(range(8, 9), status=0))
            assert await agent.ack() == 8
            with sqlite3.connect(tmp_path / "collector.db") as db:
                assert db.execute("SELECT COUNT(*), MIN(status) FROM incidents").fetchone() == (1, "resolved")
            assert c.servicer is not None and c.servicer.stats.duplicates_total == 2
    asyncio.run(first())
    asyncio.run(second())


def test_heartbeat_updates_the_agent_and_health_is_serving(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as c, channel(c.grpc_port) as ch:
            reply = await health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(service="xunjian.v1.Collector"))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            agent = Agent(ch)
            await agent.hello()
            await agent.send(heartbeat=patrol_pb2.Heartbeat(last_seq=40, spool_depth=12, dropped_total=3))
            await agent.batch(results(range(1, 2)))
            assert await agent.ack() == 1
            a = c.engine.agents["his-app-01"]
            assert (a.last_seq, a.spool_depth, a.dropped_total, a.connections) == (40, 12, 3, 1)
    asyncio.run(scenario())


def test_agent_lost_opens_and_closes_an_incident(tmp_path: Path) -> None:
    now = [1_800_000_000.0]

    async def scenario() -> None:
        async with running(tmp_path, clock=lambda: now[0], agents={"lost_after": "90s"}) as c, \
                channel(c.grpc_port) as ch:
            agent = Agent(ch)
            await agent.hello()
            now[0] += 60
            await c.on_loop(c.check_lost_agents())
            assert not c.engine.agents["his-app-01"].lost
            now[0] += 31
            await c.on_loop(c.check_lost_agents())
            assert c.engine.agents["his-app-01"].lost
            await agent.batch(results(range(1, 2)))
            assert await agent.ack() == 1
            with sqlite3.connect(tmp_path / "collector.db") as db:
                assert db.execute("SELECT kind, priority, status FROM incidents").fetchall() == [
                    ("agent_lost", "high", "resolved")]
    asyncio.run(scenario())


def test_store_error_aborts_the_stream_without_ack_and_the_resend_is_taken(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path) as c, channel(c.grpc_port) as ch:
            agent = Agent(ch)
            await agent.hello()
            await agent.batch(results(range(1, 3)))
            assert await agent.ack() == 2
            with sqlite3.connect(tmp_path / "collector.db") as db:
                db.execute("ALTER TABLE series RENAME TO series_away")
            await agent.batch(results(range(3, 4), status=2))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await agent.ack()
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            assert err.value.details().startswith("collector store error, resend: no such table: series")
            with sqlite3.connect(tmp_path / "collector.db") as db:
                db.execute("ALTER TABLE series_away RENAME TO series")
            again = Agent(ch)
            assert await again.hello() == 2
            await again.batch(results(range(3, 4), status=2))
            assert await again.ack() == 3
            with sqlite3.connect(tmp_path / "collector.db") as db:
                assert db.execute("SELECT status, last_status FROM incidents").fetchall() == [("open", 2)], \
                    "the incident decided before the failed commit is decided again on the resend"
            assert c.engine.agents["his-app-01"].connections == 1
    asyncio.run(scenario())


def test_agent_failing_over_between_collectors_sharing_a_store(tmp_path: Path) -> None:
    """Nothing may assume one collector: each Hello checks the stored mark and rebuilds the agent if it moved."""
    async def stream(port: int, first: int, last: int, status: int) -> int:
        async with channel(port) as ch:
            agent = Agent(ch)
            await agent.hello()
            await agent.batch(results(range(first, last + 1), status=status))
            acked = await agent.ack()
            await agent.call.done_writing()
            return acked

    def incidents() -> list[tuple[str, int, int]]:
        with sqlite3.connect(tmp_path / "collector.db") as db:
            return db.execute("SELECT status, last_status, reopened FROM incidents ORDER BY id").fetchall()

    async def scenario() -> None:
        async with running(tmp_path) as a, running(tmp_path) as b:
            assert await stream(a.grpc_port, 1, 3, status=2) == 3
            assert incidents() == [("open", 2, 0)]
            assert await stream(b.grpc_port, 4, 5, status=0) == 5, "b continues from the stored mark"
            assert incidents() == [("resolved", 0, 0)]
            assert await stream(a.grpc_port, 6, 6, status=2) == 6
            assert incidents() == [("open", 2, 1)], "a knew of b's resolve before deciding: it reopens that incident"
    asyncio.run(scenario())
