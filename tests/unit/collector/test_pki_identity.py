"""The collector's CA, the certificate → agent id mappings (own CA and bring-your-own PKI), the denylist, key
permissions, server certificate renewal, and enrollment tokens (single use, expiring, bound to an id)."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.credentials import make_csr
from collector.access import Actor
from collector.config import CollectorConfig
from collector.grpc_tls import CertificateFiles, ensure_server_certificate, tls_files
from collector.identity import CertificateIdentity, agent_id_of
from collector.pki import Authority, PkiError, certificate_times, check_private, init_ca
from collector.sqlite import open_sqlite
from collector.trust import Trust, TrustError

ADMIN = Actor("root", "admin", "local:root")


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    init_ca(tmp_path / "pki")
    return Authority(tmp_path / "pki")


def cert_of(ca: Authority, agent_id: str) -> x509.Certificate:
    _, csr = make_csr(agent_id)
    return x509.load_pem_x509_certificate(ca.issue_agent(agent_id, csr, dt.timedelta(hours=1)).pem)


def foreign_cert(san: list[x509.GeneralName], cn: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(1)))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(key, hashes.SHA256())


def test_agent_certificates_name_the_agent_in_a_uri_san(ca: Authority) -> None:
    cert = cert_of(ca, "his-app-01")
    assert agent_id_of(cert) == "his-app-01"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert cert.issuer == ca.cert.subject


def test_the_id_comes_from_the_caller_not_the_csr(ca: Authority) -> None:
    _, csr = make_csr("someone-else")
    cert = x509.load_pem_x509_certificate(ca.issue_agent("his-app-01", csr, dt.timedelta(hours=1)).pem)
    assert agent_id_of(cert) == "his-app-01"


@pytest.mark.parametrize("source,san,cn,expected", [
    ("dns_san", [x509.DNSName("lis-db-02"), x509.DNSName("other")], "x", "lis-db-02"),
    ("common_name", [], "pacs-app-03", "pacs-app-03"),
    ("uri_san", [x509.DNSName("lis-db-02")], "lis-db-02", None),
    ("dns_san", [], "x", None),
])
def test_bring_your_own_pki_mappings(source: str, san: list[x509.GeneralName], cn: str, expected: str | None) -> None:
    assert agent_id_of(foreign_cert(san, cn), source) == expected


def test_identity_refuses_revoked_retired_and_unusable_ids(ca: Authority) -> None:
    ident = CertificateIdentity()
    cert = cert_of(ca, "his-app-01")
    ok = ident.of_certificate(cert)
    assert (ok.agent_id, ok.refused) == ("his-app-01", "") and ok.via == f"cert:{format(cert.serial_number, 'x')}"
    ident.revoke(format(cert.serial_number, "x"))
    assert "revoked" in ident.of_certificate(cert).refused
    other = cert_of(ca, "lis-app-02")
    ident.retire("lis-app-02")
    assert "retired" in ident.of_certificate(other).refused
    ident.reinstate("lis-app-02")
    assert ident.of_certificate(other).refused == ""
    bad = foreign_cert([x509.UniformResourceIdentifier("xunjian://agent/bad id\n")], "x")
    assert "no valid agent id" in CertificateIdentity().of_certificate(bad).refused


def test_private_keys_must_be_0600(ca: Authority, tmp_path: Path) -> None:
    key = tmp_path / "pki" / "ca.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    os.chmod(key, 0o644)
    with pytest.raises(PkiError, match="chmod 600"):
        check_private(key)
    with pytest.raises(PkiError, match="chmod 600"):
        Authority(tmp_path / "pki")


def test_init_refuses_to_overwrite_a_ca(ca: Authority, tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="already exists"):
        init_ca(tmp_path / "pki")


def test_server_certificate_issued_renewed_at_two_thirds_and_for_new_names(ca: Authority, tmp_path: Path) -> None:
    cfg = CollectorConfig.for_data_dir(tmp_path, tls={"dir": str(tmp_path / "pki"), "server_cert_ttl": "30d",
                                                      "server_names": ["collector-a", "10.10.9.10"]})
    now = time.time()
    assert ensure_server_certificate(ca, cfg, now)
    assert not ensure_server_certificate(ca, cfg, now)
    files = CertificateFiles(tls_files(cfg))
    files.check()
    files.configuration()
    assert files.fetch() is None, "unchanged files: gRPC keeps the certificate it has"
    start, end = certificate_times(tls_files(cfg).cert.read_bytes())
    assert ensure_server_certificate(ca, cfg, start + (end - start) * 0.7)
    assert files.fetch() is not None, "a rotated certificate is handed to gRPC at the next handshake"
    renamed = CollectorConfig.for_data_dir(tmp_path, tls={"dir": str(tmp_path / "pki"), "server_names": ["collector-b"]})
    assert ensure_server_certificate(ca, renamed, now)


def test_enrollment_tokens_are_single_use_expiring_and_bound_to_one_agent(ca: Authority, tmp_path: Path) -> None:
    from concurrent.futures import Future
    from typing import Any

    store = open_sqlite(tmp_path / "c.db")
    clock = [1_000_000.0]

    class Direct:
        def submit(self, job: Any) -> Future[Any]:
            fut: Future[Any] = Future()
            with store.transaction() as tx:
                fut.set_result(job(tx))
            return fut

    trust = Trust(store, Direct(), lambda: clock[0], session_ttl=3600, enroll_token_ttl=600,  # type: ignore[arg-type]
                  agent_cert_ttl=3600, authority=ca)
    token, _ = trust.enroll_agent(ADMIN, "his-app-01", None)
    _, csr = make_csr("his-app-01")
    agent_id, issued = trust.enroll(token, csr, "peer")
    assert agent_id == "his-app-01"
    assert [r["serial"] for r in store.list_certificates("his-app-01")] == [issued.serial]
    with pytest.raises(TrustError, match="already used"):
        trust.enroll(token, csr, "peer")
    late, _ = trust.enroll_agent(ADMIN, "lis-app-02", 60)
    clock[0] += 61
    with pytest.raises(TrustError, match="expired"):
        trust.enroll(late, csr, "peer")
    with pytest.raises(TrustError, match="enrollment token"):
        trust.enroll("xjt_an-api-token", csr, "peer")
    actions = [e["action"] for e in store.list_audit()]
    assert actions == ["agent.enroll", "agent.enrolled", "agent.enroll_refused", "agent.enroll", "agent.enroll_refused"]
    assert token.encode() not in (tmp_path / "c.db").read_bytes() + (tmp_path / "c.db-wal").read_bytes()
    store.close()
