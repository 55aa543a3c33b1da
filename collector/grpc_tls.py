"""TLS of the gRPC listeners: mTLS on ingest, server-only TLS on enrollment, certificates reloaded without a restart.

Both listeners use gRPC's dynamic server credentials: before each new connection's handshake gRPC asks
`CertificateFiles.fetch` whether the certificate changed, and a replaced file (a rotation by the collector's CA, or
new files from the hospital's PKI) is served from the next connection on, while streams already open go on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from collector.config import CollectorConfig
from collector.identity import CertificateIdentity
from collector.pki import (
    CA_CERT,
    CA_KEY,
    SERVER_CERT,
    SERVER_KEY,
    Authority,
    Issued,
    PkiError,
    certificate_times,
    check_private,
)
from collector.trust import Trust, TrustError
from protos import patrol_pb2, patrol_pb2_grpc

log = logging.getLogger("xunjian.collector.tls")
RENEW_AT = 2 / 3
"""Renew a certificate when this fraction of its life has passed."""


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    """The server certificate chain (PEM)."""
    key: Path
    client_ca: Path
    """Roots that agents' client certificates must chain to."""


def tls_files(config: CollectorConfig) -> TlsFiles:
    tls = config.tls
    if tls.own_pki:
        return TlsFiles(config.path(tls.cert_file), config.path(tls.key_file), config.path(tls.client_ca_file))
    d = config.pki_dir
    return TlsFiles(d / SERVER_CERT, d / SERVER_KEY, d / CA_CERT)


def open_authority(config: CollectorConfig) -> Authority | None:
    """The collector's CA (None with the hospital's own PKI); PkiError when missing or its key is unsafe."""
    if config.tls.own_pki:
        return None
    d = config.pki_dir
    if not (d / CA_KEY).exists():
        raise PkiError(f"no CA in {d}: run `xunjian ca init --config collector.yaml` once (or set tls.cert_file, "
                       "key_file and client_ca_file to use your own PKI, or tls.mode: insecure on loopback only)")
    return Authority(d)


def ensure_server_certificate(authority: Authority, config: CollectorConfig, now: float) -> bool:
    """Issue the server certificate when it is missing, names other hosts than tls.server_names, or is past 2/3 of
    its life; True when a new one was written."""
    files = tls_files(config)
    names = list(config.tls.server_names)
    reason = ""
    if not files.cert.exists() or not files.key.exists():
        reason = "none yet"
    else:
        pem = files.cert.read_bytes()
        start, end = certificate_times(pem)
        if now >= start + (end - start) * RENEW_AT:
            reason = "past 2/3 of its life"
        elif _names(pem) != sorted(names):
            reason = "tls.server_names changed"
    if not reason:
        return False
    issued = authority.write_server(names, dt.timedelta(seconds=config.tls.server_cert_ttl))
    log.info("server certificate issued (%s): %s for %s, valid until %s", reason, issued.serial, ", ".join(names),
             dt.datetime.fromtimestamp(issued.not_after, dt.timezone.utc).isoformat(timespec="seconds"),
             extra={"event": "tls.server_certificate", "serial": issued.serial})
    return True


def _names(pem: bytes) -> list[str]:
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pem)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return sorted([*san.get_values_for_type(x509.DNSName), *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))])


class CertificateFiles:
    """The server's key, chain and client roots, re-read when a file changes (checked before each handshake)."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._stamp: tuple[float, ...] = ()
        self.reloads_total = 0

    def check(self) -> None:
        """At start: the files exist, the key is private; PkiError otherwise."""
        for path in (self.files.cert, self.files.client_ca):
            if not path.is_file():
                raise PkiError(f"{path} does not exist")
        check_private(self.files.key)

    def _mtimes(self) -> tuple[float, ...]:
        return tuple(os.stat(p).st_mtime_ns for p in (self.files.cert, self.files.key, self.files.client_ca))

    def configuration(self) -> Any:
        self._stamp = self._mtimes()
        return grpc.ssl_server_certificate_configuration(
            [(self.files.key.read_bytes(), self.files.cert.read_bytes())],
            root_certificates=self.files.client_ca.read_bytes())

    def fetch(self) -> Any:
        """gRPC's certificate configuration fetcher: a new configuration when a file changed, else None."""
        try:
            if self._mtimes() == self._stamp:
                return None
            config = self.configuration()
        except Exception as exc:  # a half-written file: keep serving the previous certificate
            log.warning("server certificate files could not be re-read (%s); keeping the previous ones", exc)
            return None
        self.reloads_total += 1
        log.info("server certificate reloaded from %s", self.files.cert,
                 extra={"event": "tls.reloaded", "file": str(self.files.cert)})
        return config

    def credentials(self, *, client_auth: bool) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(self.configuration(), self.fetch,
                                                   require_client_authentication=client_auth)


