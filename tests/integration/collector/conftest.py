"""A real collector in-process on 127.0.0.1 (ephemeral ports) and a raw gRPC stub client."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc

from collector.config import CollectorConfig
from collector.server import Collector
from protos import patrol_pb2, patrol_pb2_grpc
from tests.conftest import calendar_stand_ins


def config(data_dir: Path, **sections: Any) -> CollectorConfig:
    """Loopback ports; plain-text gRPC and an unauthenticated API unless the test passes tls/http sections."""
    listen = {"grpc": "127.0.0.1:0", "http": "127.0.0.1:0", "enroll": "127.0.0.1:0"}
    sections.setdefault("tls", {"mode": "insecure"})
    sections.setdefault("http", {"auth": "none"})
    data_dir.mkdir(parents=True, exist_ok=True)
    sections.setdefault("calendar", {"files": [str(p) for p in calendar_stand_ins(data_dir)]})
    return CollectorConfig.for_data_dir(data_dir, listen=listen, **sections)


@asynccontextmanager
async def running(data_dir: Path, clock: Callable[[], float] = time.time, **sections: Any) -> AsyncIterator[Collector]:
    """A collector started in this process (its own event loop thread); the test's loop stays free meanwhile."""
    collector = Collector(config(data_dir, **sections), clock=clock)
    await asyncio.to_thread(collector.start)
    try:
        yield collector
    finally:
        await asyncio.to_thread(collector.stop, 5.0)


class Agent:
    """A raw stream: write frames, read replies, as a test scripts them."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.call = patrol_pb2_grpc.CollectorStub(channel).Stream()

    async def send(self, **frame: Any) -> None:
        await self.call.write(patrol_pb2.AgentFrame(**frame))

    async def hello(self, agent_id: str = "his-app-01", checks: list[patrol_pb2.CheckInfo] | None = None) -> int:
        await self.send(hello=patrol_pb2.Hello(agent_id=agent_id, hostname=f"{agent_id}.local",
                                               labels={"site": "main"}, agent_version="test",
                                               checks=checks or [patrol_pb2.CheckInfo(
                                                   id="his.disk", title="Data disk", priority="high",
                                                   system="HIS", raise_after=1, clear_after=1)]))
        reply = await self.call.read()
        assert reply.WhichOneof("frame") == "welcome"
        return int(reply.welcome.high_water_seq)

    async def batch(self, results: list[patrol_pb2.Result]) -> None:
        await self.send(batch=patrol_pb2.Batch(results=results))

    async def ack(self) -> int:
        reply = await self.call.read()
        assert reply.WhichOneof("frame") == "ack", reply
        return int(reply.ack.up_to_seq)


def results(seqs: range, status: int = 0, check: str = "his.disk", key: str = "/data") -> list[patrol_pb2.Result]:
    return [patrol_pb2.Result(seq=s, check_id=check, key=key, status=status, value=float(s),  # type: ignore[arg-type]
                              unit="percent", summary=f"result {s}", outcome="ok") for s in seqs]


def http_get(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
            body = r.read().decode()
            return r.status, (json.loads(body) if r.headers.get_content_type() == "application/json" else body)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read().decode())


def http_post(port: int, path: str, body: Any) -> tuple[int, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read().decode())
