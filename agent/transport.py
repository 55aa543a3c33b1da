"""The agent's end of the patrol stream: Hello, then Batches from the spool under a window of un-acked batches.

One stream at a time to the first collector in `collector.addresses` that answers. The collector's Welcome says
what it already stored (those results are acknowledged locally and never sent); each Ack releases the batches
it covers and deletes them from the spool. A result whose status differs from its series' previous status is
sent at once instead of waiting `batch_wait` for company, which keeps "status change at the agent → incident
committed" short. Failures reconnect with exponential backoff and jitter through the address list, on a fresh
channel each time; every wait is cut short by stop().
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from agent.config import CollectorSection
from agent.spool import Spool
from checks.result import Result, Status
from protos import patrol_pb2, patrol_pb2_grpc
from service.lifecycle import Health, Host, LoggingHost, spawn
from service.lifecycle import describe as describe_error

log = logging.getLogger("xunjian.agent.transport")

REFUSALS = frozenset({"INVALID_ARGUMENT", "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED", "PERMISSION_DENIED",
                      "UNAUTHENTICATED"})
"""Status codes by which a collector refuses this agent or its data (as opposed to being unreachable)."""
_GROW_BACK_AFTER = 32
"""Acks at a reduced batch size before trying twice the size again (after RESOURCE_EXHAUSTED)."""
_CHANNEL_OPTIONS = [
    ("grpc.enable_retries", 0),
    ("grpc.max_receive_message_length", 4 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 200),
]

SeriesKey = tuple[str, str, str]
HelloFactory = Callable[[int], patrol_pb2.Hello]
"""Builds the Hello for a new stream from the spool's last assigned seq."""
ChannelFactory = Callable[[str, Sequence[tuple[str, Any]]], grpc.Channel]
"""Makes the channel to one collector address (agent/credentials.py: mTLS with this agent's certificate)."""


def insecure_channel(address: str, options: Sequence[tuple[str, Any]]) -> grpc.Channel:
    return grpc.insecure_channel(address, options=list(options))


@dataclass(eq=False)
class _Session:
    """One stream to one collector address."""

    address: str
    outq: queue.SimpleQueue[patrol_pb2.AgentFrame | None] = field(default_factory=queue.SimpleQueue)
    welcomed: bool = False
    ended: bool = False
    error: BaseException | None = None
    sent_seq: int = 0
    in_flight: list[tuple[int, float]] = field(default_factory=list)
    """(last seq, monotonic send time) of each batch sent and not yet acknowledged, oldest first."""
    renewed: bool = False
    """Ended by this agent to send a new Hello (after a reload), not by a failure."""

    def frames(self) -> Iterator[patrol_pb2.AgentFrame]:
        while True:
            frame = self.outq.get()
            if frame is None:
                return
            yield frame


@dataclass
class TransportStats:
    address: str | None = None
    """Collector currently connected (welcomed), None while disconnected."""
    connects_total: int = 0
    batches_total: int = 0
    results_total: int = 0
    acks_total: int = 0
    refusals_total: int = 0
    batch_size: int = 0
    last_error: str = ""


def status_code_name(exc: BaseException | None) -> str:
    """The gRPC status code name of an RpcError ("UNAVAILABLE"), "" for anything else."""
    code = getattr(exc, "code", None)
    if not callable(code):
        return ""
    try:
        value: Any = code()
    except Exception:
        return ""
    return str(getattr(value, "name", ""))


def describe(exc: BaseException | None) -> str:
    if exc is None:
        return "the collector ended the stream"
    name = status_code_name(exc)
    if name:
        details = getattr(exc, "details", None)
        text = details() if callable(details) else ""
        return f"{name}: {text}" if text else name
    return f"{type(exc).__name__}: {exc}"


