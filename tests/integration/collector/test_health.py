"""/healthz reports the health of the parts: a store that cannot write (disk full) turns it 503 with the reason,
the agents' batches are not acknowledged meanwhile, and it turns healthy again once writes succeed."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
import pytest

from collector.sqlstore import SqlStore
from tests.integration.collector.conftest import Agent, http_get, results, running

pytestmark = pytest.mark.integration


def test_healthz_turns_503_while_store_writes_fail_and_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with running(tmp_path, store={"history": "all"}) as c, grpc.aio.insecure_channel(f"127.0.0.1:{c.grpc_port}") as ch:
            agent = Agent(ch)
            await agent.hello()
            await agent.batch(results(range(1, 6)))
            assert await agent.ack() == 5
            status, body = await asyncio.to_thread(http_get, c.http_port, "/healthz")
            assert status == 200 and body["status"] == "ok"
            assert isinstance(c.store, SqlStore)
            writer_conn = c.store._writer
            pages = writer_conn.execute("PRAGMA page_count").fetchone()[0]
            writer_conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite now answers "database or disk is full"
            await agent.batch(results(range(6, 900), status=2))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await agent.ack()
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            status, body = await asyncio.to_thread(http_get, c.http_port, "/healthz")
            assert status == 503
            assert body["status"] == "error"
            assert body["error"] == "store: store writes failing: OperationalError: database or disk is full"
            assert body["components"]["grpc"]["ok"] is True
            writer_conn.execute("PRAGMA max_page_count = 1073741823")
            again = Agent(ch)
            assert await again.hello() == 5, "nothing of the failed batch was stored"
            await again.batch(results(range(6, 900), status=2))
            assert await again.ack() == 899
            status, body = await asyncio.to_thread(http_get, c.http_port, "/healthz")
            assert (status, body["status"]) == (200, "ok")

    with caplog.at_level(logging.INFO, logger="xunjian"):
        asyncio.run(scenario())
    lines = [r.getMessage() for r in caplog.records]
    assert ("store write failed: OperationalError: database or disk is full; nothing of it is acknowledged, agents "
            "will send it again") in lines
    assert "store writes succeed again" in lines
