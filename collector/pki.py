"""The collector's small CA: its key and certificate, the server certificate of the ingest, agent certificates.

Files in `tls.dir` (collector.yaml): `ca.key` and `server.key` (0600, checked at start), `ca.crt`, `server.crt`.
An agent certificate carries the agent id in a URI SAN `xunjian://agent/ID`, is short-lived (`tls.agent_cert_ttl`)
and renewed over mTLS at about 2/3 of its life; the CA never sees an agent's private key (the agent sends a CSR).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from collector.identity import AGENT_URI_PREFIX
from service.files import write_private

CA_KEY, CA_CERT, SERVER_KEY, SERVER_CERT = "ca.key", "ca.crt", "server.key", "server.crt"
CA_TTL = dt.timedelta(days=3650)
CLOCK_SKEW = dt.timedelta(minutes=5)
"""Certificates start up to this much before now (a tenth of their life at most), so an agent whose clock is a
little behind accepts them, and 2/3 of the life still falls well after the issue."""


class PkiError(Exception):
    """A missing, unreadable or unsafe CA or server file; the message names the file and the fix."""


@dataclass(frozen=True)
class Issued:
    pem: bytes
    serial: str
    not_before: float
    not_after: float


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def check_private(path: Path) -> None:
    """A private key must exist and be readable by its owner only (as ssh does for its keys)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise PkiError(f"{path} does not exist; run `xunjian ca init --config collector.yaml`") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PkiError(f"{path} is readable by others (mode {stat.S_IMODE(mode):04o}); a private key must be 0600: "
                       f"chmod 600 {path}")


def _serial() -> int:
    return secrets.randbits(127) | 1 << 126


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def init_ca(directory: Path, common_name: str = "Xunjian collector CA") -> tuple[Path, Path]:
    """Create the CA key and self-signed certificate in `directory`; refuses to overwrite an existing CA."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    key_path, cert_path = directory / CA_KEY, directory / CA_CERT
    if key_path.exists() or cert_path.exists():
        raise PkiError(f"a CA already exists in {directory}; remove {CA_KEY} and {CA_CERT} first to start over "
                       "(every agent must then enroll again)")
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(_serial()).not_valid_before(now - CLOCK_SKEW).not_valid_after(now + CA_TTL)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    write_private(key_path, key_pem(key))
    write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class Authority:
    """The CA loaded from `directory`: issues server and agent certificates."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        key_path = directory / CA_KEY
        check_private(key_path)
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            self.cert = x509.load_pem_x509_certificate((directory / CA_CERT).read_bytes())
        except (OSError, ValueError) as exc:
            raise PkiError(f"cannot read the CA in {directory}: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise PkiError(f"{key_path}: expected an EC key as `xunjian ca init` writes")
        self._key = key

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def _issue(self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey, san: x509.SubjectAlternativeName,
               usage: x509.ObjectIdentifier, ttl: dt.timedelta) -> Issued:
        now = _now()
        serial = _serial()
        not_after = min(now + ttl, self.cert.not_valid_after_utc)
        not_before = now - min(CLOCK_SKEW, ttl / 10)
        cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(self.cert.subject)
                .public_key(public_key).serial_number(serial).not_valid_before(not_before)
                .not_valid_after(not_after)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(san, critical=False)
                .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                               critical=False)
                .sign(self._key, hashes.SHA256()))
        return Issued(cert.public_bytes(serialization.Encoding.PEM), format(serial, "x"), not_before.timestamp(),
                      not_after.timestamp())

    def issue_agent(self, agent_id: str, csr_pem: bytes, ttl: dt.timedelta) -> Issued:
        """An agent certificate for the key in `csr_pem`; the id comes from the caller (token or current
        certificate), never from the CSR."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as exc:
            raise PkiError(f"not a PEM certificate signing request: {exc}") from None
        if not csr.is_signature_valid:
            raise PkiError("the CSR's signature does not match its key")
        key = csr.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise PkiError("the CSR must carry an EC key (P-256), as the agent makes")
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, agent_id)])
        san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(AGENT_URI_PREFIX + agent_id)])
        return self._issue(subject, key, san, ExtendedKeyUsageOID.CLIENT_AUTH, ttl)

    def issue_server(self, names: Sequence[str], ttl: dt.timedelta) -> tuple[bytes, Issued]:
        """A new server key and certificate for `names` (DNS names or IP addresses); returns (key PEM, cert)."""
        key = _key()
        entries: list[x509.GeneralName] = []
        for name in names:
            try:
                entries.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                entries.append(x509.DNSName(name))
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "xunjian-collector")])
        issued = self._issue(subject, key.public_key(), x509.SubjectAlternativeName(entries),
                             ExtendedKeyUsageOID.SERVER_AUTH, ttl)
        return key_pem(key), issued

    def write_server(self, names: Sequence[str], ttl: dt.timedelta) -> Issued:
        """Issue a server certificate into the CA's directory (the running collector takes it at the next
        handshake): the key first, then the certificate, each replaced atomically."""
        key, issued = self.issue_server(names, ttl)
        write_private(self.directory / SERVER_KEY, key)
        write_public(self.directory / SERVER_CERT, issued.pem + self.cert_pem)
        return issued


def certificate_times(pem: bytes) -> tuple[float, float]:
    """(not before, not after) of a PEM certificate, unix seconds."""
    cert = x509.load_pem_x509_certificate(pem)
    return cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()


def fingerprint(pem: bytes) -> str:
    return x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()