class StreamClient:
    """Streams the spool to the collector in a thread of its own (start/stop); fed by notify() after appends."""

    def __init__(
        self,
        settings: CollectorSection,
        spool: Spool,
        hello: HelloFactory,
        *,
        rng: random.Random | None = None,
        channel: ChannelFactory = insecure_channel,
    ) -> None:
        self._settings = settings
        self._channel = channel
        self._addresses = list(settings.addresses)
        self._spool = spool
        self._hello = hello
        self._rng = rng or random.Random()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._session: _Session | None = None
        self._call: Any = None
        self._started = time.monotonic()
        self._last_status: dict[SeriesKey, Status] = {}
        self._urgent_seq = 0
        self._pending_since: float | None = None
        self._batch_size = settings.batch_max
        self._acks_at_reduced = 0
        self._error: BaseException | None = None
        self._announce = False
        """A new Hello is due: the current stream ends cleanly once its batches are acknowledged."""
        self.stats = TransportStats(batch_size=self._batch_size)

    # lifecycle: the agent's "transport" component

    name = "transport"

    def start(self, host: Host | None = None) -> None:
        self._thread = spawn("xunjian-transport", self._run, host or LoggingHost(log), self.name)

    def stop(self, timeout: float = 5.0) -> bool:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
            call = self._call
        if call is not None:
            call.cancel()
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def health(self) -> Health:
        if self._error is not None:
            return Health(False, f"stopped: {describe_error(self._error)}")
        if self.stats.address is None:
            return Health(True, f"not connected ({self.stats.last_error or 'connecting'})")
        return Health(True, f"connected to {self.stats.address}")

    @property
    def error(self) -> BaseException | None:
        """Why the transport thread died, if it did (a bug: connection failures are retried, not raised)."""
        return self._error

    # reload

    def announce(self, settings: CollectorSection | None = None) -> None:
        """The agent's checks or labels changed (a reload): end the current stream once its batches in flight are
        acknowledged and open a new one, whose Hello carries the new catalogue. New `settings` (addresses, batching)
        apply from that stream on. Results keep their seq across this, so nothing is lost or sent twice."""
        with self._cond:
            if settings is not None:
                self._settings = settings
                self._addresses = list(settings.addresses)
                self._batch_size = min(self._batch_size, settings.batch_max)
                self.stats.batch_size = self._batch_size
            self._announce = True
            self._cond.notify_all()

    @property
    def batch_size(self) -> int:
        return self._batch_size

    # fed by the daemon after each spool append

    def notify(self, results: Sequence[Result], last_seq: int) -> None:
        """New results up to `last_seq` are in the spool; a changed status makes them go out at once."""
        with self._cond:
            urgent = False
            for r in results:
                key = (r.check_id, r.target, r.key)
                previous = self._last_status.get(key)
                self._last_status[key] = r.status
                if previous != r.status and (previous is not None or r.status != Status.OK):
                    urgent = True
            if urgent:
                self._urgent_seq = max(self._urgent_seq, last_seq)
            session = self._session
            # Wake the sender only when it must change its plans: each wake costs more than the bookkeeping.
            wake = urgent or self._pending_since is None or (
                session is not None and last_seq - session.sent_seq >= self._batch_size)
            if self._pending_since is None:
                self._pending_since = time.monotonic()
            if wake:
                self._cond.notify_all()

    # connection management

    def _run(self) -> None:
        try:
            failures = 0
            while not self._stop.is_set():
                healthy = False
                for address in self._addresses:
                    session = _Session(address)
                    self._connect(session)
                    if self._stop.is_set():
                        return
                    if session.renewed:
                        healthy = True
                        break
                    code = status_code_name(session.error)
                    self.stats.last_error = describe(session.error)
                    if code in REFUSALS:
                        self._refused(session, code)
                        break
                    if session.welcomed:
                        healthy = True
                        log.warning("stream to %s ended (%s); reconnecting", address, describe(session.error),
                                    extra={"event": "collector.disconnected", "collector": address})
                        break
                    log.warning("collector %s unreachable (%s)%s", address, describe(session.error),
                                "; trying the next address" if address != self._addresses[-1] else "",
                                extra={"event": "collector.unreachable", "collector": address})
                if healthy and session.renewed:
                    failures = 0
                    log.info("stream to %s renewed to announce the reloaded checks", session.address,
                             extra={"event": "stream.renewed", "collector": session.address})
                    continue
                if healthy:
                    failures = 0
                    delay = self._settings.reconnect.initial * self._rng.uniform(0.5, 1.0)
                else:
                    failures += 1
                    delay = self._backoff(failures)
                    log.info("retrying in %.1fs", delay)
                self._stop.wait(delay)
        except BaseException as exc:
            self._error = exc
            raise

    def _backoff(self, failures: int) -> float:
        """Exponential in consecutive failed rounds, capped, with jitter so a fleet does not reconnect in step."""
        r = self._settings.reconnect
        base = min(r.max, r.initial * 2.0 ** min(failures - 1, 30))
        return base * self._rng.uniform(0.5, 1.0)

    def _refused(self, session: _Session, code: str) -> None:
        self.stats.refusals_total += 1
        if code == "RESOURCE_EXHAUSTED":
            old = self._batch_size
            self._batch_size = max(1, old // 2)
            self._acks_at_reduced = 0
            self.stats.batch_size = self._batch_size
            log.warning("collector %s is overloaded (%s); batch size %d -> %d, backing off",
                        session.address, describe(session.error), old, self._batch_size)
        else:
            log.error("collector %s REFUSED this agent (%s); fix the agent or collector config. Backing off",
                      session.address, describe(session.error),
                      extra={"event": "collector.refused", "collector": session.address})

    def _connect(self, session: _Session) -> None:
        channel: grpc.Channel | None = None
        receiver: threading.Thread | None = None
        call: Any = None
        try:
            channel = self._channel(session.address, _CHANNEL_OPTIONS)
            stub: Any = patrol_pb2_grpc.CollectorStub(channel)  # type: ignore[no-untyped-call]
            with self._cond:
                self._announce = False
            session.outq.put(patrol_pb2.AgentFrame(hello=self._hello(self._spool.last_seq)))
            call = stub.Stream(session.frames())
            with self._cond:
                self._call = call
                self._session = session
            if self._stop.is_set():
                return
            receiver = threading.Thread(target=self._receive, args=(session, call), name="xunjian-transport-rx",
                                        daemon=True)
            receiver.start()
            self._serve(session)
        except Exception as exc:
            if session.error is None:
                session.error = exc
        finally:
            with self._cond:
                if session.error is None and not session.ended and not self._stop.is_set() and not session.renewed:
                    session.error = RuntimeError("stream abandoned")
                session.ended = True
                self._call = None
                self._session = None
                self.stats.address = None
            session.outq.put(None)
            if session.renewed and receiver is not None:
                receiver.join(self._ack_timeout())  # the collector ends its side once it has read our end
            if call is not None:
                call.cancel()
            if receiver is not None:
                receiver.join(2.0)
            if channel is not None:
                channel.close()

    def _receive(self, session: _Session, call: Any) -> None:
        error: BaseException | None = None
        try:
            for frame in call:
                which = frame.WhichOneof("frame")
                if which == "welcome":
                    self._on_welcome(session, frame.welcome)
                elif which == "ack":
                    self._on_ack(session, frame.ack.up_to_seq)
        except grpc.RpcError as exc:
            error = exc
        except Exception as exc:
            log.exception("handling a collector frame failed")
            error = exc
        with self._cond:
            if session.error is None:
                session.error = error
            session.ended = True
            self._cond.notify_all()

    def _on_welcome(self, session: _Session, welcome: patrol_pb2.Welcome) -> None:
        hwm = int(welcome.high_water_seq)
        self._spool.advance_seq(hwm)
        self._spool.ack(hwm)
        with self._cond:
            session.welcomed = True
            session.sent_seq = max(hwm, self._spool.acked_seq)
            if welcome.max_batch_results and welcome.max_batch_results < self._batch_size:
                self._batch_size = int(welcome.max_batch_results)
                self.stats.batch_size = self._batch_size
            self.stats.connects_total += 1
            self.stats.address = session.address
            self._cond.notify_all()
        log.info("connected to collector %s (%s); it has this agent's results up to seq %d",
                 session.address, welcome.collector_id or "unnamed", hwm,
                 extra={"event": "collector.connected", "collector": session.address})

    def _on_ack(self, session: _Session, up_to: int) -> None:
        self._spool.ack(up_to)
        with self._cond:
            window_was_full = len(session.in_flight) >= self._settings.window
            session.in_flight = [b for b in session.in_flight if b[0] > up_to]
            self.stats.acks_total += 1
            if self._batch_size < self._settings.batch_max:
                self._acks_at_reduced += 1
                if self._acks_at_reduced >= _GROW_BACK_AFTER:
                    self._batch_size = min(self._settings.batch_max, self._batch_size * 2)
                    self._acks_at_reduced = 0
                    self.stats.batch_size = self._batch_size
            if window_was_full or self._announce:
                self._cond.notify_all()

    # sending

    def _ack_timeout(self) -> float:
        """An un-acked batch older than this means the stream is dead even if TCP has not noticed."""
        s = self._settings
        return max(30.0, 3.0 * float(s.heartbeat_interval))

    def _serve(self, session: _Session) -> None:
        s = self._settings
        deadline = time.monotonic() + s.connect_timeout
        with self._cond:
            while not session.welcomed and not session.ended and not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    session.error = TimeoutError(f"no Welcome within {s.connect_timeout:g}s")
                    return
                self._cond.wait(remaining)
            if not session.welcomed:
                return
            backlog = self._spool.last_seq > session.sent_seq
            self._pending_since = time.monotonic() - s.batch_wait if backlog else None
        next_heartbeat = time.monotonic()
        while True:
            rows: list[tuple[int, bytes]] = []
            heartbeat = can_send = False
            with self._cond:
                while True:
                    if session.ended or self._stop.is_set():
                        return
                    now = time.monotonic()
                    if session.in_flight and now - session.in_flight[0][1] > self._ack_timeout():
                        session.error = TimeoutError(f"no Ack for {self._ack_timeout():g}s")
                        return
                    if self._announce and not session.in_flight:
                        session.renewed = True
                        return
                    if self._announce:
                        self._cond.wait(self._ack_timeout())
                        continue
                    last = self._spool.last_seq
                    can_send = last > session.sent_seq and len(session.in_flight) < s.window
                    wait = next_heartbeat - now
                    if can_send:
                        since = self._pending_since if self._pending_since is not None else now
                        if (self._urgent_seq > session.sent_seq or last - session.sent_seq >= self._batch_size
                                or now - since >= s.batch_wait):
                            break
                        wait = min(wait, since + s.batch_wait - now)
                    if wait <= 0:
                        heartbeat = True
                        break
                    self._cond.wait(wait)
                after = session.sent_seq
                size = self._batch_size
            # A heartbeat due soon goes with a batch, and results waiting go with a heartbeat: every frame sent
            # wakes grpc's threads for a while, so two frames at once cost little more than one.
            now = time.monotonic()
            if not heartbeat or can_send:
                rows = self._spool.read_after(after, size)
                self._send_batch(session, rows)
            if heartbeat or next_heartbeat - now <= s.heartbeat_interval / 2:
                self._send_heartbeat(session)
                next_heartbeat = now + s.heartbeat_interval

    def _send_batch(self, session: _Session, rows: list[tuple[int, bytes]]) -> None:
        frame = patrol_pb2.AgentFrame()
        batch = frame.batch
        for _, body in rows:
            batch.results.add().MergeFromString(body)
        now = time.monotonic()
        with self._cond:
            if rows:
                session.sent_seq = rows[-1][0]
                session.in_flight.append((rows[-1][0], now))
            else:
                session.sent_seq = self._spool.last_seq
            self._pending_since = now if self._spool.last_seq > session.sent_seq else None
        if rows:
            session.outq.put(frame)
            self.stats.batches_total += 1
            self.stats.results_total += len(rows)

    def _send_heartbeat(self, session: _Session) -> None:
        st = self._spool.stats()
        session.outq.put(patrol_pb2.AgentFrame(heartbeat=patrol_pb2.Heartbeat(
            last_seq=st.last_seq,
            spool_depth=st.depth,
            dropped_total=st.dropped_total,
            uptime_s=time.monotonic() - self._started,
        )))
