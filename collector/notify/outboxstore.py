"""The outbox's side of the SQL store: turning pending incident events into queued messages, and recording every
delivery attempt.

The incident transaction writes `outbox` rows (collector/sqlincidents.py). The notifier then, in one writer
transaction, *claims* the rows that are due: routes each event (collector/notify/routing.py), skips it with the
reason when it must stay quiet, groups the rest into `notifications` (one message per receiver and group) and links
them through `notification_items`. Each send is recorded as a `notification_attempts` row in its own transaction,
after the send: a crash between the two sends the message again after restart (at least once), and nothing else
sends one message twice.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from collector.incidents import status_name
from collector.notify.config import NotificationsConfig
from collector.notify.routing import FIRING, IncidentView, deliveries, plan_messages, skip_reason
from collector.store import Row

CLAIM_BATCH = 2000
RESPONSE_KEPT = 500
"""Characters of a receiver's answer kept with each attempt."""
_INCIDENT_FIELDS = ("id", "kind", "title", "status", "priority", "system", "host", "agent_id", "check_id", "target",
                    "key", "summary", "runbook", "opened_at", "resolved_at", "resolution", "acknowledged_by",
                    "response_due_at", "resolution_due_at", "escalation_level")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def incident_item(row: Mapping[str, Any], event: str, level: int) -> dict[str, Any]:
    """What a message says about one incident (no secret, nothing the API does not show)."""
    item = {name: row[name] for name in _INCIDENT_FIELDS}
    labels = row["labels"]
    item["labels"] = json.loads(labels) if isinstance(labels, str) else dict(labels)
    item["severity"] = status_name(int(row["last_status"]))
    item["event"] = event
    item["level"] = level
    return item


