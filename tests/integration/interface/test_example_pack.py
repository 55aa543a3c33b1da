"""The example pack, pointed at loopback stand-ins by agent.yaml-style overrides, runs green end to end."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from checks.context import RunContext
from checks.pack import load_checks
from checks.result import Status
from tests.integration.interface.servers import (
    HttpServer,
    LoopbackServer,
    Reply,
    close_at_once,
    dicom_scp,
    hl7_ack,
    mllp_responder,
    self_signed_certificate,
)

pytestmark = pytest.mark.integration


def test_example_pack_against_loopback_services(tmp_path: Path) -> None:
    cert = self_signed_certificate(tmp_path, dt.timedelta(days=90))
    routes: dict[str, Reply] = {
        "/login": Reply(200, "<title>HIS 登录</title>".encode(), {"Content-Type": "text/html; charset=utf-8"}),
        "/api/health": Reply(200, json.dumps({"status": "UP"}).encode(), {"Content-Type": "application/json"}),
    }
    with (
        HttpServer(dict(routes), tls=cert.server_context()) as web,
        LoopbackServer(close_at_once) as app,
        LoopbackServer(mllp_responder(lambda m: hl7_ack(m, "AA"))) as lis,
        LoopbackServer(close_at_once, tls=cert.server_context()) as front_tls,
        dicom_scp("PACS_SCP") as pacs_port,
    ):
        overrides: dict[str, dict[str, object]] = {
            "his.web.login": {"url": web.url("/login"), "ca_file": str(cert.cert)},
            "his.app.port": {"host": "127.0.0.1", "port": app.port},
            "lis.hl7.link": {"host": "127.0.0.1", "port": lis.port},
            "pacs.dicom.echo": {"host": "127.0.0.1", "port": pacs_port},
            "insurance.front.health": {"url": web.url("/api/health")},
            "insurance.front.cert": {"host": "127.0.0.1", "port": front_tls.port},
        }
        checks = load_checks(["builtin:interfaces-example"], overrides=overrides)
        results = {}
        for spec in checks.enabled():
            (result,) = spec.probe(RunContext(deadline=time.monotonic() + spec.timeout))
            results[spec.id] = result
    assert {cid: (r.status, r.summary) for cid, r in results.items() if r.status is not Status.OK} == {}
    assert results["insurance.front.cert"].unit == "days"
    assert all(r.unit == "seconds" for cid, r in results.items() if cid != "insurance.front.cert")