class EnrollmentServicer(patrol_pb2_grpc.EnrollmentServicer):
    """Enroll (token + CSR → certificate) on the enrollment listener; Renew (mTLS) on the ingest listener."""

    def __init__(self, trust: Trust, identity: CertificateIdentity, ca_pem: Callable[[], bytes]) -> None:
        self.trust = trust
        self.identity = identity
        self.ca_pem = ca_pem

    async def Enroll(self, request: patrol_pb2.EnrollRequest,
                     context: grpc.aio.ServicerContext[Any, Any]) -> patrol_pb2.Certificate:
        peer = context.peer()
        token, csr = request.token.strip(), bytes(request.csr_pem)
        return await self._answer(context, lambda: self.trust.enroll(token, csr, peer))

    async def Renew(self, request: patrol_pb2.RenewRequest,
                    context: grpc.aio.ServicerContext[Any, Any]) -> patrol_pb2.Certificate:
        who = self.identity(context)
        agent_id = who.agent_id
        if agent_id is None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, who.refused or "renewal needs a client certificate")
            raise AssertionError("abort raises")
        peer, csr = context.peer(), bytes(request.csr_pem)
        return await self._answer(context, lambda: (agent_id, self.trust.renew(agent_id, who.via, who.refused, csr,
                                                                              peer)))

    async def _answer(self, context: grpc.aio.ServicerContext[Any, Any],
                      grant: Callable[[], tuple[str, Issued]]) -> patrol_pb2.Certificate:
        """Run `grant` (it writes to the store) off the loop; a refusal ends the call with its reason."""
        try:
            agent_id, issued = await asyncio.to_thread(grant)
        except TrustError as exc:
            code = grpc.StatusCode.PERMISSION_DENIED if exc.status == 403 else grpc.StatusCode.INVALID_ARGUMENT
            await context.abort(code, str(exc))
            raise AssertionError("abort raises") from exc
        return patrol_pb2.Certificate(agent_id=agent_id, certificate_pem=issued.pem, ca_pem=self.ca_pem(),
                                      not_after_unix=int(issued.not_after))


class EnrollServer:
    """The enrollment listener (`listen.enroll`) as a collector component: server-only TLS, Enroll only."""

    name = "enroll"

    def __init__(self, loop: Any, servicer: EnrollmentServicer, listen: str, files: CertificateFiles) -> None:
        self.loop = loop
        self.servicer = servicer
        self.listen = listen
        self.files = files
        self.port = 0
        self._server: grpc.aio.Server | None = None

    def start(self, host: Any) -> None:
        self.loop.call(self._start(), timeout=30)

    async def _start(self) -> None:
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 * 1024),
                                          ("grpc.max_concurrent_streams", 4)])
        patrol_pb2_grpc.add_EnrollmentServicer_to_server(self.servicer, server)  # type: ignore[no-untyped-call]
        try:
            self.port = server.add_secure_port(self.listen, self.files.credentials(client_auth=False))
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {self.listen} (listen.enroll): {exc}") from None
        if self.port == 0:
            raise OSError(f"cannot listen on {self.listen} (listen.enroll): address in use or not available")
        await server.start()
        self._server = server

    def stop(self, timeout: float) -> bool:
        if self._server is None:
            return True
        try:
            self.loop.call(self._server.stop(min(1.0, timeout / 2)), timeout)
        except Exception as exc:
            log.warning("enrollment server did not stop cleanly: %s", exc)
            return False
        return True

    def health(self) -> Any:
        from service.lifecycle import Health

        return Health(self._server is not None, "" if self._server is not None else "not serving")
