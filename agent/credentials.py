"""The agent's identity on the wire: its key and certificate, enrollment, renewal, and the channels made with them.

With `collector.tls.mode: mtls` (the default) the agent makes its own key (EC P-256), sends only a CSR with the
single-use enrollment token to the collector's enrollment listener, and keeps the certificate it gets back with
the key in one file (`identity.pem`, 0600, replaced atomically, so a key never meets the wrong certificate). At
about 2/3 of the certificate's life it renews over mTLS with a new key. The collector's certificate is checked
against `tls.ca_file`. With the hospital's own PKI (`cert_file`, `key_file`) the agent only uses those files.

A component of the agent (start/stop/health) with one thread that sleeps until the next enrollment attempt or
renewal is due: a few wake-ups a week.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from agent.config import TlsSection
from protos import patrol_pb2, patrol_pb2_grpc
from service.files import write_private
from service.lifecycle import Health, Host, spawn

log = logging.getLogger("xunjian.agent.credentials")
RENEW_AT = 2 / 3
RETRY_S = (5.0, 300.0)
"""Waits between failed enrollment or renewal attempts: from the first to the longest. The first is also the
shortest time between two renewals, whatever a certificate's dates say."""
RPC_TIMEOUT_S = 15.0
ENROLL_PORT = 9472
IDENTITY_FILE = "identity.pem"


class NotEnrolled(ConnectionError):
    """No usable certificate yet: the transport waits and tries again."""


@dataclass(frozen=True)
class Identity:
    key: bytes
    cert: bytes
    not_before: float
    not_after: float

    def renew_due(self) -> float:
        return self.not_before + (self.not_after - self.not_before) * RENEW_AT


def _times(cert_pem: bytes) -> tuple[float, float]:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()


