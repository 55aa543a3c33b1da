"""One connection per target, reused across runs (ctx.resources), re-opened after a failure.

A session opens its connection lazily, detects the server's version and flavor once, and runs each statement
as the guard rendered it (after the allow-list, with the target's site exceptions) in its own read-only
transaction under a server-side timeout and a row cap, rolled back and verified afterwards. A session that
fails verification is closed and the check reported as `unsafe_session`. Checks of one target take turns on
its connection (a lock), since DB-API connections are not safe to share between threads.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

from checks.context import RunContext
from checks.result import Outcome
from checks.sql.allow import Prepared
from checks.sql.dialects import Connection, FetchError, RowStream, open_connection
from checks.sql.errors import SqlFailure, classify, describe
from checks.sql.guard import GuardError
from checks.sql.query import QueryMap
from checks.sql.rows import Rows, ServerInfo
from checks.sql.target import Target

__all__ = ["Session", "SqlFailure", "close_sessions", "fresh_session", "note_reachability", "session_for", "shared_session"]

_RESOURCE_PREFIX = "sql:"
_registry_lock = threading.Lock()
log = logging.getLogger("xunjian.sql")
_logged_site_uses: set[tuple[str, str]] = set()
_logged_lock = threading.Lock()
_KEEP_CONNECTION = frozenset({Outcome.PERMISSION_DENIED, Outcome.NOT_FOUND, Outcome.PROTOCOL_ERROR})
"""Errors about the statement, not the connection; anything else closes it so the next run reconnects."""
RECONNECT_HOLDOFF_S = 15.0
"""After a failed connect, the target's other checks report that failure for this long instead of each trying
again: a database that is down is not hammered by every check, and they report at once instead of queueing
behind each other's connect timeouts. The reachability check always tries, and its success ends the hold-off."""


class Session:
    """A target's connection and what was learnt about its server."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.lock = threading.Lock()
        self._conn: Connection | None = None
        self._used = False
        """Whether the open connection has run a statement (a fresh one is not retried on failure)."""
        self.connect_failure: tuple[float, SqlFailure] | None = None
        """(time.monotonic(), failure) of the last failed connect, until a connect succeeds."""

    @property
    def info(self) -> ServerInfo:
        if self._conn is None:
            raise RuntimeError("session is not open")
        return self._conn.info

    @property
    def is_open(self) -> bool:
        return self._conn is not None

    def ensure_open(self, timeout: float, *, retry: bool = True) -> None:
        """Connect unless connected; with `retry` False a connect that failed within the hold-off is reported
        again instead of tried again."""
        if self._conn is not None:
            return
        if not retry and self.connect_failure is not None:
            at, failure = self.connect_failure
            ago = time.monotonic() - at
            if ago < RECONNECT_HOLDOFF_S:
                raise SqlFailure(failure.outcome, f"{failure.message} (at the connection attempt {ago:.0f}s ago)")
        try:
            self._connect(timeout)
        except SqlFailure as failure:
            self.connect_failure = (time.monotonic(), failure)
            raise
        self.connect_failure = None

    def _connect(self, timeout: float) -> None:
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

    def run(self, query: QueryMap, *, timeout: float, max_rows: int | None, check_id: str = "") -> Rows:
        """Pick the SQL for this server, guard it, run it in a read-only transaction, read at most max_rows.

        A reused connection the server has dropped meanwhile (restart, idle kill, failover) is re-opened and
        the statement tried once more, so a stale connection is not reported as the database being down.
        """
        reused = self._conn is not None and self._used
        try:
            return self._run_once(query, timeout=timeout, max_rows=max_rows, check_id=check_id)
        except SqlFailure as failure:
            if not reused or failure.outcome != Outcome.CONNECTION_REFUSED or self._conn is not None:
                raise
        self.ensure_open(timeout)
        return self._run_once(query, timeout=timeout, max_rows=max_rows, check_id=check_id)

    def prepare(self, query: QueryMap, check_id: str = "") -> Prepared:
        """The statement to send to this server: the guard's rendering, checked against the allow-list."""
        info = self.info
        picked = query.select(info.dialect, info.flavor, info.version)
        if picked is None:
            raise SqlFailure(Outcome.NOT_FOUND, query.explain_miss(info.dialect, info.flavor, info.version))
        variant, key = picked
        try:
            prepared = variant.statement(key, self.target.allow)
        except GuardError as exc:
            raise SqlFailure(Outcome.PERMISSION_DENIED, f"refused by the read-only guard: {exc}") from None
        self._log_site_uses(prepared, check_id)
        return prepared

    def _log_site_uses(self, prepared: Prepared, check_id: str) -> None:
        """Each site exception is logged once per target, the first time a statement relies on it."""
        if not prepared.site_uses or self.target.allow is None:
            return
        with _logged_lock:
            fresh = [u for u in prepared.site_uses if (self.target.name, u) not in _logged_site_uses]
            _logged_site_uses.update((self.target.name, u) for u in fresh)
        for use in fresh:
            log.warning("target %s: %s reads %s under a site exception to the read-only allow-list (reviewed by %s)",
                        self.target.name, f"check {check_id}" if check_id else "a check", use, self.target.allow.reviewed_by)

    def _run_once(self, query: QueryMap, *, timeout: float, max_rows: int | None, check_id: str) -> Rows:
        if self._conn is None:
            self.ensure_open(timeout)
        conn = self._conn
        assert conn is not None
        prepared = self.prepare(query, check_id)
        cap = min(max_rows or self.target.max_rows, self.target.max_rows)
        statement_timeout = max(0.001, min(timeout, self.target.statement_timeout))
        self._used = True
        try:
            rows = conn.query(prepared.sql, statement_timeout, cap)
        except Exception as exc:
            outcome = classify(exc)
            if outcome not in _KEEP_CONNECTION or not conn.healthy() or conn.verify():
                self.close()
            if outcome == Outcome.TIMEOUT:
                raise SqlFailure(outcome, f"statement cancelled after {statement_timeout:g}s: {describe(exc)}") from None
            raise SqlFailure(outcome, describe(exc)) from None
        problems = conn.verify()
        if problems:
            self.close()
            raise SqlFailure(Outcome.UNSAFE_SESSION, "the check left the session unsafe (" + "; ".join(problems)
                             + "); its rows were discarded and the connection closed, to be reopened")
        return rows

    @contextmanager
    def stream(self, query: QueryMap, *, timeout: float, batch_rows: int, check_id: str = "") -> Iterator[RowStream]:
        """Like run(), for results too big to hold: the rows arrive in batches while the caller consumes them, in
        the same read-only transaction (rolled back, the session verified afterwards). No row cap: the caller
        bounds what it keeps. A reused connection is pinged first, since a stream is not retried half-way."""
        if self._conn is not None and self._used and not self._conn.healthy():
            self.close()
        if self._conn is None:
            self.ensure_open(timeout)
        conn = self._conn
        assert conn is not None
        prepared = self.prepare(query, check_id)
        statement_timeout = max(0.001, min(timeout, self.target.statement_timeout))
        self._used = True
        try:
            with conn.stream(prepared.sql, statement_timeout, batch_rows) as rows:
                yield rows
        except FetchError as exc:
            raise self._failure(exc.__cause__ or exc, conn, statement_timeout) from None
        problems = conn.verify()
        if problems:
            self.close()
            raise SqlFailure(Outcome.UNSAFE_SESSION, "the check left the session unsafe (" + "; ".join(problems)
                             + "); its rows were discarded and the connection closed, to be reopened")

    def _failure(self, exc: BaseException, conn: Connection, statement_timeout: float) -> SqlFailure:
        """A driver error as a classified failure; anything but a statement error closes the connection."""
        outcome = classify(exc)
        if outcome not in _KEEP_CONNECTION or not conn.healthy() or conn.verify():
            self.close()
        if outcome == Outcome.TIMEOUT:
            return SqlFailure(outcome, f"statement cancelled after {statement_timeout:g}s: {describe(exc)}")
        return SqlFailure(outcome, describe(exc))

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


