"""Who is at the other end of a gRPC stream: the agent id from the peer's verified client certificate.

gRPC has already verified the chain against the collector's trust roots before a stream starts; here the verified
leaf certificate (`context.auth_context()["x509_pem_cert"]`) is mapped to an agent id and its serial is checked
against the denylist of revoked certificates. The id an agent writes in its Hello is never taken on its word:
a Hello for another id is refused (collector/ingest.py).

The mapping from a certificate to an agent id (collector.yaml `tls.agent_id_from`):
- `uri_san` (the default, what the collector's own CA issues): the URI SAN `xunjian://agent/ID`;
- `dns_san`: the first DNS SAN (a hospital PKI that issues host certificates);
- `common_name`: the subject's CN.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from collector.sanity import safe_id

log = logging.getLogger("xunjian.collector.identity")
AGENT_URI_PREFIX = "xunjian://agent/"
AGENT_ID_SOURCES = ("uri_san", "dns_san", "common_name")


@dataclass(frozen=True)
class Identity:
    agent_id: str | None
    """None: the transport authenticates nobody (insecure, loopback `xunjian up`); the Hello's id is taken."""
    via: str
    """How it was established, for logs and the audit trail: "cert:SERIAL" or "unauthenticated"."""
    refused: str = ""
    """Why this peer may not stream (a revoked certificate, a retired agent, no usable id); "" when it may."""


Identify = Callable[[Any], Identity]
"""Takes a grpc ServicerContext; returns the caller's Identity."""


def insecure_identity(_context: Any) -> Identity:
    return Identity(None, "unauthenticated")


def agent_id_of(cert: x509.Certificate, source: str = "uri_san", uri_prefix: str = AGENT_URI_PREFIX) -> str | None:
    """The agent id a certificate names under the mapping `source`; None when it names none."""
    if source == "common_name":
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    if source == "dns_san":
        dns = san.get_values_for_type(x509.DNSName)
        return dns[0] if dns else None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(uri_prefix):
            return uri[len(uri_prefix):]
    return None


class CertificateIdentity:
    """The Identify of an mTLS ingest: id from the certificate, refused when revoked or retired.

    The denylist is kept in memory (loaded from the store at start, added to as certificates are revoked and agents
    retired) and consulted for every new stream, so a revocation takes effect without waiting for expiry.
    """

    def __init__(self, source: str = "uri_san", uri_prefix: str = AGENT_URI_PREFIX,
                 revoked: Iterable[str] = (), retired: Iterable[str] = ()) -> None:
        if source not in AGENT_ID_SOURCES:
            raise ValueError(f"unknown agent id source {source!r}; expected one of {', '.join(AGENT_ID_SOURCES)}")
        self.source = source
        self.uri_prefix = uri_prefix
        self._lock = threading.Lock()
        self._revoked = {s.lower() for s in revoked}
        self._retired = set(retired)

    def revoke(self, serial_hex: str) -> None:
        with self._lock:
            self._revoked.add(serial_hex.lower())

    def retire(self, agent_id: str) -> None:
        with self._lock:
            self._retired.add(agent_id)

    def reinstate(self, agent_id: str) -> None:
        """An agent enrolled again after it was retired."""
        with self._lock:
            self._retired.discard(agent_id)

    def is_revoked(self, serial_hex: str) -> bool:
        with self._lock:
            return serial_hex.lower() in self._revoked

    def __call__(self, context: Any) -> Identity:
        props = context.auth_context()
        pem = (props.get("x509_pem_cert") or [b""])[0]
        if not pem:
            return Identity(None, "none", "no client certificate")
        return self.of_certificate(x509.load_pem_x509_certificate(pem))

    def of_certificate(self, cert: x509.Certificate) -> Identity:
        serial = format(cert.serial_number, "x")
        via = f"cert:{serial}"
        agent_id = agent_id_of(cert, self.source, self.uri_prefix)
        if agent_id is None or not safe_id(agent_id):
            return Identity(None, via, f"the certificate names no valid agent id (tls.agent_id_from: {self.source})")
        with self._lock:
            if serial in self._revoked:
                return Identity(agent_id, via, f"certificate {serial} of agent {agent_id} is revoked")
            if agent_id in self._retired:
                return Identity(agent_id, via, f"agent {agent_id} is retired; enroll it again to bring it back")
        return Identity(agent_id, via)
