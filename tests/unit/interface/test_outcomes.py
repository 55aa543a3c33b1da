"""The failure policy: which errors mean "service down" (CRITICAL) and which "could not tell" (UNKNOWN)."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest

from checks.interface.dicom import DicomEchoSpec
from checks.interface.dns import DnsSpec
from checks.interface.outcomes import classify
from checks.interface.tls import TlsCertSpec
from checks.result import Outcome, Status


@pytest.mark.parametrize(
    ("exc", "status", "outcome"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), Status.CRITICAL, Outcome.CONNECTION_REFUSED),
        (TimeoutError("timed out"), Status.CRITICAL, Outcome.TIMEOUT),
        (OSError(errno.ETIMEDOUT, "timed out"), Status.CRITICAL, Outcome.TIMEOUT),
        (OSError(errno.EHOSTUNREACH, "no route"), Status.CRITICAL, Outcome.CONNECTION_REFUSED),
        (ssl.SSLError(1, "wrong version number"), Status.CRITICAL, Outcome.TLS_ERROR),
        (ConnectionResetError(errno.ECONNRESET, "reset"), Status.CRITICAL, Outcome.PROTOCOL_ERROR),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), Status.UNKNOWN, Outcome.DNS_ERROR),
        (OSError(errno.ENETUNREACH, "network unreachable"), Status.UNKNOWN, Outcome.CONNECTION_REFUSED),
        (PermissionError(errno.EACCES, "denied"), Status.UNKNOWN, Outcome.PERMISSION_DENIED),
        (KeyError("bug"), Status.UNKNOWN, Outcome.INTERNAL_ERROR),
    ],
)
def test_classification(exc: BaseException, status: Status, outcome: Outcome) -> None:
    failure = classify(exc, "his.example.local:443")
    assert (failure.status, failure.outcome) == (status, outcome)
    assert "his.example.local:443" in failure.summary


def test_untrusted_certificate_names_the_reason() -> None:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "self-signed certificate"
    failure = classify(exc, "his.example.local:443")
    assert failure.outcome is Outcome.TLS_ERROR
    assert "self-signed certificate" in failure.summary


def test_tls_cert_defaults_to_30_and_7_days() -> None:
    spec = TlsCertSpec.model_validate({"id": "c", "kind": "tls.cert", "host": "his.example.local"})
    assert (str(spec.warn), str(spec.crit), spec.port) == ("< 30", "< 7", 443)
    assert spec.status_for(45) is Status.OK
    assert spec.status_for(20) is Status.WARNING
    assert spec.status_for(-1) is Status.CRITICAL


def test_ae_titles_are_validated() -> None:
    base = {"id": "p", "kind": "dicom.echo", "host": "pacs.example.local"}
    assert DicomEchoSpec.model_validate({**base, "called_ae_title": " PACS "}).called_ae_title == "PACS"
    with pytest.raises(ValueError, match="1 to 16 ASCII"):
        DicomEchoSpec.model_validate({**base, "called_ae_title": "A_VERY_LONG_AE_TITLE"})
    with pytest.raises(ValueError, match="1 to 16 ASCII"):
        DicomEchoSpec.model_validate({**base, "calling_ae_title": "影像"})


def test_dns_expected_addresses_are_normalised() -> None:
    spec = DnsSpec.model_validate({"id": "d", "kind": "dns", "name": "his", "expect_addresses": ["2001:DB8::1"]})
    assert spec.expect_addresses == ["2001:db8::1"]
    with pytest.raises(ValueError, match="IPv4 or IPv6"):
        DnsSpec.model_validate({"id": "d", "kind": "dns", "name": "his", "expect_addresses": ["his-db"]})
