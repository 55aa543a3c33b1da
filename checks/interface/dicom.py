"""`dicom.echo`: does a PACS node (or modality worklist/archive) accept an association and answer C-ECHO.

pynetdicom is imported inside the probe: agents that do not watch a PACS never pay for it (pip extra `dicom`).
"""

from __future__ import annotations

import socket
import time
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from checks.context import RunContext
from checks.interface.outcomes import Endpoint, ProbeFailure, connect, guarded, timed_result
from checks.result import Outcome, Result, Status
from checks.spec import CheckSpec

_PROVIDER_REASONS = {
    0: "reason not specified",
    1: "unrecognised PDU",
    2: "unexpected PDU",
    4: "unrecognised PDU parameter",
    5: "unexpected PDU parameter",
    6: "invalid PDU parameter value",
}
"""A-P-ABORT reasons (DICOM PS3.8 9.3.8)."""


def _ae_title(v: str) -> str:
    if not 1 <= len(v.strip()) <= 16 or not v.isascii() or "\\" in v or any(ord(c) < 32 for c in v):
        raise ValueError(f"expected an AE title of 1 to 16 ASCII characters without backslash, got {v!r}")
    return v.strip()


class DicomEchoSpec(CheckSpec):
    value_unit: ClassVar[str | None] = "seconds"
    kind_doc: ClassVar[str] = (
        "Opens a DICOM association (Verification SOP Class) from `calling_ae_title` to `called_ae_title` and "
        "sends C-ECHO. OK when the association is accepted and the echo answers Success; the value is the time "
        "in seconds for association, echo and release. A rejected association is CRITICAL auth_failed and says "
        "who rejected it (service user or provider) and why (e.g. called AE title not recognised: fix the AE "
        "titles); an abort is CRITICAL protocol_error; refused and timed-out connections are CRITICAL. Needs "
        "pynetdicom (`pip install xunjian[dicom]`); without it the result is UNKNOWN."
    )
    example: ClassVar[str] = (
        "id: pacs.dicom.echo\n"
        "kind: dicom.echo\n"
        "host: pacs.example.local\n"
        "port: 104\n"
        "called_ae_title: PACS\n"
        "calling_ae_title: XUNJIAN\n"
    )

    kind: Literal["dicom.echo"] = "dicom.echo"
    host: str = Field(description="Host name or IP address of the DICOM node.")
    port: int = Field(104, ge=1, le=65535, description="DICOM port (104 or 11112 are common).")
    called_ae_title: str = Field("ANY-SCP", description="AE title of the PACS node, as configured on it.")
    calling_ae_title: str = Field("XUNJIAN", description="Our AE title; the PACS may only accept known ones.")

    _titles = field_validator("called_ae_title", "calling_ae_title")(_ae_title)

    def probe(self, ctx: RunContext) -> list[Result]:
        endpoint = Endpoint(self.host, self.port)

        def run(started_at: float, t0: float) -> Result:
            try:
                from pynetdicom import AE, evt
                from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
            except ImportError:
                raise ProbeFailure(
                    Status.UNKNOWN, Outcome.INTERNAL_ERROR, "pynetdicom is not installed: pip install 'xunjian[dicom]'"
                ) from None
            address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0][4][0]
            seen: dict[str, Any] = {}

            def opened(event: Any) -> None:
                seen["open"] = True

            def received(event: Any) -> None:
                seen["primitive"] = event.primitive

            timeout = ctx.remaining(self.timeout)
            ae = AE(ae_title=self.calling_ae_title)
            ae.add_requested_context(Verification)
            ae.connection_timeout = timeout
            ae.acse_timeout = timeout
            ae.dimse_timeout = timeout
            ae.network_timeout = timeout
            assoc = ae.associate(
                str(address), self.port, ae_title=self.called_ae_title,
                evt_handlers=[(evt.EVT_CONN_OPEN, opened), (evt.EVT_ACSE_RECV, received)],
            )
            try:
                if not assoc.is_established:
                    raise self._association_failure(assoc, seen, endpoint, ctx)
                status = assoc.send_c_echo()
                code = getattr(status, "Status", None) if status else None
                if code is None:
                    raise ProbeFailure(Status.CRITICAL, Outcome.TIMEOUT, f"{endpoint} did not answer C-ECHO")
                if code != 0x0000:
                    raise ProbeFailure(
                        Status.CRITICAL, Outcome.PROTOCOL_ERROR, f"{endpoint} answered C-ECHO with status 0x{code:04X}"
                    )
                assoc.release()
            finally:
                if assoc.is_alive() and not assoc.is_released:
                    assoc.abort()
                _close_transport(assoc)
            seconds = time.monotonic() - t0
            return timed_result(
                self, seconds, f"{self.called_ae_title}@{endpoint} answered C-ECHO in {seconds:.3f} s",
                started_at, t0, {"echo_seconds": seconds},
            )

        return guarded(self, ctx, str(endpoint), run)

    def _association_failure(self, assoc: Any, seen: dict[str, Any], endpoint: Endpoint, ctx: RunContext) -> ProbeFailure:
        """Say why the association did not come up, in the words a PACS administrator uses."""
        primitive = seen.get("primitive")
        if assoc.is_rejected and primitive is not None:
            return ProbeFailure(
                Status.CRITICAL, Outcome.AUTH_FAILED,
                f"{endpoint} rejected association {self.calling_ae_title} -> {self.called_ae_title}: "
                f"{primitive.result_str}, by the {primitive.source_str}, reason: {primitive.reason_str}",
            )
        if primitive is not None and type(primitive).__name__ == "A_ABORT":
            return ProbeFailure(
                Status.CRITICAL, Outcome.PROTOCOL_ERROR,
                f"{endpoint} aborted the association {self.calling_ae_title} -> {self.called_ae_title}",
            )
        if primitive is not None and type(primitive).__name__ == "A_P_ABORT":
            reason = _PROVIDER_REASONS.get(getattr(primitive, "provider_reason", None) or 0, "reason not specified")
            hint = "" if reason == "reason not specified" else " - is this a DICOM port?"
            return ProbeFailure(
                Status.CRITICAL, Outcome.PROTOCOL_ERROR,
                f"association with {endpoint} aborted by the DICOM service provider: {reason}{hint}",
            )
        if not seen.get("open"):
            # pynetdicom only logs why the connection failed; one plain connect tells refused from timeout.
            with connect(endpoint, ctx.remaining(self.timeout)):
                pass
            return ProbeFailure(Status.CRITICAL, Outcome.PROTOCOL_ERROR, f"{endpoint}: DICOM connection failed")
        if primitive is None:
            return ProbeFailure(Status.CRITICAL, Outcome.TIMEOUT, f"{endpoint} did not answer the association request")
        if type(primitive).__name__ == "A_ASSOCIATE":
            return ProbeFailure(
                Status.CRITICAL, Outcome.PROTOCOL_ERROR,
                f"{endpoint} accepted the association but not the Verification SOP Class (C-ECHO not supported)",
            )
        return ProbeFailure(
            Status.CRITICAL, Outcome.PROTOCOL_ERROR,
            f"{endpoint} answered the association request with {type(primitive).__name__}",
        )


def _close_transport(assoc: Any) -> None:
    """Close the association's TCP socket once its DUL thread is done.

    After a provider abort (e.g. a peer that is not speaking DICOM) pynetdicom stops the DUL before the
    ARTIM timer would close the transport, leaving the socket to the garbage collector; an agent running this
    every minute should not rely on that.
    """
    dul = getattr(assoc, "dul", None)
    if dul is None:
        return
    if dul.is_alive():
        dul.kill_dul()
        dul.join(1.0)
    transport = getattr(dul, "socket", None)
    raw = getattr(transport, "socket", None)
    if raw is not None:
        raw.close()


SPECS: dict[str, type[CheckSpec]] = {"dicom.echo": DicomEchoSpec}
