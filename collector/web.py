"""The HTTP transport: aiohttp on an event loop of its own thread, serving `Api` (collector/http.py).

Why this shape: an idle or slow client costs a few kilobytes, not a thread; the route handlers (store reads,
scrape-time metrics, writer jobs) run in a small bounded thread pool; and none of it shares a loop with gRPC
ingest, so no HTTP client can make ingest wait. What every request goes through, in order:

1. the Host header must be one this collector answers to (DNS rebinding), else 421;
2. a state change (POST) must be `application/json` (a plain HTML form cannot send it), from our own origin when
   it names one, with a body under `http.max_body_bytes` that arrives within `http.body_timeout`;
3. the caller is who its bearer token or console session says (a session's state change also needs its CSRF
   token and an Origin); without either, only the console's page, its sign-in and `http.public` are served;
4. `Api.handle` checks the route's role; every answer carries CSP without inline script, nosniff and
   frame-ancestors 'none'.

Connections are capped (`http.max_connections`); at the cap a new connection evicts the oldest one that is still
waiting for its request headers, so a thousand half-sent requests cannot keep /healthz out. A connection that has
not sent complete headers within `http.header_timeout` is closed.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qs

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from collector.access import Actor, local_operator
from collector.config import HttpConfig
from collector.http import SESSION_PATH, Api, Response, json_bytes
from collector.tokens import API_PREFIX, CSRF_HEADER, SESSION_COOKIE
from collector.trust import Session, Trust
from service.lifecycle import Health, Host, spawn

log = logging.getLogger("xunjian.collector.http")
HANDLER_THREADS = 8
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def anonymous(remote: str) -> Actor:
    """A caller with no token and no session: reaches only anonymous routes and `http.public`."""
    return Actor("anonymous", "viewer", "unauthenticated", remote)


def allowed_hosts(config: HttpConfig, listen_host: str, port: int) -> frozenset[str]:
    """Host header values answered: configured ones, else loopback names and the listen address, with or without
    the port."""
    names = list(config.allowed_hosts) or [*LOCAL_HOSTS, listen_host]
    out = set()
    for name in names:
        name = name.lower()
        out.add(name)
        if ":" not in name.strip("[]") or name.startswith("["):
            out.add(f"{name}:{port}")
    out.discard("0.0.0.0")
    out.discard(f"0.0.0.0:{port}")
    return frozenset(out)


@dataclass
class _Conn:
    transport: asyncio.BaseTransport
    busy: bool = False
    deadline: asyncio.TimerHandle | None = None


class ConnectionGuard:
    """Wraps aiohttp's protocol factory: counts connections, closes those that do not send their request headers in
    time, and at the cap evicts the oldest connection still waiting for headers."""

    def __init__(self, factory: web.Server, loop: asyncio.AbstractEventLoop, cap: int, header_timeout: float) -> None:
        self.factory = factory
        self.loop = loop
        self.cap = cap
        self.header_timeout = header_timeout
        self.conns: OrderedDict[asyncio.BaseTransport, _Conn] = OrderedDict()
        self.evicted_total = 0
        self.timed_out_total = 0

    def __call__(self) -> asyncio.Protocol:
        return _Guarded(self, self.factory())

    def opened(self, transport: asyncio.BaseTransport) -> None:
        if len(self.conns) >= self.cap:
            idle = next((c for c in self.conns.values() if not c.busy), None)
            if idle is None:
                transport.close()
                return
            self.evicted_total += 1
            self._drop(idle.transport)
        conn = self.conns[transport] = _Conn(transport)
        self._arm(conn)

    def _arm(self, conn: _Conn) -> None:
        conn.deadline = self.loop.call_later(self.header_timeout, self._expire, conn.transport)

    def _expire(self, transport: asyncio.BaseTransport) -> None:
        conn = self.conns.get(transport)
        if conn is not None and not conn.busy:
            self.timed_out_total += 1
            self._drop(transport)

    def _drop(self, transport: asyncio.BaseTransport) -> None:
        conn = self.conns.pop(transport, None)
        if conn is not None and conn.deadline is not None:
            conn.deadline.cancel()
        transport.close()

    def closed(self, transport: asyncio.BaseTransport) -> None:
        conn = self.conns.pop(transport, None)
        if conn is not None and conn.deadline is not None:
            conn.deadline.cancel()

    def request_started(self, transport: asyncio.BaseTransport | None) -> None:
        conn = self.conns.get(transport) if transport is not None else None
        if conn is not None:
            conn.busy = True
            if conn.deadline is not None:
                conn.deadline.cancel()

    def request_done(self, transport: asyncio.BaseTransport | None) -> None:
        """The answer is written: the connection may wait for the next request's headers, within the timeout."""
        conn = self.conns.get(transport) if transport is not None else None
        if conn is not None:
            conn.busy = False
            self._arm(conn)


