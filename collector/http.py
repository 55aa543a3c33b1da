"""The collector's HTTP API as route handlers (`Api`), apart from the transport that serves them (collector/web.py).

`Api` knows nothing of sockets: each route takes a Request and returns a Response, and `Api.routes()` is the
table docs/api.md is tested against. The transport authenticates the caller and passes its Actor; `Api.handle`
refuses a caller without the route's role. Writes go through the single store writer like everything else.
JSON answers never carry NaN or Infinity: such a number is written null, with its text beside it.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.registry import CollectorRegistry

from checks.result import ms_from_us, outcome_name, seconds_from_ms
from checks.units import parse_duration
from collector import checkpages
from collector.access import Actor, local_operator
from collector.audit import AuditEntry
from collector.desk import Desk, DeskError, silence_view
from collector.exposition import generate_text
from collector.findings import REVIEW_ACTIONS, FindingStateError, known_categories
from collector.incidents import status_name
from collector.lifecycle_rules import ACTIONS, STATUSES
from collector.state import StateEngine
from collector.store import FINDING_STATES, Row, Store, StoreTx
from collector.trust import Trust, TrustError
from collector.writer import Writer
from service.lifecycle import Health

log = logging.getLogger("xunjian.collector.http")
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 500
CHECKS_DEFAULT_LIMIT = 1000
CHECKS_MAX_LIMIT = 5000
"""/api/v1/checks pages: a page of 5,000 series stays well under 50 ms to build and about 3 MB of JSON."""
REVIEW_TIMEOUT_S = 30.0
JSON = "application/json; charset=utf-8"
STATIC = Path(__file__).parent / "static"
CONSOLE = {name: (STATIC / name).read_bytes() for name in ("console.html", "console.js", "console.css")}
"""The console page and its script and style, files of their own so the CSP allows no inline script."""
SESSION_PATH = "/api/v1/session"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]] = field(default_factory=dict)
    body: bytes = b""
    params: Mapping[str, str] = field(default_factory=dict)
    """Values of the route's {placeholders}."""
    actor: Actor = field(default_factory=local_operator)
    """Who is asking, as the transport established it (collector/access.py)."""
    csrf: str = ""
    """The CSRF token of the caller's console session, when it has one."""

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"body is not JSON: {exc}") from None


@dataclass(frozen=True)
class Response:
    status: HTTPStatus
    body: bytes
    content_type: str = JSON
    session: tuple[str, float] | None = None
    """Set the console session cookie: (session id, lifetime in seconds); ("", 0) clears it."""

    @staticmethod
    def of(payload: Any, status: HTTPStatus = HTTPStatus.OK, session: tuple[str, float] | None = None) -> Response:
        return Response(status, json_bytes(payload), JSON, session)


def json_bytes(payload: Any) -> bytes:
    """JSON that every parser reads: a NaN or infinite number becomes null (the fast path does not look)."""
    try:
        return json.dumps(payload, ensure_ascii=False, allow_nan=False).encode()
    except ValueError:
        return json.dumps(finite(payload), ensure_ascii=False, allow_nan=False).encode()


def finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None; a mapping gains "<key>_text" with the number's text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if isinstance(v, float) and not math.isfinite(v):
                out[f"{k}_text"] = repr(v)
            out[k] = finite(v)
        return out
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    """A path with {placeholders}, e.g. /api/v1/findings/{id}; docs/api.md writes them in capitals (ID)."""
    handler: Handler
    role: str = "viewer"
    """The least role that may call it (collector/access.py): viewer, operator, dba or admin."""
    anonymous: bool = False
    """Served without a token even when the API requires one (the console's page and its sign-in)."""

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        m = _path_regex(self.pattern).match(path)
        return m.groupdict() if m else None


@functools.cache
def _path_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(pattern)) + "$")


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


MAX_QUERY_INT = 2**63 - 1


