"""HTTP on the collector: /healthz, /metrics and the JSON API (docs/api.md).

Standard library ThreadingHTTPServer in its own threads, on purpose: no extra dependency, store reads
(SQLite, WAL: readers never block the writer) and scrape-time metric building run outside the event
loop that carries ingest, and request volume (a CLI, a console, a Prometheus every 15 s) is small.
Writes (finding reviews) go through the single store writer like everything else.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.registry import CollectorRegistry

from collector.exposition import generate_text
from collector.findings import REVIEW_ACTIONS, FindingStateError
from collector.incidents import status_name
from collector.state import NO_STATUS, StateEngine
from collector.store import FINDING_STATES, Row, Store
from collector.writer import Writer

log = logging.getLogger(__name__)
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 500
REVIEW_TIMEOUT_S = 30.0
CONSOLE_HTML = (Path(__file__).parent / "static" / "console.html").read_bytes()
"""A read-only page over the JSON API; the full console comes with its own issue."""


class ApiError(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _int_param(query: dict[str, list[str]], name: str, default: int, *, maximum: int | None = None) -> int:
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
    """Route handlers; each returns (status, JSON-able body)."""

    def __init__(self, engine: StateEngine, store: Store, writer: Writer, registry: CollectorRegistry,
                 clock: Callable[[], float]) -> None:
        self.engine = engine
        self.store = store
        self.writer = writer
        self.registry = registry
        self.clock = clock

    def healthz(self) -> tuple[HTTPStatus, Any]:
        if self.writer.error is not None:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"status": "error", "error": f"store writer: {self.writer.error}"}
        return HTTPStatus.OK, {"status": "ok"}

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

    def checks(self, query: dict[str, list[str]]) -> list[Row]:
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
                "outcome": r.outcome, "metrics": dict(r.metrics), "duration_ms": r.duration_us / 1000.0,
                "started_at": r.started_unix_ms / 1000.0, "seq": r.seq, "since": s.since,
                "incident_open": s.incident, "bad_in_a_row": s.bad if s.status else 0,
            })
        out.sort(key=lambda c: (c["agent"], c["check_id"], c["target"], c["key"]))
        return out

    def incidents(self, query: dict[str, list[str]]) -> list[Row]:
        status = query.get("status", ["open"])[0]
        if status not in ("open", "resolved", "all"):
            raise ApiError(HTTPStatus.BAD_REQUEST, f"status must be open, resolved or all, got {status!r}")
        rows = self.store.list_incidents(status, _int_param(query, "limit", DEFAULT_LIMIT, maximum=MAX_LIMIT))
        for row in rows:
            row["last_status"] = status_name(int(row["last_status"]))
        return rows

    def results(self, query: dict[str, list[str]]) -> list[Row]:
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

    def findings(self, query: dict[str, list[str]]) -> list[Row]:
        filters = {k: query[k][0] for k in ("target", "engine", "state", "agent") if query.get(k, [""])[0]}
        if "state" in filters and filters["state"] not in FINDING_STATES:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"state must be one of {', '.join(FINDING_STATES)}, "
                           f"got {filters['state']!r}")
        return self.store.list_findings(filters, _int_param(query, "limit", DEFAULT_LIMIT, maximum=MAX_LIMIT))

    def finding(self, finding_id: int) -> Row:
        row = self.store.get_finding(finding_id)
        if row is None:
            raise ApiError(HTTPStatus.NOT_FOUND, f"finding {finding_id} not found")
        return row

    def review(self, finding_id: int, action: str, body: Any) -> Row:
        if not isinstance(body, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, 'body must be a JSON object {"reviewer": ..., "note": ...}')
        reviewer, note = body.get("reviewer"), body.get("note", "")
        if not isinstance(reviewer, str) or not reviewer.strip():
            raise ApiError(HTTPStatus.BAD_REQUEST, "reviewer is required (who accepts or dismisses the finding)")
        if not isinstance(note, str):
            raise ApiError(HTTPStatus.BAD_REQUEST, "note must be a string")
        at = self.clock()
        fut = self.writer.submit(lambda tx: tx.review_finding(finding_id, action, reviewer.strip(), note, at))
        try:
            row = fut.result(REVIEW_TIMEOUT_S)
        except FindingStateError as exc:
            raise ApiError(HTTPStatus.CONFLICT, str(exc)) from None
        if row is None:
            raise ApiError(HTTPStatus.NOT_FOUND, f"finding {finding_id} not found")
        return self.finding(finding_id)

    def get(self, path: str, query: dict[str, list[str]]) -> tuple[HTTPStatus, Any]:
        if path == "/healthz":
            return self.healthz()
        routes: dict[str, Callable[[], Any]] = {
            "/api/v1/agents": self.agents,
            "/api/v1/checks": lambda: self.checks(query),
            "/api/v1/incidents": lambda: self.incidents(query),
            "/api/v1/results": lambda: self.results(query),
            "/api/v1/findings": lambda: self.findings(query),
        }
        if path in routes:
            return HTTPStatus.OK, routes[path]()
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[:3] == ["api", "v1", "findings"]:
            return HTTPStatus.OK, self.finding(_finding_id(parts[3]))
        raise ApiError(HTTPStatus.NOT_FOUND, f"no such endpoint: GET {path}")

    def post(self, path: str, body: Any) -> tuple[HTTPStatus, Any]:
        parts = path.strip("/").split("/")
        if len(parts) == 5 and parts[:3] == ["api", "v1", "findings"] and parts[4] in REVIEW_ACTIONS:
            return HTTPStatus.OK, self.review(_finding_id(parts[3]), parts[4], body)
        raise ApiError(HTTPStatus.NOT_FOUND, f"no such endpoint: POST {path}")


def _finding_id(raw: str) -> int:
    if not raw.isdigit():
        raise ApiError(HTTPStatus.BAD_REQUEST, f"finding id must be a number, got {raw!r}")
    return int(raw)


class _Handler(BaseHTTPRequestHandler):
    api: Api
    server_version = "xunjian-collector"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, payload: Any) -> None:
        self._send(status, json.dumps(payload, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def _handle(self, call: Callable[[], tuple[HTTPStatus, Any]]) -> None:
        try:
            status, payload = call()
        except ApiError as exc:
            self._json(exc.status, {"error": exc.message})
            return
        except Exception as exc:
            log.exception("HTTP %s %s failed", self.command, self.path)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"internal error: {exc}"})
            return
        self._json(status, payload)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path in ("/", "/console"):
            self._send(HTTPStatus.OK, CONSOLE_HTML, "text/html; charset=utf-8")
            return
        if url.path == "/metrics":
            self._send(HTTPStatus.OK, generate_text(self.api.registry), CONTENT_TYPE_LATEST)
            return
        self._handle(lambda: self.api.get(url.path, parse_qs(url.query)))

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""

        def call() -> tuple[HTTPStatus, Any]:
            try:
                body = json.loads(raw) if raw else None
            except ValueError as exc:
                raise ApiError(HTTPStatus.BAD_REQUEST, f"body is not JSON: {exc}") from None
            return self.api.post(url.path, body)
        self._handle(call)


class HttpServer:
    """The HTTP server in a background thread, with start/stop like the other long-running parts."""

    def __init__(self, api: Api, host: str, port: int) -> None:
        handler = type("Handler", (_Handler,), {"api": api})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="xunjian-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
