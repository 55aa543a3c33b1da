"""`tcp`: can a client open a TCP connection to the service, and how long does it take."""

from __future__ import annotations

import time
from typing import ClassVar, Literal

from pydantic import Field

from checks.context import RunContext
from checks.interface.outcomes import Endpoint, connect, guarded, timed_result
from checks.result import Result
from checks.spec import CheckSpec


class TcpSpec(CheckSpec):
    value_unit: ClassVar[str | None] = "seconds"
    kind_doc: ClassVar[str] = (
        "Opens a TCP connection to host:port and closes it. The value is the connect time in seconds, so "
        'warn/crit read like "> 1s". A refused connection or no answer within the timeout is CRITICAL '
        "(connection_refused / timeout): the service is down for its clients. A name the agent cannot resolve "
        "is UNKNOWN (dns_error)."
    )

    example: ClassVar[str] = (
        "id: his.app.port\n"
        "kind: tcp\n"
        "host: his-app.example.local\n"
        "port: 8080\n"
        'warn: "> 1s"\n'
    )

    kind: Literal["tcp"] = "tcp"
    host: str = Field(description="Host name or IP address of the service.")
    port: int = Field(ge=1, le=65535, description="TCP port of the service.")

    def probe(self, ctx: RunContext) -> list[Result]:
        endpoint = Endpoint(self.host, self.port)

        def run(started_at: float, t0: float) -> Result:
            with connect(endpoint, ctx.remaining(self.timeout)):
                seconds = time.monotonic() - t0
            return timed_result(
                self, seconds, f"{endpoint} accepted a connection in {seconds:.3f} s", started_at, t0,
                {"connect_seconds": seconds},
            )

        return guarded(self, ctx, str(endpoint), run)


SPECS: dict[str, type[CheckSpec]] = {"tcp": TcpSpec}
