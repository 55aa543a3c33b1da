"""One connection per target, reused across runs (ctx.resources), re-opened after a failure.

A session opens its connection lazily, makes it read-only and polite for its dialect, detects the server's
version and flavor once, and runs guarded statements under a server-side timeout and a row cap. Checks of one
target take turns on its connection (a lock), since DB-API connections are not safe to share between threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from checks.context import RunContext
from checks.result import Outcome
from checks.sql.dialects import Connection, open_connection
from checks.sql.errors import SqlFailure, classify, describe
from checks.sql.guard import GuardError, check_statement
from checks.sql.query import QueryMap
from checks.sql.rows import Rows, ServerInfo
from checks.sql.target import Target

__all__ = ["Session", "SqlFailure", "close_sessions", "session_for"]

_RESOURCE_PREFIX = "sql:"
_registry_lock = threading.Lock()
_KEEP_CONNECTION = frozenset({Outcome.PERMISSION_DENIED, Outcome.NOT_FOUND, Outcome.PROTOCOL_ERROR})
"""Errors about the statement, not the connection; anything else closes it so the next run reconnects."""


class Session:
    """A target's connection and what was learnt about its server."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.lock = threading.Lock()
        self._conn: Connection | None = None
        self._used = False
        """Whether the open connection has run a statement (a fresh one is not retried on failure)."""

    @property
    def info(self) -> ServerInfo:
        if self._conn is None:
            raise RuntimeError("session is not open")
        return self._conn.info

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def ensure_open(self, timeout: float) -> None:
        if self._conn is not None:
            return
        try:
            password = self.target.password()
        except (LookupError, OSError) as exc:
            raise SqlFailure(Outcome.AUTH_FAILED, f"cannot read the password: {exc}") from None
        try:
            self._conn = open_connection(self.target, password, min(timeout, self.target.connect_timeout))
            self._used = False
        except SqlFailure:
            raise
        except ImportError as exc:
            raise SqlFailure(Outcome.INTERNAL_ERROR, f"driver not installed: {exc}") from None
        except Exception as exc:
            raise SqlFailure(classify(exc), f"cannot connect to {self.target.name}: {describe(exc)}") from None

    def run(self, query: QueryMap, *, timeout: float, max_rows: int | None) -> Rows:
        """Pick the SQL for this server, guard it, run it with a server-side timeout, read at most max_rows.

        A reused connection the server has dropped meanwhile (restart, idle kill, failover) is re-opened and
        the statement tried once more, so a stale connection is not reported as the database being down.
        """
        reused = self._conn is not None and self._used
        try:
            return self._run_once(query, timeout=timeout, max_rows=max_rows)
        except SqlFailure as failure:
            if not reused or failure.outcome != Outcome.CONNECTION_REFUSED or self._conn is not None:
                raise
        self.ensure_open(timeout)
        return self._run_once(query, timeout=timeout, max_rows=max_rows)

    def _run_once(self, query: QueryMap, *, timeout: float, max_rows: int | None) -> Rows:
        if self._conn is None:
            self.ensure_open(timeout)
        conn = self._conn
        assert conn is not None
        info = conn.info
        picked = query.select(info.dialect, info.flavor, info.version)
        if picked is None:
            raise SqlFailure(Outcome.NOT_FOUND, query.explain_miss(info.dialect, info.flavor, info.version))
        sql, key = picked
        try:
            check_statement(sql, key)
        except GuardError as exc:
            raise SqlFailure(Outcome.PERMISSION_DENIED, f"refused by the read-only guard: {exc}") from None
        cap = min(max_rows or self.target.max_rows, self.target.max_rows)
        statement_timeout = max(0.001, min(timeout, self.target.statement_timeout))
        self._used = True
        try:
            return conn.query(sql, statement_timeout, cap)
        except Exception as exc:
            outcome = classify(exc)
            if outcome not in _KEEP_CONNECTION or not conn.healthy():
                self.close()
            if outcome == Outcome.TIMEOUT:
                raise SqlFailure(outcome, f"statement cancelled after {statement_timeout:g}s: {describe(exc)}") from None
            raise SqlFailure(outcome, describe(exc)) from None

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _target_of(ctx: RunContext, name: str) -> Target:
    raw = ctx.targets.get(name)
    if raw is None:
        known = ", ".join(sorted(ctx.targets)) or "none"
        raise SqlFailure(Outcome.NOT_FOUND, f"no target {name!r} in agent.yaml (targets: {known})")
    if isinstance(raw, Target):
        return raw
    if isinstance(raw, dict):
        return Target.model_validate({**raw, "name": name})
    raise SqlFailure(Outcome.INTERNAL_ERROR, f"target {name!r} is not a database target")


@contextmanager
def session_for(ctx: RunContext, name: str, *, wait: float) -> Iterator[Session]:
    """The target's open session, held exclusively for the block; waits at most `wait` seconds for another check."""
    target = _target_of(ctx, name)
    key = _RESOURCE_PREFIX + name
    with _registry_lock:
        session = ctx.resources.get(key)
        if not isinstance(session, Session) or session.target != target:
            if isinstance(session, Session):
                session.close()
            session = Session(target)
            ctx.resources[key] = session
    if not session.lock.acquire(timeout=max(0.001, wait)):
        raise SqlFailure(Outcome.TIMEOUT, f"target {name} is still busy with another check")
    try:
        session.ensure_open(wait)
        yield session
    finally:
        session.lock.release()


def close_sessions(resources: MutableMapping[str, Any]) -> None:
    """Close every database session kept in `resources` (agent shutdown, config reload)."""
    for key in [k for k in resources if isinstance(k, str) and k.startswith(_RESOURCE_PREFIX)]:
        session = resources.pop(key)
        if isinstance(session, Session):
            session.close()
