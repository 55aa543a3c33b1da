"""host.ntp against a scripted SNTP server on 127.0.0.1 whose clock is off by a known amount; the real
check_ntp_time plugin measures the same server as a cross-check of the arithmetic."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from checks.command import Command
from checks.context import RunContext
from checks.ntp import HostNtp, from_ntp, to_ntp
from checks.result import Outcome, Status
from tests.conftest import require

pytestmark = pytest.mark.integration
PACKET = struct.Struct("!BBbbII4sQQQQ")


@dataclass
class Script:
    skew: float = 0.0
    """Seconds the server's clock is ahead of ours."""
    mode: str = "answer"
    """answer | silent | kod | unsynchronized | wrong_origin | short"""


class FakeNtpServer:
    def __init__(self) -> None:
        self.script = Script()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self.quit = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)

    def serve(self) -> None:
        while not self.quit.is_set():
            try:
                data, peer = self.sock.recvfrom(1024)
            except OSError:
                continue
            self.requests += 1
            received = time.time() + self.script.skew
            client_xmit = PACKET.unpack_from(data)[10]
            s = self.script
            if s.mode == "silent":
                continue
            if s.mode == "short":
                self.sock.sendto(b"\x24" * 20, peer)
                continue
            li_vn_mode = (3 << 6 if s.mode == "unsynchronized" else 0) | (4 << 3) | 4
            stratum = 0 if s.mode == "kod" else 2
            refid = b"RATE" if s.mode == "kod" else b"\x7f\x00\x00\x01"
            origin = client_xmit ^ 1 if s.mode == "wrong_origin" else client_xmit
            reply = PACKET.pack(li_vn_mode, stratum, 6, -20, 0, 0, refid, to_ntp(received - 60), origin,
                                to_ntp(received), to_ntp(time.time() + s.skew))
            self.sock.sendto(reply, peer)


@pytest.fixture
def ntp_server() -> Iterator[FakeNtpServer]:
    server = FakeNtpServer()
    server.thread.start()
    yield server
    server.quit.set()
    server.thread.join()
    server.sock.close()


def ntp(server: FakeNtpServer, **fields: object) -> HostNtp:
    return HostNtp.model_validate({"id": "host.ntp", "kind": "host.ntp", "server": "127.0.0.1", "port": server.port,
                                   "warn": "> 1s", "crit": "> 30s", **fields})


def test_timestamp_round_trip() -> None:
    now = time.time()
    assert from_ntp(to_ntp(now)) == pytest.approx(now, abs=1e-6)


@pytest.mark.parametrize(("skew", "status"), [(0.0, Status.OK), (5.0, Status.WARNING), (-120.0, Status.CRITICAL)])
def test_offset_and_status(ntp_server: FakeNtpServer, skew: float, status: Status) -> None:
    ntp_server.script.skew = skew
    [result] = ntp(ntp_server).probe(RunContext())
    assert result.status is status
    assert result.metrics["offset_seconds"] == pytest.approx(skew, abs=0.05)
    assert result.value == pytest.approx(abs(skew), abs=0.05)
    assert result.metrics["stratum"] == 2
    assert result.metrics["delay_seconds"] >= -0.001
    assert result.key == "127.0.0.1"


def test_no_answer_is_unknown_timeout(ntp_server: FakeNtpServer) -> None:
    ntp_server.script.mode = "silent"
    [result] = ntp(ntp_server, timeout="0.3s").probe(RunContext())
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.TIMEOUT)
    assert result.summary == f"no answer from 127.0.0.1:{ntp_server.port} within 0.3s"


@pytest.mark.parametrize(("mode", "message"), [
    ("kod", "server sent kiss-o'-death 'RATE'"),
    ("unsynchronized", "server clock is not synchronized"),
    ("wrong_origin", "reply does not answer our request (originate timestamp differs)"),
    ("short", "reply of 20 bytes, expected at least 48"),
])
def test_bad_replies_are_protocol_errors(ntp_server: FakeNtpServer, mode: str, message: str) -> None:
    ntp_server.script.mode = mode
    [result] = ntp(ntp_server).probe(RunContext())
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.PROTOCOL_ERROR)
    assert result.summary == f"127.0.0.1: {message}"


def test_nothing_listening_is_connection_refused() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    [result] = HostNtp(id="n", kind="host.ntp", server="127.0.0.1", port=port).probe(RunContext())
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.CONNECTION_REFUSED)


def test_unknown_host_is_dns_error() -> None:
    [result] = HostNtp(id="n", kind="host.ntp", server="no-such-host.invalid").probe(RunContext())
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.DNS_ERROR)


def test_agrees_with_check_ntp_time(ntp_server: FakeNtpServer) -> None:
    plugin = "/usr/lib/nagios/plugins/check_ntp_time"
    require(os.access(plugin, os.X_OK), f"{plugin} (Debian package monitoring-plugins-basic)")
    ntp_server.script.skew = 7.25
    [ours] = ntp(ntp_server).probe(RunContext())
    spec = Command(id="p", kind="command", command=plugin, args=["-H", "127.0.0.1", "-p", str(ntp_server.port),
                                                                  "-w", "1", "-c", "30"])
    [theirs] = spec.probe(RunContext(command_allow=frozenset({plugin})))
    assert theirs.status is Status.WARNING, theirs.summary
    assert theirs.metrics["offset"] == pytest.approx(ours.metrics["offset_seconds"], abs=0.05)
