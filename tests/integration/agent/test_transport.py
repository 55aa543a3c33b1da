"""The stream client against a real grpc.server on 127.0.0.1: acks, window, reconnect, failover, refusals."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from agent.config import CollectorSection
from agent.spool import Spool
from agent.transport import StreamClient
from checks.result import Result, Status
from protos import patrol_pb2
from tests.integration.agent.scripted_collector import ScriptedCollector, free_port

pytestmark = pytest.mark.integration

WAIT = 15.0


def settings(*addresses: str, **overrides: Any) -> CollectorSection:
    raw: dict[str, Any] = {
        "addresses": list(addresses),
        "batch_wait": "20ms",
        "heartbeat_interval": "5s",
        "connect_timeout": "3s",
        "reconnect": {"initial": "50ms", "max": "200ms"},
    }
    raw.update(overrides)
    return CollectorSection.model_validate(raw)


def hello(last_seq: int) -> patrol_pb2.Hello:
    return patrol_pb2.Hello(agent_id="agent-1", hostname="test", last_seq=last_seq)


def ok(i: int, status: Status = Status.OK, check_id: str | None = None) -> Result:
    return Result(check_id=check_id or f"c{i}", status=status, value=float(i))


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.spool = Spool(tmp_path / "spool.db")
        self.collectors: list[ScriptedCollector] = []
        self.client: StreamClient | None = None

    def collector(self, **attrs: Any) -> ScriptedCollector:
        c = ScriptedCollector()
        for k, v in attrs.items():
            setattr(c, k, v)
        self.collectors.append(c)
        return c.start()

    def connect(self, s: CollectorSection) -> StreamClient:
        self.client = StreamClient(s, self.spool, hello)
        self.client.start()
        return self.client

    def put(self, results: list[Result]) -> int:
        last = self.spool.append(results)
        if self.client is not None:
            self.client.notify(results, last)
        return last

    def close(self) -> None:
        if self.client is not None:
            self.client.stop()
            assert self.client.error is None
        for c in self.collectors:
            c.stop()
        self.spool.close()


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def delivered(c: ScriptedCollector) -> list[int]:
    return [s for batch in c.batches for s in batch]


def test_batches_are_acked_and_leave_the_spool(h: Harness) -> None:
    col = h.collector()
    h.connect(settings(col.address))
    h.put([ok(i) for i in range(250)])
    assert col.wait_for(lambda: len(col.stored) == 250, WAIT)
    assert delivered(col) == list(range(1, 251))
    assert all(len(b) <= 100 for b in col.batches)
    assert col.wait_for(lambda: h.spool.stats().depth == 0, WAIT)
    assert h.spool.stats().acked_seq == 250
    assert col.stored[1].check_id == "c0"


def test_window_limits_unacked_batches(h: Harness) -> None:
    col = h.collector(auto_ack=False)
    h.connect(settings(col.address, batch_max=10, window=2))
    h.put([ok(i) for i in range(50)])
    assert col.wait_for(lambda: len(col.batches) == 2, WAIT)
    assert not col.wait_for(lambda: len(col.batches) > 2, 0.5), "sent beyond the window"
    assert h.spool.stats().depth == 50
    col.release_acks()
    assert col.wait_for(lambda: len(col.batches) == 4, WAIT)
    assert h.spool.stats().depth == 30
    for _ in range(3):
        col.release_acks()
        n = len(col.batches)
        col.wait_for(lambda n=n: len(col.batches) >= min(5, n + 2), WAIT)
    col.release_acks()
    assert col.wait_for(lambda: h.spool.stats().depth == 0, WAIT)
    assert delivered(col) == list(range(1, 51))


def test_reconnects_after_collector_restart_without_loss_or_duplicates(h: Harness) -> None:
    col = h.collector()
    client = h.connect(settings(col.address))
    h.put([ok(i) for i in range(10)])
    assert col.wait_for(lambda: h.spool.stats().depth == 0, WAIT)
    col.stop()
    h.put([ok(i) for i in range(10, 20)])
    assert h.spool.stats().depth == 10
    col.start()
    assert col.wait_for(lambda: len(col.stored) == 20, WAIT)
    assert delivered(col) == list(range(1, 21)), "something was sent twice"
    assert col.wait_for(lambda: h.spool.stats().depth == 0, WAIT)
    assert len(col.hellos) == 2
    assert col.hellos[1].last_seq == 20
    assert client.stats.connects_total == 2


def test_fails_over_to_the_next_address(h: Harness) -> None:
    dead = f"127.0.0.1:{free_port()}"
    col = h.collector()
    client = h.connect(settings(dead, col.address))
    h.put([ok(i) for i in range(5)])
    assert col.wait_for(lambda: len(col.stored) == 5, WAIT)
    assert client.stats.address == col.address


def test_fails_over_when_the_connected_collector_dies(h: Harness) -> None:
    a = h.collector(name="a")
    b = h.collector(name="b")
    b.stored = a.stored
    """Collectors of one site share their store, so b knows what a committed."""
    client = h.connect(settings(a.address, b.address))
    h.put([ok(i) for i in range(5)])
    assert a.wait_for(lambda: h.spool.stats().depth == 0, WAIT)
    a.stop()
    h.put([ok(i) for i in range(5, 8)])
    assert b.wait_for(lambda: 8 in b.stored, WAIT)
    assert delivered(b) == [6, 7, 8]
    assert b.hellos and client.stats.address == b.address


def test_welcome_high_water_mark_skips_what_the_collector_has(h: Harness) -> None:
    h.put([ok(i) for i in range(10)])
    col = h.collector(welcome_hwm=6)
    h.connect(settings(col.address))
    assert col.wait_for(lambda: 10 in col.stored, WAIT)
    assert delivered(col) == [7, 8, 9, 10]
    assert col.wait_for(lambda: h.spool.stats().depth == 0, WAIT)


def test_welcome_above_our_last_seq_moves_the_counter_past_it(h: Harness) -> None:
    h.put([ok(i) for i in range(3)])
    col = h.collector(welcome_hwm=100)
    client = h.connect(settings(col.address))
    assert col.wait_for(lambda: len(col.hellos) == 1, WAIT)
    assert col.wait_for(lambda: h.spool.stats().depth == 0 and h.spool.last_seq == 100, WAIT)
    assert h.put([ok(3)]) == 101
    assert col.wait_for(lambda: 101 in col.stored, WAIT)
    assert delivered(col) == [101]
    assert client.stats.refusals_total == 0


def test_resource_exhausted_halves_the_batch_size(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "xunjian.agent.transport")
    col = h.collector(exhausted_above=30)
    h.put([ok(i) for i in range(100)])
    client = h.connect(settings(col.address))
    assert col.wait_for(lambda: len(col.stored) == 100, WAIT)
    assert client.batch_size == 25
    assert client.stats.refusals_total == 2
    assert sorted(set(delivered(col))) == list(range(1, 101))
    assert "batch size 100 -> 50" in caplog.text and "batch size 50 -> 25" in caplog.text


def test_refused_agent_logs_backs_off_and_retries(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "xunjian.agent.transport")
    col = h.collector(refuse=(grpc.StatusCode.FAILED_PRECONDITION, "agent id agent-1 is already connected"))
    client = h.connect(settings(col.address))
    h.put([ok(0)])
    assert col.wait_for(lambda: len(col.hellos) >= 3, WAIT)
    assert col.batches == []
    assert "REFUSED this agent (FAILED_PRECONDITION: agent id agent-1 is already connected)" in caplog.text
    with col.lock:
        col.refuse = None
    assert col.wait_for(lambda: 1 in col.stored, WAIT)
    assert client.stats.refusals_total >= 3


def test_status_change_is_flushed_without_waiting_for_the_batch(h: Harness) -> None:
    col = h.collector()
    client = h.connect(settings(col.address, batch_wait="10m"))
    assert col.wait_for(lambda: client.stats.address is not None, WAIT)
    h.put([ok(1, check_id="his.web")])
    assert not col.wait_for(lambda: bool(col.batches), 0.3), "an unchanged OK result should wait for company"
    h.put([ok(2, Status.CRITICAL, check_id="his.web")])
    assert col.wait_for(lambda: 2 in col.stored, WAIT)
    assert col.batches == [[1, 2]]


def test_heartbeats_report_seq_and_spool(h: Harness) -> None:
    col = h.collector(auto_ack=False)
    h.connect(settings(col.address, heartbeat_interval="100ms"))
    h.put([ok(i) for i in range(3)])
    assert col.wait_for(lambda: any(hb.last_seq == 3 and hb.spool_depth == 3 for hb in col.heartbeats), WAIT)
    assert col.heartbeats[-1].uptime_s > 0


def test_stop_interrupts_the_backoff(h: Harness) -> None:
    client = h.connect(settings(f"127.0.0.1:{free_port()}", reconnect={"initial": "10m", "max": "1h"}))
    assert h.spool.stats().depth == 0
    client.stop(timeout=WAIT)
    assert client._thread is not None and not client._thread.is_alive()
