"""The gRPC servicer: translates frames to state-engine calls and writer jobs; acks only after commit.

Frames are read in order; each Batch is applied to the in-memory state engine at once and its effects
queued to the writer, and a second task on the same stream sends Ack(up_to_seq) as each commit lands,
so an agent may keep several batches in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from collector.audit import AuditEntry
from collector.eventlog import (
    agent_connected,
    agent_disconnected,
    catalogue_changed,
    checks_ended,
    frame_refused,
    incarnation_restarted,
    incidents_committed,
    results_clamped,
    spool_dropped,
)
from collector.events import AgentHeartbeat, AgentHello, BatchEffects, CheckRule, HelloEffects, IncidentAction
from collector.identity import Identify, insecure_identity
from collector.loop import EventLoop
from collector.sanity import FrameRefused, check_hello
from collector.state import StateEngine
from collector.store import Store, StoreTx
from collector.writer import Writer
from protos import patrol_pb2, patrol_pb2_grpc
from service.lifecycle import Health, Host

log = logging.getLogger("xunjian.collector.ingest")
SERVICE_NAME = "xunjian.v1.Collector"


@dataclass
class IngestStats:
    """Counters read at scrape time (single writer: the event loop)."""

    results_total: int = 0
    batches_total: int = 0
    duplicates_total: int = 0
    transitions_total: int = 0
    refused_batches_total: int = 0
    streams: int = 0
    hello_timeouts_total: int = 0
    impersonations_total: int = 0
    streams_refused_total: int = 0


MAX_RULE_COUNT = 10_000
"""raise_after / clear_after above this are clamped: no real check waits for ten thousand results."""


def hello_record(hello: patrol_pb2.Hello, at: float) -> AgentHello:
    checks = [CheckRule(c.id, c.target, c.title, c.kind, c.system, c.priority or "medium",
                        min(c.raise_after or 1, MAX_RULE_COUNT), min(c.clear_after or 1, MAX_RULE_COUNT), c.interval_s,
                        c.schedule, c.runbook, dict(c.labels), c.parent, c.for_s) for c in hello.checks]
    return AgentHello(hello.agent_id, hello.hostname, dict(hello.labels), list(hello.roles), hello.agent_version,
                      hello.platform, hello.last_seq, checks, at, hello.incarnation)


def catalogue_audit(hello: AgentHello, effects: HelloEffects, via: str, peer: str) -> AuditEntry | None:
    """The audit entry of a Hello that changed what the collector knew of the agent's checks, or None."""
    if not (effects.rule_changes or effects.added or effects.ended or effects.new_incarnation):
        return None
    detail: dict[str, object] = {}
    if effects.rule_changes:
        detail["rules"] = [{"check": c.check_id, "target": c.target, "field": c.field, "old": c.old, "new": c.new}
                           for c in effects.rule_changes]
    if effects.added:
        detail["added"] = [f"{c}@{t}" if t else c for c, t in effects.added]
    if effects.ended:
        detail["removed"] = [f"{c}@{t}" if t else c for c, t in effects.ended]
    if effects.new_incarnation:
        detail["incarnation"] = {"old": effects.previous_incarnation, "new": hello.incarnation,
                                 "seq_base": effects.seq_base}
    action = "agent.catalogue" if not effects.new_incarnation else "agent.incarnation"
    return AuditEntry(hello.at, f"agent {hello.agent_id}", "agent", via, peer, action, f"agent {hello.agent_id}",
                      detail)


def _write_hello(hello: AgentHello, effects: HelloEffects, audit: AuditEntry | None) -> Callable[[StoreTx], None]:
    def job(tx: StoreTx) -> None:
        tx.write_hello(hello)
        if effects.new_incarnation:
            tx.restart_sequence(hello.agent_id, effects.seq_base)
        if effects.ended:
            tx.end_series(hello.agent_id, effects.ended)
        tx.write_incident_actions(effects.incidents)
        if audit is not None:
            tx.audit(audit)
    return job


def log_after_commit(fut: Future[Any], actions: Sequence[IncidentAction]) -> None:
    """Log `actions` once the commit carrying them has succeeded (a failed one is retried by the agent)."""
    if actions:
        fut.add_done_callback(lambda f: None if f.cancelled() or f.exception() else incidents_committed(actions))


def _write_heartbeat(beat: AgentHeartbeat, actions: Sequence[IncidentAction]) -> Callable[[StoreTx], None]:
    def job(tx: StoreTx) -> None:
        tx.write_heartbeat(beat)
        tx.write_incident_actions(actions)
    return job


def _write_batch(effects: BatchEffects) -> Callable[[StoreTx], None]:
    def job(tx: StoreTx) -> None:
        tx.write_batch(effects)
    return job


