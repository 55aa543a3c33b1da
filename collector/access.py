"""Who is asking, and what their role lets them do: the roles of the HTTP API and the actor of every action.

Four roles, each including the ones before it: viewer (read everything but the audit trail), operator
(incident actions, silences), dba (finding reviews), admin (tokens, enrollment, agents, the audit trail). Every
route declares the role it needs; the transport says who the caller is. Until a request is authenticated (the
loopback collector of `xunjian up`), the caller is the local operator with every role, and the name of the
person acting comes from the request itself (a finding's reviewer, an incident action's `by`).
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("viewer", "operator", "dba", "admin")
"""In order of what they include: each role may do what the ones before it may."""


def role_rank(role: str) -> int:
    try:
        return ROLES.index(role)
    except ValueError:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}") from None


@dataclass(frozen=True)
class Actor:
    """The caller of one request: a name for the audit trail, a role, and how we know (token, certificate...)."""

    name: str
    role: str
    via: str
    """How the caller was identified: "token:NAME", "session:NAME", "cert:ID", "unauthenticated"."""
    remote: str = ""
    """The peer address as the transport saw it."""

    def __post_init__(self) -> None:
        role_rank(self.role)

    def may(self, role: str) -> bool:
        return role_rank(self.role) >= role_rank(role)

    @property
    def authenticated(self) -> bool:
        return self.via != "unauthenticated"

    def acting_as(self, claimed: str) -> str:
        """The name to record for an action: an authenticated caller is who they are; without authentication
        the person named in the request (a reviewer, an incident's `by`) is all there is."""
        claimed = claimed.strip()
        if self.authenticated or not claimed:
            return self.name
        return claimed


def local_operator(remote: str = "") -> Actor:
    """The caller of a collector that authenticates nobody (loopback only, `xunjian up`)."""
    return Actor("local", "admin", "unauthenticated", remote)
