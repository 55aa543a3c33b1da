"""`tls.cert`: days until the certificate of a TLS service expires, read even when it is self-signed."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import time
from typing import ClassVar, Literal

from pydantic import Field

from checks.context import RunContext
from checks.interface.outcomes import Endpoint, ProbeFailure, connect, guarded
from checks.result import Outcome, Result, Status
from checks.spec import CheckSpec, ThresholdField
from checks.thresholds import parse_threshold


class TlsCertSpec(CheckSpec):
    value_unit: ClassVar[str | None] = "days"
    kind_doc: ClassVar[str] = (
        "Connects to host:port, completes a TLS handshake without verifying the chain (so self-signed and "
        "internal-CA certificates are reported too) and reads the leaf certificate's notAfter. The value is "
        'the number of days left (negative once expired); warn/crit default to "< 30" and "< 7". The summary '
        "names subject, issuer and expiry date, and says when the certificate is self-signed. A failed "
        "handshake (not TLS, no shared protocol or cipher) is CRITICAL tls_error; refused or timed-out "
        "connections are CRITICAL as for `tcp`."
    )
    example: ClassVar[str] = (
        "id: his.web.cert\n"
        "kind: tls.cert\n"
        "host: his.example.local\n"
        "port: 443\n"
        'warn: "< 30"\n'
        'crit: "< 7"\n'
    )

    kind: Literal["tls.cert"] = "tls.cert"
    host: str = Field(description="Host name or IP address of the TLS service.")
    port: int = Field(443, ge=1, le=65535, description="TCP port that speaks TLS from the first byte (no STARTTLS).")
    server_name: str | None = Field(None, description="SNI name to ask for; defaults to host when host is a name.")
    warn: ThresholdField | None = Field(parse_threshold("< 30"), description="WARNING when days left match.")
    crit: ThresholdField | None = Field(parse_threshold("< 7"), description="CRITICAL when days left match.")

    def probe(self, ctx: RunContext) -> list[Result]:
        endpoint = Endpoint(self.host, self.port)

        def run(started_at: float, t0: float) -> Result:
            der = fetch_certificate(endpoint, self.server_name or _sni_default(self.host), ctx.remaining(self.timeout))
            now = dt.datetime.fromtimestamp(ctx.clock(), tz=dt.timezone.utc)
            info = describe_certificate(der, now)
            result = self.measured(
                info.days_left, unit="days", summary=info.summary(),
                metrics={"days_left": info.days_left, "not_after": info.not_after.timestamp(),
                         "self_signed": 1.0 if info.self_signed else 0.0},
            )
            result.started_at = started_at
            result.duration_ms = (time.monotonic() - t0) * 1000.0
            return result

        return guarded(self, ctx, str(endpoint), run)


def _sni_default(host: str) -> str | None:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return host
    return None


def fetch_certificate(endpoint: Endpoint, server_name: str | None, timeout: float) -> bytes:
    """The peer's leaf certificate in DER, from a handshake that does not verify it (we want to read it, not trust it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with connect(endpoint, timeout) as raw, context.wrap_socket(raw, server_hostname=server_name) as tls:
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ProbeFailure(Status.CRITICAL, Outcome.TLS_ERROR, f"{endpoint} presented no certificate")
    return der


class CertificateInfo:
    def __init__(self, subject: str, issuer: str, not_after: dt.datetime, self_signed: bool, now: dt.datetime) -> None:
        self.subject = subject
        self.issuer = issuer
        self.not_after = not_after
        self.self_signed = self_signed
        self.days_left = (not_after - now).total_seconds() / 86400.0

    def summary(self) -> str:
        when = self.not_after.strftime("%Y-%m-%d %H:%M UTC")
        state = f"expires {when}, in {self.days_left:.1f} days" if self.days_left >= 0 else (
            f"EXPIRED {when}, {-self.days_left:.1f} days ago"
        )
        origin = "self-signed" if self.self_signed else f"issued by {self.issuer}"
        return f"certificate {self.subject} {state} ({origin})"


def describe_certificate(der: bytes, now: dt.datetime) -> CertificateInfo:
    """Subject, issuer and notAfter of a DER certificate; a certificate we cannot parse is a TLS problem."""
    from cryptography import x509

    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise ProbeFailure(Status.CRITICAL, Outcome.TLS_ERROR, f"certificate cannot be parsed: {exc}") from None
    subject = cert.subject.rfc4514_string() or "(empty subject)"
    issuer = cert.issuer.rfc4514_string() or "(empty issuer)"
    return CertificateInfo(subject, issuer, cert.not_valid_after_utc, cert.subject == cert.issuer, now)


SPECS: dict[str, type[CheckSpec]] = {"tls.cert": TlsCertSpec}
