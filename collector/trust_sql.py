"""Store writes and reads of trust: API tokens, console sessions, enrollment tokens, issued certificates, retired
agents. Secrets are stored as SHA-256 hex of the secret, never the secret itself (collector/tokens.py).

Mixed into the portable SQL store (collector/sqlstore.py), whose transaction and query helpers they use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Row = dict[str, Any]


class TrustTx:
    """Writes inside the store writer's transaction."""

    _cur: Any
    _q: Callable[[str], str]
    end_agent_incidents: Callable[[str, float, str], int]
    """From the incidents' side of the store (collector/sqlincidents.py)."""

    def create_token(self, name: str, role: str, token_hash: str, at: float, by: str, expires_at: float) -> int:
        self._cur.execute(self._q(
            "INSERT INTO api_tokens (name, role, token_hash, created_at, created_by, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?) RETURNING id"), (name, role, token_hash, at, by, expires_at))
        return int(self._cur.fetchone()[0])

    def revoke_token(self, name: str, at: float) -> bool:
        """Revoke the active token called `name` and end its sessions; False when there is none."""
        cur, q = self._cur, self._q
        cur.execute(q("SELECT id FROM api_tokens WHERE name = ? AND revoked_at IS NULL"), (name,))
        row = cur.fetchone()
        if row is None:
            return False
        cur.execute(q("UPDATE api_tokens SET revoked_at = ? WHERE id = ?"), (at, row[0]))
        cur.execute(q("DELETE FROM sessions WHERE token_id = ?"), (row[0],))
        return True

    def create_session(self, session_hash: str, token_id: int, csrf: str, at: float, expires_at: float) -> None:
        self._cur.execute(self._q(
            "INSERT INTO sessions (session_hash, token_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)"),
            (session_hash, token_id, csrf, at, expires_at))

    def end_session(self, session_hash: str) -> None:
        self._cur.execute(self._q("DELETE FROM sessions WHERE session_hash = ?"), (session_hash,))

    def purge_sessions(self, now: float) -> int:
        self._cur.execute(self._q("DELETE FROM sessions WHERE expires_at < ?"), (now,))
        return int(max(self._cur.rowcount, 0))

    def create_enrollment(self, token_hash: str, agent_id: str, at: float, by: str, expires_at: float) -> None:
        self._cur.execute(self._q(
            "INSERT INTO enrollments (token_hash, agent_id, created_at, created_by, expires_at) VALUES (?, ?, ?, ?, ?)"),
            (token_hash, agent_id, at, by, expires_at))

    def use_enrollment(self, token_hash: str, now: float) -> tuple[str | None, str]:
        """Spend an enrollment token: (its agent id, "") or (None, why it cannot be used)."""
        cur, q = self._cur, self._q
        cur.execute(q("SELECT agent_id, expires_at, used_at FROM enrollments WHERE token_hash = ?"), (token_hash,))
        row = cur.fetchone()
        if row is None:
            return None, "unknown enrollment token"
        agent_id, expires_at, used_at = str(row[0]), float(row[1]), row[2]
        if used_at is not None:
            return None, f"the enrollment token of agent {agent_id} was already used"
        if expires_at <= now:
            return None, f"the enrollment token of agent {agent_id} has expired"
        cur.execute(q("UPDATE enrollments SET used_at = ? WHERE token_hash = ? AND used_at IS NULL"), (now, token_hash))
        if cur.rowcount != 1:
            return None, f"the enrollment token of agent {agent_id} was already used"
        cur.execute(q("UPDATE agents SET retired_at = NULL, retire_reason = '' WHERE id = ?"), (agent_id,))
        return agent_id, ""

    def record_certificate(self, serial: str, agent_id: str, at: float, not_after: float, how: str) -> None:
        self._cur.execute(self._q(
            "INSERT INTO certificates (serial, agent_id, issued_at, not_after, how) VALUES (?, ?, ?, ?, ?)"),
            (serial, agent_id, at, not_after, how))

    def revoke_certificates(self, agent_id: str, at: float, reason: str) -> list[str]:
        """Revoke every unexpired certificate of `agent_id`; returns their serials."""
        cur, q = self._cur, self._q
        cur.execute(q("SELECT serial FROM certificates WHERE agent_id = ? AND revoked_at IS NULL AND not_after > ?"),
                    (agent_id, at))
        serials = [str(r[0]) for r in cur.fetchall()]
        cur.executemany(q("UPDATE certificates SET revoked_at = ?, revoke_reason = ? WHERE serial = ?"),
                        [(at, reason, s) for s in serials])
        return serials

    def retire_agent(self, agent_id: str, at: float, reason: str) -> tuple[int, int] | None:
        """Mark the agent retired, drop its series and catalogue, resolve its open incidents with `reason`.
        Returns (series removed, incidents resolved), or None for an unknown agent."""
        cur, q = self._cur, self._q
        cur.execute(q("UPDATE agents SET retired_at = ?, retire_reason = ? WHERE id = ?"), (at, reason, agent_id))
        if cur.rowcount != 1:
            return None
        cur.execute(q("DELETE FROM series WHERE agent_id = ?"), (agent_id,))
        series = int(max(cur.rowcount, 0))
        cur.execute(q("DELETE FROM checks WHERE agent_id = ?"), (agent_id,))
        return series, self.end_agent_incidents(agent_id, at, f"agent retired: {reason}")


class TrustReads:
    """Reads for the HTTP API and the ingest's denylist (any thread)."""

    _query: Callable[..., list[Row]]

    def token_by_hash(self, token_hash: str) -> Row | None:
        rows = self._query("SELECT * FROM api_tokens WHERE token_hash = ?", (token_hash,))
        return rows[0] if rows else None

    def session_by_hash(self, session_hash: str) -> Row | None:
        rows = self._query(
            "SELECT s.session_hash, s.csrf, s.expires_at, t.id AS token_id, t.name, t.role, "
            "t.expires_at AS token_expires_at, t.revoked_at FROM sessions s JOIN api_tokens t ON t.id = s.token_id "
            "WHERE s.session_hash = ?", (session_hash,))
        return rows[0] if rows else None

    def list_tokens(self) -> list[Row]:
        return self._query("SELECT id, name, role, created_at, created_by, expires_at, revoked_at FROM api_tokens "
                           "ORDER BY id")

    def list_certificates(self, agent_id: str | None = None) -> list[Row]:
        if agent_id is None:
            return self._query("SELECT * FROM certificates ORDER BY issued_at")
        return self._query("SELECT * FROM certificates WHERE agent_id = ? ORDER BY issued_at", (agent_id,))

    def revoked_serials(self, now: float) -> list[str]:
        """The denylist: revoked certificates not yet expired (an expired one is refused by TLS anyway)."""
        return [str(r["serial"]) for r in self._query(
            "SELECT serial FROM certificates WHERE revoked_at IS NOT NULL AND not_after > ?", (now,))]

    def retired_agents(self) -> list[str]:
        return [str(r["id"]) for r in self._query("SELECT id FROM agents WHERE retired_at IS NOT NULL")]
