"""The store in portable SQL over DB-API: one implementation for SQLite and (later) PostgreSQL.

Dialect differences (placeholders, the auto-increment column, how a write transaction begins, how to
connect) come from a `Dialect`; SQLite's live in collector/sqlite.py. Connections run in autocommit
mode and transactions are explicit, so the writer controls exactly what one commit holds.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

from checks.result import ms_from_us, outcome_name, seconds_from_ms
from collector.audit import GENESIS, AuditEntry, Verification, chain_hash, verify_chain
from collector.events import (
    AgentHeartbeat,
    AgentHello,
    BatchEffects,
    CheckRule,
    ResultLike,
    Transition,
)
from collector.findings import FIXABLE_STATES, SETTLED_BY_PEOPLE, category_of, review_state, state_when_seen
from collector.notify.outboxstore import OutboxReads, OutboxTx
from collector.sqlincidents import IncidentReads, IncidentTx
from collector.store import (
    AgentRecord,
    OpenIncidentRecord,
    Row,
    SeriesRecord,
    StoreSnapshot,
)
from collector.trust_sql import TrustReads, TrustTx

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class Connection(Protocol):
    def cursor(self) -> Any: ...

    def close(self) -> None: ...


def _never(_error: BaseException) -> bool:
    return False


@dataclass(frozen=True)
class Dialect:
    name: str
    id_column: str
    begin_write: str
    placeholder: str = "?"
    unavailable: Callable[[BaseException], bool] = _never
    """Whether a driver error means the database itself failed (see Store.is_unavailable)."""

    def sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The numbered migrations shipped in collector/migrations, in order."""
    found = []
    for entry in resources.files("collector.migrations").iterdir():
        m = _MIGRATION_NAME.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda mig: mig.version)
    return found


def _statements(script: str) -> list[str]:
    lines = [ln for ln in script.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def rollback(cur: Any) -> None:
    """End a failed transaction. SQLite has already rolled back after some errors (disk full, I/O error), and a
    second ROLLBACK would hide the real error behind "no transaction is active"."""
    with contextlib.suppress(Exception):
        cur.execute("ROLLBACK")


def schema_version(conn: Connection) -> int:
    cur = conn.cursor()
    try:
        cur.execute("SELECT MAX(version) FROM schema_version")
        row = cur.fetchone()
    except Exception:
        return 0
    finally:
        cur.close()
    return int(row[0] or 0)


def migrate(conn: Connection, dialect: Dialect, *, upto: int | None = None, now: float = 0.0) -> int:
    """Apply every migration newer than the database's schema_version (each in its own transaction)."""
    cur = conn.cursor()
    cur.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
    )
    current = schema_version(conn)
    for mig in migrations():
        if mig.version <= current or (upto is not None and mig.version > upto):
            continue
        cur.execute(dialect.begin_write)
        try:
            for stmt in _statements(mig.sql.replace("{{id}}", dialect.id_column)):
                cur.execute(stmt)
            cur.execute(dialect.sql("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)"),
                        (mig.version, mig.name, now))
            cur.execute("COMMIT")
        except BaseException:
            rollback(cur)
            raise
        current = mig.version
    cur.close()
    return current


def _rows(cur: Any) -> list[Row]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


_JSON_COLUMNS = ("labels", "roles", "evidence", "attributes", "metrics", "detail", "matchers", "content")


def _decode(row: Row) -> Row:
    for col in _JSON_COLUMNS:
        if isinstance(row.get(col), str):
            row[col] = json.loads(row[col])
    return row


class StaleBatchError(RuntimeError):
    """A batch whose predecessor was not stored: committing it would move the mark past lost results."""


