"""`dns`: does the name of a core system resolve, and to the addresses its clients are configured for."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from checks.context import RunContext
from checks.interface.outcomes import ProbeFailure, guarded, timed_result
from checks.result import Outcome, Result, Status
from checks.spec import CheckSpec

_FAMILIES = {"any": socket.AF_UNSPEC, "ipv4": socket.AF_INET, "ipv6": socket.AF_INET6}


class DnsSpec(CheckSpec):
    value_unit: ClassVar[str | None] = "seconds"
    kind_doc: ClassVar[str] = (
        "Resolves a name with the agent's system resolver (getaddrinfo, so /etc/hosts and nsswitch apply, as "
        "for every client on that host). The value is the resolution time in seconds. Unlike the other "
        "interface kinds, a name that does not resolve is CRITICAL (dns_error) here: the name is what this "
        "check watches. With `expect_addresses`, every listed address must be among the answers, otherwise "
        "CRITICAL content_mismatch."
    )

    example: ClassVar[str] = (
        "id: his.dns\n"
        "kind: dns\n"
        "name: his.example.local\n"
        "expect_addresses: [10.10.1.20]\n"
    )

    kind: Literal["dns"] = "dns"
    name: str = Field(description="The host name to resolve, e.g. his.example.local.")
    family: Literal["any", "ipv4", "ipv6"] = Field("any", description="Which address family to ask for (A, AAAA or both).")
    expect_addresses: list[str] = Field(
        default_factory=list, description="Addresses that must all be in the answer, e.g. [10.1.2.3]."
    )

    @field_validator("expect_addresses")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        out = []
        for text in v:
            try:
                out.append(str(ipaddress.ip_address(text.strip())))
            except ValueError:
                raise ValueError(f"expected an IPv4 or IPv6 address, got {text!r}") from None
        return out

    def probe(self, ctx: RunContext) -> list[Result]:
        def run(started_at: float, t0: float) -> Result:
            addresses = resolve(self.name, _FAMILIES[self.family], ctx.remaining(self.timeout))
            seconds = time.monotonic() - t0
            missing = [a for a in self.expect_addresses if a not in addresses]
            if missing:
                raise ProbeFailure(
                    Status.CRITICAL, Outcome.CONTENT_MISMATCH,
                    f"{self.name} resolves to {', '.join(addresses)}, not to {', '.join(missing)}",
                )
            return timed_result(
                self, seconds, f"{self.name} resolves to {', '.join(addresses)} in {seconds:.3f} s", started_at, t0,
                {"resolve_seconds": seconds, "addresses": float(len(addresses))},
            )

        return guarded(self, ctx, self.name, run)


def resolve(name: str, family: int, timeout: float) -> list[str]:
    """Distinct addresses in resolver order; getaddrinfo cannot time out, so it runs in a thread we stop waiting for."""
    answer: list[str] = []
    error: list[BaseException] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
        except BaseException as exc:
            error.append(exc)
            return
        for info in infos:
            address = str(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
            if address not in answer:
                answer.append(address)

    worker = threading.Thread(target=lookup, name=f"dns-{name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise ProbeFailure(Status.CRITICAL, Outcome.TIMEOUT, f"the resolver did not answer for {name} in {timeout:.1f} s")
    if error:
        exc = error[0]
        if isinstance(exc, socket.gaierror):
            raise ProbeFailure(Status.CRITICAL, Outcome.DNS_ERROR, f"cannot resolve {name}: {exc.strerror or exc}")
        raise exc
    return answer


SPECS: dict[str, type[CheckSpec]] = {"dns": DnsSpec}
