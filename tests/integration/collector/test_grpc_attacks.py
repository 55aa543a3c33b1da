"""The gRPC ingest against hostile peers, over real mTLS with certificates from the collector's own CA: posing as
another agent, revoked certificates, seq jumps and overflow, out-of-order batches, forged incident rules, large
messages, streams that never say Hello, too many streams. The honest agent's results are all stored throughout."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from agent.credentials import make_csr
from collector.access import Actor
from collector.pki import Authority, init_ca
from collector.server import Collector
from protos import patrol_pb2
from tests.integration.collector.conftest import Agent, http_get, results, running

pytestmark = pytest.mark.integration
ADMIN = Actor("test-admin", "admin", "local:test")


@asynccontextmanager
async def mtls(tmp_path: Path, **sections: Any) -> AsyncIterator[tuple[Collector, Authority]]:
    init_ca(tmp_path / "pki")
    sections.setdefault("ingest", {})
    async with running(tmp_path, tls={"mode": "mtls", "dir": str(tmp_path / "pki"),
                                      "server_names": ["127.0.0.1", "localhost"]}, **sections) as c:
        yield c, Authority(tmp_path / "pki")


def channel(c: Collector, authority: Authority, agent_id: str | None) -> grpc.aio.Channel:
    key = cert = None
    if agent_id is not None:
        key, csr = make_csr(agent_id)
        cert = authority.issue_agent(agent_id, csr, dt.timedelta(hours=1)).pem
    creds = grpc.ssl_channel_credentials(root_certificates=authority.cert_pem, private_key=key, certificate_chain=cert)
    return grpc.aio.secure_channel(f"127.0.0.1:{c.grpc_port}", creds)


async def refused(agent: Agent, code: grpc.StatusCode, hello: str | None = None) -> str:
    """The stream's end: the status the collector (or TLS) ended it with. Sends a Hello for `hello` first.

    Pass `hello` only where the refusal depends on the Hello. A collector that refuses by certificate ends the
    stream at its start, and a Hello written after that fails client-side with INTERNAL ("Failed
    execute_batch"), which then becomes the call's status: the race made such tests flaky under load."""
    with pytest.raises(grpc.aio.AioRpcError) as info:
        if hello is not None:
            await agent.send(hello=patrol_pb2.Hello(agent_id=hello))
        await agent.call.read()
    assert info.value.code() == code, info.value
    return str(info.value.details())


def test_another_agents_certificate_cannot_say_hello_as_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with mtls(tmp_path) as (c, ca), channel(c, ca, "his-app-01") as honest, \
                channel(c, ca, "lis-app-02") as other:
            real = Agent(honest)
            assert await real.hello("his-app-01") == 0
            detail = await refused(Agent(other), grpc.StatusCode.PERMISSION_DENIED, "his-app-01")
            assert "lis-app-02" in detail and "his-app-01" in detail
            await real.batch(results(range(1, 11)))
            assert await real.ack() == 10
            assert c.servicer is not None and c.servicer.stats.impersonations_total == 1

    asyncio.run(scenario())


def test_no_client_certificate_or_a_foreign_ca_is_refused_by_tls(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with mtls(tmp_path) as (c, ca):
            async with channel(c, ca, None) as anonymous:
                await refused(Agent(anonymous), grpc.StatusCode.UNAVAILABLE, "his-app-01")
            init_ca(tmp_path / "rogue")
            rogue = Authority(tmp_path / "rogue")
            key, csr = make_csr("his-app-01")
            cert = rogue.issue_agent("his-app-01", csr, dt.timedelta(hours=1)).pem
            creds = grpc.ssl_channel_credentials(ca.cert_pem, key, cert)
            async with grpc.aio.secure_channel(f"127.0.0.1:{c.grpc_port}", creds) as ch:
                await refused(Agent(ch), grpc.StatusCode.UNAVAILABLE, "his-app-01")

    asyncio.run(scenario())


def test_a_revoked_certificate_is_refused_at_its_next_stream(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with mtls(tmp_path) as (c, ca), channel(c, ca, "his-app-01") as ch:
            first = Agent(ch)
            await first.hello("his-app-01")
            await first.call.done_writing()
            assert c.trust is not None
            serials = await asyncio.to_thread(c.trust.revoke_agent, ADMIN, "his-app-01", "laptop stolen")
            assert len(serials) == 0, "this certificate was issued outside the store; revoke it by serial below"
            assert c.identity is not None
            async with channel(c, ca, "his-app-01") as fresh:
                agent = Agent(fresh)
                await agent.hello("his-app-01")
            # a certificate the CA issued and recorded, then revoked
            key, csr = make_csr("his-app-01")
            _, issued = await asyncio.to_thread(_enroll, c, csr)
            creds = grpc.ssl_channel_credentials(ca.cert_pem, key, issued.pem)
            async with grpc.aio.secure_channel(f"127.0.0.1:{c.grpc_port}", creds) as enrolled:
                agent = Agent(enrolled)
                await agent.hello("his-app-01")
                revoked = await asyncio.to_thread(c.trust.revoke_agent, ADMIN, "his-app-01", "laptop stolen")
                assert issued.serial in revoked
            async with grpc.aio.secure_channel(f"127.0.0.1:{c.grpc_port}", creds) as again:
                assert "revoked" in await refused(Agent(again), grpc.StatusCode.PERMISSION_DENIED)

    asyncio.run(scenario())


def _enroll(c: Collector, csr: bytes) -> Any:
    assert c.trust is not None
    token, _ = c.trust.enroll_agent(ADMIN, "his-app-01", 60)
    return c.trust.enroll(token, csr, "test")


def test_seq_attacks_are_refused_and_the_honest_agent_loses_nothing(tmp_path: Path) -> None:
    """Regressions: a batch at seq 10^12 opened invented incidents and moved the mark so later results were dropped;
    2^63-1 made every later commit fail; [100, 5] was acked at 5 and 100 never stored."""

    async def scenario() -> None:
        async with mtls(tmp_path, store={"history": "all"}) as (c, ca), channel(c, ca, "his-app-01") as ch:
            agent = Agent(ch)
            await agent.hello("his-app-01")
            await agent.batch(results(range(1, 6)))
            assert await agent.ack() == 5
            for bad in ([10**12], [2**63 - 1], [100, 7], [6, 6]):
                async with channel(c, ca, "his-app-01") as attacker_ch:
                    attacker = Agent(attacker_ch)
                    await attacker.hello("his-app-01")
                    await attacker.batch([patrol_pb2.Result(seq=s, check_id="ransomware", status=2,  # type: ignore[arg-type]
                                                            summary="ransomware detected") for s in bad])
                    assert "seq" in await refused(attacker, grpc.StatusCode.INVALID_ARGUMENT)
            await agent.batch(results(range(6, 21)))
            assert await agent.ack() == 20
            _, incidents = await asyncio.to_thread(http_get, c.http_port, "/api/v1/incidents?status=all")
            assert incidents == []
            db = sqlite3.connect(tmp_path / "collector.db")
            stored = [r[0] for r in db.execute("SELECT seq FROM results WHERE agent_id = 'his-app-01' ORDER BY seq")]
            assert stored == list(range(1, 21))
            assert db.execute("SELECT high_water_seq FROM agents").fetchone()[0] == 20
            _, metrics = await asyncio.to_thread(http_get, c.http_port, "/metrics")
            assert 'xunjian_ingest_refused_frames_total{reason="seq_ahead"} 2.0' in metrics
            assert 'xunjian_ingest_refused_frames_total{reason="seq_order"} 2.0' in metrics

    asyncio.run(scenario())


def test_forged_incident_rules_cannot_resolve_a_real_incident(tmp_path: Path) -> None:
    """Regression: a Hello that redefined raise_after plus one OK result resolved a real CRITICAL incident."""

    async def scenario() -> None:
        async with mtls(tmp_path) as (c, ca), channel(c, ca, "his-app-01") as ch:
            agent = Agent(ch)
            rule = patrol_pb2.CheckInfo(id="his.disk", title="Data disk", priority="high", raise_after=1,
                                        clear_after=3)
            await agent.hello("his-app-01", [rule])
            await agent.batch(results(range(1, 2), status=2))
            assert await agent.ack() == 1
            await agent.call.done_writing()
            async with channel(c, ca, "his-app-01") as again:
                forged = Agent(again)
                await forged.hello("his-app-01", [patrol_pb2.CheckInfo(id="his.disk", raise_after=1000,
                                                                        clear_after=1)])
                await forged.batch(results(range(2, 3), status=0))
                assert await forged.ack() == 2
            _, open_ = await asyncio.to_thread(http_get, c.http_port, "/api/v1/incidents")
            assert len(open_) == 1, "one OK resolved an incident that needs three"
            _, audit = await asyncio.to_thread(http_get, c.http_port, "/api/v1/audit")
            change = next(e for e in audit if e["action"] == "agent.catalogue")
            assert change["via"].startswith("cert:") and {r["field"] for r in change["detail"]["rules"]} >= {
                "raise_after", "clear_after"}

    asyncio.run(scenario())


def test_large_messages_silent_streams_and_stream_floods_are_bounded(tmp_path: Path) -> None:
    async def scenario() -> None:
        ingest = {"max_message_bytes": "256KiB", "hello_timeout": "1s", "max_streams_per_agent": 2}
        async with mtls(tmp_path, ingest=ingest) as (c, ca), channel(c, ca, "his-app-01") as ch:
            agent = Agent(ch)
            await agent.hello("his-app-01")
            big = Agent(ch)
            await big.hello("his-app-01")
            await big.batch([patrol_pb2.Result(seq=1, check_id="x", summary="y" * 400_000)])
            await refused(big, grpc.StatusCode.RESOURCE_EXHAUSTED)
            silent = Agent(ch)
            await refused(silent, grpc.StatusCode.DEADLINE_EXCEEDED)
            third = Agent(ch)
            await third.send(hello=patrol_pb2.Hello(agent_id="his-app-01"))
            extra = Agent(ch)
            await extra.send(hello=patrol_pb2.Hello(agent_id="his-app-01"))
            codes = []
            for a in (third, extra):
                try:
                    reply = await a.call.read()
                    codes.append(reply.WhichOneof("frame"))
                except grpc.aio.AioRpcError as exc:
                    codes.append(exc.code().name)
            assert "RESOURCE_EXHAUSTED" in codes
            await agent.batch(results(range(1, 4)))
            assert await agent.ack() == 3

    asyncio.run(scenario())


def test_retiring_an_agent_ends_its_stream_removes_its_series_and_resolves_its_incidents(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with mtls(tmp_path) as (c, ca), channel(c, ca, "his-app-01") as ch:
            agent = Agent(ch)
            await agent.hello("his-app-01")
            await agent.batch(results(range(1, 3), status=2))
            assert await agent.ack() == 2
            assert c.trust is not None
            row = await asyncio.to_thread(c.trust.retire, ADMIN, "his-app-01", "server decommissioned")
            assert row["series_removed"] == 1 and row["incidents_resolved"] == 1
            with pytest.raises(grpc.aio.AioRpcError):
                await agent.call.read()
            _, agents = await asyncio.to_thread(http_get, c.http_port, "/api/v1/agents")
            _, checks = await asyncio.to_thread(http_get, c.http_port, "/api/v1/checks")
            _, incidents = await asyncio.to_thread(http_get, c.http_port, "/api/v1/incidents?status=all")
            assert agents == [] and checks == []
            assert incidents[0]["resolution"] == "agent retired: server decommissioned"
            async with channel(c, ca, "his-app-01") as again:
                assert "retired" in await refused(Agent(again), grpc.StatusCode.PERMISSION_DENIED)
            await c.on_loop(c.check_lost_agents())
            _, incidents = await asyncio.to_thread(http_get, c.http_port, "/api/v1/incidents")
            assert incidents == [], "a retired agent is never 'lost'"

    asyncio.run(scenario())


def test_a_collector_reload_is_audited_applied_or_refused(tmp_path: Path) -> None:
    from collector.config import load_config

    source = tmp_path / "collector.yaml"
    source.write_text("listen: {grpc: '127.0.0.1:0', http: '127.0.0.1:0', enroll: '127.0.0.1:0'}\n"
                      "tls: {mode: insecure}\nhttp: {auth: none}\nagents: {lost_after: 90s}\n")
    c = Collector(load_config(source), source=source)
    c.start()
    try:
        source.write_text(source.read_text().replace("90s", "60s"))
        assert c.reload()[0]
        source.write_text(source.read_text().replace("60s", "soon"))
        assert not c.reload()[0]
        assert c.writer is not None
        c.writer.submit(lambda tx: None).result(10)
        assert c.store is not None
        entries = c.store.list_audit()
        assert [(e["action"], e["detail"]["ok"], e["via"]) for e in entries] == [
            ("collector.reload", True, "signal:SIGHUP"), ("collector.reload", False, "signal:SIGHUP")]
        assert "lost_after" in entries[1]["detail"]["error"]
    finally:
        c.stop()