class SqlTx(TrustTx, IncidentTx, OutboxTx):
    """One open write transaction."""

    def __init__(self, cur: Any, dialect: Dialect, history: str) -> None:
        self._cur = cur
        self._q = dialect.sql
        self._history = history

    def write_hello(self, hello: AgentHello) -> None:
        q, cur = self._q, self._cur
        cur.execute(q(
            "INSERT INTO agents (id, hostname, labels, roles, version, platform, first_seen, last_seen, last_seq, "
            "incarnation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
            "hostname = excluded.hostname, labels = excluded.labels, roles = excluded.roles, "
            "version = excluded.version, platform = excluded.platform, last_seen = excluded.last_seen, "
            "last_seq = excluded.last_seq, "
            "incarnation = CASE WHEN excluded.incarnation = '' THEN agents.incarnation ELSE excluded.incarnation END"),
            (hello.agent_id, hello.hostname, json.dumps(dict(hello.labels), sort_keys=True),
             json.dumps(list(hello.roles)), hello.version, hello.platform, hello.at, hello.at, hello.last_seq,
             hello.incarnation))
        cur.execute(q("DELETE FROM checks WHERE agent_id = ?"), (hello.agent_id,))
        cur.executemany(q(
            "INSERT INTO checks (agent_id, check_id, target, title, kind, system, priority, raise_after, "
            "clear_after, interval_s, schedule, runbook, labels, updated_at, parent, for_s) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, check_id, target) DO NOTHING"),
            [(hello.agent_id, c.check_id, c.target, c.title, c.kind, c.system, c.priority, c.raise_after,
              c.clear_after, c.interval_s, c.schedule, c.runbook, json.dumps(dict(c.labels), sort_keys=True), hello.at,
              c.parent, c.for_s) for c in hello.checks])

    def restart_sequence(self, agent_id: str, seq_base: int) -> None:
        self._cur.execute(self._q("UPDATE agents SET high_water_seq = 0, seq_base = ? WHERE id = ?"),
                          (seq_base, agent_id))

    def write_heartbeat(self, beat: AgentHeartbeat) -> None:
        self._cur.execute(self._q(
            "UPDATE agents SET last_seq = ?, spool_depth = ?, dropped_total = ?, last_seen = ? WHERE id = ?"),
            (beat.last_seq, beat.spool_depth, beat.dropped_total, beat.at, beat.agent_id))

    def write_batch(self, effects: BatchEffects) -> None:
        q, cur, e = self._q, self._cur, effects
        if e.transitions:
            self.write_transitions(e.transitions)
        if e.incidents:
            self.write_incident_actions(e.incidents)
        for seen in e.findings:
            self._write_finding(seen.agent_id, seen.target, seen.check_id, seen.engine, seen.finding, seen.at)
        if e.history and self._history == "all":
            cur.executemany(q(
                "INSERT INTO results (agent_id, seq, check_id, target, key, status, value, unit, summary, outcome, "
                "started_at, duration_ms, metrics, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (agent_id, seq) DO NOTHING"),
                [_history_row(e.agent_id, r, e.at, e.seq_base) for r in e.history])
        cur.execute(q("UPDATE agents SET high_water_seq = ?, last_seen = ? WHERE id = ? AND high_water_seq = ?"),
                    (e.high_water_seq, e.at, e.agent_id, e.from_seq))
        if cur.rowcount != 1:
            raise StaleBatchError(f"agent {e.agent_id}: stored high-water mark is not {e.from_seq}; "
                                  "an earlier batch of this agent was not stored")

    def write_transitions(self, transitions: Sequence[Transition]) -> None:
        """Status changes: kept as history (unless store.history is off) and as each series' current status."""
        q, cur = self._q, self._cur
        if self._history != "off":
            cur.executemany(q(
                "INSERT INTO transitions (agent_id, check_id, target, key, seq, from_status, to_status, at, "
                "summary, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                [(t.agent_id, t.check_id, t.target, t.key, t.seq, t.from_status, t.to_status, t.at, t.summary,
                  t.value) for t in transitions])
        cur.executemany(q(
            "INSERT INTO series (agent_id, check_id, target, key, status, since) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (agent_id, check_id, target, key) DO UPDATE SET status = excluded.status, "
            "since = excluded.since"),
            [(t.agent_id, t.check_id, t.target, t.key, t.to_status, t.at) for t in transitions])

    def end_series(self, agent_id: str, checks: Sequence[tuple[str, str]]) -> None:
        self._cur.executemany(self._q("DELETE FROM series WHERE agent_id = ? AND check_id = ? AND target = ?"),
                              [(agent_id, check_id, target) for check_id, target in checks])

    def _write_finding(self, agent_id: str, target: str, check_id: str, engine: str, f: Any, at: float) -> None:
        q, cur = self._q, self._cur
        evidence = json.dumps(dict(f.evidence), sort_keys=True)
        attributes = json.dumps(dict(f.attributes), sort_keys=True)
        category = category_of(f.category)
        cur.execute(q("SELECT id, state FROM findings WHERE agent_id = ? AND target = ? AND fingerprint = ?"),
                    (agent_id, target, f.fingerprint))
        row = cur.fetchone()
        if row is None:
            cur.execute(q(
                "INSERT INTO findings (agent_id, target, fingerprint, check_id, engine, title, object, recommendation, "
                "sql_text, evidence, attributes, category, state, first_seen, last_seen, seen_count) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'new', ?, ?, 1) RETURNING id"),
                (agent_id, target, f.fingerprint, check_id, engine, f.title, f.object, f.recommendation, f.sql_text,
                 evidence, attributes, category, at, at))
            self._event(int(cur.fetchone()[0]), at, None, "new", "", "first seen")
            return
        finding_id, state = int(row[0]), str(row[1])
        new_state = state_when_seen(state)
        cur.execute(q(
            "UPDATE findings SET check_id = ?, engine = ?, title = ?, object = ?, recommendation = ?, sql_text = ?, "
            "evidence = ?, attributes = ?, category = ?, state = ?, last_seen = ?, seen_count = seen_count + 1, "
            "fixed_at = CASE WHEN ? = 'new' AND state = 'fixed' THEN NULL ELSE fixed_at END WHERE id = ?"),
            (check_id, engine, f.title, f.object, f.recommendation, f.sql_text, evidence, attributes, category,
             new_state, at, new_state, finding_id))
        if new_state != state:
            self._event(finding_id, at, state, new_state, "", "seen again")

    def _event(self, finding_id: int, at: float, from_state: str | None, to_state: str, actor: str, note: str) -> None:
        self._cur.execute(self._q(
            "INSERT INTO finding_events (finding_id, at, from_state, to_state, actor, note) VALUES (?, ?, ?, ?, ?, ?)"),
            (finding_id, at, from_state, to_state, actor, note))

    def review_finding(self, finding_id: int, state: str, reviewer: str, note: str, at: float) -> Row | None:
        """Apply a DBA review; `state` is the action (accept or dismiss). Raises FindingStateError."""
        q, cur = self._q, self._cur
        cur.execute(q("SELECT state FROM findings WHERE id = ?"), (finding_id,))
        row = cur.fetchone()
        if row is None:
            return None
        current = str(row[0])
        new_state = review_state(current, state)
        cur.execute(q("UPDATE findings SET state = ?, reviewer = ?, review_note = ?, reviewed_at = ? WHERE id = ?"),
                    (new_state, reviewer, note, at, finding_id))
        self._event(finding_id, at, current, new_state, reviewer, note)
        return {"id": finding_id, "state": new_state, "reviewer": reviewer, "review_note": note, "reviewed_at": at}

    def audit(self, entry: AuditEntry) -> Row:
        """Append `entry` to the audit trail, chained to the newest entry (the writer is the only one appending)."""
        q, cur = self._q, self._cur
        cur.execute(q("SELECT hash FROM audit ORDER BY id DESC LIMIT 1"))
        row = cur.fetchone()
        prev = str(row[0]) if row else GENESIS
        digest = chain_hash(prev, entry)
        cur.execute(q(
            "INSERT INTO audit (at, actor, role, via, remote, action, object, detail, prev_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"),
            (entry.at, entry.actor, entry.role, entry.via, entry.remote, entry.action, entry.object,
             json.dumps(dict(entry.detail), sort_keys=True, ensure_ascii=False), prev, digest))
        return {"id": int(cur.fetchone()[0]), "hash": digest}

    def fix_stale_findings(self, seen_before: float, at: float) -> int:
        q, cur = self._q, self._cur
        marks = ", ".join("?" for _ in FIXABLE_STATES)
        settled = ", ".join("?" for _ in SETTLED_BY_PEOPLE)
        cur.execute(q(f"SELECT id, state FROM findings WHERE state IN ({marks}) AND last_seen < ? "
                      f"AND category NOT IN ({settled})"), (*FIXABLE_STATES, seen_before, *SETTLED_BY_PEOPLE))
        stale = cur.fetchall()
        for finding_id, state in stale:
            cur.execute(q("UPDATE findings SET state = 'fixed', fixed_at = ? WHERE id = ?"), (at, finding_id))
            self._event(int(finding_id), at, str(state), "fixed", "", "not seen again")
        return len(stale)

    def purge_history(self, before: float, limit: int = 10_000) -> int:
        """Delete up to `limit` rows of each history table older than `before` (chunks keep commits short)."""
        q, cur = self._q, self._cur
        cur.execute(q("DELETE FROM transitions WHERE id IN (SELECT id FROM transitions WHERE at < ? LIMIT ?)"),
                    (before, limit))
        purged = int(max(cur.rowcount, 0))
        cur.execute(q("DELETE FROM results WHERE (agent_id, seq) IN "
                      "(SELECT agent_id, seq FROM results WHERE received_at < ? LIMIT ?)"), (before, limit))
        return purged + int(max(cur.rowcount, 0))