class OutboxTx:
    """Outbox writes inside the store's open transaction."""

    _cur: Any
    _q: Callable[[str], str]

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        self._cur.execute(self._q(sql), tuple(args))
        names = [d[0] for d in self._cur.description]
        return [dict(zip(names, r, strict=True)) for r in self._cur.fetchall()]

    def claim_outbox(self, now: float, config: NotificationsConfig, budgets: Mapping[str, int | None]) -> int:
        """Queue messages for the outbox rows that are due (firing events after notifications.group_wait); returns
        how many messages were queued."""
        firing = ", ".join(f"'{e}'" for e in FIRING)
        pending = self._rows(
            f"SELECT id, incident_id, event, detail FROM outbox WHERE state = 'pending' AND ((event IN ({firing}) AND "
            f"not_before <= ?) OR (event NOT IN ({firing}) AND not_before <= ?)) ORDER BY id LIMIT {CLAIM_BATCH}",
            (now - config.group_wait, now))
        if not pending:
            return 0
        channels = {r.name: r.type for r in config.receivers}
        incidents: dict[int, Row] = {}
        items: dict[int, dict[str, Any]] = {}
        groups: dict[tuple[str, str], list[int]] = {}
        for row in pending:
            incident_id = int(row["incident_id"])
            inc = incidents.get(incident_id)
            if inc is None:
                found = self._rows("SELECT * FROM incidents WHERE id = ?", (incident_id,))
                if not found:
                    self._done(int(row["id"]), "skipped", "incident not found", now)
                    continue
                inc = incidents[incident_id] = found[0]
            labels = json.loads(inc["labels"]) if isinstance(inc["labels"], str) else inc["labels"]
            view = IncidentView(incident_id, str(inc["status"]), labels, str(inc["suppressed"]),
                                None if inc["silence_id"] is None else int(inc["silence_id"]), bool(inc["flapping"]))
            event = str(row["event"])
            level = int(json.loads(row["detail"] or "{}").get("level", 0))
            why = skip_reason(event, view)
            if why:
                self._done(int(row["id"]), "skipped", why, now)
                self._timeline_note(incident_id, now, event, why)
                continue
            sent_to = [str(r["receiver"]) for r in self._rows(
                "SELECT DISTINCT n.receiver FROM notification_items i JOIN notifications n ON n.id = i.notification_id "
                "WHERE i.incident_id = ? AND i.event <> 'resolved' AND n.state IN ('queued', 'sent')", (incident_id,))]
            targets = [d for d in deliveries(event, level, view, config, sent_to) if d.receiver in channels]
            if not targets:
                why = "no route sends it anywhere" if event != "resolved" else "no receiver was told it opened"
                self._done(int(row["id"]), "skipped", why, now)
                continue
            items[int(row["id"])] = {"incident": incident_item(inc, event, level), "incident_id": incident_id,
                                     "event": event}
            for d in targets:
                groups.setdefault((d.receiver, d.group_key), []).append(int(row["id"]))
        messages, deferred = plan_messages(groups, budgets)
        left = set(deferred)
        for receiver, key, outbox_ids in messages:
            content = {"incidents": [items[i]["incident"] for i in outbox_ids]}
            self._cur.execute(self._q(
                "INSERT INTO notifications (receiver, channel, group_key, created_at, state, attempts, next_attempt_at, "
                "content) VALUES (?, ?, ?, ?, 'queued', 0, ?, ?) RETURNING id"),
                (receiver, channels[receiver], key, now, now, _json(content)))
            notification_id = int(self._cur.fetchone()[0])
            self._cur.executemany(self._q(
                "INSERT INTO notification_items (notification_id, outbox_id, incident_id, event) VALUES (?, ?, ?, ?)"),
                [(notification_id, i, items[i]["incident_id"], items[i]["event"]) for i in outbox_ids])
        for outbox_id in items:
            if outbox_id not in left:
                self._done(outbox_id, "done", "", now)
        return len(messages)

    def _done(self, outbox_id: int, state: str, note: str, now: float) -> None:
        self._cur.execute(self._q("UPDATE outbox SET state = ?, note = ?, done_at = ? WHERE id = ?"),
                          (state, note, now, outbox_id))

    def _timeline_note(self, incident_id: int, at: float, event: str, why: str) -> None:
        self._cur.execute(self._q(
            "INSERT INTO incident_events (incident_id, at, event, actor, detail) VALUES (?, ?, 'not_notified', '', ?)"),
            (incident_id, at, _json({"event": event, "why": why})))

    def record_attempt(self, notification_id: int, at: float, ok: bool, status: str, response: str, duration_ms: float,
                       *, retry_at: float | None) -> None:
        """One delivery attempt: sent, to be retried at `retry_at`, or (retry_at None and not ok) given up."""
        q, cur = self._q, self._cur
        cur.execute(q("INSERT INTO notification_attempts (notification_id, at, ok, status, response, duration_ms) "
                      "VALUES (?, ?, ?, ?, ?, ?)"),
                    (notification_id, at, int(ok), status, response[:RESPONSE_KEPT], duration_ms))
        if ok:
            cur.execute(q("UPDATE notifications SET state = 'sent', attempts = attempts + 1, sent_at = ?, "
                          "last_error = '' WHERE id = ?"), (at, notification_id))
        elif retry_at is not None:
            cur.execute(q("UPDATE notifications SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? "
                          "WHERE id = ?"), (retry_at, f"{status}: {response}"[:RESPONSE_KEPT], notification_id))
        else:
            cur.execute(q("UPDATE notifications SET state = 'failed', attempts = attempts + 1, last_error = ? "
                          "WHERE id = ?"), (f"{status}: {response}"[:RESPONSE_KEPT], notification_id))
        if ok or retry_at is None:
            receiver = self._rows("SELECT receiver FROM notifications WHERE id = ?", (notification_id,))[0]["receiver"]
            for item in self._rows("SELECT incident_id, event FROM notification_items WHERE notification_id = ?",
                                   (notification_id,)):
                cur.execute(q("INSERT INTO incident_events (incident_id, at, event, actor, detail) VALUES (?, ?, ?, '', ?)"),
                            (item["incident_id"], at, "notified" if ok else "notification_failed",
                             _json({"receiver": receiver, "event": item["event"], "notification": notification_id})))

    def take_due(self, now: float, lease: float, limit: int = 500) -> list[Row]:
        """The queued messages due now, each leased for `lease` seconds (its next_attempt_at moved past the send), so
        a second collector sharing the store does not send it too; a crash mid-send retries after the lease."""
        rows = self._rows("SELECT * FROM notifications WHERE state = 'queued' AND next_attempt_at <= ? ORDER BY id "
                          f"LIMIT {int(limit)}", (now,))
        if rows:
            marks = ", ".join("?" for _ in rows)
            self._cur.execute(self._q(f"UPDATE notifications SET next_attempt_at = ? WHERE id IN ({marks})"),
                              (now + lease, *(r["id"] for r in rows)))
        for row in rows:
            if isinstance(row["content"], str):
                row["content"] = json.loads(row["content"])
        return rows

    def defer_notification(self, notification_id: int, until: float) -> None:
        """Not an attempt: the receiver's rate limit holds the message until `until`."""
        self._cur.execute(self._q("UPDATE notifications SET next_attempt_at = ? WHERE id = ?"), (until, notification_id))


class OutboxReads:
    """Outbox reads of the store (any thread)."""

    _query: Callable[..., list[Row]]



    def list_notifications(self, filters: Mapping[str, str], limit: int) -> list[Row]:
        where: list[str] = []
        args: list[Any] = []
        if "incident" in filters:
            where.append("id IN (SELECT notification_id FROM notification_items WHERE incident_id = ?)")
            args.append(int(filters["incident"]))
        for name in ("state", "receiver", "channel"):
            if name in filters:
                where.append(f"{name} = ?")
                args.append(filters[name])
        sql = "SELECT * FROM notifications" + (" WHERE " + " AND ".join(where) if where else "")
        rows = self._query(sql + " ORDER BY id DESC LIMIT ?", (*args, limit))
        for row in rows:
            row["items"] = self._query("SELECT incident_id, event FROM notification_items WHERE notification_id = ? "
                                       "ORDER BY outbox_id", (row["id"],))
            row["attempts_detail"] = self._query(
                "SELECT at, ok, status, response, duration_ms FROM notification_attempts WHERE notification_id = ? "
                "ORDER BY id", (row["id"],))
        return rows

    def outbox_backlog(self) -> Row:
        rows = self._query("SELECT (SELECT COUNT(*) FROM outbox WHERE state = 'pending') AS pending, "
                           "(SELECT COUNT(*) FROM notifications WHERE state = 'queued') AS queued")
        return rows[0]