def shared_session(ctx: RunContext, name: str) -> Session:
    """The target's session kept in ctx.resources (created on first use, replaced when the target changed)."""
    target = _target_of(ctx, name)
    key = _RESOURCE_PREFIX + name
    with _registry_lock:
        session = ctx.resources.get(key)
        if not isinstance(session, Session) or session.target != target:
            if isinstance(session, Session):
                session.close()
            session = Session(target)
            ctx.resources[key] = session
    return session


@contextmanager
def session_for(ctx: RunContext, name: str, *, wait: float) -> Iterator[Session]:
    """The target's open session, held exclusively for the block; waits at most `wait` seconds for another check."""
    session = shared_session(ctx, name)
    if not session.lock.acquire(timeout=max(0.001, wait)):
        raise SqlFailure(Outcome.TIMEOUT, f"target {name} is still busy with another check")
    try:
        session.ensure_open(wait, retry=False)
        yield session
    finally:
        session.lock.release()


def fresh_session(ctx: RunContext, name: str) -> Session:
    """A new, private session to `name` (not shared with its other checks), for the reachability check: it must
    open a connection of its own to see what a new client sees (refused, too many clients, a locked login)."""
    return Session(_target_of(ctx, name))


def note_reachability(ctx: RunContext, name: str, failure: SqlFailure | None) -> None:
    """Tell the target's shared session what the reachability check found: a failure starts the hold-off for
    the other checks, a success ends it so they reconnect at once."""
    session = shared_session(ctx, name)
    session.connect_failure = None if failure is None else (time.monotonic(), failure)


def close_sessions(resources: MutableMapping[str, Any], keep: frozenset[str] | None = None) -> None:
    """Close the database sessions kept in `resources`: all of them (agent shutdown), or those of targets not in
    `keep` (a reload removed them)."""
    for key in [k for k in resources if isinstance(k, str) and k.startswith(_RESOURCE_PREFIX)]:
        if keep is not None and key[len(_RESOURCE_PREFIX):] in keep:
            continue
        session = resources.pop(key)
        if isinstance(session, Session):
            session.close()
