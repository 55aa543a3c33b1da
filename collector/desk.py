"""The operator's desk: incident actions and silences as the HTTP API offers them.

Each action checks its input, runs in one writer transaction together with its audit entry (and its outbox rows),
and only after the commit tells the state engine (on the event loop that owns it) and the silence set. Who acted
is `actor.acting_as(body["by"])`: an authenticated caller is who they are; without authentication the name the
request gives (the CLI sends --by, defaulting to $USER@hostname).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from http import HTTPStatus
from typing import Any

from collector.access import Actor
from collector.audit import AuditEntry
from collector.deadlines import ActiveIncident
from collector.incidents import AGENT_LOST_CHECK
from collector.lifecycle_rules import IncidentStateError
from collector.silences import KINDS, Recurrence, Silence, SilenceError, SilenceSet, validate_matchers
from collector.sqlincidents import NOTE_MAX, silence_of
from collector.state import StateEngine
from collector.store import Row, Store, StoreTx
from collector.writer import Writer

ACTION_TIMEOUT_S = 30.0
MAX_SILENCE_S = 366 * 86400.0


class DeskError(Exception):
    """A request the desk refuses: the HTTP status and a message saying what is wrong and what to do."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _text(body: Mapping[str, Any], name: str, *, required: bool = False, limit: int = NOTE_MAX) -> str:
    value = body.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise DeskError(HTTPStatus.BAD_REQUEST, f"{name} must be a string")
    if required and not value.strip():
        raise DeskError(HTTPStatus.BAD_REQUEST, f"{name} is required")
    if len(value) > limit:
        raise DeskError(HTTPStatus.BAD_REQUEST, f"{name} is longer than {limit} characters")
    return value.strip()


