"""host.ntp: this host's clock offset against an NTP server, by one SNTP v4 exchange (RFC 4330) over UDP.

Clock skew matters in a hospital: order, dispensing and nursing records are evidence in time order, and
Kerberos/AD logins fail beyond five minutes. The request is built here (48 bytes) so the check needs no ntpdate,
chrony or admin rights.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from typing import ClassVar, Literal

from pydantic import Field

from checks.context import RunContext
from checks.result import Outcome, Result, unknown
from checks.spec import CheckSpec

NTP_EPOCH_OFFSET = 2208988800
"""Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (Unix)."""
_PACKET = struct.Struct("!BBbbII4sQQQQ")
"""LI/VN/mode, stratum, poll, precision, root delay, root dispersion, reference id, ref/orig/recv/xmit timestamps."""


def to_ntp(unix: float) -> int:
    """64-bit NTP timestamp (32.32 fixed point) of a Unix time."""
    seconds = unix + NTP_EPOCH_OFFSET
    whole = int(seconds)
    return (whole << 32) | int((seconds - whole) * 2**32)


def from_ntp(stamp: int) -> float:
    return (stamp >> 32) - NTP_EPOCH_OFFSET + (stamp & 0xFFFFFFFF) / 2**32


def request_packet(transmit: int) -> bytes:
    """A client request: LI 0, version 4, mode 3, and our transmit time, which the server echoes as originate."""
    return _PACKET.pack(0x23, 0, 0, 0, 0, 0, b"\0\0\0\0", 0, 0, 0, transmit)


class NtpError(Exception):
    """The reply is not a usable NTP answer; the message says why."""


def offset_from_reply(reply: bytes, sent: int, t1: float, t4: float) -> tuple[float, float, int]:
    """(offset, round-trip delay, stratum) per RFC 4330 section 5; NtpError for anything the client must reject."""
    if len(reply) < _PACKET.size:
        raise NtpError(f"reply of {len(reply)} bytes, expected at least {_PACKET.size}")
    first, stratum, _poll, _prec, _rd, _rdisp, refid, _ref, orig, recv, xmit = _PACKET.unpack_from(reply)
    li, version, mode = first >> 6, (first >> 3) & 0x7, first & 0x7
    if mode != 4:
        raise NtpError(f"reply mode {mode}, expected 4 (server)")
    if version not in (3, 4):
        raise NtpError(f"reply version {version}, expected 3 or 4")
    if stratum == 0:
        code = refid.decode("ascii", errors="replace").strip("\0")
        raise NtpError(f"server sent kiss-o'-death {code!r}")
    if li == 3 or stratum > 15:
        raise NtpError("server clock is not synchronized")
    if orig != sent:
        raise NtpError("reply does not answer our request (originate timestamp differs)")
    if xmit == 0:
        raise NtpError("reply has no transmit timestamp")
    t2, t3 = from_ntp(recv), from_ntp(xmit)
    offset = ((t2 - t1) + (t3 - t4)) / 2
    delay = (t4 - t1) - (t3 - t2)
    return offset, delay, stratum


class HostNtp(CheckSpec):
    kind: Literal["host.ntp"] = "host.ntp"
    value_unit: ClassVar[str | None] = "seconds"
    kind_doc: ClassVar[str] = (
        "Offset of this host's clock from an NTP server, measured with one SNTP v4 request over UDP. The value "
        "is the absolute offset in seconds (thresholds such as \"> 1s\"); the metric offset_seconds keeps the "
        "sign (positive: this host is behind). No answer is UNKNOWN (timeout), an unknown host UNKNOWN "
        "(dns_error), a kiss-o'-death or unsynchronized server UNKNOWN (protocol_error). Metrics: offset_seconds, "
        "delay_seconds, stratum."
    )
    example: ClassVar[str] = (
        "id: host.ntp\nkind: host.ntp\nserver: ntp.hospital.local\ninterval: 5m\n"
        'warn: "> 1s"\ncrit: "> 30s"\n'
    )
    server: str = Field(description="NTP server host name or address, e.g. the hospital's domain controller.")
    port: int = Field(123, ge=1, le=65535, description="UDP port.")

    def probe(self, ctx: RunContext) -> list[Result]:
        target, key = self.target or "", self.server
        timeout = min(self.timeout, ctx.remaining(self.timeout))
        try:
            infos = socket.getaddrinfo(self.server, self.port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            return [unknown(self.id, Outcome.DNS_ERROR, f"{self.server}: {exc.strerror}", target=target, key=key)]
        family, socktype, proto, _canon, addr = infos[0]
        # The low bits of the transmit timestamp are random so a forged reply cannot guess them.
        t1 = time.time()
        sent = (to_ntp(t1) & ~0xFFFF) | int.from_bytes(os.urandom(2), "big")
        try:
            with socket.socket(family, socktype, proto) as sock:
                sock.settimeout(timeout)
                sock.connect(addr)
                sock.send(request_packet(sent))
                reply = sock.recv(1024)
                t4 = time.time()
        except TimeoutError:
            return [unknown(self.id, Outcome.TIMEOUT, f"no answer from {self.server}:{self.port} within {timeout:g}s",
                            target=target, key=key)]
        except ConnectionRefusedError:
            return [unknown(self.id, Outcome.CONNECTION_REFUSED, f"{self.server}:{self.port} refused (no NTP service)",
                            target=target, key=key)]
        except OSError as exc:
            return [unknown(self.id, Outcome.CONNECTION_REFUSED, f"{self.server}:{self.port}: {exc.strerror or exc}",
                            target=target, key=key)]
        try:
            offset, delay, stratum = offset_from_reply(reply, sent, t1, t4)
        except NtpError as exc:
            return [unknown(self.id, Outcome.PROTOCOL_ERROR, f"{self.server}: {exc}", target=target, key=key)]
        ahead = "behind" if offset > 0 else "ahead of"
        summary = f"clock {abs(offset):.3f}s {ahead} {self.server} (stratum {stratum}, delay {delay * 1000:.1f} ms)"
        metrics = {"offset_seconds": offset, "delay_seconds": delay, "stratum": float(stratum)}
        return [self.measured(round(abs(offset), 6), unit="seconds", summary=summary, key=key, metrics=metrics)]


SPECS: dict[str, type[CheckSpec]] = {"host.ntp": HostNtp}
