"""tcp and dns against 127.0.0.1: an open listener, a closed port, a hung peer, localhost's addresses."""

from __future__ import annotations

import pytest

from checks.result import Outcome, Status
from tests.integration.interface.probing import run_check
from tests.integration.interface.servers import LoopbackServer, close_at_once, closed_port, full_backlog

pytestmark = pytest.mark.integration


def test_tcp_listener_is_ok_with_connect_latency() -> None:
    with LoopbackServer(close_at_once) as server:
        result = run_check("tcp", host="127.0.0.1", port=server.port)
    assert result.status is Status.OK
    assert result.outcome is Outcome.OK
    assert result.unit == "seconds" and result.value is not None and result.value >= 0
    assert f"127.0.0.1:{server.port}" in result.summary


def test_tcp_latency_threshold_applies_in_seconds() -> None:
    with LoopbackServer(close_at_once) as server:
        result = run_check("tcp", host="127.0.0.1", port=server.port, crit=">= 0s")
    assert result.status is Status.CRITICAL
    assert result.outcome is Outcome.OK
    assert ">= 0s" in result.summary


def test_tcp_refused_is_critical_service_down() -> None:
    result = run_check("tcp", host="127.0.0.1", port=closed_port())
    assert result.status is Status.CRITICAL
    assert result.outcome is Outcome.CONNECTION_REFUSED
    assert "refused" in result.summary


def test_tcp_connect_that_hangs_is_critical_timeout() -> None:
    with full_backlog() as port:
        result = run_check("tcp", host="127.0.0.1", port=port, timeout="300ms")
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.TIMEOUT)


def test_dns_localhost_resolves_to_loopback() -> None:
    result = run_check("dns", name="localhost", family="ipv4", expect_addresses=["127.0.0.1"])
    assert result.status is Status.OK, result.summary
    assert "127.0.0.1" in result.summary
    assert result.metrics["addresses"] >= 1


def test_dns_unexpected_address_is_content_mismatch() -> None:
    result = run_check("dns", name="localhost", family="ipv4", expect_addresses=["10.99.99.99"])
    assert result.status is Status.CRITICAL
    assert result.outcome is Outcome.CONTENT_MISMATCH
    assert "10.99.99.99" in result.summary