def _int_param(query: Mapping[str, list[str]], name: str, default: int, *, maximum: int | None = None) -> int:
    raw = query.get(name, [None])[0]
    if raw is None or raw == "":
        return default
    if len(raw) > 20 or not raw.strip().lstrip("-").isdigit():
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} must be an integer, got {raw[:40]!r}")
    value = int(raw)
    if value < 0:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} must not be negative, got {value}")
    if value > MAX_QUERY_INT:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} must be at most {MAX_QUERY_INT}")
    return min(value, maximum) if maximum is not None else value


def _text_field(body: Any, name: str, *, required: bool = False, limit: int = 4096) -> str:
    value = body.get(name, "") if isinstance(body, dict) else ""
    if not isinstance(value, str):
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} must be a string")
    if required and not value.strip():
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} is required")
    if len(value) > limit:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} is longer than {limit} characters")
    return value


def _seconds(body: Any, name: str) -> float | None:
    """A lifetime from a JSON body: seconds as a number, or a duration such as "90d"."""
    value = body.get(name) if isinstance(body, dict) else None
    if value is None:
        return None
    try:
        if not isinstance(value, (str, int, float)):
            raise ValueError(f"expected a duration such as 90d, got {value!r}")
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name}: {exc}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} must be a positive duration")
    return seconds


