"""The HTTP transport against a real in-process collector with tokens on: every route allowed and refused per role,
browser attacks (cross-origin form, text/plain, foreign Host, CSRF), bounded input, tokens hashed at rest,
sessions, security headers, JSON without NaN, and a thousand half-sent requests that neither keep /healthz out
nor slow ingest."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import json
import math
import re
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from collector.access import ROLES, Actor, role_rank
from collector.server import Collector
from protos import patrol_pb2
from tests.integration.collector.conftest import Agent, results, running

pytestmark = pytest.mark.integration
TOKENS = {"http": {"auth": "tokens"}}
ADMIN = Actor("test-admin", "admin", "local:test")


def request(port: int, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
            host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or f"127.0.0.1:{port}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def JSON(token: str | None = None, **extra: str) -> dict[str, str]:
    return {"Content-Type": "application/json", **(bearer(token) if token else {}), **extra}


def tokens_for_every_role(c: Collector) -> dict[str, str]:
    assert c.trust is not None
    return {role: c.trust.create_token(ADMIN, f"t-{role}", role, 3600)[0] for role in ROLES}


def concrete(pattern: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: "nobody" if m.group(1) == "name" else "1", pattern)


def test_every_route_is_allowed_and_refused_by_role(tmp_path: Path) -> None:
    """Table-driven over the whole route table: a role below the route's gets 403, at or above it never 401/403;
    without a token only the anonymous routes and http.public answer."""

    async def scenario() -> None:
        async with running(tmp_path, **TOKENS) as c:
            tokens = await asyncio.to_thread(tokens_for_every_role, c)
            assert c.api is not None
            table = c.api.routes()
            assert len(table) > 20
            for route in table:
                path = concrete(route.pattern)
                body = b"{}" if route.method == "POST" else None
                for role, token in tokens.items():
                    status, _, payload = await asyncio.to_thread(request, c.http_port, route.method, path, body=body,
                                                                 headers=JSON(token))
                    if role_rank(role) < role_rank(route.role):
                        assert status == 403, (route.method, path, role, status, payload)
                        assert f"needs the {route.role} role".encode() in payload
                    else:
                        assert status not in (401, 403), (route.method, path, role, status, payload)
                status, _, payload = await asyncio.to_thread(request, c.http_port, route.method, path, body=body,
                                                             headers=JSON())
                if route.anonymous or path in ("/metrics", "/healthz"):
                    assert status != 401 or path == "/api/v1/session", (route.method, path, status)
                else:
                    assert status == 401, (route.method, path, status, payload)

    asyncio.run(scenario())


def test_browser_attacks_are_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, **TOKENS) as c:
            admin = (await asyncio.to_thread(tokens_for_every_role, c))["admin"]
            port = c.http_port
            path = "/api/v1/tokens"
            form = b"name=evil&role=admin"
            # a plain HTML form on another origin: urlencoded or text/plain, with the victim's credentials
            for ctype in ("application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"):
                status, _, _ = await asyncio.to_thread(request, port, "POST", path, body=form, headers={
                    "Content-Type": ctype, "Origin": "http://evil.example", **bearer(admin)})
                assert status == 415
            status, _, _ = await asyncio.to_thread(request, port, "POST", path, body=b'{"name":"x","role":"admin"}',
                                                   headers=JSON(admin, Origin="http://evil.example"))
            assert status == 403
            for host in ("evil.example", "evil.example:80", f"attacker.test:{port}", "127.0.0.2"):
                status, _, _ = await asyncio.to_thread(request, port, "GET", "/healthz", host=host)
                assert status == 421, host
            status, _, _ = await asyncio.to_thread(request, port, "GET", "/healthz", host=f"localhost:{port}")
            assert status == 200
            listed = await asyncio.to_thread(request, port, "GET", path, headers=bearer(admin))
            assert b"evil" not in listed[2] and b'"x"' not in listed[2]

    asyncio.run(scenario())


def test_console_session_cookie_csrf_and_sign_out(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, **TOKENS) as c:
            dba = (await asyncio.to_thread(tokens_for_every_role, c))["dba"]
            port = c.http_port
            origin = f"http://127.0.0.1:{port}"
            status, headers, payload = await asyncio.to_thread(
                request, port, "POST", "/api/v1/session", body=json.dumps({"token": dba}).encode(),
                headers=JSON(Origin=origin))
            assert status == 200, payload
            cookie = headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
            assert "Secure" not in cookie, "plain HTTP here; Secure is set under TLS"
            session = cookie.split(";")[0]
            csrf = json.loads(payload)["csrf"]
            assert json.loads(payload)["role"] == "dba"
            status, _, who = await asyncio.to_thread(request, port, "GET", "/api/v1/session", headers={"Cookie": session})
            assert status == 200 and json.loads(who)["name"] == "t-dba"
            # a state change with the cookie alone (what a forged cross-site request would carry) is refused
            status, _, _ = await asyncio.to_thread(request, port, "POST", "/api/v1/findings/1/accept", body=b"{}",
                                                   headers=JSON(Cookie=session, Origin=origin))
            assert status == 403
            status, _, _ = await asyncio.to_thread(request, port, "POST", "/api/v1/findings/1/accept", body=b"{}",
                                                   headers=JSON(Cookie=session, **{"X-CSRF-Token": csrf}))
            assert status == 403, "no Origin"
            status, _, body = await asyncio.to_thread(
                request, port, "POST", "/api/v1/findings/1/accept", body=b'{"note": "ok"}',
                headers=JSON(Cookie=session, Origin=origin, **{"X-CSRF-Token": csrf}))
            assert status == 404, body  # allowed through: the finding does not exist
            status, _, _ = await asyncio.to_thread(request, port, "POST", "/api/v1/session/end", body=b"{}",
                                                   headers=JSON(Cookie=session, Origin=origin, **{"X-CSRF-Token": csrf}))
            assert status == 200
            status, _, _ = await asyncio.to_thread(request, port, "GET", "/api/v1/agents", headers={"Cookie": session})
            assert status == 401, "the session ended"
            status, _, _ = await asyncio.to_thread(request, port, "POST", "/api/v1/session",
                                                   body=b'{"token": "xjt_wrong"}', headers=JSON(Origin=origin))
            assert status == 401

    asyncio.run(scenario())


def test_tokens_are_hashed_at_rest_expire_and_revoke(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, **TOKENS) as c:
            admin = (await asyncio.to_thread(tokens_for_every_role, c))["admin"]
            port = c.http_port
            status, _, payload = await asyncio.to_thread(
                request, port, "POST", "/api/v1/tokens", body=b'{"name": "wall", "role": "viewer", "expires_in": "1s"}',
                headers=JSON(admin))
            assert status == 200, payload
            secret = json.loads(payload)["token"]
            assert (await asyncio.to_thread(request, port, "GET", "/api/v1/agents", headers=bearer(secret)))[0] == 200
            status, _, _ = await asyncio.to_thread(request, port, "POST", "/api/v1/tokens", headers=JSON(admin),
                                                   body=b'{"name": "wall", "role": "viewer"}')
            assert status == 409
            await asyncio.sleep(1.2)
            assert (await asyncio.to_thread(request, port, "GET", "/api/v1/agents", headers=bearer(secret)))[0] == 401
            status, _, _ = await asyncio.to_thread(request, port, "POST", "/api/v1/tokens/t-viewer/revoke",
                                                   body=b"{}", headers=JSON(admin))
            assert status == 200
            listed = json.loads((await asyncio.to_thread(request, port, "GET", "/api/v1/tokens",
                                                         headers=bearer(admin)))[2])
            assert {t["name"] for t in listed if t["revoked_at"]} == {"t-viewer"}
            assert all("token" not in t and "token_hash" not in t for t in listed)
            audit = json.loads((await asyncio.to_thread(request, port, "GET", "/api/v1/audit",
                                                        headers=bearer(admin)))[2])
            assert {"token.create", "token.revoke"} <= {e["action"] for e in audit}
            store = (tmp_path / "collector.db").read_bytes() + (tmp_path / "collector.db-wal").read_bytes()
            assert secret.encode() not in store and admin.encode() not in store

    asyncio.run(scenario())


def test_bounded_input_and_headers(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running(tmp_path, **TOKENS) as c:
            admin = (await asyncio.to_thread(tokens_for_every_role, c))["admin"]
            port = c.http_port
            status, headers, _ = await asyncio.to_thread(request, port, "GET", "/")
            assert status == 200
            csp = headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
            assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY"
            big = b'{"note": "' + b"x" * (2 * 1024 * 1024) + b'"}'
            status, _, _ = await asyncio.to_thread(request, port, "POST", "/api/v1/findings/1/accept", body=big,
                                                   headers=JSON(admin))
            assert status == 413
            for query in ("limit=99999999999999999999999", "limit=-1", "limit=1e9", "after=abc"):
                status, _, payload = await asyncio.to_thread(request, port, "GET", f"/api/v1/audit?{query}",
                                                             headers=bearer(admin))
                assert status == 400, (query, payload)

    asyncio.run(scenario())


def test_json_never_carries_nan_or_infinity(tmp_path: Path) -> None:
    def strict(raw: bytes) -> Any:
        def refuse(name: str) -> Any:
            raise ValueError(f"{name} in JSON")
        return json.loads(raw, parse_constant=refuse)

    async def scenario() -> None:
        async with running(tmp_path) as c, grpc.aio.insecure_channel(f"127.0.0.1:{c.grpc_port}") as ch:
            agent = Agent(ch)
            await agent.hello()
            bad = patrol_pb2.Result(seq=1, check_id="his.disk", key="/data", status=1, value=math.nan,  # type: ignore[arg-type]
                                    metrics={"x": math.inf, "ok": 1.0}, summary="x=1e999", outcome="ok")
            await agent.batch([bad])
            assert await agent.ack() == 1
            await agent.call.done_writing()
            status, _, raw = await asyncio.to_thread(request, c.http_port, "GET", "/api/v1/checks")
            checks = strict(raw)
            assert status == 200 and checks[0]["metrics"] == {"x": None, "x_text": "inf", "ok": 1.0}
            metrics = (await asyncio.to_thread(request, c.http_port, "GET", "/metrics"))[2].decode()
            assert "xunjian_ingest_clamped_results_total{what=\"non_finite_value\"} 1.0" in metrics

    asyncio.run(scenario())


def test_a_thousand_half_sent_requests_neither_block_healthz_nor_ingest(tmp_path: Path) -> None:
    """Regression: 1,000 half-sent requests stalled /healthz for 476 s and cut the agent off for 7.5 minutes."""

    async def scenario() -> None:
        async with running(tmp_path, http={"auth": "none", "max_connections": 256, "header_timeout": "5s"}) as c, \
                grpc.aio.insecure_channel(f"127.0.0.1:{c.grpc_port}") as ch:
            agent = Agent(ch)
            await agent.hello()
            threads_before = threading.active_count()
            half = []
            for _ in range(1000):
                s = socket.create_connection(("127.0.0.1", c.http_port))
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                half.append(s)
            try:
                latencies = []
                for seq in range(1, 21):
                    t0 = time.monotonic()
                    status, _, _ = await asyncio.to_thread(request, c.http_port, "GET", "/healthz")
                    latencies.append(time.monotonic() - t0)
                    assert status == 200
                    await agent.batch(results(range(seq, seq + 1)))
                    assert await agent.ack() == seq
                print(f"/healthz under 1000 half-open connections: median {sorted(latencies)[10] * 1000:.1f} ms, "
                      f"max {max(latencies) * 1000:.1f} ms")
                assert threading.active_count() - threads_before < 20, "a thread per connection"
            finally:
                for s in half:
                    s.close()
            await agent.call.done_writing()

    asyncio.run(scenario())


def test_https_with_a_secure_host_only_session_cookie(tmp_path: Path) -> None:
    from collector.pki import Authority, init_ca
    from service.files import write_private

    init_ca(tmp_path / "pki")
    ca = Authority(tmp_path / "pki")
    key, issued = ca.issue_server(["127.0.0.1"], dt.timedelta(hours=1))
    write_private(tmp_path / "web.key", key)
    (tmp_path / "web.crt").write_bytes(issued.pem + ca.cert_pem)

    async def scenario() -> None:
        web = {"auth": "tokens", "tls_cert_file": str(tmp_path / "web.crt"), "tls_key_file": str(tmp_path / "web.key")}
        async with running(tmp_path, http=web) as c:
            viewer = (await asyncio.to_thread(tokens_for_every_role, c))["viewer"]
            context = ssl.create_default_context(cadata=ca.cert_pem.decode())

            def call(method: str, path: str, body: bytes | None = None,
                     headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
                conn = http.client.HTTPSConnection("127.0.0.1", c.http_port, context=context, timeout=10)
                try:
                    conn.request(method, path, body=body, headers=headers or {})
                    resp = conn.getresponse()
                    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
                finally:
                    conn.close()

            status, headers, _ = await asyncio.to_thread(
                call, "POST", "/api/v1/session", json.dumps({"token": viewer}).encode(),
                {"Content-Type": "application/json", "Origin": f"https://127.0.0.1:{c.http_port}"})
            assert status == 200
            cookie = headers["set-cookie"]
            assert cookie.startswith("__Host-xunjian_session=") and "Secure" in cookie and "HttpOnly" in cookie
            assert "max-age=31536000" in headers["strict-transport-security"]
            plain = await asyncio.to_thread(lambda: socket.create_connection(("127.0.0.1", c.http_port), timeout=5))
            plain.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert b"200 OK" not in plain.recv(100)
            plain.close()

    asyncio.run(scenario())
