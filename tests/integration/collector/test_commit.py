"""The two promises of the store writer, shown on a real collector: batches of several streams share one
transaction (group commit), and no Ack leaves before the commit of what it acknowledges (a writer that blocks)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from collector.events import BatchEffects
from collector.sqlstore import SqlStore, SqlTx
from collector.writer import Writer
from tests.integration.collector.conftest import Agent, results, running

pytestmark = pytest.mark.integration
WAIT = 20.0


class Journal:
    """What the store did, in order: each batch written (with its transaction) and each commit."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.events: list[tuple[str, Any, Any]] = []
        self.lock = threading.Lock()
        write_batch, transaction = SqlTx.write_batch, SqlStore.transaction
        journal = self

        def recording_write_batch(tx: SqlTx, effects: BatchEffects) -> None:
            write_batch(tx, effects)
            journal.add("batch", id(tx), (effects.agent_id, effects.high_water_seq))

        @contextmanager
        def recording_transaction(store: SqlStore) -> Iterator[SqlTx]:
            with transaction(store) as tx:
                yield tx
            journal.add("commit", id(tx), None)

        monkeypatch.setattr(SqlTx, "write_batch", recording_write_batch)
        monkeypatch.setattr(SqlStore, "transaction", recording_transaction)

    def add(self, what: str, tx: Any, detail: Any) -> None:
        with self.lock:
            self.events.append((what, tx, detail))

    def batches(self) -> dict[Any, list[Any]]:
        with self.lock:
            out: dict[Any, list[Any]] = {}
            for what, tx, detail in self.events:
                if what == "batch":
                    out.setdefault(tx, []).append(detail)
            return out


def block(writer: Writer) -> threading.Event:
    """Hold the writer inside a transaction until the returned event is set."""
    gate, inside = threading.Event(), threading.Event()

    def wait(_tx: object) -> None:
        inside.set()
        gate.wait(WAIT)

    writer.submit(wait)
    assert inside.wait(WAIT), "the writer never started the blocking job"
    return gate


async def until(predicate: Any, what: str) -> None:
    for _ in range(int(WAIT / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_batches_of_several_streams_are_committed_in_one_transaction(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    journal = Journal(monkeypatch)

    async def scenario() -> None:
        async with running(tmp_path) as c, grpc.aio.insecure_channel(f"127.0.0.1:{c.grpc_port}") as ch:
            agents = {name: Agent(ch) for name in ("his-app-01", "lis-app-01", "pacs-01")}
            for name, agent in agents.items():
                await agent.hello(name)
            assert c.writer is not None
            gate = block(c.writer)
            for agent in agents.values():
                await agent.batch(results(range(1, 51)))
            await until(lambda: all(c.engine.agents[n].accepted_seq == 50 for n in agents), "three batches queued")
            gate.set()
            assert [await agent.ack() for agent in agents.values()] == [50, 50, 50]

    asyncio.run(scenario())
    [together] = [b for b in journal.batches().values() if len(b) > 1]
    assert sorted(together) == [("his-app-01", 50), ("lis-app-01", 50), ("pacs-01", 50)]


def test_no_ack_before_its_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = Journal(monkeypatch)

    async def scenario() -> None:
        async with running(tmp_path) as c, grpc.aio.insecure_channel(f"127.0.0.1:{c.grpc_port}") as ch:
            agent = Agent(ch)
            await agent.hello()
            assert c.writer is not None
            gate = block(c.writer)
            await agent.batch(results(range(1, 11), status=2))
            await until(lambda: c.engine.agents["his-app-01"].accepted_seq == 10, "the batch applied and queued")
            reply = asyncio.ensure_future(agent.ack())
            done, _ = await asyncio.wait({reply}, timeout=0.5)
            assert not done, "an Ack arrived while its commit was still blocked"
            assert ("batch", ("his-app-01", 10)) not in [(w, d) for w, _, d in journal.events]
            gate.set()
            assert await reply == 10
            journal.add("ack", None, 10)

    asyncio.run(scenario())
    order = [(what, detail) for what, _, detail in journal.events]
    batch_at = order.index(("batch", ("his-app-01", 10)))
    commit_at = next(i for i in range(batch_at, len(order)) if order[i][0] == "commit")
    assert commit_at < order.index(("ack", 10)), order
