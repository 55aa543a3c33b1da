"""How interface probes report failures: one classification of network errors for every kind.

Policy (documented in docs/packs.md): the interface *is* what these checks watch, so a service that does not
answer as its clients need is CRITICAL -- refused connection, timeout, TLS handshake failure, garbage on the
wire, a rejected login, a wrong answer. UNKNOWN ("could not tell") is kept for failures on the agent's side:
its resolver cannot find the name (except in the `dns` kind, whose job is the name), its host has no route to
the network, the OS forbids the socket, a local file such as a CA bundle is unreadable, or a probe bug.
"""

from __future__ import annotations

import errno
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from checks.context import RunContext
from checks.result import Outcome, Result, Status
from checks.spec import CheckSpec


class ProbeFailure(Exception):
    """Raised inside a probe to end it with a classified result; caught by `guarded`."""

    def __init__(self, status: Status, outcome: Outcome, summary: str) -> None:
        super().__init__(summary)
        self.status = status
        self.outcome = outcome
        self.summary = summary


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def classify(exc: BaseException, what: str) -> ProbeFailure:
    """Map a socket/TLS error while talking to `what` (e.g. "his.example.local:443") to status and outcome."""
    if isinstance(exc, ProbeFailure):
        return exc
    if isinstance(exc, socket.gaierror):
        return ProbeFailure(Status.UNKNOWN, Outcome.DNS_ERROR, f"cannot resolve {what}: {_gai_text(exc)}")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return ProbeFailure(Status.CRITICAL, Outcome.TIMEOUT, f"{what} did not answer in time")
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = getattr(exc, "verify_message", None) or str(exc)
        return ProbeFailure(Status.CRITICAL, Outcome.TLS_ERROR, f"TLS certificate of {what} not trusted: {reason}")
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or str(exc)
        return ProbeFailure(Status.CRITICAL, Outcome.TLS_ERROR, f"TLS handshake with {what} failed: {reason}")
    if isinstance(exc, ConnectionRefusedError):
        return ProbeFailure(Status.CRITICAL, Outcome.CONNECTION_REFUSED, f"{what} refused the connection")
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return ProbeFailure(Status.CRITICAL, Outcome.PROTOCOL_ERROR, f"{what} dropped the connection ({exc})")
    if isinstance(exc, PermissionError):
        return ProbeFailure(Status.UNKNOWN, Outcome.PERMISSION_DENIED, f"this host may not connect to {what}: {exc}")
    if isinstance(exc, OSError):
        if exc.errno == errno.EHOSTUNREACH:
            return ProbeFailure(Status.CRITICAL, Outcome.CONNECTION_REFUSED, f"{what}: no route to host (host down?)")
        if exc.errno == errno.ENETUNREACH:
            return ProbeFailure(Status.UNKNOWN, Outcome.CONNECTION_REFUSED, f"{what}: network unreachable from agent")
        if exc.errno == errno.ETIMEDOUT:
            return ProbeFailure(Status.CRITICAL, Outcome.TIMEOUT, f"{what} did not answer in time")
        return ProbeFailure(Status.CRITICAL, Outcome.PROTOCOL_ERROR, f"talking to {what} failed: {exc}")
    return ProbeFailure(Status.UNKNOWN, Outcome.INTERNAL_ERROR, f"probe error talking to {what}: {exc!r}")


def _gai_text(exc: socket.gaierror) -> str:
    return exc.strerror or str(exc)


def failure_result(spec: CheckSpec, failure: ProbeFailure, started_at: float, t0: float) -> Result:
    """A Result for a classified failure; the elapsed time is kept so a timeout shows how long was waited."""
    return Result(
        check_id=spec.id,
        target=spec.target or "",
        status=failure.status,
        outcome=failure.outcome,
        summary=failure.summary,
        started_at=started_at,
        duration_ms=(time.monotonic() - t0) * 1000.0,
    )


def connect(endpoint: Endpoint, timeout: float) -> socket.socket:
    """A TCP connection with `timeout` covering resolution and connect; errors propagate for `classify`."""
    return socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)


def guarded(spec: CheckSpec, ctx: RunContext, what: str, run: Callable[[float, float], Result]) -> list[Result]:
    """Run `run(started_at, t0)`; any failure becomes one classified Result, so nothing escapes the probe."""
    started_at = ctx.clock()
    t0 = time.monotonic()
    try:
        return [run(started_at, t0)]
    except Exception as exc:
        return [failure_result(spec, classify(exc, what), started_at, t0)]


def timed_result(
    spec: CheckSpec, seconds: float, summary: str, started_at: float, t0: float, metrics: dict[str, float]
) -> Result:
    """An answered probe: its latency in seconds is the value the warn/crit thresholds ("> 2s") apply to."""
    result = spec.measured(seconds, unit="seconds", summary=summary, metrics=metrics)
    result.started_at = started_at
    result.duration_ms = (time.monotonic() - t0) * 1000.0
    return result