class IngestServicer(patrol_pb2_grpc.CollectorServicer):
    def __init__(self, engine: StateEngine, writer: Writer, store: Store, *, max_batch_results: int,
                 collector_id: str, clock: Callable[[], float] = time.time, identify: Identify = insecure_identity,
                 hello_timeout: float = 10.0, max_streams_per_agent: int = 4) -> None:
        self.engine = engine
        self.writer = writer
        self.store = store
        self.max_batch_results = max_batch_results
        self.collector_id = collector_id
        self.clock = clock
        self.identify = identify
        """Who the peer is, from its certificate (collector/identity.py); None when the transport says nobody."""
        self.hello_timeout = hello_timeout
        self.max_streams_per_agent = max_streams_per_agent
        self.stats = IngestStats()
        self._needs_reload: set[str] = set()
        """Agents whose in-memory state ran ahead of a failed commit; rebuilt from the store at their next Hello."""
        self._open: dict[str, int] = {}
        """Streams per identity, counted from the moment the identity is known (before the Hello is stored)."""
        self._streams: dict[str, set[grpc.aio.ServicerContext[Any, Any]]] = {}
        """The open streams of each agent, so that retiring it ends them."""
        self._ending: set[asyncio.Future[None]] = set()

    def end_agent(self, agent_id: str) -> None:
        """The agent was retired: end its streams and forget its state (call on the event loop)."""
        for context in list(self._streams.get(agent_id, ())):
            self._ending.add(asyncio.ensure_future(_end_stream(context, f"agent {agent_id} was retired")))
            self._ending = {f for f in self._ending if not f.done()}
        self.engine.forget(agent_id)

    async def Stream(self, request_iterator: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        peer = context.peer()
        identity = self.identify(context)
        if identity.refused:
            self.stats.streams_refused_total += 1
            log.warning("stream from %s (%s) refused: %s", peer, identity.via, identity.refused,
                        extra={"event": "stream.refused", "agent": identity.agent_id or "", "peer": peer})
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, identity.refused)
        try:
            first = await asyncio.wait_for(context.read(), self.hello_timeout)
        except asyncio.TimeoutError:
            self.stats.hello_timeouts_total += 1
            log.warning("stream from %s closed: no Hello within %gs", peer, self.hello_timeout,
                        extra={"event": "stream.no_hello", "peer": peer})
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"no Hello within {self.hello_timeout:g}s")
        if first is grpc.aio.EOF:
            return
        if first.WhichOneof("frame") != "hello":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "first frame must be Hello")
        claimed = first.hello.agent_id
        if identity.agent_id is not None and claimed != identity.agent_id:
            self.stats.impersonations_total += 1
            log.warning("agent %s (certificate %s, from %s) said Hello as agent %r: refused", identity.agent_id,
                        identity.via, peer, claimed[:128],
                        extra={"event": "agent.impersonation", "agent": identity.agent_id, "peer": peer})
            await context.abort(grpc.StatusCode.PERMISSION_DENIED,
                                f"this certificate is agent {identity.agent_id}; it may not speak as {claimed[:128]!r}")
        try:
            check_hello(first.hello)
        except FrameRefused as exc:
            await self._refuse(context, claimed[:128] or "(no id)", peer, exc)
        agent_id = claimed
        if self._open.get(agent_id, 0) >= self.max_streams_per_agent:
            self.stats.streams_refused_total += 1
            log.warning("agent %s from %s refused: already %d streams open (max_streams_per_agent)", agent_id, peer,
                        self._open[agent_id], extra={"event": "stream.refused", "agent": agent_id, "peer": peer})
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                f"agent {agent_id} already has {self._open[agent_id]} streams open")
        self._open[agent_id] = self._open.get(agent_id, 0) + 1
        streams = self._streams.setdefault(agent_id, set())
        streams.add(context)
        try:
            await self._serve(agent_id, first.hello, identity.via, peer, context)
        finally:
            streams.discard(context)
            if not streams:
                self._streams.pop(agent_id, None)
            left = self._open.get(agent_id, 1) - 1
            if left:
                self._open[agent_id] = left
            else:
                self._open.pop(agent_id, None)

    async def _refuse(self, context: grpc.aio.ServicerContext[Any, Any], agent_id: str, peer: str,
                      exc: FrameRefused) -> None:
        self.engine.sanity.refuse(exc.reason)
        frame_refused(agent_id, peer, exc.reason, str(exc))
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"agent {agent_id}: {exc}")

    async def _serve(self, agent_id: str, first: patrol_pb2.Hello, via: str, peer: str,
                     context: grpc.aio.ServicerContext[Any, Any]) -> None:
        hello = hello_record(first, self.clock())
        try:
            stored = await asyncio.to_thread(self.store.high_water_seq, agent_id)
            known = self.engine.agents.get(agent_id)
            if agent_id in self._needs_reload or stored != (known.stored_seq if known else 0):
                await self._reload(agent_id)
            effects = self.engine.hello(hello)
            audit = catalogue_audit(hello, effects, via, peer)
            fut = self.writer.submit(_write_hello(hello, effects, audit))
            log_after_commit(fut, effects.incidents)
            await asyncio.wrap_future(fut)
        except Exception as exc:
            self._needs_reload.add(agent_id)
            log.warning("agent %s turned away: the store could not record its Hello: %s", agent_id, exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"collector store error, retry later: {exc}")
        if effects.new_incarnation:
            incarnation_restarted(agent_id, effects.previous_incarnation, hello.incarnation, effects.seq_base)
        if effects.rule_changes or effects.added:
            catalogue_changed(agent_id, effects.rule_changes, effects.added)
        if effects.ended:
            checks_ended(agent_id, effects.ended)
        agent = self.engine.agent(agent_id)
        agent.connections += 1
        self.stats.streams += 1
        acks = PendingAcks()
        main = asyncio.current_task()
        assert main is not None
        acker = asyncio.ensure_future(self._send_acks(agent_id, acks, context, main))
        why = "the agent closed the stream"
        try:
            await context.write(patrol_pb2.CollectorFrame(welcome=patrol_pb2.Welcome(
                high_water_seq=agent.stored_seq, collector_id=self.collector_id,
                max_batch_results=self.max_batch_results)))
            agent_connected(agent_id, hello.hostname, hello.version, len(hello.checks), peer, agent.stored_seq)
            await self._read_frames(agent_id, acks, acker, context)
            acks.put(None)
            await acker
        except asyncio.CancelledError:
            why = "the stream was cancelled (the agent went away or the collector is stopping)"
            raise
        except grpc.aio.AbortError:
            why = f"the collector ended the stream: {_status_of(context)}"
            raise
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            agent_disconnected(agent_id, why)
            current = self.engine.agents.get(agent_id)  # gone when a failed commit made us forget it
            if current is not None and current.connections > 0:
                current.connections -= 1
            self.stats.streams -= 1
            if not acker.done():
                acker.cancel()

    async def _read_frames(self, agent_id: str, acks: PendingAcks,
                           acker: asyncio.Future[None], context: grpc.aio.ServicerContext[Any, Any]) -> None:
        engine, stats, limit = self.engine, self.stats, self.max_batch_results
        while True:
            frame = await context.read()
            if frame is grpc.aio.EOF or acker.done():
                return
            which = frame.WhichOneof("frame")
            if which == "batch":
                results = frame.batch.results
                if len(results) > limit:
                    stats.refused_batches_total += 1
                    await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                        f"agent {agent_id}: batch of {len(results)} results exceeds the collector's "
                                        f"max_batch_results {limit}; send at most {limit} per batch")
                try:
                    effects = engine.apply_batch(agent_id, results, self.clock())
                except FrameRefused as exc:
                    await self._refuse(context, agent_id, context.peer(), exc)
                if effects.clamped:
                    results_clamped(agent_id, effects.clamped)
                stats.batches_total += 1
                stats.results_total += effects.accepted
                stats.duplicates_total += effects.duplicates
                stats.transitions_total += len(effects.transitions)
                fut = self.writer.submit(_write_batch(effects))
                log_after_commit(fut, effects.incidents)
                acks.put((fut, effects.high_water_seq))
            elif which == "heartbeat":
                hb = frame.heartbeat
                beat = AgentHeartbeat(agent_id, hb.last_seq, hb.spool_depth, hb.dropped_total, self.clock())
                dropped_before = engine.agent(agent_id).dropped_total
                actions = engine.heartbeat(beat)
                log_after_commit(self.writer.submit(_write_heartbeat(beat, actions)), actions)
                if beat.dropped_total > dropped_before:
                    spool_dropped(agent_id, beat.dropped_total - dropped_before, beat.dropped_total)
            elif which == "hello":
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "Hello may be sent only once per stream")

    async def _send_acks(self, agent_id: str, acks: PendingAcks, context: grpc.aio.ServicerContext[Any, Any],
                         main: asyncio.Task[Any]) -> None:
        """Ack in order as commits land; batches committed together get one cumulative Ack."""
        while True:
            item = await acks.get()
            if item is None:
                return
            fut, seq = item
            try:
                await asyncio.wrap_future(fut)
                for more in acks.committed():
                    more[0].result()
                    seq = more[1]
            except Exception as exc:
                log.error("store refused a batch of agent %s: %s; the agent will send it again", agent_id, exc,
                          extra={"event": "store.error", "agent": agent_id})
                self.engine.forget(agent_id)
                self._needs_reload.add(agent_id)
                main.cancel()
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"collector store error, resend: {exc}")
            self.engine.committed(agent_id, seq)
            await context.write(patrol_pb2.CollectorFrame(ack=patrol_pb2.Ack(up_to_seq=seq)))


    async def _reload(self, agent_id: str) -> None:
        """Rebuild this agent from the store once the writer is idle: after a failed commit, or when another
        collector sharing the store moved its mark (the agent failed over and back)."""
        await asyncio.wrap_future(self.writer.submit(lambda tx: None))
        snap = await asyncio.to_thread(self.store.load_snapshot, agent_id)
        self.engine.reload_agent(agent_id, snap, self.clock())
        self._needs_reload.discard(agent_id)