def _history_row(agent_id: str, r: ResultLike, at: float, seq_base: int) -> tuple[Any, ...]:
    return (agent_id, seq_base + r.seq, r.check_id, r.target, r.key, r.status, r.value if r.HasField("value") else None,
            r.unit, r.summary, outcome_name(r.outcome), seconds_from_ms(r.started_unix_ms), ms_from_us(r.duration_us),
            json.dumps(dict(r.metrics), sort_keys=True), at)


class SqlStore(TrustReads, IncidentReads, OutboxReads):
    """The Store protocol over any DB-API connection factory and dialect."""

    def __init__(self, dialect: Dialect, connect: Callable[[], Any], *, history: str) -> None:
        self.dialect = dialect
        self.history = history
        self._connect = connect
        self._writer = connect()

    @contextmanager
    def transaction(self) -> Iterator[SqlTx]:
        cur = self._writer.cursor()
        try:
            cur.execute(self.dialect.begin_write)
            yield SqlTx(cur, self.dialect, self.history)
            cur.execute("COMMIT")
        except BaseException:
            rollback(cur)
            raise
        finally:
            cur.close()

    @contextmanager
    def _read(self) -> Iterator[Any]:
        conn = self._connect()
        cur = conn.cursor()
        try:
            yield cur
        finally:
            cur.close()
            conn.close()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._read() as cur:
            cur.execute(self.dialect.sql(sql), tuple(params))
            return [_decode(r) for r in _rows(cur)]

    def load_snapshot(self, agent_id: str | None = None) -> StoreSnapshot:
        snap = StoreSnapshot()
        where, args = (" WHERE agent_id = ?", (agent_id,)) if agent_id is not None else ("", ())
        for a in self._query("SELECT * FROM agents WHERE retired_at IS NULL" + where.replace(" WHERE agent_id", " AND id"),
                             args):
            snap.agents.append(AgentRecord(a["id"], a["hostname"], a["labels"], int(a["high_water_seq"]),
                                           int(a["last_seq"]), int(a["spool_depth"]), int(a["dropped_total"]),
                                           float(a["last_seen"]), str(a["incarnation"]), int(a["seq_base"])))
        for c in self._query("SELECT * FROM checks" + where, args):
            snap.rules.setdefault(c["agent_id"], []).append(CheckRule(
                c["check_id"], c["target"], c["title"], c["kind"], c["system"], c["priority"], int(c["raise_after"]),
                int(c["clear_after"]), int(c["interval_s"]), c["schedule"], c["runbook"], c["labels"], c["parent"],
                int(c["for_s"])))
        for s in self._query("SELECT * FROM series" + where, args):
            snap.series.append(SeriesRecord(s["agent_id"], s["check_id"], s["target"], s["key"], int(s["status"]),
                                            float(s["since"])))
        for i in self._query("SELECT kind, agent_id, check_id, target, key, flapping FROM incidents "
                             "WHERE status IN ('open', 'acknowledged')" + where.replace(" WHERE", " AND"), args):
            snap.open_incidents.append(OpenIncidentRecord(i["kind"], i["agent_id"], i["check_id"], i["target"],
                                                          i["key"], bool(i["flapping"])))
        return snap

    def agent_liveness(self, cutoff: float) -> list[tuple[str, str, float, bool]]:
        silent = self._query("SELECT id, hostname, last_seen FROM agents WHERE last_seen < ? AND retired_at IS NULL",
                             (cutoff,))
        lost = self._query(
            "SELECT a.id, a.hostname, a.last_seen FROM incidents i JOIN agents a ON a.id = i.agent_id "
            "WHERE i.kind = 'agent_lost' AND i.status IN ('open', 'acknowledged') AND a.retired_at IS NULL")
        lost_open = {str(r["id"]) for r in lost}
        rows = {str(r["id"]): r for r in [*silent, *lost]}
        return [(agent_id, str(r["hostname"]), float(r["last_seen"]), agent_id in lost_open)
                for agent_id, r in rows.items()]

    def high_water_seq(self, agent_id: str) -> int:
        rows = self._query("SELECT high_water_seq FROM agents WHERE id = ?", (agent_id,))
        return int(rows[0]["high_water_seq"]) if rows else 0

    def list_agents(self, *, retired: bool = False) -> list[Row]:
        """Agents of the fleet; with `retired`, the retired ones too (they carry retired_at and retire_reason)."""
        if retired:
            return self._query("SELECT * FROM agents ORDER BY id")
        return self._query("SELECT * FROM agents WHERE retired_at IS NULL ORDER BY id")

    def list_results(self, agent_id: str, after_seq: int, limit: int) -> list[Row]:
        return self._query("SELECT * FROM results WHERE agent_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                           (agent_id, after_seq, limit))

    def list_findings(self, filters: dict[str, str], limit: int) -> list[Row]:
        columns = {"agent": "agent_id", "target": "target", "engine": "engine", "state": "state", "category": "category"}
        where = [f"{columns[k]} = ?" for k in filters]
        sql = "SELECT * FROM findings" + (" WHERE " + " AND ".join(where) if where else "")
        return self._query(sql + " ORDER BY last_seen DESC, id DESC LIMIT ?", (*filters.values(), limit))

    def get_finding(self, finding_id: int) -> Row | None:
        rows = self._query("SELECT * FROM findings WHERE id = ?", (finding_id,))
        if not rows:
            return None
        row = rows[0]
        row["history"] = self._query(
            "SELECT at, from_state, to_state, actor, note FROM finding_events WHERE finding_id = ? ORDER BY at, id",
            (finding_id,))
        return row

    def list_audit(self, *, after_id: int = 0, limit: int = 500, newest_first: bool = False) -> list[Row]:
        """Audit entries with an id above `after_id`, oldest first (or the newest `limit` ones, newest first)."""
        if newest_first:
            return self._query("SELECT * FROM audit WHERE id > ? ORDER BY id DESC LIMIT ?", (after_id, limit))
        return self._query("SELECT * FROM audit WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit))

    def verify_audit(self, page: int = 5000) -> Verification:
        """Walk the whole trail a page at a time and check every link of the chain."""
        state = Verification()
        after = 0
        while True:
            rows = self.list_audit(after_id=after, limit=page)
            verify_chain(rows, state)
            if len(rows) < page:
                return state
            after = int(rows[-1]["id"])

    def finding_counts(self) -> dict[tuple[str, str], int]:
        """Number of findings per (category, state)."""
        rows = self._query("SELECT category, state, COUNT(*) AS n FROM findings GROUP BY category, state")
        return {(r["category"], r["state"]): int(r["n"]) for r in rows}

    def is_unavailable(self, error: BaseException) -> bool:
        return self.dialect.unavailable(error)

    def close(self) -> None:
        self._writer.close()
