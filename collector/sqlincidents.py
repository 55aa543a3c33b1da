"""The incidents' side of the SQL store: the lifecycle, the timeline, silences and the outbox rows of every change,
each written in the transaction of the change it belongs to.

`IncidentTx` is mixed into the store's transaction class (collector/sqlstore.py) and `IncidentReads` into the
store; both use only portable SQL. The decisions (may this action happen now, reopen or open anew, notify or keep
quiet) are pure functions from collector/incidents.py, collector/lifecycle_rules.py and collector/deadlines.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from collector.deadlines import ActiveIncident, DeadlineAction
from collector.events import (
    FlappingChange,
    IncidentAction,
    IncidentOpen,
    IncidentResolve,
    IncidentUpdate,
    SeriesStale,
    Transition,
)
from collector.incidents import ACTIVE, AGENT_LOST_CHECK, notifiable, should_reopen, status_name
from collector.lifecycle_rules import Current, next_status
from collector.silences import Recurrence, Silence
from collector.store import Row

_ACTIVE_SQL = "status IN ('open', 'acknowledged')"
NOTE_MAX = 4000
"""Characters of a note, resolution or root-cause text kept (the rest is cut, saying so)."""


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def clip(text: str, limit: int = NOTE_MAX) -> str:
    return text if len(text) <= limit else text[:limit] + " …(cut)"


def silence_of(row: Mapping[str, Any]) -> Silence:
    matchers = row["matchers"]
    if isinstance(matchers, str):
        matchers = json.loads(matchers)
    recurrence = Recurrence(row["days"], int(row["from_min"]), int(row["to_min"])) if row["kind"] == "recurring" \
        else None
    return Silence(int(row["id"]), matchers, str(row["kind"]), str(row["created_by"]), str(row["reason"]),
                   float(row["created_at"]), float(row["starts_at"]),
                   None if row["ends_at"] is None else float(row["ends_at"]), recurrence,
                   None if row["removed_at"] is None else float(row["removed_at"]))


def active_incident(row: Mapping[str, Any]) -> ActiveIncident:
    labels = row["labels"]
    if isinstance(labels, str):
        labels = json.loads(labels)
    return ActiveIncident(
        int(row["id"]), str(row["status"]), str(row["priority"]), labels, float(row["opened_at"]),
        row["response_due_at"], row["resolution_due_at"], row["acknowledged_at"], bool(row["response_breached"]),
        bool(row["resolution_breached"]), int(row["escalation_level"]), row["repeated_at"], str(row["suppressed"]),
        None if row["silence_id"] is None else int(row["silence_id"]), bool(row["flapping"]))


class IncidentTx:
    """Incident writes inside the store's open transaction."""

    _cur: Any
    _q: Callable[[str], str]
    write_transitions: Callable[[Sequence[Transition]], None]

    # timeline and outbox

    def _timeline(self, incident_id: int, at: float, event: str, actor: str = "", **detail: Any) -> None:
        self._cur.execute(self._q(
            "INSERT INTO incident_events (incident_id, at, event, actor, detail) VALUES (?, ?, ?, ?, ?)"),
            (incident_id, at, event, actor, _json(detail)))

    def _outbox(self, incident_id: int, event: str, at: float, **detail: Any) -> None:
        self._cur.execute(self._q(
            "INSERT INTO outbox (incident_id, event, detail, at, not_before, state) VALUES (?, ?, ?, ?, ?, 'pending')"),
            (incident_id, event, _json(detail), at, at))

    def _one(self, sql: str, args: Sequence[Any]) -> Row | None:
        self._cur.execute(self._q(sql), tuple(args))
        row = self._cur.fetchone()
        if row is None:
            return None
        names = [d[0] for d in self._cur.description]
        return dict(zip(names, row, strict=True))

    def _active_id(self, agent_id: str, check_id: str, target: str, key: str) -> int | None:
        row = self._one(f"SELECT id FROM incidents WHERE agent_id = ? AND check_id = ? AND target = ? AND key = ? AND "
                        f"{_ACTIVE_SQL}", (agent_id, check_id, target, key))
        return None if row is None else int(row["id"])

    # what the state engine decided

    def write_incident_actions(self, actions: Sequence[IncidentAction]) -> None:
        for a in actions:
            if isinstance(a, IncidentOpen):
                self._open(a)
            elif isinstance(a, IncidentUpdate):
                found = self._active_id(a.agent_id, a.check_id, a.target, a.key)
                if found is not None:
                    self._cur.execute(self._q(
                        "UPDATE incidents SET last_status = ?, summary = ?, last_change_at = ? WHERE id = ?"),
                        (a.status, a.summary, a.at, found))
                    self._timeline(found, a.at, "status", status=status_name(a.status), summary=a.summary)
            elif isinstance(a, IncidentResolve):
                found = self._active_id(a.agent_id, a.check_id, a.target, a.key)
                if found is not None:
                    self._resolve(found, a.at, a.status, a.summary, "")
            elif isinstance(a, FlappingChange):
                self._flapping(a)
            elif isinstance(a, SeriesStale):
                self.write_transitions([a.transition()])

    def _parent_id(self, a: IncidentOpen) -> int | None:
        if not a.parent_check:
            return None
        row = self._one(f"SELECT id FROM incidents WHERE agent_id = ? AND check_id = ? AND target = ? AND {_ACTIVE_SQL} "
                        "ORDER BY id LIMIT 1", (a.agent_id, a.parent_check,
                                                "" if a.parent_check == AGENT_LOST_CHECK else a.parent_target))
        return None if row is None else int(row["id"])

    def _open(self, a: IncidentOpen) -> None:
        q, cur = self._q, self._cur
        parent_id = self._parent_id(a)
        labels = _json(dict(a.labels))
        previous = self._one("SELECT id, resolved_at FROM incidents WHERE agent_id = ? AND check_id = ? AND target = ? "
                             "AND key = ? AND status = 'resolved' ORDER BY resolved_at DESC LIMIT 1",
                             (a.agent_id, a.check_id, a.target, a.key))
        if previous is not None and self._active_id(a.agent_id, a.check_id, a.target, a.key) is None and \
                should_reopen(previous["resolved_at"], a.at, a.reopen_within):
            incident_id = int(previous["id"])
            cur.execute(q(
                "UPDATE incidents SET status = 'open', resolved_at = NULL, resolved_by = NULL, resolution = '', "
                "acknowledged_at = NULL, acknowledged_by = NULL, last_status = ?, summary = ?, last_change_at = ?, "
                "response_due_at = ?, suppressed = ?, silence_id = ?, flapping = ?, parent_id = ?, "
                "reopened = reopened + 1, escalation_level = 0, escalated_at = NULL, repeated_at = NULL WHERE id = ?"),
                (a.status, a.summary, a.at, a.response_due_at, a.suppressed, a.silence_id, int(a.flapping), parent_id,
                 incident_id))
            event = "reopened"
            self._timeline(incident_id, a.at, event, status=status_name(a.status), summary=a.summary,
                           response_due_at=a.response_due_at)
        else:
            cur.execute(q(
                "INSERT INTO incidents (kind, agent_id, check_id, target, key, status, priority, system, title, summary, "
                "opened_at, last_status, last_change_at, response_due_at, resolution_due_at, host, runbook, labels, "
                "parent_id, suppressed, silence_id, flapping) "
                "VALUES (?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                f"ON CONFLICT (agent_id, check_id, target, key) WHERE {_ACTIVE_SQL} DO NOTHING RETURNING id"),
                (a.kind, a.agent_id, a.check_id, a.target, a.key, a.priority, a.system, a.title, a.summary, a.at,
                 a.status, a.at, a.response_due_at, a.resolution_due_at, a.host, a.runbook, labels, parent_id,
                 a.suppressed, a.silence_id, int(a.flapping)))
            row = cur.fetchone()
            if row is None:
                return  # the series already has an active incident
            incident_id = int(row[0])
            event = "opened"
            self._timeline(incident_id, a.at, event, status=status_name(a.status), summary=a.summary,
                           priority=a.priority, response_due_at=a.response_due_at,
                           resolution_due_at=a.resolution_due_at)
        if a.suppressed:
            self._timeline(incident_id, a.at, "suppressed", parent_id=parent_id, why=a.suppressed)
        if a.silence_id is not None:
            self._timeline(incident_id, a.at, "silenced", silence_id=a.silence_id)
        if a.flapping:
            self._timeline(incident_id, a.at, "flapping", flapping=True)
        if notifiable(a.suppressed, a.silence_id, a.flapping):
            self._outbox(incident_id, event, a.at)
        for check_id, target, key in a.adopt:
            child = self._one(f"SELECT id, suppressed FROM incidents WHERE agent_id = ? AND check_id = ? AND target = ? "
                              f"AND key = ? AND {_ACTIVE_SQL} AND parent_id IS NULL",
                              (a.agent_id, check_id, target, key))
            if child is None or int(child["id"]) == incident_id:
                continue
            why = f"incident {incident_id} ({a.title})"
            cur.execute(q("UPDATE incidents SET parent_id = ?, suppressed = ? WHERE id = ?"),
                        (incident_id, child["suppressed"] or why, child["id"]))
            self._timeline(int(child["id"]), a.at, "suppressed", parent_id=incident_id, why=why)

    def _resolve(self, incident_id: int, at: float, status: int | None, resolution: str, by: str) -> None:
        q, cur = self._q, self._cur
        cur.execute(q(
            "UPDATE incidents SET status = 'resolved', resolved_at = ?, resolved_by = ?, resolution = ?, "
            "last_status = COALESCE(?, last_status), last_change_at = ?, "
            "response_breached = CASE WHEN acknowledged_at IS NULL AND response_due_at < ? AND suppressed = '' "
            "AND silence_id IS NULL THEN 1 ELSE response_breached END, "
            "resolution_breached = CASE WHEN resolution_due_at < ? AND suppressed = '' AND silence_id IS NULL "
            "THEN 1 ELSE resolution_breached END WHERE id = ?"),
            (at, by or None, clip(resolution), status, at, at, at, incident_id))
        self._timeline(incident_id, at, "resolved", by, resolution=clip(resolution))
        self._outbox(incident_id, "resolved", at)
        for child in self._children(incident_id):
            cur.execute(q("UPDATE incidents SET suppressed = '' WHERE id = ?"), (child["id"],))
            self._timeline(int(child["id"]), at, "released", why=f"parent incident {incident_id} resolved")
            if notifiable("", child["silence_id"], bool(child["flapping"])):
                self._outbox(int(child["id"]), "released", at)

    def _children(self, incident_id: int) -> list[Row]:
        self._cur.execute(self._q(f"SELECT id, silence_id, flapping FROM incidents WHERE parent_id = ? AND "
                                  f"{_ACTIVE_SQL} AND suppressed <> ''"), (incident_id,))
        names = [d[0] for d in self._cur.description]
        return [dict(zip(names, r, strict=True)) for r in self._cur.fetchall()]

    def _flapping(self, a: FlappingChange) -> None:
        found = self._one(f"SELECT id, suppressed, silence_id FROM incidents WHERE agent_id = ? AND check_id = ? "
                          f"AND target = ? AND key = ? AND {_ACTIVE_SQL}", (a.agent_id, a.check_id, a.target, a.key))
        if found is None:
            return
        incident_id = int(found["id"])
        self._cur.execute(self._q("UPDATE incidents SET flapping = ? WHERE id = ?"), (int(a.flapping), incident_id))
        self._timeline(incident_id, a.at, "flapping", flapping=a.flapping, percent=round(a.percent, 1))
        if not a.flapping and notifiable(found["suppressed"], found["silence_id"], False):
            self._outbox(incident_id, "released", a.at)

    # what people do

    def incident_action(self, incident_id: int, action: str, by: str, at: float, *, note: str = "",
                        assignee: str = "", cause: str = "", solution: str = "") -> Row | None:
        """Apply an operator's action (collector/lifecycle_rules.py decides whether it may happen); None when the
        incident does not exist. Raises IncidentStateError."""
        q, cur = self._q, self._cur
        row = self._one("SELECT id, status, priority, acknowledged_by, root_cause, acknowledged_at, response_due_at, "
                        "suppressed, silence_id FROM incidents WHERE id = ?", (incident_id,))
        if row is None:
            return None
        now = Current(incident_id, str(row["status"]), str(row["priority"]), row["acknowledged_by"],
                      bool(row["root_cause"]))
        status = next_status(action, now)
        if action == "ack":
            breached = row["response_due_at"] is not None and at > row["response_due_at"] and not row["suppressed"] \
                and row["silence_id"] is None
            cur.execute(q("UPDATE incidents SET status = ?, acknowledged_at = ?, acknowledged_by = ?, "
                          "response_breached = CASE WHEN ? THEN 1 ELSE response_breached END WHERE id = ?"),
                        (status, at, by, int(breached), incident_id))
            self._timeline(incident_id, at, "acknowledged", by, note=clip(note))
        elif action == "assign":
            cur.execute(q("UPDATE incidents SET assignee = ? WHERE id = ?"), (assignee, incident_id))
            self._timeline(incident_id, at, "assigned", by, assignee=assignee, note=clip(note))
        elif action == "note":
            cur.execute(q("INSERT INTO incident_notes (incident_id, author, note, created_at) VALUES (?, ?, ?, ?)"),
                        (incident_id, by, clip(note), at))
            self._timeline(incident_id, at, "note", by, note=clip(note))
        elif action == "resolve":
            self._resolve(incident_id, at, None, note or f"resolved by {by}", by)
        elif action == "close":
            cur.execute(q("UPDATE incidents SET status = 'closed', closed_at = ?, closed_by = ? WHERE id = ?"),
                        (at, by, incident_id))
            self._timeline(incident_id, at, "closed", by, note=clip(note))
        elif action == "rca":
            cur.execute(q("UPDATE incidents SET root_cause = ?, rca_solution = ?, rca_by = ?, rca_at = ? WHERE id = ?"),
                        (clip(cause), clip(solution), by, at, incident_id))
            self._timeline(incident_id, at, "rca", by, root_cause=clip(cause), solution=clip(solution))
        return {"id": incident_id, "status": status}

    def end_agent_incidents(self, agent_id: str, at: float, resolution: str) -> int:
        """Resolve every active incident of an agent taken out of the fleet (retired), through the lifecycle: the
        timeline says why and those who were told it opened are told it ended. Returns how many."""
        self._cur.execute(self._q(f"SELECT id FROM incidents WHERE agent_id = ? AND {_ACTIVE_SQL} ORDER BY id"),
                          (agent_id,))
        ended = [int(r[0]) for r in self._cur.fetchall()]
        for incident_id in ended:
            self._resolve(incident_id, at, None, resolution, "")
        return len(ended)

    # silences

    def add_silence(self, s: Silence, active: Iterable[ActiveIncident]) -> int:
        """Store a silence and mark the active incidents it covers now; returns its id."""
        r = s.recurrence
        self._cur.execute(self._q(
            "INSERT INTO silences (matchers, kind, starts_at, ends_at, days, from_min, to_min, created_by, reason, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"),
            (_json(dict(s.matchers)), s.kind, s.starts_at, s.ends_at, r.days if r else "", r.start_min if r else 0,
             r.end_min if r else 0, s.created_by, s.reason, s.created_at))
        silence_id = int(self._cur.fetchone()[0])
        for inc in active:
            self._cur.execute(self._q("UPDATE incidents SET silence_id = ? WHERE id = ? AND silence_id IS NULL"),
                              (silence_id, inc.id))
            self._timeline(inc.id, s.created_at, "silenced", s.created_by, silence_id=silence_id, reason=s.reason)
        return silence_id

    def remove_silence(self, silence_id: int, by: str, why: str, at: float) -> bool:
        self._cur.execute(self._q("UPDATE silences SET removed_at = ?, removed_by = ?, removed_why = ? "
                                  "WHERE id = ? AND removed_at IS NULL"), (at, by, why, silence_id))
        return bool(self._cur.rowcount == 1)

    # the clock

    def apply_deadline_actions(self, actions: Sequence[DeadlineAction]) -> None:
        q, cur = self._q, self._cur
        for a in actions:
            if a.kind == "response_breached":
                cur.execute(q("UPDATE incidents SET response_breached = 1 WHERE id = ?"), (a.incident_id,))
                self._timeline(a.incident_id, a.at, "response_breached")
            elif a.kind == "resolution_breached":
                cur.execute(q("UPDATE incidents SET resolution_breached = 1 WHERE id = ?"), (a.incident_id,))
                self._timeline(a.incident_id, a.at, "resolution_breached")
                self._outbox(a.incident_id, "resolution_overdue", a.at)
            elif a.kind == "escalated":
                cur.execute(q("UPDATE incidents SET escalation_level = ?, escalated_at = ? WHERE id = ? AND "
                              "escalation_level < ?"), (a.level, a.at, a.incident_id, a.level))
                if cur.rowcount == 1:
                    self._timeline(a.incident_id, a.at, "escalated", level=a.level)
                    self._outbox(a.incident_id, "escalated", a.at, level=a.level)
            elif a.kind == "repeat":
                cur.execute(q("UPDATE incidents SET repeated_at = ? WHERE id = ?"), (a.at, a.incident_id))
                self._outbox(a.incident_id, "repeat", a.at)
            elif a.kind == "silence_over":
                row = self._one("SELECT silence_id, suppressed, flapping, status FROM incidents WHERE id = ?",
                                (a.incident_id,))
                if row is None or row["silence_id"] is None:
                    continue
                cur.execute(q("UPDATE incidents SET silence_id = NULL WHERE id = ?"), (a.incident_id,))
                self._timeline(a.incident_id, a.at, "unsilenced", why=a.detail)
                if row["status"] in ACTIVE and notifiable(row["suppressed"], None, bool(row["flapping"])):
                    self._outbox(a.incident_id, "released", a.at)


class IncidentReads:
    """Incident reads of the store (any thread)."""

    _query: Callable[..., list[Row]]

    def list_incidents(self, status: str, limit: int, filters: Mapping[str, str] | None = None) -> list[Row]:
        where: list[str] = []
        args: list[Any] = []
        if status == "active":
            where.append(_ACTIVE_SQL)
        elif status != "all":
            where.append("status = ?")
            args.append(status)
        for column, value in (filters or {}).items():
            where.append(f"{column} = ?")
            args.append(value)
        sql = "SELECT * FROM incidents" + (" WHERE " + " AND ".join(where) if where else "")
        return self._query(sql + " ORDER BY opened_at DESC, id DESC LIMIT ?", (*args, limit))

    def get_incident(self, incident_id: int) -> Row | None:
        rows = self._query("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        if not rows:
            return None
        row = rows[0]
        row["timeline"] = self._query("SELECT at, event, actor, detail FROM incident_events WHERE incident_id = ? "
                                      "ORDER BY id", (incident_id,))
        row["notes"] = self._query("SELECT author, note, created_at FROM incident_notes WHERE incident_id = ? "
                                   "ORDER BY id", (incident_id,))
        row["children"] = [r["id"] for r in self._query("SELECT id FROM incidents WHERE parent_id = ? ORDER BY id",
                                                         (incident_id,))]
        return row

    def active_incidents(self) -> list[ActiveIncident]:
        return [active_incident(r) for r in self._query(f"SELECT * FROM incidents WHERE {_ACTIVE_SQL}")]

    def due_incidents(self, now: float, repeat_before: float | None) -> list[ActiveIncident]:
        """The active incidents the deadline sweep may act on at `now`: silenced ones (their silence may be over),
        and, of the others not explained by a parent, those past a response or resolution deadline or due a repeat
        (opened or last repeated before `repeat_before`; None when no route repeats). Everything else has no action
        due (collector/deadlines.py `due`), so a fleet's many quiet or suppressed incidents are not read every sweep.
        """
        repeat = "" if repeat_before is None else " OR (status = 'open' AND COALESCE(repeated_at, opened_at) <= ?)"
        sql = (f"SELECT * FROM incidents WHERE {_ACTIVE_SQL} AND (silence_id IS NOT NULL OR (suppressed = '' AND ("
               "(status = 'open' AND response_due_at <= ?) OR (resolution_breached = 0 AND resolution_due_at <= ?)"
               f"{repeat})))")
        args = (now, now) if repeat_before is None else (now, now, repeat_before)
        return [active_incident(r) for r in self._query(sql, args)]

    def overdue_incidents(self, now: float) -> list[ActiveIncident]:
        """Active incidents past a deadline at `now`, not silenced or explained by a parent (the overdue gauge)."""
        return [active_incident(r) for r in self._query(
            f"SELECT * FROM incidents WHERE {_ACTIVE_SQL} AND silence_id IS NULL AND suppressed = '' AND ("
            "(status = 'open' AND response_due_at < ?) OR resolution_due_at < ?)", (now, now))]

    def list_silences(self, include_removed: bool = False) -> list[Row]:
        where = "" if include_removed else " WHERE removed_at IS NULL"
        return self._query("SELECT * FROM silences" + where + " ORDER BY id DESC")

    def silences_in_force(self) -> list[Silence]:
        return [silence_of(r) for r in self._query("SELECT * FROM silences WHERE removed_at IS NULL")]

    def incident_counts(self) -> list[Row]:
        """Active incidents by priority and system (children explained by a parent left out)."""
        return self._query(f"SELECT priority, system, COUNT(*) AS n FROM incidents WHERE {_ACTIVE_SQL} AND "
                           "suppressed = '' GROUP BY priority, system")

    def breach_counts(self) -> list[Row]:
        return self._query("SELECT priority, system, SUM(response_breached) AS response, "
                           "SUM(resolution_breached) AS resolution FROM incidents GROUP BY priority, system")

    def incident_durations(self) -> list[Row]:
        """Per incident: priority, seconds to acknowledgement and to resolution (None while not done)."""
        return self._query("SELECT priority, acknowledged_at - opened_at AS ack_s, resolved_at - opened_at AS resolve_s "
                           "FROM incidents WHERE suppressed = '' AND (acknowledged_at IS NOT NULL OR "
                           "resolved_at IS NOT NULL)")