async def _end_stream(context: grpc.aio.ServicerContext[Any, Any], why: str) -> None:
    """End another task's stream with PERMISSION_DENIED (its pending read then ends too)."""
    with contextlib.suppress(grpc.aio.AbortError, Exception):
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, why)


def _status_of(context: grpc.aio.ServicerContext[Any, Any]) -> str:
    """The status and details an aborted stream was ended with."""
    code = context.code()
    name = getattr(code, "name", str(code))
    details = context.details()
    return f"{name}: {details}" if details else str(name)


class PendingAcks:
    """Batches of one stream waiting for their commit, in order; None marks the end of the stream."""

    def __init__(self) -> None:
        self._items: deque[tuple[Future[None], int] | None] = deque()
        self._ready = asyncio.Event()

    def put(self, item: tuple[Future[None], int] | None) -> None:
        self._items.append(item)
        self._ready.set()

    async def get(self) -> tuple[Future[None], int] | None:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def committed(self) -> list[tuple[Future[None], int]]:
        """Take the batches right behind the one just acked whose commit has already finished."""
        done = []
        while self._items:
            head = self._items[0]
            if head is None or not head[0].done():
                break
            done.append(head)
            self._items.popleft()
        return done


MAX_STREAMS_PER_CONNECTION = 16
"""An agent needs one stream per connection; more on one connection is someone else."""
AddService = Callable[[grpc.aio.Server], None]


