"""Reading a certificate's expiry, subject and issuer from DER, whoever signed it."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from checks.interface.outcomes import ProbeFailure
from checks.interface.tls import describe_certificate

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc)


def der(subject: str, issuer: str, not_after: dt.datetime) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(not_after - dt.timedelta(days=365))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def test_self_signed_expiring() -> None:
    info = describe_certificate(der("his.example.local", "his.example.local", NOW + dt.timedelta(days=6, hours=12)), NOW)
    assert info.days_left == pytest.approx(6.5)
    assert info.self_signed
    assert info.summary() == (
        "certificate CN=his.example.local expires 2026-11-29 00:00 UTC, in 6.5 days (self-signed)"
    )


def test_ca_issued_and_expired() -> None:
    info = describe_certificate(der("yb-front", "Hospital Root CA", NOW - dt.timedelta(days=2)), NOW)
    assert info.days_left == pytest.approx(-2)
    assert not info.self_signed
    assert "EXPIRED 2026-11-20 12:00 UTC, 2.0 days ago" in info.summary()
    assert "issued by CN=Hospital Root CA" in info.summary()


def test_unparseable_certificate_is_tls_error() -> None:
    with pytest.raises(ProbeFailure, match="cannot be parsed"):
        describe_certificate(b"\x30\x03\x02\x01\x01", NOW)
