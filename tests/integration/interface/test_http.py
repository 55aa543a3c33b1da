"""http against scripted loopback servers: status, body, JSON fields, redirects, auth, TLS and a hung service."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from checks.result import Outcome, Status
from tests.integration.interface.probing import run_check
from tests.integration.interface.servers import (
    HttpServer,
    LoopbackServer,
    Reply,
    Route,
    self_signed_certificate,
    stay_silent,
)

pytestmark = pytest.mark.integration

LOGIN_PAGE = "<html><title>HIS 登录</title></html>".encode()
HEALTH = json.dumps({"status": "UP", "data": {"queue": [{"name": "settle", "depth": 3}]}}).encode()


@pytest.fixture
def his() -> Iterator[HttpServer]:
    routes: dict[str, Reply | Route] = {
        "/login": Reply(200, LOGIN_PAGE, {"Content-Type": "text/html; charset=utf-8"}),
        "/health": Reply(200, HEALTH, {"Content-Type": "application/json"}),
        "/old": Reply(302, b"", {"Location": "/login"}),
        "/loop": Reply(302, b"", {"Location": "/loop"}),
        "/admin": Reply(401, b"login required", {"WWW-Authenticate": "Basic"}),
        "/broken": Reply(500, b"ORA-03113: end-of-file on communication channel"),
        "/slow": Reply(delay_until_quit=True),
        "/echo": lambda seen: Reply(200, seen.body),
    }
    with HttpServer(routes) as server:
        yield server


def test_login_page_ok_with_body_match(his: HttpServer) -> None:
    result = run_check("http", url=his.url("/login"), expect_status=200, expect_body="登录")
    assert result.status is Status.OK, result.summary
    assert result.metrics["status_code"] == 200
    assert result.unit == "seconds"


def test_body_mismatch_is_critical_content_mismatch(his: HttpServer) -> None:
    result = run_check("http", url=his.url("/login"), expect_body="欢迎")
    assert result.status is Status.CRITICAL
    assert result.outcome is Outcome.CONTENT_MISMATCH
    assert "欢迎" in result.summary


def test_regex_match(his: HttpServer) -> None:
    assert run_check("http", url=his.url("/login"), expect_regex=r"<title>HIS\s").status is Status.OK


def test_json_fields_by_pointer_and_dotted_path(his: HttpServer) -> None:
    result = run_check(
        "http", url=his.url("/health"),
        expect_json=[{"path": "/status", "equals": "UP"}, {"path": "data.queue[0].depth", "compare": "< 100"}],
    )
    assert result.status is Status.OK, result.summary
    bad = run_check("http", url=his.url("/health"), expect_json=[{"path": "data.queue.0.depth", "compare": "> 5"}])
    assert bad.status is Status.CRITICAL
    assert bad.outcome is Outcome.CONTENT_MISMATCH
    assert "data.queue.0.depth is 3, expected > 5" in bad.summary


def test_redirect_followed_or_not(his: HttpServer) -> None:
    followed = run_check("http", url=his.url("/old"), expect_body="登录")
    assert followed.status is Status.OK, followed.summary
    assert followed.metrics["redirects"] == 1
    kept = run_check("http", url=his.url("/old"), follow_redirects=False, expect_status=302)
    assert kept.status is Status.OK, kept.summary
    not_expected = run_check("http", url=his.url("/old"), follow_redirects=False, expect_status=200)
    assert not_expected.outcome is Outcome.CONTENT_MISMATCH


def test_redirect_loop_is_protocol_error(his: HttpServer) -> None:
    result = run_check("http", url=his.url("/loop"), max_redirects=3)
    assert result.status is Status.CRITICAL
    assert result.outcome is Outcome.PROTOCOL_ERROR
    assert "more than 3 redirects" in result.summary


def test_401_is_auth_failed_and_404_not_found(his: HttpServer) -> None:
    auth = run_check("http", url=his.url("/admin"))
    assert (auth.status, auth.outcome) == (Status.CRITICAL, Outcome.AUTH_FAILED)
    missing = run_check("http", url=his.url("/nope"))
    assert (missing.status, missing.outcome) == (Status.CRITICAL, Outcome.NOT_FOUND)


def test_server_error_is_critical(his: HttpServer) -> None:
    result = run_check("http", url=his.url("/broken"))
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.CONTENT_MISMATCH)
    assert "500" in result.summary


def test_post_body_and_header_from_environment(his: HttpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XJ_TEST_TOKEN", "Bearer s3cret")
    result = run_check(
        "http", url=his.url("/echo"), method="POST", body='{"ping": 1}', content_type="application/json",
        header_env={"Authorization": "XJ_TEST_TOKEN"}, expect_json=[{"path": "ping", "equals": 1}],
    )
    assert result.status is Status.OK, result.summary
    assert his.seen[-1].headers["Authorization"] == "Bearer s3cret"
    assert his.seen[-1].headers["Content-Type"] == "application/json"


def test_credentials_are_not_carried_to_another_origin(his: HttpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XJ_TEST_TOKEN", "Bearer s3cret")
    with HttpServer({"/landing": Reply(200, b"elsewhere")}) as other:
        his.routes["/away"] = Reply(302, b"", {"Location": other.url("/landing")})
        result = run_check("http", url=his.url("/away"), header_env={"Authorization": "XJ_TEST_TOKEN"})
    assert result.status is Status.OK, result.summary
    assert his.seen[-1].headers["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in other.seen[-1].headers


def test_missing_token_variable_is_unknown(his: HttpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XJ_TEST_TOKEN", raising=False)
    result = run_check("http", url=his.url("/login"), header_env={"Authorization": "XJ_TEST_TOKEN"})
    assert result.status is Status.UNKNOWN
    assert "XJ_TEST_TOKEN" in result.summary


def test_hung_web_server_times_out_critical(his: HttpServer) -> None:
    result = run_check("http", url=his.url("/slow"), timeout="300ms")
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.TIMEOUT)


def test_silent_tcp_peer_times_out() -> None:
    with LoopbackServer(stay_silent) as server:
        result = run_check("http", url=f"http://127.0.0.1:{server.port}/", timeout="300ms")
    assert (result.status, result.outcome) == (Status.CRITICAL, Outcome.TIMEOUT)


def test_https_self_signed_certificate(tmp_path: Path) -> None:
    cert = self_signed_certificate(tmp_path, dt.timedelta(days=5))
    with HttpServer({"/": Reply(200, b"ok")}, tls=cert.server_context()) as server:
        untrusted = run_check("http", url=server.url("/"))
        assert (untrusted.status, untrusted.outcome) == (Status.CRITICAL, Outcome.TLS_ERROR)
        assert "not trusted" in untrusted.summary
        unverified = run_check("http", url=server.url("/"), tls_verify=False)
        assert unverified.status is Status.OK, unverified.summary
        pinned = run_check("http", url=server.url("/"), ca_file=str(cert.cert))
        assert pinned.status is Status.OK, pinned.summary


def test_missing_ca_file_is_unknown(tmp_path: Path) -> None:
    result = run_check("http", url="https://127.0.0.1:1/", ca_file=str(tmp_path / "none.pem"))
    assert (result.status, result.outcome) == (Status.UNKNOWN, Outcome.NOT_FOUND)


def test_plain_http_to_tls_port_is_protocol_error(tmp_path: Path) -> None:
    cert = self_signed_certificate(tmp_path, dt.timedelta(days=5))
    with HttpServer({"/": Reply(200, b"ok")}, tls=cert.server_context()) as server:
        result = run_check("http", url=f"http://127.0.0.1:{server.port}/", timeout="2s")
    assert result.status is Status.CRITICAL
    assert result.outcome is Outcome.PROTOCOL_ERROR, result.summary