class _Guarded(asyncio.Protocol):
    """aiohttp's RequestHandler behind the guard's bookkeeping."""

    def __init__(self, guard: ConnectionGuard, inner: RequestHandler) -> None:
        self.guard = guard
        self.inner = inner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.guard.opened(transport)
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        transport = self.inner.transport
        if transport is not None:
            self.guard.closed(transport)
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        self.inner.eof_received()
        return None

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class WebServer:
    """The HTTP transport as the collector's "http" component."""

    name = "http"

    def __init__(self, api: Api, config: HttpConfig, host: str, port: int, *, trust: Trust | None) -> None:
        self.api = api
        self.config = config
        self.host = host
        self.address = (host, port)
        self.trust = trust
        self.tls = bool(config.tls_cert_file)
        self.cookie = ("__Host-" if self.tls else "") + SESSION_COOKIE
        self.port = 0
        self.hosts: frozenset[str] = frozenset()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="xunjian-http")
        self._server: asyncio.AbstractServer | None = None
        self._web: web.Server | None = None
        self.guard: ConnectionGuard | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(self.config.tls_cert_file, self.config.tls_key_file)
        except (OSError, ssl.SSLError) as exc:
            raise OSError(f"cannot load http.tls_cert_file/tls_key_file: {exc}") from None
        return ctx

    # lifecycle

    def start(self, host: Host) -> None:
        tls = self.ssl_context()
        self._loop = asyncio.new_event_loop()
        self._thread = spawn("xunjian-http", lambda: self._run(tls), host, self.name)
        self._ready.wait(30)
        if self._error is not None:
            raise self._error

    def _run(self, tls: ssl.SSLContext | None) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._listen(tls))
        except BaseException as exc:
            self._error = OSError(f"cannot listen on {self.address[0]}:{self.address[1]} (listen.http): "
                                  f"{getattr(exc, 'strerror', None) or exc}")
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._close())
            loop.close()

    async def _listen(self, tls: ssl.SSLContext | None) -> None:
        loop = asyncio.get_running_loop()
        self._web = web.Server(self._handle, access_log=None, keepalive_timeout=self.config.header_timeout,
                               max_line_size=8190, max_field_size=8190, max_headers=64)
        self.guard = ConnectionGuard(self._web, loop, self.config.max_connections, self.config.header_timeout)
        self._server = await loop.create_server(self.guard, self.address[0], self.address[1], ssl=tls, backlog=1024,
                                                reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.hosts = allowed_hosts(self.config, self.address[0], self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._web is not None:
            await self._web.shutdown(1.0)

    def stop(self, timeout: float = 5.0) -> bool:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return True
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        return not thread.is_alive()

    def health(self) -> Health:
        alive = self._thread is not None and self._thread.is_alive()
        if not alive:
            return Health(False, "not serving")
        conns = len(self.guard.conns) if self.guard is not None else 0
        return Health(True, f"{conns} connections" + (", TLS" if self.tls else ""))

    # one request

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        guard = self.guard
        transport = request.transport
        if guard is not None:
            guard.request_started(transport)
        try:
            return await self._answer(request)
        finally:
            if guard is not None:
                guard.request_done(transport)

    async def _answer(self, request: web.BaseRequest) -> web.StreamResponse:
        remote = request.remote or ""
        host = (request.headers.get("Host") or "").lower()
        if host not in self.hosts:
            return self._error_response(HTTPStatus.MISDIRECTED_REQUEST,
                                        f"this collector does not answer to Host {host[:100]!r} (http.allowed_hosts)")
        method, path = request.method, request.path
        body = b""
        if method not in ("GET", "HEAD"):
            refused = self._refuse_write(request)
            if refused is not None:
                return refused
            try:
                body = await asyncio.wait_for(self._read_body(request), self.config.body_timeout)
            except asyncio.TimeoutError:
                return self._error_response(HTTPStatus.REQUEST_TIMEOUT,
                                            f"the body did not arrive within {self.config.body_timeout:g}s")
            except _TooLarge:
                return self._error_response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                            f"bodies are limited to {self.config.max_body_bytes} bytes")
        who = self._caller(request, remote)
        if isinstance(who, web.StreamResponse):
            return who
        actor, session_id, session = who
        if method not in ("GET", "HEAD") and session is not None:
            token = request.headers.get(CSRF_HEADER, "")
            if not token or token != session.csrf or not request.headers.get("Origin"):
                return self._error_response(HTTPStatus.FORBIDDEN, "a console request that changes something needs "
                                            f"its {CSRF_HEADER} header and an Origin")
        query = parse_qs(request.query_string, max_num_fields=50)
        csrf = session.csrf if session is not None else ""
        if path == "/healthz":
            answer = self.api.handle(method, path, query, body, actor, csrf)
        else:
            loop = asyncio.get_running_loop()
            answer = await loop.run_in_executor(self._pool, self.api.handle, method, path, query, body, actor, csrf)
        if path == SESSION_PATH + "/end" and session_id and self.trust is not None and answer.status == HTTPStatus.OK:
            await asyncio.get_running_loop().run_in_executor(self._pool, self.trust.sign_out, session_id, actor)
        return self._response(answer)

    def _refuse_write(self, request: web.BaseRequest) -> web.StreamResponse | None:
        """A state change must be JSON, from our own origin when it names one, and not too large."""
        if request.content_type != "application/json":
            return self._error_response(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                                        "state changes must be sent as application/json")
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() != self._origin(request):
            log.warning("cross-origin %s %s from %s refused (Origin %s)", request.method, request.path[:100],
                        request.remote, origin[:100], extra={"event": "http.cross_origin", "peer": request.remote})
            return self._error_response(HTTPStatus.FORBIDDEN, "cross-origin requests may not change anything")
        length = request.content_length
        if length is not None and length > self.config.max_body_bytes:
            return self._error_response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                        f"bodies are limited to {self.config.max_body_bytes} bytes")
        return None

    def _origin(self, request: web.BaseRequest) -> str:
        return f"{'https' if self.tls else 'http'}://{(request.headers.get('Host') or '').lower()}"

    async def _read_body(self, request: web.BaseRequest) -> bytes:
        limit = self.config.max_body_bytes
        data = await request.content.read(limit + 1)
        while len(data) <= limit and not request.content.at_eof():
            more = await request.content.read(limit + 1 - len(data))
            if not more:
                break
            data += more
        if len(data) > limit:
            raise _TooLarge
        return data

    def _caller(self, request: web.BaseRequest, remote: str) -> tuple[Actor, str, Session | None] | web.StreamResponse:
        """(actor, session id, session) of the request, or the 401 answer for a caller who must sign in."""
        if self.trust is None:
            return local_operator(remote), "", None
        auth = request.headers.get("Authorization", "")
        if auth:
            scheme, _, secret = auth.partition(" ")
            secret = secret.strip()
            actor = self.trust.authenticate(secret, remote) if scheme.lower() == "bearer" else None
            if actor is None:
                log.warning("HTTP %s %s from %s: token refused (unknown, expired or revoked%s)", request.method,
                            request.path[:100], remote, "" if secret.startswith(API_PREFIX) else ", not an API token",
                            extra={"event": "http.token_refused", "peer": remote})
                return self._unauthorized("the token is unknown, expired or revoked")
            return actor, "", None
        session_id = request.cookies.get(self.cookie, "")
        if session_id:
            session = self.trust.session(session_id, remote)
            if session is not None:
                return session.actor, session_id, session
        route = self.api.route(request.method, request.path)
        if (route is not None and route.anonymous) or request.path in self.config.public:
            return anonymous(remote), "", None
        return self._unauthorized("sign in: send Authorization: Bearer <token> (xunjian tokens create) or use the "
                                  "console")

    def _unauthorized(self, message: str) -> web.StreamResponse:
        answer = self._error_response(HTTPStatus.UNAUTHORIZED, message)
        answer.headers["WWW-Authenticate"] = 'Bearer realm="xunjian"'
        return answer

    def _error_response(self, status: HTTPStatus, message: str) -> web.Response:
        return self._response(Response(status, json_bytes({"error": message})))

    def _response(self, answer: Response) -> web.Response:
        out = web.Response(status=int(answer.status), body=answer.body, headers=SECURITY_HEADERS)
        out.headers["Content-Type"] = answer.content_type
        if self.tls:
            out.headers["Strict-Transport-Security"] = "max-age=31536000"
        if answer.session is not None:
            value, lifetime = answer.session
            out.set_cookie(self.cookie, value, max_age=max(int(lifetime), 0), path="/", httponly=True,
                           samesite="Strict", secure=self.tls)
        return out


class _TooLarge(Exception):
    pass
