"""HTTP on the collector: the route handlers (`Api`) and, apart from them, the transport that serves them.

`Api` knows nothing of sockets: each route takes a Request and returns a Response, and `Api.routes()` is the
table docs/api.md is tested against. `HttpServer` is today's transport, the standard library's
ThreadingHTTPServer in threads of the collector process (no dependency; store reads and scrape-time metric
building run outside the event loop that carries ingest). Replacing it (TLS, tokens, a server that does not
hold a thread per idle client) means writing another transport over `Api.handle`, nothing else.
Writes (finding reviews) go through the single store writer like everything else.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.registry import CollectorRegistry

from checks.result import ms_from_us, outcome_name, seconds_from_ms
from collector.access import Actor, local_operator
from collector.audit import AuditEntry
from collector.exposition import generate_text
from collector.findings import REVIEW_ACTIONS, FindingStateError, known_categories
from collector.incidents import status_name
from collector.state import NO_STATUS, StateEngine
from collector.store import FINDING_STATES, Row, Store, StoreTx
from collector.writer import Writer
from service.lifecycle import Health, Host, spawn

log = logging.getLogger("xunjian.collector.http")
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 500
REVIEW_TIMEOUT_S = 30.0
JSON = "application/json; charset=utf-8"
CONSOLE_HTML = (Path(__file__).parent / "static" / "console.html").read_bytes()
"""A read-only page over the JSON API; the full console comes with its own issue."""


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

    @staticmethod
    def of(payload: Any, status: HTTPStatus = HTTPStatus.OK) -> Response:
        return Response(status, json.dumps(payload, ensure_ascii=False).encode(), JSON)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    """A path with {placeholders}, e.g. /api/v1/findings/{id}; docs/api.md writes them in capitals (ID)."""
    handler: Handler
    role: str = "viewer"
    """The least role that may call it (collector/access.py): viewer, operator, dba or admin."""

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


def _int_param(query: Mapping[str, list[str]], name: str, default: int, *, maximum: int | None = None) -> int:
    raw = query.get(name, [None])[0]
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} must be an integer, got {raw!r}") from None
    if value < 0:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} must not be negative, got {value}")
    return min(value, maximum) if maximum is not None else value


class Api:
    """Route handlers; `handle` is the one entry point a transport calls."""

    def __init__(self, engine: StateEngine, store: Store, writer: Writer, registry: CollectorRegistry,
                 clock: Callable[[], float], health: Callable[[], Mapping[str, Health]]) -> None:
        self.engine = engine
        self.store = store
        self.writer = writer
        self.registry = registry
        self.clock = clock
        self.health = health
        self._routes = self.routes()

    def routes(self) -> list[Route]:
        def json_get(fn: Callable[[Request], Any]) -> Handler:
            return lambda req: Response.of(fn(req))

        return [
            Route("GET", "/", lambda _req: Response(HTTPStatus.OK, CONSOLE_HTML, "text/html; charset=utf-8")),
            Route("GET", "/healthz", self.healthz),
            Route("GET", "/metrics", lambda _req: Response(HTTPStatus.OK, generate_text(self.registry),
                                                           CONTENT_TYPE_LATEST)),
            Route("GET", "/api/v1/agents", json_get(lambda _req: self.agents())),
            Route("GET", "/api/v1/checks", json_get(lambda req: self.checks(req.query))),
            Route("GET", "/api/v1/incidents", json_get(lambda req: self.incidents(req.query))),
            Route("GET", "/api/v1/results", json_get(lambda req: self.results(req.query))),
            Route("GET", "/api/v1/findings", json_get(lambda req: self.findings(req.query))),
            Route("GET", "/api/v1/findings/{id}", json_get(lambda req: self.finding(_finding_id(req.params["id"])))),
            *(Route("POST", f"/api/v1/findings/{{id}}/{action}", self._reviewer(action), "dba")
              for action in REVIEW_ACTIONS),
            Route("GET", "/api/v1/audit", json_get(self.audit), "admin"),
            Route("GET", "/api/v1/audit/verify", json_get(lambda _req: self.verify_audit()), "admin"),
        ]

    def _reviewer(self, action: str) -> Handler:
        return lambda req: Response.of(self.review(_finding_id(req.params["id"]), action, req.json(), req.actor))

    def handle(self, method: str, path: str, query: Mapping[str, list[str]], body: bytes = b"",
               actor: Actor | None = None) -> Response:
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
                    return route.handler(Request(method, path, query, body, params, caller))
                if route.match(route.method, path) is not None:
                    allowed.append(route.method)
            if allowed:
                raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} {path} is not allowed; use {', '.join(allowed)}")
            raise ApiError(HTTPStatus.NOT_FOUND, f"no such endpoint: {method} {path}")
        except ApiError as exc:
            return Response.of({"error": exc.message}, exc.status)
        except Exception as exc:
            log.exception("HTTP %s %s failed", method, path)
            return Response.of({"error": f"internal error: {exc}"}, HTTPStatus.INTERNAL_SERVER_ERROR)

    def healthz(self, _req: Request) -> Response:
        parts = {name: {"ok": h.ok, "detail": h.detail} for name, h in self.health().items()}
        failing = [f"{name}: {p['detail']}" for name, p in parts.items() if not p["ok"]]
        if failing:
            return Response.of({"status": "error", "error": "; ".join(failing), "components": parts},
                               HTTPStatus.SERVICE_UNAVAILABLE)
        return Response.of({"status": "ok", "components": parts})

    def agents(self) -> list[Row]:
        out = []
        for row in self.store.list_agents():
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
            })
        return out

    def checks(self, query: Mapping[str, list[str]]) -> list[Row]:
        agent = query.get("agent", [""])[0]
        out = []
        for v in self.engine.series_views():
            s, r = v.series, v.series.latest
            if (agent and v.agent_id != agent) or r is None or s.status == NO_STATUS:
                continue
            out.append({
                "agent": v.agent_id, "check_id": v.check_id, "target": v.target, "key": v.key,
                "title": s.rule.display_title, "kind": s.rule.kind, "system": s.rule.system,
                "priority": s.rule.priority, "status": status_name(r.status), "status_code": r.status,
                "value": r.value if r.HasField("value") else None, "unit": r.unit, "summary": r.summary,
                "outcome": outcome_name(r.outcome), "metrics": dict(r.metrics),
                "duration_ms": ms_from_us(r.duration_us), "started_at": seconds_from_ms(r.started_unix_ms), "seq": r.seq, "since": s.since,
                "incident_open": s.incident, "bad_in_a_row": s.bad if s.status else 0,
            })
        out.sort(key=lambda c: (c["agent"], c["check_id"], c["target"], c["key"]))
        return out

    def incidents(self, query: Mapping[str, list[str]]) -> list[Row]:
        status = query.get("status", ["open"])[0]
        if status not in ("open", "resolved", "all"):
            raise ApiError(HTTPStatus.BAD_REQUEST, f"status must be open, resolved or all, got {status!r}")
        rows = self.store.list_incidents(status, _int_param(query, "limit", DEFAULT_LIMIT, maximum=MAX_LIMIT))
        for row in rows:
            row["last_status"] = status_name(int(row["last_status"]))
        return rows

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
    if not raw.isdigit():
        raise ApiError(HTTPStatus.BAD_REQUEST, f"finding id must be a number, got {raw!r}")
    return int(raw)


class _Handler(BaseHTTPRequestHandler):
    """Today's transport: HTTP/1.1 over the standard library, every request handed to `Api.handle`."""

    api: Api
    server_version = "xunjian-collector"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _serve(self, body: bytes = b"") -> None:
        url = urlsplit(self.path)
        actor = local_operator(f"{self.client_address[0]}:{self.client_address[1]}")
        response = self.api.handle(self.command, url.path, parse_qs(url.query), body, actor)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length) if length else b"")


class HttpServer:
    """The HTTP transport as the collector's "http" component."""

    name = "http"

    def __init__(self, api: Api, host: str, port: int) -> None:
        self.api = api
        self.address = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1]) if self._server is not None else 0

    def start(self, host: Host) -> None:
        handler = type("Handler", (_Handler,), {"api": self.api})
        try:
            self._server = ThreadingHTTPServer(self.address, handler)
        except OSError as exc:
            raise OSError(f"cannot listen on {self.address[0]}:{self.address[1]} (listen.http): "
                          f"{exc.strerror or exc}") from None
        self._server.daemon_threads = True
        self._thread = spawn("xunjian-http", self._server.serve_forever, host, self.name)

    def stop(self, timeout: float = 5.0) -> bool:
        if self._server is None:
            return True
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout)
        self._server.server_close()
        return self._thread is None or not self._thread.is_alive()

    def health(self) -> Health:
        alive = self._thread is not None and self._thread.is_alive()
        return Health(alive, "" if alive else "not serving")