def make_csr(agent_id: str) -> tuple[bytes, bytes]:
    """A new key and a CSR for it: (key PEM, CSR PEM). The key stays here."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, agent_id)]))
           .sign(key, hashes.SHA256()))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem, csr.public_bytes(serialization.Encoding.PEM)


def _split_pem(data: bytes) -> tuple[bytes, bytes]:
    """(key, certificate chain) from one PEM file holding both."""
    marker = b"-----END PRIVATE KEY-----"
    end = data.find(marker)
    if end < 0:
        raise ValueError("no private key in the identity file")
    cut = end + len(marker)
    return data[:cut].strip() + b"\n", data[cut:].strip() + b"\n"


class Credentials:
    """Channels to the collector with this agent's identity; enrolls and renews in a thread of its own."""

    name = "credentials"

    def __init__(self, tls: TlsSection, *, base_dir: Path, spool_dir: Path, agent_id: str,
                 addresses: Sequence[str], clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        self.tls = tls
        self.agent_id = agent_id
        self.addresses = list(addresses)
        self.clock = clock
        self._rng = rng or random.Random()

        def resolve(raw: str) -> Path:
            p = Path(raw).expanduser()
            return p if p.is_absolute() else base_dir / p

        self.ca_file = resolve(tls.ca_file)
        self.own_pki = bool(tls.cert_file)
        self.cert_file = resolve(tls.cert_file) if tls.cert_file else None
        self.key_file = resolve(tls.key_file) if tls.key_file else None
        self.token_file = resolve(tls.enroll_token_file)
        self.identity_dir = resolve(tls.identity_dir) if tls.identity_dir else spool_dir / "identity"
        self.identity_file = self.identity_dir / IDENTITY_FILE
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._identity: Identity | None = None
        self._problem = ""

    @property
    def secure(self) -> bool:
        return self.tls.mode == "mtls"

    # what the transport calls

    def channel(self, address: str, options: Sequence[tuple[str, Any]]) -> grpc.Channel:
        """A channel to `address`: mTLS with the current identity (NotEnrolled until there is one), or plain text."""
        if not self.secure:
            return grpc.insecure_channel(address, options=list(options))
        identity = self.identity()
        if identity is None:
            raise NotEnrolled(self._problem or "this agent has no certificate yet (enrollment pending)")
        return self._secure_channel(address, options, identity)

    def _secure_channel(self, address: str, options: Sequence[tuple[str, Any]],
                        identity: Identity | None) -> grpc.Channel:
        creds = grpc.ssl_channel_credentials(
            root_certificates=self.ca_file.read_bytes(),
            private_key=identity.key if identity else None,
            certificate_chain=identity.cert if identity else None)
        opts = list(options)
        if self.tls.server_name:
            opts.append(("grpc.ssl_target_name_override", self.tls.server_name))
        return grpc.secure_channel(address, creds, options=opts)

    def identity(self) -> Identity | None:
        """The current key and certificate (read from disk once, then kept), or None."""
        with self._lock:
            if self._identity is None:
                self._identity = self._load()
            return self._identity

    def _load(self) -> Identity | None:
        try:
            if self.own_pki:
                assert self.cert_file is not None and self.key_file is not None
                key, cert = self.key_file.read_bytes(), self.cert_file.read_bytes()
            else:
                key, cert = _split_pem(self.identity_file.read_bytes())
            start, end = _times(cert)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self._problem = f"cannot read this agent's certificate: {exc}"
            log.error("%s", self._problem, extra={"event": "tls.identity_unreadable"})
            return None
        if end <= self.clock():
            self._problem = (f"this agent's certificate expired at {_when(end)}; enroll it again "
                             f"(`xunjian agents enroll {self.agent_id}` on the collector)")
            return None
        return Identity(key, cert, start, end)

    # lifecycle

    def start(self, host: Host) -> None:
        if not self.secure:
            return
        if not self.ca_file.is_file():
            raise FileNotFoundError(f"collector.tls.ca_file {self.ca_file} does not exist: copy the collector's CA "
                                    "certificate there (ca.crt from `xunjian ca init`), or set collector.tls.mode: "
                                    "insecure for a collector on loopback")
        if self.own_pki:
            if self.identity() is None:
                raise FileNotFoundError(self._problem or f"cannot read {self.cert_file} / {self.key_file}")
            return
        self.identity_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.identity_dir, 0o700)
        self._thread = spawn("xunjian-credentials", self._run, host, self.name)

    def stop(self, timeout: float) -> bool:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def health(self) -> Health:
        if not self.secure:
            return Health(True, "plain text (tls.mode insecure)")
        identity = self.identity()
        if identity is None:
            return Health(True, f"not enrolled: {self._problem or 'waiting'}")
        return Health(True, f"certificate valid until {_when(identity.not_after)}")

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            identity = self.identity()
            now = self.clock()
            if identity is not None and now < identity.renew_due():
                failures = 0
                self._sleep(identity.renew_due() - now)
                continue
            try:
                if identity is None:
                    self._enroll()
                else:
                    self._renew(identity)
                failures = 0
                self._sleep(RETRY_S[0])
            except Exception as exc:
                failures += 1
                wait = min(RETRY_S[1], RETRY_S[0] * 2 ** min(failures - 1, 10)) * self._rng.uniform(0.8, 1.0)
                what = "enrollment" if identity is None else "renewal"
                self._problem = f"{what} failed: {_describe(exc)}"
                log.error("certificate %s failed (%s); trying again in %.0fs", what, _describe(exc), wait,
                          extra={"event": f"tls.{what}_failed"})
                self._sleep(wait)

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(max(seconds, 0.0))
        self._wake.clear()

    # enrollment and renewal

    def _enroll(self) -> None:
        try:
            token = self.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise NotEnrolled(f"no certificate yet, and the enrollment token {self.token_file} cannot be read "
                              f"({exc.strerror}): make one with `xunjian agents enroll {self.agent_id}` on the "
                              "collector and put it there") from None
        key, csr = make_csr(self.agent_id)
        address = self.tls.enroll_address or _with_port(self.addresses[0], ENROLL_PORT)
        with self._secure_channel(address, [], None) as channel:
            stub: Any = patrol_pb2_grpc.EnrollmentStub(channel)  # type: ignore[no-untyped-call]
            reply = stub.Enroll(patrol_pb2.EnrollRequest(token=token, csr_pem=csr), timeout=RPC_TIMEOUT_S)
        self._keep(key, reply, "enrolled")

    def _renew(self, identity: Identity) -> None:
        key, csr = make_csr(self.agent_id)
        errors = []
        for address in self.addresses:
            try:
                with self._secure_channel(address, [], identity) as channel:
                    stub: Any = patrol_pb2_grpc.EnrollmentStub(channel)  # type: ignore[no-untyped-call]
                    reply = stub.Renew(patrol_pb2.RenewRequest(csr_pem=csr), timeout=RPC_TIMEOUT_S)
            except grpc.RpcError as exc:
                errors.append(f"{address}: {_describe(exc)}")
                continue
            self._keep(key, reply, "renewed")
            return
        raise ConnectionError("; ".join(errors))

    def _keep(self, key: bytes, reply: patrol_pb2.Certificate, how: str) -> None:
        if reply.agent_id != self.agent_id:
            raise NotEnrolled(f"the collector issued a certificate for agent {reply.agent_id!r}, but this agent is "
                              f"{self.agent_id!r} (agent.id): the token was made for another agent")
        cert = bytes(reply.certificate_pem)
        start, end = _times(cert)
        write_private(self.identity_file, key + cert)
        with self._lock:
            self._identity = Identity(key, cert, start, end)
        self._problem = ""
        log.info("agent %s %s: certificate valid until %s, renewal due %s", self.agent_id, how, _when(end),
                 _when(start + (end - start) * RENEW_AT), extra={"event": f"tls.{how}", "agent": self.agent_id})


def _with_port(address: str, port: int) -> str:
    return f"{address.rpartition(':')[0]}:{port}"


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    details = getattr(exc, "details", None)
    if callable(code) and callable(details):
        name = getattr(code(), "name", "")
        return f"{name}: {details()}"
    return f"{type(exc).__name__}: {exc}"


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
