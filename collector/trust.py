"""Who may do what: API tokens and console sessions for people, enrollment and certificates for agents.

Every change (a token created or revoked, an agent enrolled, a certificate issued or renewal refused, an agent
retired) goes through the store writer with its audit entry in the same transaction. Reads (authenticating a
request) go to the store each time, so a revocation takes effect at once, at every collector sharing the store.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collector.access import ROLES, Actor
from collector.audit import AuditEntry
from collector.identity import CertificateIdentity
from collector.pki import Authority, Issued, PkiError
from collector.sanity import id_problem
from collector.store import Row, Store, StoreTx
from collector.tokens import ENROLL_PREFIX, digest, new_api_token, new_enrollment_token, new_session
from collector.writer import Writer

log = logging.getLogger("xunjian.collector.trust")
WRITE_TIMEOUT_S = 30.0
MAX_TOKEN_TTL_S = 2 * 365 * 86400.0
DEFAULT_TOKEN_TTL_S = 90 * 86400.0


class TrustError(Exception):
    """A request about tokens or agents that cannot be granted; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Session:
    actor: Actor
    csrf: str
    expires_at: float


class Trust:
    def __init__(self, store: Store, writer: Writer, clock: Callable[[], float], *, session_ttl: float,
                 enroll_token_ttl: float, agent_cert_ttl: float, authority: Authority | None = None,
                 identity: CertificateIdentity | None = None,
                 on_retire: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.writer = writer
        self.clock = clock
        self.session_ttl = session_ttl
        self.enroll_token_ttl = enroll_token_ttl
        self.agent_cert_ttl = agent_cert_ttl
        self.authority = authority
        self.identity = identity
        self.on_retire = on_retire
        """Called (on the writer thread, after commit) with a retired agent's id: the ingest ends its streams."""

    def _write(self, job: Callable[[StoreTx], Any]) -> Any:
        return self.writer.submit(job).result(WRITE_TIMEOUT_S)

    # people: API tokens and sessions

    def create_token(self, actor: Actor, name: str, role: str, ttl: float | None) -> tuple[str, Row]:
        """A new API token; the secret is returned once and stored only as its hash."""
        problem = id_problem("token name", name)
        if problem:
            raise TrustError(problem)
        if role not in ROLES:
            raise TrustError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        ttl = DEFAULT_TOKEN_TTL_S if ttl is None else ttl
        if not 0 < ttl <= MAX_TOKEN_TTL_S:
            raise TrustError(f"expires_in must be between 1s and {MAX_TOKEN_TTL_S / 86400:g} days")
        secret = new_api_token()
        at = self.clock()

        def job(tx: StoreTx) -> int:
            token_id = tx.create_token(name, role, digest(secret), at, actor.name, at + ttl)
            tx.audit(AuditEntry.of(actor, "token.create", f"token {name}", at, role=role, expires_at=at + ttl))
            return token_id

        try:
            token_id = self._write(job)
        except Exception as exc:
            if "UNIQUE" in str(exc).upper() or "duplicate" in str(exc).lower():
                raise TrustError(f"a token named {name!r} exists; revoke it first or pick another name", 409) from None
            raise
        log.info("API token %s (role %s) created by %s", name, role, actor.name,
                 extra={"event": "token.created", "token": name, "role": role})
        return secret, {"id": token_id, "name": name, "role": role, "created_at": at, "expires_at": at + ttl}

    def revoke_token(self, actor: Actor, name: str) -> None:
        at = self.clock()

        def job(tx: StoreTx) -> bool:
            done = tx.revoke_token(name, at)
            if done:
                tx.audit(AuditEntry.of(actor, "token.revoke", f"token {name}", at))
            return done

        if not self._write(job):
            raise TrustError(f"no active token named {name!r}", 404)
        log.info("API token %s revoked by %s", name, actor.name, extra={"event": "token.revoked", "token": name})

    def authenticate(self, secret: str, remote: str) -> Actor | None:
        """The actor of an API token, or None when it is unknown, expired or revoked."""
        row = self.store.token_by_hash(digest(secret))
        if row is None or row["revoked_at"] is not None or float(row["expires_at"]) <= self.clock():
            return None
        return Actor(str(row["name"]), str(row["role"]), f"token:{row['name']}", remote)

    def sign_in(self, secret: str, remote: str) -> tuple[str, Session] | None:
        """A console session for a valid API token: (session id for the cookie, session), or None."""
        row = self.store.token_by_hash(digest(secret))
        now = self.clock()
        if row is None or row["revoked_at"] is not None or float(row["expires_at"]) <= now:
            return None
        session_id, csrf = new_session()
        expires = min(now + self.session_ttl, float(row["expires_at"]))
        actor = Actor(str(row["name"]), str(row["role"]), f"session:{row['name']}", remote)

        def job(tx: StoreTx) -> None:
            tx.create_session(digest(session_id), int(row["id"]), csrf, now, expires)
            tx.audit(AuditEntry.of(actor, "session.sign_in", f"token {row['name']}", now))

        self._write(job)
        return session_id, Session(actor, csrf, expires)

    def session(self, session_id: str, remote: str) -> Session | None:
        row = self.store.session_by_hash(digest(session_id))
        now = self.clock()
        if (row is None or row["revoked_at"] is not None or float(row["expires_at"]) <= now
                or float(row["token_expires_at"]) <= now):
            return None
        return Session(Actor(str(row["name"]), str(row["role"]), f"session:{row['name']}", remote), str(row["csrf"]),
                       float(row["expires_at"]))

    def sign_out(self, session_id: str, actor: Actor) -> None:
        at = self.clock()

        def job(tx: StoreTx) -> None:
            tx.end_session(digest(session_id))
            tx.audit(AuditEntry.of(actor, "session.sign_out", f"token {actor.name}", at))

        self._write(job)

    # agents: enrollment, certificates, retirement

    def enroll_agent(self, actor: Actor, agent_id: str, ttl: float | None) -> tuple[str, float]:
        """A single-use enrollment token bound to `agent_id`: (token, expires_at). Shown once."""
        problem = id_problem("agent id", agent_id)
        if problem:
            raise TrustError(problem)
        if self.authority is None:
            raise TrustError("this collector issues no certificates (tls.mode is insecure, or your own PKI issues "
                             "them); enrollment tokens are not needed", 409)
        ttl = self.enroll_token_ttl if ttl is None else ttl
        if not 0 < ttl <= 30 * 86400:
            raise TrustError("expires_in must be between 1s and 30 days")
        token = new_enrollment_token()
        at = self.clock()

        def job(tx: StoreTx) -> None:
            tx.create_enrollment(digest(token), agent_id, at, actor.name, at + ttl)
            tx.audit(AuditEntry.of(actor, "agent.enroll", f"agent {agent_id}", at, expires_at=at + ttl))

        self._write(job)
        log.info("enrollment token for agent %s made by %s, valid until %s", agent_id, actor.name,
                 _when(at + ttl), extra={"event": "agent.enroll_token", "agent": agent_id})
        return token, at + ttl

    def enroll(self, token: str, csr_pem: bytes, peer: str) -> tuple[str, Issued]:
        """Spend an enrollment token and sign the agent's CSR: (agent id, certificate). TrustError when refused."""
        if self.authority is None:
            raise TrustError("this collector issues no certificates", 409)
        if not token.startswith(ENROLL_PREFIX):
            raise TrustError("not an enrollment token (they start with xje_; `xunjian agents enroll ID` makes one)")
        now = self.clock()
        authority = self.authority

        def job(tx: StoreTx) -> tuple[str | None, str, Issued | None]:
            agent_id, why = tx.use_enrollment(digest(token), now)
            if agent_id is None:
                tx.audit(AuditEntry(now, "(enrollment token)", "agent", "enroll-token", peer, "agent.enroll_refused",
                                    "enrollment", {"reason": why}))
                return None, why, None
            issued = authority.issue_agent(agent_id, csr_pem, dt.timedelta(seconds=self.agent_cert_ttl))
            tx.record_certificate(issued.serial, agent_id, now, issued.not_after, "enroll")
            tx.audit(AuditEntry(now, f"agent {agent_id}", "agent", "enroll-token", peer, "agent.enrolled",
                                f"agent {agent_id}", {"serial": issued.serial, "not_after": issued.not_after}))
            return agent_id, "", issued

        try:
            agent_id, why, issued = self._write(job)
        except PkiError as exc:
            raise TrustError(str(exc)) from None
        if agent_id is None or issued is None:
            log.warning("enrollment from %s refused: %s", peer, why, extra={"event": "agent.enroll_refused",
                                                                            "peer": peer})
            raise TrustError(why, 403)
        if self.identity is not None:
            self.identity.reinstate(agent_id)
        log.info("agent %s enrolled from %s: certificate %s valid until %s", agent_id, peer, issued.serial,
                 _when(issued.not_after), extra={"event": "agent.enrolled", "agent": agent_id, "peer": peer})
        return agent_id, issued

    def renew(self, agent_id: str, via: str, refused: str, csr_pem: bytes, peer: str) -> Issued:
        """A new certificate for an agent that shows a valid one; `refused` is why its identity may not (revoked,
        retired), audited and logged as a refused renewal."""
        now = self.clock()
        authority = self.authority
        if authority is None:
            raise TrustError("this collector issues no certificates", 409)

        def job(tx: StoreTx) -> Issued | None:
            if refused:
                tx.audit(AuditEntry(now, f"agent {agent_id}", "agent", via, peer, "agent.renewal_refused",
                                    f"agent {agent_id}", {"reason": refused}))
                return None
            issued = authority.issue_agent(agent_id, csr_pem, dt.timedelta(seconds=self.agent_cert_ttl))
            tx.record_certificate(issued.serial, agent_id, now, issued.not_after, "renew")
            return issued

        try:
            issued: Issued | None = self._write(job)
        except PkiError as exc:
            raise TrustError(str(exc)) from None
        if issued is None:
            log.warning("renewal for agent %s (%s, from %s) refused: %s", agent_id, via, peer, refused,
                        extra={"event": "agent.renewal_refused", "agent": agent_id, "peer": peer})
            raise TrustError(refused, 403)
        log.info("agent %s renewed its certificate: %s valid until %s", agent_id, issued.serial,
                 _when(issued.not_after), extra={"event": "agent.renewed", "agent": agent_id})
        return issued

    def revoke_agent(self, actor: Actor, agent_id: str, reason: str) -> list[str]:
        """Revoke every certificate of the agent (it must enroll again); returns the serials."""
        at = self.clock()

        def job(tx: StoreTx) -> list[str]:
            serials = tx.revoke_certificates(agent_id, at, reason)
            tx.audit(AuditEntry.of(actor, "agent.revoke", f"agent {agent_id}", at, reason=reason, serials=serials))
            return serials

        serials: list[str] = self._write(job)
        if self.identity is not None:
            for serial in serials:
                self.identity.revoke(serial)
        log.warning("certificates of agent %s revoked by %s (%s): %s", agent_id, actor.name, reason,
                    ", ".join(serials) or "none unexpired", extra={"event": "agent.revoked", "agent": agent_id})
        return serials

    def retire(self, actor: Actor, agent_id: str, reason: str) -> Row:
        """Take an agent out of the fleet: certificates revoked, series and catalogue gone, open incidents resolved
        with the reason; its history and audit stay. Enrolling it again brings it back."""
        if not reason.strip():
            raise TrustError("a reason is required (it is the resolution of the agent's open incidents)")
        at = self.clock()

        def job(tx: StoreTx) -> tuple[tuple[int, int] | None, list[str]]:
            counts = tx.retire_agent(agent_id, at, reason)
            if counts is None:
                return None, []
            serials = tx.revoke_certificates(agent_id, at, f"agent retired: {reason}")
            tx.audit(AuditEntry.of(actor, "agent.retire", f"agent {agent_id}", at, reason=reason,
                                   series=counts[0], incidents=counts[1], serials=serials))
            return counts, serials

        counts, serials = self._write(job)
        if counts is None:
            raise TrustError(f"no agent {agent_id!r} in the store", 404)
        if self.identity is not None:
            self.identity.retire(agent_id)
            for serial in serials:
                self.identity.revoke(serial)
        if self.on_retire is not None:
            self.on_retire(agent_id)
        log.warning("agent %s retired by %s (%s): %d series removed, %d incidents resolved", agent_id, actor.name,
                    reason, counts[0], counts[1], extra={"event": "agent.retired", "agent": agent_id})
        return {"agent": agent_id, "series_removed": counts[0], "incidents_resolved": counts[1],
                "certificates_revoked": serials}


def _when(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