class Api:
    """Route handlers; `handle` is the one entry point a transport calls."""

    def __init__(self, engine: StateEngine, store: Store, writer: Writer, registry: CollectorRegistry,
                 clock: Callable[[], float], health: Callable[[], Mapping[str, Health]],
                 trust: Trust | None = None, *, auth_required: bool = False, desk: Desk | None = None) -> None:
        self.engine = engine
        self.store = store
        self.writer = writer
        self.registry = registry
        self.clock = clock
        self.health = health
        self.trust = trust
        """Tokens, sessions, enrollment, agents' certificates and retirement."""
        self.auth_required = auth_required
        """Whether the transport authenticates callers (http.auth: tokens); without, every caller is admin."""
        self._desk = desk
        self._routes = self.routes()

    @property
    def desk(self) -> Desk:
        if self._desk is None:
            raise ApiError(HTTPStatus.SERVICE_UNAVAILABLE, "incident actions are not available in this collector")
        return self._desk

    def routes(self) -> list[Route]:
        def json_get(fn: Callable[[Request], Any]) -> Handler:
            return lambda req: Response.of(fn(req))

        def static(name: str, content_type: str) -> Route:
            path = "/" if name == "console.html" else f"/{name}"
            return Route("GET", path, lambda _req: Response(HTTPStatus.OK, CONSOLE[name], content_type),
                         anonymous=True)

        def admin(method: str, pattern: str, fn: Callable[[Request], Any]) -> Route:
            return Route(method, pattern, json_get(fn), "admin")

        return [
            static("console.html", "text/html; charset=utf-8"),
            static("console.js", "text/javascript; charset=utf-8"),
            static("console.css", "text/css; charset=utf-8"),
            Route("GET", SESSION_PATH, self.whoami, anonymous=True),
            Route("POST", SESSION_PATH, self.sign_in, anonymous=True),
            Route("POST", SESSION_PATH + "/end", self.sign_out),
            Route("GET", "/healthz", self.healthz),
            Route("GET", "/metrics", lambda _req: Response(HTTPStatus.OK, generate_text(self.registry),
                                                           CONTENT_TYPE_LATEST)),
            Route("GET", "/api/v1/agents", json_get(self.agents)),
            admin("POST", "/api/v1/agents/{id}/enroll", self.enroll),
            admin("POST", "/api/v1/agents/{id}/revoke", self.revoke_agent),
            admin("POST", "/api/v1/agents/{id}/retire", self.retire_agent),
            admin("GET", "/api/v1/certificates", lambda req: self._trust().store.list_certificates(
                req.query.get("agent", [None])[0])),
            admin("GET", "/api/v1/tokens", lambda _req: self._trust().store.list_tokens()),
            admin("POST", "/api/v1/tokens", self.create_token),
            admin("POST", "/api/v1/tokens/{name}/revoke", self.revoke_token),
            Route("GET", "/api/v1/checks", json_get(lambda req: self.checks(req.query))),
            Route("GET", "/api/v1/incidents", json_get(lambda req: self.incidents(req.query))),
            Route("GET", "/api/v1/incidents/{id}", json_get(lambda req: self.incident(_id(req.params["id"], "incident")))),
            *(Route("POST", f"/api/v1/incidents/{{id}}/{action}", self._incident_action(action), "operator")
              for action in ACTIONS),
            Route("GET", "/api/v1/silences", json_get(lambda req: self.silences(req.query))),
            Route("POST", "/api/v1/silences", lambda req: Response.of(self.desk.add_silence(req.json(), req.actor),
                                                                        HTTPStatus.CREATED), "operator"),
            Route("POST", "/api/v1/silences/{id}/remove", lambda req: Response.of(self.desk.remove_silence(
                _id(req.params["id"], "silence"), req.json(), req.actor)), "operator"),
            Route("GET", "/api/v1/notifications", json_get(lambda req: self.notifications(req.query))),
            Route("GET", "/api/v1/results", json_get(lambda req: self.results(req.query))),
            Route("GET", "/api/v1/findings", json_get(lambda req: self.findings(req.query))),
            Route("GET", "/api/v1/findings/{id}", json_get(lambda req: self.finding(_finding_id(req.params["id"])))),
            *(Route("POST", f"/api/v1/findings/{{id}}/{action}", self._reviewer(action), "dba")
              for action in REVIEW_ACTIONS),
            Route("GET", "/api/v1/audit", json_get(self.audit), "admin"),
            Route("GET", "/api/v1/audit/verify", json_get(lambda _req: self.verify_audit()), "admin"),
        ]

    def _incident_action(self, action: str) -> Handler:
        return lambda req: Response.of(incident_view(self.desk.act(_id(req.params["id"], "incident"), action,
                                                                   req.json(), req.actor)))

    def _reviewer(self, action: str) -> Handler:
        return lambda req: Response.of(self.review(_finding_id(req.params["id"]), action, req.json(), req.actor))

    def route(self, method: str, path: str) -> Route | None:
        """The route that serves `method path`, if any (the transport asks before it authenticates)."""
        path = "/" if path == "/console" else path
        return next((r for r in self._routes if r.match(method, path) is not None), None)

    def handle(self, method: str, path: str, query: Mapping[str, list[str]], body: bytes = b"",
               actor: Actor | None = None, csrf: str = "") -> Response:
        """Answer one request; errors are JSON {"error": ...} with their status, a bug is a 500 that is logged."""
        if path == "/console":
            path = "/"
        caller = actor or local_operator()
        try:
            allowed = []
            for route in self._routes:
                params = route.match(method, path)
                if params is not None:
                    if not caller.may(route.role):
                        raise ApiError(HTTPStatus.FORBIDDEN, f"{method} {route.pattern} needs the {route.role} role; "
                                       f"{caller.name} has {caller.role}")
                    return route.handler(Request(method, path, query, body, params, caller, csrf))
                if route.match(route.method, path) is not None:
                    allowed.append(route.method)
            if allowed:
                raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} {path} is not allowed; use {', '.join(allowed)}")
            raise ApiError(HTTPStatus.NOT_FOUND, f"no such endpoint: {method} {path}")
        except (ApiError, DeskError) as exc:
            return Response.of({"error": exc.message}, exc.status)
        except TrustError as exc:
            return Response.of({"error": str(exc)}, HTTPStatus(exc.status))
        except Exception:
            log.exception("HTTP %s %s failed", method, path[:200])
            return Response.of({"error": "internal error; the collector's log has the details"},
                               HTTPStatus.INTERNAL_SERVER_ERROR)

    def healthz(self, _req: Request) -> Response:
        parts = {name: {"ok": h.ok, "detail": h.detail} for name, h in self.health().items()}
        failing = [f"{name}: {p['detail']}" for name, p in parts.items() if not p["ok"]]
        if failing:
            return Response.of({"status": "error", "error": "; ".join(failing), "components": parts},
                               HTTPStatus.SERVICE_UNAVAILABLE)
        return Response.of({"status": "ok", "components": parts})

    # sessions, tokens, agents' trust

    def _trust(self) -> Trust:
        if self.trust is None:
            raise ApiError(HTTPStatus.CONFLICT, "this collector keeps no tokens, enrollments or certificates")
        return self.trust

    def whoami(self, req: Request) -> Response:
        """Who the console is signed in as, with the CSRF token its state changes must carry; 401 when nobody."""
        if self.auth_required and not req.actor.authenticated:
            return Response.of({"error": "not signed in"}, HTTPStatus.UNAUTHORIZED)
        a = req.actor
        return Response.of({"name": a.name, "role": a.role, "via": a.via, "csrf": req.csrf,
                            "auth": "tokens" if self.auth_required else "none"})

    def sign_in(self, req: Request) -> Response:
        if not self.auth_required:
            return self.whoami(req)
        trust = self._trust()
        token = _text_field(req.json(), "token", required=True, limit=256)
        signed = trust.sign_in(token.strip(), req.actor.remote)
        if signed is None:
            log.warning("console sign-in from %s refused: unknown, expired or revoked token", req.actor.remote,
                        extra={"event": "session.refused", "peer": req.actor.remote})
            return Response.of({"error": "unknown, expired or revoked token"}, HTTPStatus.UNAUTHORIZED)
        session_id, session = signed
        a = session.actor
        return Response.of({"name": a.name, "role": a.role, "via": a.via, "csrf": session.csrf,
                            "expires_at": session.expires_at}, session=(session_id, session.expires_at - self.clock()))

    def sign_out(self, req: Request) -> Response:
        return Response.of({"signed_out": True}, session=("", 0))

    def create_token(self, req: Request) -> Row:
        body = req.json()
        name = _text_field(body, "name", required=True, limit=128)
        role = _text_field(body, "role", required=True, limit=16)
        secret, row = self._trust().create_token(req.actor, name, role, _seconds(body, "expires_in"))
        return {**row, "token": secret, "note": "shown once: store it now (the collector keeps only its hash)"}

    def revoke_token(self, req: Request) -> Row:
        self._trust().revoke_token(req.actor, req.params["name"])
        return {"revoked": req.params["name"]}

    def enroll(self, req: Request) -> Row:
        agent_id = req.params["id"]
        token, expires = self._trust().enroll_agent(req.actor, agent_id, _seconds(req.json(), "expires_in"))
        return {"agent": agent_id, "token": token, "expires_at": expires,
                "note": "single use, shown once: give it to the agent (collector.tls.enroll_token_file)"}

    def revoke_agent(self, req: Request) -> Row:
        reason = _text_field(req.json(), "reason", required=True)
        return {"agent": req.params["id"], "revoked": self._trust().revoke_agent(req.actor, req.params["id"], reason)}

    def retire_agent(self, req: Request) -> Row:
        reason = _text_field(req.json(), "reason", required=True)
        row = self._trust().retire(req.actor, req.params["id"], reason)
        return row

    def agents(self, req: Request) -> list[Row]:
        retired = req.query.get("retired", [""])[0] in ("1", "true", "yes")
        out = []
        for row in self.store.list_agents(retired=retired):
            live = self.engine.agents.get(row["id"])
            out.append({
                "id": row["id"], "hostname": row["hostname"], "labels": row["labels"], "roles": row["roles"],
                "version": row["version"], "platform": row["platform"],
                "connected": bool(live and live.connections > 0), "lost": bool(live and live.lost),
                "first_seen": row["first_seen"],
                "last_seen": live.last_frame_at if live else row["last_seen"],
                "last_seq": live.last_seq if live else row["last_seq"],
                "high_water_seq": row["high_water_seq"],
                "spool_depth": live.spool_depth if live else row["spool_depth"],
                "dropped": live.dropped_total if live else row["dropped_total"],
                "series_capped": live.series_capped if live else 0,
                "series": len(live.series) if live else 0,
                "retired_at": row.get("retired_at"), "retire_reason": row.get("retire_reason", ""),
            })
        return out

    def checks(self, query: Mapping[str, list[str]]) -> list[Row]:
        """One page of check series in (agent, check, target, key) order; a page shorter than `limit` is the last."""
        agent = query.get("agent", [""])[0]
        limit = _int_param(query, "limit", CHECKS_DEFAULT_LIMIT, maximum=CHECKS_MAX_LIMIT)
        if limit < 1:
            raise ApiError(HTTPStatus.BAD_REQUEST, "limit must be at least 1")
        raw_after = query.get("after", [""])[0]
        try:
            after = checkpages.parse_cursor(raw_after) if raw_after else None
        except checkpages.CursorError as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"{exc}, got {raw_after[:40]!r}") from None
        status = query.get("status", [""])[0]
        if status not in ("", "all", "problems"):
            raise ApiError(HTTPStatus.BAD_REQUEST, f"status must be all or problems, got {status[:40]!r}")
        out = []
        for v in checkpages.page(self.engine, after, limit, agent=agent, problems=status == "problems"):
            s, r = v.series, v.series.latest
            if r is None:
                continue
            out.append({
                "agent": v.agent_id, "check_id": v.check_id, "target": v.target, "key": v.key,
                "title": s.rule.display_title, "kind": s.rule.kind, "system": s.rule.system,
                "priority": s.rule.priority, "status": status_name(r.status), "status_code": r.status,
                "value": r.value if r.HasField("value") else None, "unit": r.unit, "summary": r.summary,
                "outcome": outcome_name(r.outcome), "metrics": dict(r.metrics),
                "duration_ms": ms_from_us(r.duration_us), "started_at": seconds_from_ms(r.started_unix_ms), "seq": r.seq, "since": s.since,
                "incident_open": s.incident, "bad_in_a_row": s.bad if s.status else 0,
                "stale": s.stale, "flapping": s.flapping,
                "cursor": checkpages.cursor_of((v.agent_id, v.check_id, v.target, v.key)),
            })
        return out

    def incidents(self, query: Mapping[str, list[str]]) -> list[Row]:
        status = query.get("status", ["active"])[0]
        if status not in ("active", "all", *STATUSES):
            raise ApiError(HTTPStatus.BAD_REQUEST, f"status must be one of active, all, {', '.join(STATUSES)}, "
                           f"got {status!r}")
        filters = {column: query[name][0] for name, column in INCIDENT_FILTERS.items() if query.get(name, [""])[0]}
        rows = self.store.list_incidents(status, _int_param(query, "limit", DEFAULT_LIMIT, maximum=MAX_LIMIT), filters)
        return [incident_view(row) for row in rows]

    def incident(self, incident_id: int) -> Row:
        row = self.store.get_incident(incident_id)
        if row is None:
            raise ApiError(HTTPStatus.NOT_FOUND, f"incident {incident_id} not found")
        row["notifications"] = self.store.list_notifications({"incident": str(incident_id)}, DEFAULT_LIMIT)
        return incident_view(row)

    def silences(self, query: Mapping[str, list[str]]) -> list[Row]:
        include = query.get("all", [""])[0] in ("1", "true", "yes")
        now = self.clock()
        return [silence_view(r, self.desk.silences, now) for r in self.store.list_silences(include_removed=include)]

    def notifications(self, query: Mapping[str, list[str]]) -> list[Row]:
        filters = {k: query[k][0] for k in ("incident", "state", "receiver", "channel") if query.get(k, [""])[0]}
        if "incident" in filters and not filters["incident"].isdigit():
            raise ApiError(HTTPStatus.BAD_REQUEST, f"incident must be a number, got {filters['incident']!r}")
        if "state" in filters and filters["state"] not in ("queued", "sent", "failed"):
            raise ApiError(HTTPStatus.BAD_REQUEST, f"state must be queued, sent or failed, got {filters['state']!r}")
        return self.store.list_notifications(filters, _int_param(query, "limit", DEFAULT_LIMIT, maximum=MAX_LIMIT))

    def results(self, query: Mapping[str, list[str]]) -> list[Row]:
        if self.store.history != "all":
            raise ApiError(HTTPStatus.BAD_REQUEST, f"results history is not kept (store.history is "
                           f"{self.store.history!r}); set store.history: all in collector.yaml")
        agent = query.get("agent", [""])[0]
        if not agent:
            raise ApiError(HTTPStatus.BAD_REQUEST, "agent is required: /api/v1/results?agent=ID&after_seq=N&limit=M")
        rows = self.store.list_results(agent, _int_param(query, "after_seq", 0),
                                       _int_param(query, "limit", DEFAULT_LIMIT, maximum=MAX_LIMIT))
        for row in rows:
            row["status"] = status_name(int(row["status"]))
        return rows

    def findings(self, query: Mapping[str, list[str]]) -> list[Row]:
        filters = {k: query[k][0] for k in ("target", "engine", "state", "agent", "category") if query.get(k, [""])[0]}
        if "state" in filters and filters["state"] not in FINDING_STATES:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"state must be one of {', '.join(FINDING_STATES)}, "
                           f"got {filters['state']!r}")
        if "category" in filters and filters["category"] not in known_categories():
            raise ApiError(HTTPStatus.BAD_REQUEST, f"category must be one of {', '.join(known_categories())}, "
                           f"got {filters['category']!r}")
        return self.store.list_findings(filters, _int_param(query, "limit", DEFAULT_LIMIT, maximum=MAX_LIMIT))

    def finding(self, finding_id: int) -> Row:
        row = self.store.get_finding(finding_id)
        if row is None:
            raise ApiError(HTTPStatus.NOT_FOUND, f"finding {finding_id} not found")
        return row

    def review(self, finding_id: int, action: str, body: Any, actor: Actor) -> Row:
        if not isinstance(body, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, 'body must be a JSON object {"reviewer": ..., "note": ...}')
        claimed, note = body.get("reviewer", ""), body.get("note", "")
        if not isinstance(claimed, str) or not (claimed.strip() or actor.authenticated):
            raise ApiError(HTTPStatus.BAD_REQUEST, "reviewer is required (who accepts or dismisses the finding)")
        if not isinstance(note, str):
            raise ApiError(HTTPStatus.BAD_REQUEST, "note must be a string")
        reviewer = actor.acting_as(claimed)
        at = self.clock()

        def job(tx: StoreTx) -> Row | None:
            row = tx.review_finding(finding_id, action, reviewer, note, at)
            if row is not None:
                tx.audit(AuditEntry.of(replace(actor, name=reviewer), f"finding.{action}", f"finding {finding_id}", at,
                                       state=row["state"], note=note))
            return row

        fut = self.writer.submit(job)
        try:
            row = fut.result(REVIEW_TIMEOUT_S)
        except FindingStateError as exc:
            raise ApiError(HTTPStatus.CONFLICT, str(exc)) from None
        if row is None:
            raise ApiError(HTTPStatus.NOT_FOUND, f"finding {finding_id} not found")
        return self.finding(finding_id)


    def audit(self, req: Request) -> list[Row]:
        """The newest audit entries first (`limit`), or those after an id oldest first (`after`, to page through)."""
        after = _int_param(req.query, "after", 0)
        limit = _int_param(req.query, "limit", DEFAULT_LIMIT, maximum=MAX_LIMIT)
        return self.store.list_audit(after_id=after, limit=limit, newest_first="after" not in req.query)

    def verify_audit(self) -> Row:
        result = self.store.verify_audit()
        return {"ok": result.ok, "entries": result.entries, "head": result.head, "problems": result.problems}


def _finding_id(raw: str) -> int:
    return _id(raw, "finding")


def _id(raw: str, what: str) -> int:
    if not raw.isdigit():
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{what} id must be a number, got {raw!r}")
    return int(raw)


INCIDENT_FILTERS = {"system": "system", "priority": "priority", "agent": "agent_id", "check": "check_id",
                    "kind": "kind"}
_BOOLEANS = ("flapping", "response_breached", "resolution_breached")


def incident_view(row: Row) -> Row:
    """An incident as the API shows it: status names, booleans, and `severity` (its status now)."""
    code = int(row["last_status"])
    row["last_status"] = status_name(code)
    row["severity"] = status_name(code)
    for name in _BOOLEANS:
        if name in row:
            row[name] = bool(row[name])
    return row