def build_grpc_server(servicer: IngestServicer, *, max_message_bytes: int,
                      interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
                      services: Sequence[AddService] = ()) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """The ingest server with grpc.health.v1 and any other `services` (enrollment's Renew). Messages larger than
    `max_message_bytes` are refused by gRPC before they are parsed."""
    server = grpc.aio.server(interceptors=list(interceptors), options=[
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", 4 * 1024 * 1024),
        ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
    ])
    patrol_pb2_grpc.add_CollectorServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    for add in services:
        add(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    return server, health_servicer


async def mark_serving(health_servicer: health.aio.HealthServicer, serving: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, status)


class IngestServer:
    """The gRPC ingest as a component: the grpc.aio server on the collector's event loop."""

    name = "grpc"

    def __init__(self, loop: EventLoop, servicer: IngestServicer, listen: str, *, max_message_bytes: int,
                 interceptors: Sequence[grpc.aio.ServerInterceptor] = (), grace: float = 2.0,
                 credentials: Callable[[], grpc.ServerCredentials] | None = None,
                 services: Sequence[AddService] = ()) -> None:
        self.loop = loop
        self.servicer = servicer
        self.listen = listen
        self.max_message_bytes = max_message_bytes
        self.interceptors = interceptors
        self.grace = grace
        self.credentials = credentials
        """mTLS (collector/grpc_tls.py), made on the event loop at start; None serves plain text."""
        self.services = services
        self.port = 0
        self._server: grpc.aio.Server | None = None
        self._serving = False

    def start(self, host: Host) -> None:
        self.loop.call(self._start(), timeout=30)

    async def _start(self) -> None:
        self._server, health_servicer = build_grpc_server(self.servicer, max_message_bytes=self.max_message_bytes,
                                                          interceptors=self.interceptors, services=self.services)
        try:
            if self.credentials is not None:
                self.port = self._server.add_secure_port(self.listen, self.credentials())
            else:
                self.port = self._server.add_insecure_port(self.listen)
        except RuntimeError as exc:  # grpc raises this when the address is in use
            raise OSError(f"cannot listen on {self.listen} (listen.grpc): {exc}") from None
        if self.port == 0:
            raise OSError(f"cannot listen on {self.listen} (listen.grpc): address in use or not available")
        await self._server.start()
        await mark_serving(health_servicer, True)
        self._serving = True

    def stop(self, timeout: float) -> bool:
        if self._server is None:
            return True
        self._serving = False
        server = self._server
        try:
            self.loop.call(server.stop(min(self.grace, timeout / 2)), timeout)
        except Exception as exc:
            log.warning("gRPC server did not stop cleanly: %s", exc)
            return False
        return True

    def health(self) -> Health:
        streams = self.servicer.stats.streams
        return Health(self._serving, f"{streams} agent streams" if self._serving else "not serving")