def _number(body: Mapping[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeskError(HTTPStatus.BAD_REQUEST, f"{name} must be a number (unix seconds), got {value!r}")
    return float(value)


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise DeskError(HTTPStatus.BAD_REQUEST, 'body must be a JSON object such as {"by": "zhang.san", "note": "..."}')
    return body


class Desk:
    def __init__(self, engine: StateEngine, store: Store, writer: Writer, silences: SilenceSet,
                 clock: Callable[[], float], on_loop: Callable[[Callable[[], None]], None]) -> None:
        self.engine = engine
        self.store = store
        self.writer = writer
        self.silences = silences
        self.clock = clock
        self.on_loop = on_loop

    def _who(self, body: Mapping[str, Any], actor: Actor) -> Actor:
        claimed = _text(body, "by", limit=200)
        if not claimed and not actor.authenticated:
            raise DeskError(HTTPStatus.BAD_REQUEST, "by is required: who is acting (the CLI sends --by, default "
                            "$USER@hostname)")
        return replace(actor, name=actor.acting_as(claimed))

    def _commit(self, job: Callable[[StoreTx], Any]) -> Any:
        try:
            return self.writer.submit(job).result(ACTION_TIMEOUT_S)
        except IncidentStateError as exc:
            raise DeskError(HTTPStatus.CONFLICT, str(exc)) from None

    # incidents

    def act(self, incident_id: int, action: str, raw: Any, actor: Actor) -> Row:
        body = _object(raw)
        who = self._who(body, actor)
        fields = {"note": _text(body, "note")}
        if action == "assign":
            fields["assignee"] = _text(body, "assignee", required=True, limit=200)
        elif action == "note":
            fields["note"] = _text(body, "note", required=True)
        elif action == "rca":
            fields["cause"] = _text(body, "cause", required=True)
            fields["solution"] = _text(body, "solution", required=True)
        current = self.store.get_incident(incident_id)
        if current is None:
            raise DeskError(HTTPStatus.NOT_FOUND, f"incident {incident_id} not found")
        if action == "resolve" and current["check_id"] == AGENT_LOST_CHECK:
            live = self.engine.agents.get(str(current["agent_id"]))
            if live is not None and live.lost:
                raise DeskError(HTTPStatus.CONFLICT, f"agent {current['agent_id']} is still lost: its incident "
                                "resolves when it sends again (or retire the agent: xunjian agents retire)")
        at = self.clock()

        def job(tx: StoreTx) -> Row | None:
            row = tx.incident_action(incident_id, action, who.name, at, **fields)
            if row is not None:
                detail = {k: v for k, v in fields.items() if v}
                tx.audit(AuditEntry.of(who, f"incident.{action}", f"incident {incident_id}", at,
                                       status=row["status"], **detail))
            return row

        if self._commit(job) is None:
            raise DeskError(HTTPStatus.NOT_FOUND, f"incident {incident_id} not found")
        if action == "resolve":
            series = (str(current["agent_id"]), str(current["check_id"]), str(current["target"]), str(current["key"]))
            self.on_loop(lambda: self.engine.resolved_by_hand(*series))
        found = self.store.get_incident(incident_id)
        assert found is not None
        return found

    # silences

    def add_silence(self, raw: Any, actor: Actor) -> Row:
        body = _object(raw)
        who = self._who(body, actor)
        reason = _text(body, "reason", required=True)
        now = self.clock()
        try:
            silence = self._silence(body, who.name, reason, now)
        except SilenceError as exc:
            raise DeskError(HTTPStatus.BAD_REQUEST, str(exc)) from None
        covered = [i for i in self.store.active_incidents() if silence.matches(i.labels) and i.silence_id is None]
        if silence.kind == "until_resolved" and not covered:
            raise DeskError(HTTPStatus.CONFLICT, "no open incident matches these matchers: a silence until resolved "
                            "covers incidents that are open now (use a one-off or recurring silence for the future)")
        active_now: list[ActiveIncident] = covered if silence.active_at(now, self.silences.calendar) else []

        def job(tx: StoreTx) -> int:
            silence_id = tx.add_silence(silence, active_now)
            tx.audit(AuditEntry.of(who, "silence.add", f"silence {silence_id}", now, matchers=dict(silence.matchers),
                                   kind=silence.kind, reason=reason, starts_at=silence.starts_at,
                                   ends_at=silence.ends_at, window=silence.recurrence.text() if silence.recurrence
                                   else "", incidents=[i.id for i in active_now]))
            return silence_id

        silence_id = self._commit(job)
        self.silences.put(replace(silence, id=silence_id))
        return self.silence_row(silence_id)

    def _silence(self, body: Mapping[str, Any], by: str, reason: str, now: float) -> Silence:
        kind = _text(body, "kind") or "once"
        if kind not in KINDS:
            raise SilenceError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        matchers = validate_matchers(body.get("matchers"))
        starts = _number(body, "starts_at") or now
        ends = _number(body, "ends_at")
        duration = _number(body, "duration")
        if duration is not None:
            if duration <= 0:
                raise SilenceError("duration must be positive (seconds)")
            ends = starts + duration
        recurrence = None
        if kind == "once" and ends is None:
            raise SilenceError("a one-off silence needs ends_at or duration")
        if kind == "recurring":
            recurrence = Recurrence.parse(_text(body, "days") or "every", _text(body, "from", required=True),
                                          _text(body, "to", required=True))
        if kind == "until_resolved" and ends is not None:
            raise SilenceError("a silence until resolved has no end time")
        if ends is not None:
            if ends <= starts:
                raise SilenceError("ends_at must be after starts_at")
            if ends <= now:
                raise SilenceError("ends_at is in the past")
            if kind == "once" and ends - starts > MAX_SILENCE_S:
                raise SilenceError("a one-off silence may last at most a year")
        return Silence(0, matchers, kind, by, reason, now, starts, ends, recurrence)

    def remove_silence(self, silence_id: int, raw: Any, actor: Actor) -> Row:
        body = _object(raw if raw is not None else {})
        who = self._who(body, actor)
        why = _text(body, "reason") or "removed"
        at = self.clock()

        def job(tx: StoreTx) -> bool:
            removed = tx.remove_silence(silence_id, who.name, why, at)
            if removed:
                tx.audit(AuditEntry.of(who, "silence.remove", f"silence {silence_id}", at, reason=why))
            return removed

        if not self._commit(job):
            raise DeskError(HTTPStatus.NOT_FOUND, f"silence {silence_id} not found or already removed")
        self.silences.drop(silence_id)
        return self.silence_row(silence_id)

    def silence_row(self, silence_id: int) -> Row:
        for row in self.store.list_silences(include_removed=True):
            if int(row["id"]) == silence_id:
                return silence_view(row, self.silences, self.clock())
        raise DeskError(HTTPStatus.NOT_FOUND, f"silence {silence_id} not found")



def silence_view(row: Row, silences: SilenceSet, now: float) -> Row:
    """A stored silence as the API shows it, with `state`: active, pending (not in its window now), expired or
    removed."""
    s = silence_of(row)
    if s.removed_at is not None:
        state = "removed"
    elif s.expired(now):
        state = "expired"
    else:
        state = "active" if s.active_at(now, silences.calendar) else "pending"
    window = s.recurrence.text() if s.recurrence is not None else ""
    return {"id": s.id, "matchers": dict(s.matchers), "kind": s.kind, "state": state, "window": window,
            "starts_at": s.starts_at, "ends_at": s.ends_at, "created_by": s.created_by, "reason": s.reason,
            "created_at": s.created_at, "removed_at": row["removed_at"], "removed_by": row["removed_by"],
            "removed_why": row["removed_why"]}
